"""Partial quantization, part 4: greedy mixed precision that re-measures every candidate move.

:func:`qkit.partial.allocate`'s greedy predicts the accuracy of an assignment by
adding single-layer drops. At few bits they do not add up (two layers at 2 bits
lose far more than the sum of each alone), so under tight budgets its choices
fall well short of the best. This greedy makes the same moves, ranked the same
way, but measures instead of predicting: at every step it evaluates each
candidate assignment for real (one evaluation per layer per step)::

    cost(move) = (acc(b) - acc(b with layer l lowered)) / (bytes_l(b_l) - bytes_l(b'_l))

and takes the cheapest; ties (accuracy moves in steps of one sample) go to the
smaller rise of the cross-entropy loss per byte, then to the larger saving. Once
the assignment fits, it raises layers again while that measurably helps and still
fits; finally it trades bytes between layers (raise one a step, lower another just
enough to fit, or lower one alone) while that raises the accuracy. Every assignment it evaluates is remembered, so a second budget on the same
data (a budget slider) replays the shared part of the path for free.

It chooses with data: pass data you do not report on (the lesson uses a part of
the training split and reports on the test split).
"""

from __future__ import annotations

import torch
from torch import nn

from qkit._checks import check_int
from qkit.graph import get_module
from qkit.partial.sensitivity import quantized_weight, simulate_bits
from qkit.partial.sizes import (check_budget, check_calibration, check_choices, check_data, fold, sizes)


class Scorer:
    """Accuracy and mean cross-entropy loss of an assignment ``{layer: bits}`` on ``(X, y)``, remembered.

    Weights-only assignments (``act_bits=None``) are evaluated on one BN-folded
    copy whose weights are overwritten layer by layer (each layer's grid
    quantized once per width); with ``act_bits`` every assignment is simulated by
    :func:`qkit.partial.simulate_bits` (activations calibrated after the weights).

    Example:
        >>> from qkit import data, models
        >>> from qkit.train import evaluate
        >>> X, y = data.digits("test")
        >>> mlp = models.load("mlp")
        >>> score = Scorer(mlp, X, y)
        >>> acc, loss = score({"fc1": 32, "fc2": 32})                # all float: the model's own accuracy
        >>> acc == evaluate(mlp, X, y), score.evaluations
        (True, 1)
        >>> score({"fc1": 32, "fc2": 32}) == (acc, loss), score.evaluations   # remembered
        (True, 1)
    """

    def __init__(self, model: nn.Module, X, y, *, calibration=None, act_bits: int | None = None) -> None:
        self.model, self.folded = model, fold(model)
        self.X, self.y = check_data(X, y)
        self.act_bits = None if act_bits is None else check_int("act_bits", act_bits, low=2, high=16)
        self.calibration = None if act_bits is None else check_calibration(calibration)
        self.float_weights = {n: get_module(self.folded.gm, n).weight.detach().clone() for n in self.folded.layers}
        self.grids: dict[tuple[str, int], torch.Tensor] = {}  # (layer, bits) -> quantized weight
        self.memo: dict[tuple[int, ...], tuple[float, float]] = {}
        self.evaluations = 0

    def weight(self, layer: str, bits: int) -> torch.Tensor:
        if (layer, bits) not in self.grids:
            self.grids[layer, bits] = quantized_weight(self.float_weights[layer], bits)
        return self.grids[layer, bits]

    @torch.no_grad()
    def __call__(self, bits: dict[str, int]) -> tuple[float, float]:
        key = tuple(bits[n] for n in self.folded.layers)
        if key not in self.memo:
            if self.act_bits is None:
                gm = self.folded.gm
                for n, b in bits.items():
                    get_module(gm, n).weight.copy_(self.weight(n, b))
            else:
                gm = simulate_bits(self.model, bits, self.calibration, act_bits=self.act_bits)
            logits = gm.eval()(self.X)  # (N, classes)
            acc = (logits.argmax(1) == self.y).sum().item() / len(self.y)
            loss = torch.nn.functional.cross_entropy(logits, self.y).item()
            self.memo[key] = (acc, loss)
            self.evaluations += 1
        return self.memo[key]


