"""Gradual pruning (Zhu & Gupta 2017): raise the sparsity step by step while training.

Pruning 95 % of the weights at once removes weights the network still relies
on, and fine-tuning must then find a new solution with what is left. Zhu and
Gupta instead prune a little every ``Δt`` training steps, following

    s_t = s_f + (s_i - s_f) · (1 - (t - t0) / (n·Δt))³      for t0 <= t <= t0 + n·Δt

from the initial sparsity ``s_i`` at step ``t0`` to the final ``s_f`` after ``n``
pruning steps (``s_t = s_i`` before ``t0``, ``s_f`` after). The cube prunes fast
while many redundant weights remain and slowly near the end, when each weight
counts; between pruning steps the network trains and recovers. At every pruning
step the model is pruned by magnitude (:mod:`qkit.prune.magnitude`) to ``s_t``; the
weights already pruned are 0, so they are the smallest and stay pruned.

>>> [round(polynomial(t, s_f=0.9, n=4, dt=10), 4) for t in (0, 10, 20, 40, 50)]
[0.0, 0.5203, 0.7875, 0.9, 0.9]
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qkit._checks import check_int
from qkit.prune.magnitude import check_sparsity, magnitude_masks
from qkit.prune.masks import FINETUNE, apply_masks, finetune


def polynomial(t: int, *, s_f: float, n: int, dt: int, s_i: float = 0.0, t0: int = 0) -> float:
    """Zhu & Gupta's (2017) sparsity at training step ``t``: ``s_f + (s_i - s_f)(1 - (t - t0)/(n·dt))³``.

    Clamped: ``s_i`` before ``t0``, ``s_f`` from ``t0 + n·dt`` on.

    Example:
        >>> round(polynomial(5, s_f=0.8, n=1, dt=10), 6)   # halfway: 0.8 - 0.8 · 0.5³
        0.7
    """
    s_f, s_i = check_sparsity(s_f), check_sparsity(s_i)
    check_int("n", n, low=1)
    check_int("dt", dt, low=1)
    check_int("t0", t0, low=0)
    frac = min(max((t - t0) / (n * dt), 0.0), 1.0)
    return s_f + (s_i - s_f) * (1.0 - frac) ** 3


def gradual(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, sparsity: float, epochs: int = FINETUNE["epochs"],
            prune_fraction: float = 0.5, dt: int = 10, s_i: float = 0.0, lr: float = FINETUNE["lr"], seed: int = 0,
            scope: str = "global", progress: bool = True, record: list | None = None) -> nn.Module:
    """Train ``model`` in place for ``epochs`` while pruning it to ``sparsity`` on Zhu & Gupta's schedule.

    The schedule starts at step 0 (``t0 = 0``, the first pruning to ``s_t`` happens after the
    first optimizer step) and reaches ``sparsity`` after ``prune_fraction`` of all steps; the
    remaining steps fine-tune at the final sparsity. Pruning steps fall every ``dt`` optimizer
    steps; between them the current masks are kept (:func:`qkit.prune.finetune`'s hook).

    Args:
        model: the (dense, trained) model; trained and pruned in place.
        X, y: training images and labels.
        sparsity: the final sparsity ``s_f``.
        epochs, lr, seed: as :func:`qkit.prune.finetune` (the same recipe: a fair comparison
            with one-shot pruning followed by ``finetune`` for the same epochs).
        prune_fraction: the share of the steps over which sparsity rises (``n·dt`` of them).
        dt: optimizer steps between two pruning steps.
        s_i: initial sparsity.
        scope: magnitude pruning's scope at each pruning step.
        progress: a progress bar over the epochs.
        record: optional list; ``(step, sparsity)`` is appended at every pruning step.

    Returns:
        ``model``, pruned to ``sparsity``.
    """
    s_f = check_sparsity(sparsity)
    check_int("epochs", epochs, low=1)
    check_int("dt", dt, low=1)
    if not 0.0 < prune_fraction <= 1.0:
        raise ValueError(f"prune_fraction must be in (0, 1]; got {prune_fraction}")
    batch = FINETUNE["batch_size"]
    steps = epochs * math.ceil(len(X) / batch)
    n = max(1, int(prune_fraction * steps) // dt)
    state = {"masks": magnitude_masks(model, s_i, scope=scope)}
    apply_masks(model, state["masks"])

    def hook(t: int, loss: float) -> None:
        apply_masks(model, state["masks"])  # the current masks, after every step
        if t % dt == 0 and t <= n * dt:
            s_t = polynomial(t, s_f=s_f, n=n, dt=dt, s_i=s_i)
            state["masks"] = magnitude_masks(model, s_t, scope=scope)
            apply_masks(model, state["masks"])
            if record is not None:
                record.append((t, s_t))

    # finetune's own mask hook keeps the dense start (no zeros) and runs first; ours then narrows the masks.
    finetune(model, X, y, epochs=epochs, lr=lr, seed=seed, masks={}, progress=progress, on_step=hook,
             batch_size=batch)
    if n * dt > steps:  # unreachable by construction, but never return short of the target
        apply_masks(model, magnitude_masks(model, s_f, scope=scope))
    return model
