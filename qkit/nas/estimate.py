"""Neural architecture search, part 3: what one trial costs — a cheap accuracy estimate and a measured latency.

Training every candidate fully would make a search as slow as its trials times a full
training. NAS therefore ranks candidates by a **proxy**: here a short training (``ESTIMATE``:
3 epochs instead of the zoo's 30, no augmentation) on the first 1079 images of the training
split, scored on the last 359 (the **held-out slice**: never trained on, never the test split).

A proxy is only as good as the order it puts architectures in. Its faithfulness is the
**Spearman rank correlation** between proxy and full-training accuracy over a sample of
architectures: Pearson's correlation of the two rankings (ties get their average rank),

    ρ = cov(rank(a), rank(b)) / (σ(rank(a)) · σ(rank(b))),

1 for the same order, 0 for no relation, −1 for the reverse.

>>> spearman([0.1, 0.5, 0.3], [10, 30, 20])          # same order
1.0
>>> spearman([1, 2, 3, 4], [4, 3, 2, 1])              # reversed
-1.0

Latency is measured, not modelled: the fastest of 20 forward passes (:func:`fastest_ms`) over a
batch of 256 images on the current thread count, once per architecture (:class:`LatencyTable`
caches it, so a search stays reproducible given those measurements).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from qkit.nas.build import build
from qkit.nas.space import Arch

HELD_OUT = 359  # the last images of the training split: the proxy is scored on them
#: The proxy: a short training (``qkit.train.fit`` keywords).
ESTIMATE = dict(epochs=3, lr=1e-2, batch_size=64, schedule="cosine")
#: Full training: the zoo's CNN recipe (``qkit.zoo.make.CNN``: 30 epochs, cosine, ±1-pixel shifts).
FULL = dict(epochs=30, lr=1e-2, batch_size=64, weight_decay=1e-4, schedule="cosine", shift=True)


def split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X_fit, y_fit, X_held, y_held)``: the training split without / with only its last 359 images."""
    from qkit.data import digits

    X, y = digits("train")
    return X[:-HELD_OUT], y[:-HELD_OUT], X[-HELD_OUT:], y[-HELD_OUT:]


def train_arch(arch: Arch, X: torch.Tensor, y: torch.Tensor, recipe: dict, *, seed: int = 0) -> torch.nn.Module:
    """``build(arch)`` seeded with ``seed`` and fitted on ``(X, y)`` with ``recipe`` (fit keywords; ``shift``)."""
    from qkit import train

    recipe = dict(recipe)
    augment = train.shift_pixels if recipe.pop("shift", False) else None
    torch.manual_seed(seed)
    model = build(arch)
    train.fit(model, X, y, seed=seed, progress=False, augment=augment, **recipe)
    return model


@lru_cache(maxsize=None)
def quick_accuracy(arch: Arch, *, seed: int = 0, epochs: int = ESTIMATE["epochs"]) -> float:
    """The proxy: held-out accuracy after ``epochs`` epochs of :data:`ESTIMATE` (cached per process)."""
    from qkit.train import evaluate

    X, y, Xh, yh = split()
    return evaluate(train_arch(arch, X, y, {**ESTIMATE, "epochs": epochs}, seed=seed), Xh, yh)


def full_accuracy(arch: Arch, *, seed: int = 0) -> float:
    """Held-out accuracy after the full :data:`FULL` training on the same 1079 images as the proxy."""
    from qkit.train import evaluate

    X, y, Xh, yh = split()
    return evaluate(train_arch(arch, X, y, FULL, seed=seed), Xh, yh)


def ranks(values) -> np.ndarray:
    """Ranks from 1 (smallest); tied values share the average of their ranks.

    Example:
        >>> ranks([0.5, 0.2, 0.5, 0.9]).tolist()
        [2.5, 1.0, 2.5, 4.0]
    """
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(1, len(v) + 1)
    for value in np.unique(v):
        tie = v == value
        r[tie] = r[tie].mean()
    return r


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (Pearson's correlation of their ranks)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a and b must be as long, with at least 2 values; got {len(a)} and {len(b)}")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    if denom == 0:
        raise ValueError("a rank correlation needs values that are not all equal in both sequences")
    return float(np.round((ra * rb).sum() / denom, 12))


def fastest_ms(model: torch.nn.Module, x: torch.Tensor, *, repeat: int = 20, warmup: int = 3) -> float:
    """The fastest of ``repeat`` timed calls of ``model(x)`` in ms, after ``warmup`` untimed ones.

    The minimum, not the median: on a machine other processes share, most runs are slowed by
    them, and the fastest run is the one least disturbed — the closest to what the network
    costs on its own (the reasoning of Python's ``timeit`` documentation).

    Example:
        >>> fastest_ms(torch.nn.Linear(8, 2), torch.zeros(4, 8), repeat=3) > 0
        True
    """
    import time

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be an int >= 1; got {repeat!r}")
    best = float("inf")
    with torch.inference_mode():
        for i in range(warmup + repeat):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                best = min(best, (time.perf_counter() - start) * 1e3)
    return best


def measure_latency(arch: Arch, *, batch: int = 256, repeat: int = 20) -> float:
    """:func:`fastest_ms` of one eval-mode forward pass of ``build(arch)`` on ``batch`` images."""
    torch.manual_seed(0)
    model = build(arch).eval()
    return fastest_ms(model, torch.zeros(batch, 1, 8, 8), repeat=repeat)


class LatencyTable:
    """Latency of each architecture, measured once (:func:`measure_latency`) and then looked up.

    Pass ``known`` (``{arch or key: ms}``, e.g. the latencies stored with a grid) and nothing is
    measured for those: a search given them is reproducible on any machine.

    Example:
        >>> table = LatencyTable({"plain-d1-w8-k3": 0.25})
        >>> table(Arch("plain", 1, 8, 3)), table.measured
        (0.25, 0)
    """

    def __init__(self, known: dict | None = None, **measure_kw) -> None:
        self.ms = {(Arch.parse(k) if isinstance(k, str) else k): float(v) for k, v in (known or {}).items()}
        self.measure_kw = measure_kw
        self.measured = 0

    def __call__(self, arch: Arch) -> float:
        if arch not in self.ms:
            self.ms[arch] = measure_latency(arch, **self.measure_kw)
            self.measured += 1
        return self.ms[arch]
