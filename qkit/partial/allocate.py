"""Partial quantization, part 3: mixed precision — a weight bit-width per layer under a size budget.

Each layer ``l`` takes a width ``b_l`` from ``choices`` (32 = float); the
weights then take ``S(b) = Σ_l bytes_l(b_l)`` (:func:`qkit.partial.weight_bytes`).
The problem is::

    maximise accuracy(b)   subject to   S(b) <= budget_bytes

**Greedy** (:func:`allocate`): measure once, per layer and choice, the drop
``d_l(b)`` with only that layer's weights at ``b`` (:func:`qkit.partial.sensitivity_table`),
treat drops as additive, start with every layer at ``max(choices)`` and
repeatedly take the move ``b → b'`` (the next lower choice that saves bytes) with
the least drop per byte saved::

    cost = (d_l(b') - d_l(b)) / (bytes_l(b) - bytes_l(b'))

until ``S(b) <= budget_bytes``; then spend the slack the last (possibly large) move
left: raise layers again, best predicted gain per extra byte first, while it fits.
Drops are *not* additive at few bits (two layers at 2 bits lose far more than
the sum of each alone), so greedy can fall well short of the optimum when the
budget forces several layers to 2 bits (:func:`qkit.partial.greedy_measured` makes the same
moves but measures each one instead). **Exact** (:func:`optimal`): evaluate every
assignment that fits, with :func:`qkit.partial.simulate_bits` — only possible for
a handful of layers (``len(choices) ** layers`` assignments). **Baseline**
(:func:`random_allocation`): a random assignment that fits.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from qkit._checks import check_int
from qkit.partial.sensitivity import sensitivity_table, simulate_bits
from qkit.partial.sizes import check_budget, check_calibration, check_choices, check_data, fold, sizes
from qkit.train import evaluate


def _minimum(size: dict[str, dict[int, int]]) -> int:
    return sum(min(per.values()) for per in size.values())


def _refuse(size: dict[str, dict[int, int]], budget: int, choices: tuple[int, ...]) -> None:
    least = _minimum(size)
    if least > budget:
        raise ValueError(f"budget_bytes={budget} is too small: with choices {choices} the weights take at "
                         f"least {least} bytes (every layer at its smallest)")


def greedy(size: dict[str, dict[int, int]], drops: dict[str, dict[int, float]], budget: int) -> dict[str, int]:
    """The greedy allocation from per-layer sizes ``{layer: {bits: bytes}}`` and drops ``{layer: {bits: points}}``.

    Phase 1 lowers the layer with the least drop per byte saved until the total
    fits ``budget``; phase 2 raises layers (most drop recovered per extra byte)
    while the total still fits. Ties go to the larger saving, then graph order.

    Example (the cheaper move per byte goes first: ``a`` loses 1 point per 100 bytes, ``b`` 1 per 10):
        >>> size = {"a": {4: 100, 8: 200}, "b": {4: 10, 8: 20}}
        >>> drops = {"a": {4: 1.0, 8: 0.0}, "b": {4: 1.0, 8: 0.0}}
        >>> greedy(size, drops, budget=120)
        {'a': 4, 'b': 8}
        >>> greedy(size, drops, budget=110)
        {'a': 4, 'b': 4}
    """
    order = {n: sorted(per) for n, per in size.items()}
    current = {n: bits[-1] for n, bits in order.items()}
    total = sum(size[n][b] for n, b in current.items())
    while total > budget:
        best = None
        for i, n in enumerate(size):
            b = current[n]
            lower = [c for c in order[n] if c < b and size[n][c] < size[n][b]]
            if not lower:
                continue
            c = lower[-1]  # the next lower choice that saves bytes
            saved = size[n][b] - size[n][c]
            key = ((drops[n][c] - drops[n][b]) / saved, -saved, i)
            if best is None or key < best[0]:
                best = (key, n, c, saved)
        if best is None:
            raise ValueError(f"budget {budget} is below the smallest size {_minimum(size)}")
        _, n, c, saved = best
        current[n], total = c, total - saved
    while True:  # refill: spend the slack the last (possibly large) move left, best gain per byte first
        best = None
        for i, n in enumerate(size):
            b = current[n]
            for c in (c for c in order[n] if c > b):
                extra = size[n][c] - size[n][b]
                gain = drops[n][b] - drops[n][c]
                if gain > 0 and total + extra <= budget:
                    key = (-gain / max(extra, 1), i, c)
                    if best is None or key < best[0]:
                        best = (key, n, c, extra)
        if best is None:
            return current
        _, n, c, extra = best
        current[n], total = c, total + extra


def allocate(model: nn.Module, calibration, X, y, *, budget_bytes: int, choices=(2, 4, 8, 32),
             act_bits: int | None = None, table: dict[str, dict[int, float]] | None = None,
             progress: bool = False) -> dict[str, int]:
    """Weight bits per layer (32 = float) whose size fits ``budget_bytes``, chosen greedily by drop per byte.

    Args:
        model: a float classifier (left unchanged); layers of its BN-folded graph.
        calibration: representative inputs; used only when ``act_bits`` is given.
        X, y: data the per-layer drops are measured on.
        budget_bytes: the most bytes the conv/linear weights (+ scales) may take
            (:func:`qkit.partial.weight_bytes`).
        choices: the widths a layer may take, 2..16 or 32.
        act_bits: measure each drop with that layer's activation quantized too; None
            (default): weights only, as the size budget is about weights.
        table: a precomputed ``sensitivity_table(model, ..., choices=choices)`` (then
            ``X``, ``y``, ``calibration`` are not used): a budget slider needs it once.
        progress: show a progress bar while the drops are measured.

    Returns:
        ``{layer: bits}`` in graph order.

    Raises:
        ValueError: even every layer at its smallest choice does not fit (the message says that size).

    Example:
        >>> from qkit import data, models
        >>> from qkit.partial import weight_bytes
        >>> X, y = data.digits("test")
        >>> mlp = models.load("mlp")                 # float weights: 37888 bytes
        >>> allocate(mlp, None, X, y, budget_bytes=40_000)
        {'fc1': 32, 'fc2': 32}
        >>> bits = allocate(mlp, None, X, y, budget_bytes=10_000)
        >>> weight_bytes(mlp, bits) <= 10_000
        True
    """
    folded = fold(model)
    choices = check_choices(choices)
    budget = check_budget(budget_bytes)
    size = sizes(folded, choices)
    _refuse(size, budget, choices)
    if table is None:
        table = sensitivity_table(model, calibration, X, y, choices=choices, act_bits=act_bits, progress=progress)
    elif set(table) != set(folded.layers) or any(set(table[n]) < set(choices) for n in folded.layers):
        raise ValueError(f"table must hold a drop for every layer {folded.layers} and every choice {choices}")
    return greedy(size, {n: table[n] for n in folded.layers}, budget)


def optimal(model: nn.Module, calibration, X, y, *, budget_bytes: int, choices=(2, 4, 8, 32),
            act_bits: int | None = None, max_assignments: int = 5000) -> dict[str, int]:
    """The best assignment that fits, by evaluating each with :func:`simulate_bits` (ties: the smaller one).

    Args:
        model, calibration, X, y, budget_bytes, choices: as for :func:`allocate`.
        act_bits: activation width in :func:`simulate_bits` (None: float, as
            :func:`allocate`'s default drops are weights-only).
        max_assignments: refuse if ``len(choices) ** layers`` exceeds it.

    Example:
        >>> from qkit import data, models
        >>> from qkit.partial import weight_bytes
        >>> X, y = data.digits("test")
        >>> mlp = models.load("mlp")
        >>> best = optimal(mlp, None, X, y, budget_bytes=10_000)
        >>> weight_bytes(mlp, best) <= 10_000
        True
        >>> optimal(models.load("resnet"), None, X, y, budget_bytes=10_000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: optimal enumerates 4 ** 10 = 1048576 assignments, more than max_assignments=5000; ...
    """
    folded = fold(model)
    choices = check_choices(choices)
    budget = check_budget(budget_bytes)
    check_int("max_assignments", max_assignments, low=1)
    X, y = check_data(X, y)
    if act_bits is not None:
        act_bits = check_int("act_bits", act_bits, low=2, high=16)
        calibration = check_calibration(calibration)
    names = folded.layers
    count = len(choices) ** len(names)
    if count > max_assignments:
        raise ValueError(f"optimal enumerates {len(choices)} ** {len(names)} = {count} assignments, more than "
                         f"max_assignments={max_assignments}; use allocate (greedy) for this model")
    size = sizes(folded, choices)
    _refuse(size, budget, choices)
    best = None
    for combo in itertools.product(choices, repeat=len(names)):
        nbytes = sum(size[n][b] for n, b in zip(names, combo))
        if nbytes > budget:
            continue
        bits = dict(zip(names, combo))
        acc = evaluate(simulate_bits(model, bits, calibration, act_bits=act_bits), X, y)
        if best is None or (acc, -nbytes) > best[0]:
            best = ((acc, -nbytes), bits)
    return best[1]


def random_allocation(model: nn.Module, budget_bytes: int, choices=(2, 4, 8, 32), seed: int = 0) -> dict[str, int]:
    """A uniformly random assignment among those that fit ``budget_bytes`` (rejection sampling): the baseline.

    Draws assignments with every layer's width uniform over ``choices`` (seeded,
    so one seed gives one answer) and keeps the first that fits: uniform over the
    fitting ones. If none of 2**20 draws fits (a budget near the minimum), falls
    back to a random-order fill, no longer uniform: every layer at its smallest,
    then, in a random order, each raised to a random larger choice that still fits.

    Example:
        >>> from qkit import models
        >>> from qkit.partial import weight_bytes
        >>> mlp = models.load("mlp")
        >>> bits = random_allocation(mlp, 10_000, seed=1)
        >>> weight_bytes(mlp, bits) <= 10_000, bits == random_allocation(mlp, 10_000, seed=1)
        (True, True)
    """
    folded = fold(model)
    choices = check_choices(choices)
    budget = check_budget(budget_bytes)
    check_int("seed", seed)
    size = sizes(folded, choices)
    _refuse(size, budget, choices)
    names = folded.layers
    table = torch.tensor([[size[n][b] for b in choices] for n in names], dtype=torch.int64)  # (L, K) bytes
    gen = torch.Generator().manual_seed(seed)
    for _ in range(256):
        pick = torch.randint(len(choices), (4096, len(names)), generator=gen)  # (4096, L) choice indices
        total = table.gather(1, pick.T).sum(dim=0)  # (4096,) bytes of each draw
        fits = (total <= budget).nonzero()
        if len(fits):
            row = pick[fits[0, 0]]
            return {n: choices[int(k)] for n, k in zip(names, row)}
    current = {n: min(choices, key=lambda b, n=n: size[n][b]) for n in names}
    total = sum(size[n][b] for n, b in current.items())
    for i in torch.randperm(len(names), generator=gen).tolist():
        n = names[i]
        room = [b for b in choices if total - size[n][current[n]] + size[n][b] <= budget]
        b = room[int(torch.randint(len(room), (1,), generator=gen))]
        total += size[n][b] - size[n][current[n]]
        current[n] = b
    return current