def greedy_measured(model: nn.Module, calibration, X, y, *, budget_bytes: int, choices=(2, 4, 8, 32),
                    act_bits: int | None = None, scorer: Scorer | None = None,
                    max_swaps: int = 20, fixed: dict[str, int] | None = None) -> dict[str, int]:
    """Weight bits per layer (32 = float) that fit ``budget_bytes``, each greedy move measured on ``(X, y)``.

    Args:
        model: a float classifier (left unchanged).
        calibration: representative inputs; used only when ``act_bits`` is given.
        X, y: the data every candidate is evaluated on (not the data you report on).
        budget_bytes: the most bytes the conv/linear weights (+ scales) may take.
        choices: widths a layer may take, 2..16 or 32.
        act_bits: evaluate with every activation at that width too; None: weights only.
        scorer: a :class:`Scorer` for this model and data, reused across budgets (then
            ``X``, ``y``, ``calibration``, ``act_bits`` are those of the scorer).
        max_swaps: at most this many byte trades after the greedy descent (0: none).
        fixed: ``{layer: bits}`` held at those widths (each one of ``choices``) while the others
            move; their bytes count against the budget. E.g. the first and last layer at 8 bits,
            as the low-bit literature keeps them (``qat.prepare(keep_ends=8)``).

    Returns:
        ``{layer: bits}`` in graph order.

    Raises:
        ValueError: even every layer at its smallest choice does not fit; ``fixed`` names a layer
            the model does not have or a width not in ``choices``.

    Example:
        >>> from qkit import data, models
        >>> from qkit.partial import weight_bytes
        >>> X, y = data.digits("train")
        >>> mlp = models.load("mlp")                   # float weights: 37888 bytes
        >>> bits = greedy_measured(mlp, None, X[-359:], y[-359:], budget_bytes=5_000)
        >>> bits, weight_bytes(mlp, bits)              # fc1 (8192 weights) takes the low width
        ({'fc1': 2, 'fc2': 8}, 3880)
        >>> greedy_measured(mlp, None, X[-359:], y[-359:], budget_bytes=5_000, fixed={"fc1": 2})
        {'fc1': 2, 'fc2': 8}
    """
    folded = fold(model)
    choices = check_choices(choices)
    budget = check_budget(budget_bytes)
    size = sizes(folded, choices)
    fixed = _check_fixed(fixed, folded.layers, choices)
    least = sum(size[n][fixed[n]] if n in fixed else min(per.values()) for n, per in size.items())
    if least > budget:
        raise ValueError(f"budget_bytes={budget} is too small: with choices {choices} the weights take at "
                         f"least {least} bytes (every layer at its smallest" + (", the fixed ones as given)" if fixed
                                                                                  else ")"))
    check_int("max_swaps", max_swaps, low=0)
    score = scorer if scorer is not None else Scorer(model, X, y, calibration=calibration, act_bits=act_bits)
    names = [n for n in folded.layers if n not in fixed]  # the layers that move
    current = {n: fixed.get(n, max(choices)) for n in folded.layers}
    total = sum(size[n][b] for n, b in current.items())
    now = score(current)
    while total > budget:  # phase 1: lower a layer one step, least accuracy lost per byte saved first
        best = None
        for i, n in enumerate(names):
            lower = [c for c in choices if c < current[n] and size[n][c] < size[n][current[n]]]
            if not lower:
                continue
            c = lower[-1]  # the next lower choice that saves bytes
            saved = size[n][current[n]] - size[n][c]
            acc, loss = score({**current, n: c})
            key = ((now[0] - acc) / saved, (loss - now[1]) / saved, -saved, i)
            if best is None or key < best[0]:
                best = (key, n, c, saved, (acc, loss))
        _, n, c, saved, now = best  # some layer can always go lower while the total exceeds the least
        current[n], total = c, total - saved
    current, now = _refill(current, now, size, budget, choices, score, names)
    for _ in range(max_swaps):  # phase 3: trade bytes between two layers while accuracy rises
        best = None
        for b in names:  # lowering one layer one step can help too (rounding noise that happens to help)
            down = [c for c in choices if c < current[b]]
            if down:
                acc, loss = score({**current, b: down[-1]})
                if acc > now[0] and (best is None or (acc, -loss) > best[0]):
                    best = ((acc, -loss), {**current, b: down[-1]})
        for a in names:
            higher = [c for c in choices if c > current[a]]
            if not higher:
                continue
            up = higher[0]  # raise a one step ...
            for b in (b for b in names if b != a):
                room = budget - _total({**current, a: up}, size) + size[b][current[b]]
                down = [c for c in choices if c < current[b] and size[b][c] <= room]
                if not down:
                    continue
                trial = {**current, a: up, b: down[-1]}  # ... and lower b just enough to fit
                acc, loss = score(trial)
                if acc > now[0] and (best is None or (acc, -loss) > best[0]):
                    best = ((acc, -loss), trial)
        if best is None:
            break
        current, now = _refill(best[1], score(best[1]), size, budget, choices, score, names)
    return current


def _check_fixed(fixed, layers: list[str], choices: tuple[int, ...]) -> dict[str, int]:
    if fixed is None:
        return {}
    if not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict {{layer: bits}} or None; got {type(fixed).__name__}")
    unknown = [n for n in fixed if n not in layers]
    if unknown:
        raise ValueError(f"fixed names no conv/linear layer of the BN-folded model: {unknown}; its layers are {layers}")
    bad = {n: b for n, b in fixed.items() if isinstance(b, bool) or b not in choices}
    if bad:
        raise ValueError(f"fixed widths must be among choices {choices}; got {bad}")
    return dict(fixed)


def _total(bits: dict[str, int], size: dict[str, dict[int, int]]) -> int:
    return sum(size[n][b] for n, b in bits.items())


def _refill(current, now, size, budget, choices, score, names):
    """Raise layers ``names`` while that measurably helps and still fits, most gain per extra byte first."""
    total = _total(current, size)
    while True:
        best = None
        for i, n in enumerate(names):
            for c in (c for c in choices if c > current[n]):
                extra = size[n][c] - size[n][current[n]]
                if total + extra > budget:
                    continue
                acc, loss = score({**current, n: c})
                if (acc, -loss) <= (now[0], -now[1]):
                    continue  # no gain
                key = (-(acc - now[0]) / max(extra, 1), (loss - now[1]) / max(extra, 1), i, c)
                if best is None or key < best[0]:
                    best = (key, n, c, extra, (acc, loss))
        if best is None:
            return current, now
        _, n, c, extra, now = best
        current, total = {**current, n: c}, total + extra
