"""Neural architecture search, part 6: random search against evolution, over many seeds, on a stored table.

One search is one seed's luck. To compare two strategies honestly, run both with the same
trial budget and constraints over several seeds and compare the **best-so-far** curves
(the best estimate among the first t trials, for t = 1 … budget): their mean, and how many
seeds each strategy wins at the budget. With the estimates and latencies looked up in a
stored table (:class:`StoredTable`, from ``qkit.results.load("nas")``), a search costs no
training, so hundreds of them take a second and come out the same on every machine.

>>> from qkit.nas.space import SPACE
>>> fake = StoredTable({a.key: a.width / 100 for a in SPACE.archs()}, {a.key: 1.0 for a in SPACE.archs()})
>>> curves = race(SPACE, trials=10, seeds=range(5), table=fake, max_params=3000)
>>> curves["random"].shape                  # (seeds, trials)
(5, 10)
>>> s = summarize(curves); sorted(s), s["trials"], s["seeds"]
(['evolution', 'random', 'seeds', 'ties', 'trials', 'wins'], 10, 5)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from qkit.nas.search import STRATEGIES, best_so_far, search
from qkit.nas.space import Arch, Space


@dataclass(frozen=True)
class StoredTable:
    """Proxy estimate and latency (ms) of each architecture, by key; call :meth:`estimate` / :meth:`latency`."""

    estimates: dict
    latencies: dict

    @classmethod
    def from_grid(cls, grid: dict) -> "StoredTable":
        """The ``arch`` rows of lesson 10's grid (``qkit.results.load("nas")``)."""
        rows = [r for r in grid["rows"] if r["kind"] == "arch"]
        if not rows:
            raise ValueError("the grid has no 'arch' rows: expected qkit.results.load('nas')")
        return cls({r["arch"]: r["estimate"] for r in rows}, {r["arch"]: r["latency_ms"] for r in rows})

    def estimate(self, arch: Arch) -> float:
        return self.estimates[arch.key]

    def latency(self, arch: Arch) -> float:
        return self.latencies[arch.key]


def race(space: Space, *, trials: int, seeds: Iterable[int], table: StoredTable, max_params: int | None = None,
         max_latency_ms: float | None = None, strategies=STRATEGIES, population: int = 8,
         sample: int = 3) -> dict[str, np.ndarray]:
    """Best-so-far curves ``{strategy: (len(seeds), trials) array}``: every strategy on every seed.

    Raises:
        ValueError: from :func:`qkit.nas.search` (constraints no architecture meets, a bad budget).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed; got none")
    return {s: np.array([best_so_far(search(space, strategy=s, trials=trials, max_params=max_params,
                                            max_latency_ms=max_latency_ms, seed=seed, estimate=table.estimate,
                                            latency=table.latency, population=population, sample=sample))
                         for seed in seeds]) for s in strategies}


def summarize(curves: dict[str, np.ndarray]) -> dict:
    """Mean best-so-far at the budget per strategy, and seeds evolution wins / ties against random search.

    Example:
        >>> s = summarize({"random": np.array([[0.5, 0.75], [0.5, 0.5]]),
        ...                "evolution": np.array([[0.25, 1.0], [0.5, 0.5]])})
        >>> s["random"], s["evolution"], s["wins"], s["ties"]     # seed 0: 1.0 > 0.75; seed 1: a tie
        (0.625, 0.75, 1, 1)
    """
    if set(curves) != set(STRATEGIES):
        raise ValueError(f"curves must hold {STRATEGIES}; got {sorted(curves)}")
    r, e = curves["random"][:, -1], curves["evolution"][:, -1]  # (seeds,) best at the budget
    return {"random": float(r.mean()), "evolution": float(e.mean()), "wins": int((e > r).sum()),
            "ties": int((e == r).sum()), "seeds": len(r), "trials": curves["random"].shape[1]}
