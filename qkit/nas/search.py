"""Neural architecture search, part 4: random search and regularized (aging) evolution.

Both strategies spend the same **trial budget**: ``trials`` evaluations of the accuracy
estimate. Candidates that break a constraint (``max_params``, ``max_latency_ms``) are
rejected before they are trained, so they cost no trial; the parameter count is exact and
the latency measured once per architecture (or looked up: pass ``latency``).

**Random search** draws every trial uniformly from the feasible architectures (with replacement).

**Regularized evolution** (Real et al. 2019, "aging evolution", their Algorithm 1):

1. fill a population of ``population`` (P) random architectures, each one trial;
2. repeat until the budget is spent: draw ``sample`` (S) members of the population at random,
   take the best of them (highest estimate) as the **parent**, evaluate a **mutation** of it
   (one choice changed, :meth:`qkit.nas.space.Space.mutate`), add the child and **remove the
   oldest** member — not the worst: an architecture survives only as long as its descendants
   keep being good, which is what protects evolution from one lucky estimate.

Given the same ``estimate`` and ``latency`` functions, a search is a function of its seed:

>>> from qkit.nas.space import SPACE
>>> fake = lambda arch: arch.width / 100 + arch.depth / 1000          # an "estimate" without training
>>> found = search(SPACE, strategy="evolution", trials=12, seed=0, estimate=fake, latency=lambda a: 1.0)
>>> len(found), found == search(SPACE, strategy="evolution", trials=12, seed=0, estimate=fake,
...                             latency=lambda a: 1.0)
(12, True)
>>> best = max(found, key=lambda t: t.estimate); best.arch.width
32
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from qkit._checks import check_int
from qkit.nas.build import count_params as _count_params
from qkit.nas.space import Arch, Space

STRATEGIES = ("random", "evolution")


@dataclass(frozen=True)
class Trial:
    """One evaluated candidate of a search, in the order the search tried them (``index`` from 0)."""

    index: int
    arch: Arch
    params: int
    latency_ms: float
    estimate: float
    parent: int | None = field(default=None)  # evolution: the index of the trial it mutates

    @property
    def key(self) -> str:
        return self.arch.key


@lru_cache(maxsize=None)
def count_params(arch: Arch) -> int:
    """:func:`qkit.nas.build.count_params`, cached (a search asks for it often)."""
    return _count_params(arch)


def best_so_far(trials: list[Trial]) -> list[float]:
    """The highest estimate among the first 1, 2, …, n trials.

    Example:
        >>> a = Arch("plain", 1, 8, 3)
        >>> best_so_far([Trial(i, a, 1, 1.0, e) for i, e in enumerate([0.5, 0.3, 0.8, 0.6])])
        [0.5, 0.5, 0.8, 0.8]
    """
    out, best = [], float("-inf")
    for t in trials:
        best = max(best, t.estimate)
        out.append(best)
    return out


def _check_limit(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ValueError(f"{name} must be None or a positive number; got {value!r}")


def search(space: Space, *, strategy: str = "random", trials: int = 20, max_params: int | None = None,
           max_latency_ms: float | None = None, seed: int = 0,
           estimate: Callable[[Arch], float] | None = None, latency: Callable[[Arch], float] | None = None,
           population: int = 8, sample: int = 3, progress: bool = False) -> list[Trial]:
    """Search ``space`` with ``strategy`` for ``trials`` trials under the constraints; every trial, in order.

    Args:
        space: the search space (:data:`qkit.nas.SPACE`).
        strategy: ``"random"`` or ``"evolution"`` (regularized evolution).
        trials: evaluations of ``estimate`` (the budget), repeats of an architecture included.
        max_params: keep only architectures with at most this many parameters (None: no limit).
        max_latency_ms: keep only architectures measured at most this fast (None: no limit).
        seed: seeds every random draw of the search.
        estimate: ``estimate(arch) -> accuracy``; default :func:`qkit.nas.estimate.quick_accuracy`
            (a short training, scored on the held-out slice of the training split).
        latency: ``latency(arch) -> ms``; default a shared :class:`qkit.nas.estimate.LatencyTable`
            (measured once per architecture).
        population, sample: evolution's P and S (Real et al. 2019); ignored by random search.
        progress: a progress bar over the trials.

    Raises:
        ValueError: an unknown strategy, a bad budget, or constraints no architecture meets.
    """
    from qkit.nas import estimate as est

    if not isinstance(space, Space):
        raise TypeError(f"space must be a qkit.nas.Space; got {type(space).__name__}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
    check_int("trials", trials, low=1)
    check_int("seed", seed)
    check_int("population", population, low=2)
    check_int("sample", sample, low=1, high=population)
    _check_limit("max_params", max_params)
    _check_limit("max_latency_ms", max_latency_ms)
    estimate = est.quick_accuracy if estimate is None else estimate
    latency = _LATENCY if latency is None else latency
    small = [a for a in space.archs() if max_params is None or count_params(a) <= max_params]
    if not small:
        smallest = min(count_params(a) for a in space.archs())
        raise ValueError(f"no architecture has at most max_params={max_params} parameters "
                         f"(the smallest of the space has {smallest})")

    def feasible(arch: Arch) -> bool:  # params first: latency is only measured for small enough ones
        return (max_params is None or count_params(arch) <= max_params) and (
            max_latency_ms is None or latency(arch) <= max_latency_ms)

    if max_latency_ms is not None and not any(feasible(a) for a in small):
        fastest = min(latency(a) for a in small)
        raise ValueError(f"no architecture meets max_latency_ms={max_latency_ms} (with max_params={max_params}); "
                         f"the fastest takes {fastest:.3g} ms")
    gen = torch.Generator().manual_seed(seed)
    allowed: list[Arch] = []

    def draw() -> Arch:  # uniform over the feasible architectures (listed on first use)
        if not allowed:
            allowed.extend(a for a in small if feasible(a))
        return allowed[int(torch.randint(len(allowed), (), generator=gen))]

    history: list[Trial] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=trials, desc=f"{strategy} search", unit="trial", leave=False)

    def evaluate(arch: Arch, parent: int | None = None) -> Trial:
        t = Trial(len(history), arch, count_params(arch), float(latency(arch)), float(estimate(arch)), parent)
        history.append(t)
        if bar is not None:
            bar.update(1)
        return t

    if strategy == "random":
        for _ in range(trials):
            evaluate(draw())
    else:
        alive: deque[Trial] = deque()
        while len(history) < min(population, trials):
            alive.append(evaluate(draw()))
        while len(history) < trials:
            picks = torch.randperm(len(alive), generator=gen)[:sample].tolist()
            parent = max((alive[i] for i in picks), key=lambda t: (t.estimate, -t.index))
            child = None
            for _ in range(100):  # a mutation that breaks a constraint is redrawn
                child = space.mutate(parent.arch, gen)
                if feasible(child):
                    break
            else:
                child = draw()  # a parent boxed in by the constraints: a fresh random architecture
            alive.append(evaluate(child, parent.index))
            alive.popleft()  # aging: the oldest member dies, whatever its estimate
    if bar is not None:
        bar.close()
    return history


class _SharedLatency:
    """The default latency function: one :class:`qkit.nas.estimate.LatencyTable` per process, made on first use."""

    table = None

    def __call__(self, arch: Arch) -> float:
        if self.table is None:
            from qkit.nas.estimate import LatencyTable

            self.table = LatencyTable()
        return self.table(arch)


_LATENCY = _SharedLatency()
