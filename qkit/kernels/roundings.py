"""How often two requantization roundings disagree, measured on the layers of a converted model.

Equation of the requantization: ``q_y = clamp(z_y + acc * M)`` with
``M = multiplier * 2**(shift - 31)``; the roundings of :data:`qkit.fixedpoint.ROUNDINGS`
differ only in how ``acc * M`` becomes an integer.

Derivation. Write ``u = acc * multiplier / 2**31`` (a real number) and
``rs = -shift >= 0`` (the final right shift; ``M < 1/2`` gives ``rs >= 1``).

* ``"double"`` (gemmlowp's pair, TFLite's default build): ``y = round(u)`` (ties
  toward +inf, SaturatingRoundingDoublingHighMul), then ``round(y / 2**rs)`` (ties
  away from zero, RoundingDivideByPOT).
* ``"single"`` (``TFLITE_SINGLE_ROUNDING``): ``round(u / 2**rs)`` once (ties toward +inf).

Both round to the integer nearest ``u / 2**rs``; they can only part where that value
is near a half-integer ``n + 1/2``. Its image ``B = (n + 1/2) * 2**rs`` on the scale
of ``u`` is an integer (``rs >= 1``), and ``|y - u| <= 1/2`` with ``y`` an integer:
so ``u`` and ``y`` lie on the same side of ``B`` unless ``y == B`` exactly. **The two
disagree only when the first rounding lands on a tie of the second** and the second
turns it the other way: for ``u >= 0`` when ``u`` is in ``[B - 1/2, B)`` (the pair rounds
the tie up, the single rounding sees a value below the tie), for ``u < 0`` when ``u`` is
in ``[B, B + 1/2)``. That is an interval of length 1/2 out of every ``2**rs`` values of ``u``:
if the fractional parts of ``u / 2**rs`` are spread evenly, a fraction ``2**-(rs + 1)``
of the outputs differ, by exactly one level, and none when ``rs = 0``. Typical layers
have ``M`` around 1e-3 (``rs`` about 10): about one output in two thousand. Outputs
clamped by the output grid (ReLU, saturation) cannot differ at all, so the measured
fraction is compared with ``predicted``: ``2**-(rs + 1)`` summed over the outputs
that were not clamped.

The measurement: :func:`rounding_disagreements` records every ``QuantLinear`` /
``QuantConv2d`` input and output of one forward pass (forward hooks), recomputes each
layer with :mod:`qkit.kernels` with every other rounding, and counts the int8 outputs
that differ from ``"double"``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from qkit import kernels
from qkit.fixedpoint import ROUNDINGS, check_rounding
from qkit.nn import QuantConv2d, QuantLinear

BASE = "double"  # the rounding every other one is compared with
BACKEND = "fast"  # the recomputation's kernels (every backend gives the same bits)


class LayerDisagreement(NamedTuple):
    """One layer's count: how many of its int8 outputs each rounding changes."""

    name: str  # module path in the converted model
    kind: str  # "linear", "conv" or "depthwise"
    outputs: int  # int8 outputs of the batch
    differ: dict  # rounding -> outputs that differ from "double"
    predicted: float  # expected number for "single": Σ 2**-(rs + 1) over unclamped outputs
    rs: tuple  # (min, max) final right shift of the layer's channels


def _kind(layer: nn.Module) -> str:
    if isinstance(layer, QuantLinear):
        return "linear"
    groups, c_in = layer.geometry["groups"], layer.q_w.shape[1] * layer.geometry["groups"]
    return "depthwise" if groups == c_in and c_in > 1 else "conv"


def _run(layer: nn.Module, q_x: torch.Tensor, rounding: str) -> torch.Tensor:
    """The layer's int8 output with ``rounding``, recomputed by :mod:`qkit.kernels`."""
    args = (q_x, layer.x_qp, layer.q_w, layer.w_qp, layer.bias, layer.y_qp)
    if isinstance(layer, QuantLinear):
        return kernels.int8_linear(*args, backend=BACKEND, rounding=rounding)
    return kernels.int8_conv2d(*args, backend=BACKEND, rounding=rounding, **layer.geometry)


def _predicted(layer: nn.Module, q_y: torch.Tensor) -> tuple[float, tuple[int, int]]:
    """Σ 2**-(rs + 1) over the outputs strictly inside the output grid (rs = 0 counts 0)."""
    channels = layer.q_w.shape[0]
    _, shift = kernels.output_multipliers(layer.x_qp, layer.w_qp, layer.y_qp, channels)  # (M,) int32
    rs = (-shift.long()).clamp(min=0)  # (M,) int64
    rate = torch.where(rs > 0, 2.0 ** (-(rs.double() + 1)), 0.0)  # (M,) float64
    shape = (1, channels) if q_y.dim() == 2 else (1, channels, 1, 1)
    inside = (q_y > layer.y_qp.qmin) & (q_y < layer.y_qp.qmax)  # clamped outputs cannot differ
    return float((inside * rate.view(shape)).sum()), (int(rs.min()), int(rs.max()))


def rounding_disagreements(model: nn.Module, x: torch.Tensor, roundings=None) -> list[LayerDisagreement]:
    """Per conv/linear layer of a converted model: int8 outputs each rounding changes on ``x``.

    Args:
        model: an integer model, e.g. ``qkit.ptq.convert(model, "int8", calibration)``,
            with ``QuantLinear`` / ``QuantConv2d`` layers.
        x: a float batch the model takes (e.g. the digits test set).
        roundings: the roundings to compare with ``"double"`` (default: every other
            one in :data:`qkit.fixedpoint.ROUNDINGS`).

    Returns:
        One :class:`LayerDisagreement` per layer, in the order they ran.

    Raises:
        TypeError: ``model`` not an nn.Module.
        ValueError: no ``QuantLinear`` / ``QuantConv2d`` in ``model``, or an unknown rounding.

    Example:
        >>> from qkit import data, models, ptq
        >>> X, _ = data.digits("test")
        >>> int8 = ptq.convert(models.load("mlp"), "int8", X[:64])
        >>> rows = rounding_disagreements(int8, X)
        >>> [(r.name, r.kind, r.outputs) for r in rows]
        [('fc1', 'linear', 45952), ('fc2', 'linear', 3590)]
        >>> all(r.differ["single"] <= r.outputs // 100 for r in rows)    # rare: about 2**-(rs+1)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    others = [r for r in ROUNDINGS if r != BASE] if roundings is None else [check_rounding(r) for r in roundings]
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (QuantLinear, QuantConv2d))}
    if not layers:
        raise ValueError("model has no QuantLinear or QuantConv2d layer: convert it first "
                         "(qkit.ptq.convert(model, 'int8', calibration))")
    seen: dict[str, tuple] = {}  # name -> (int8 input, int8 output) of the forward pass

    def record(name: str):
        def hook(module, args, out) -> None:  # returns None: the forward pass is left as it is
            seen.setdefault(name, (args[0], out))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in layers.items()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for name, (q_x, q_y) in seen.items():  # in the order the layers ran
        layer = layers[name]
        # the layer's own output already has its own rounding (every backend gives the same bits)
        outs = {r: q_y if r == layer.rounding else _run(layer, q_x, r) for r in (BASE, *others)}
        differ = {r: int((outs[r] != outs[BASE]).sum()) for r in others}
        predicted, rs = _predicted(layer, outs[BASE])
        rows.append(LayerDisagreement(name, _kind(layer), outs[BASE].numel(), differ, predicted, rs))
    return rows


def kernel_rules(paths=None, *, batches: int = 4, batch: int = 8) -> list[dict]:
    """Which rounding each of TensorFlow Lite's kernels follows: mismatches of qkit per rounding.

    For every operator type of the shipped one-op ``.tflite`` files (:mod:`qkit.litert`) and
    every TFLite resolver (``"reference"``, ``"optimized"``, ``"xnnpack"``), runs the same
    full-range random int8 inputs in TFLite and in qkit's reference kernel with each rounding
    of :data:`qkit.fixedpoint.ROUNDINGS`, and counts the int8 outputs that differ. A 0 says
    that kernel follows that rule bit for bit on these inputs.

    Args:
        paths: ``.tflite`` files (default: :func:`qkit.litert.shipped_models`).
        batches, batch: ``batches`` random batches of ``batch`` inputs per file.

    Returns:
        One dict per (op, resolver): ``op``, ``resolver``, ``outputs`` and ``mismatches``
        (rounding -> int8 outputs of qkit with that rounding that differ from TFLite's).
    """
    from qkit import litert  # needs ai_edge_litert and the shipped files

    counts: dict = {}
    for path in litert.shipped_models() if paths is None else paths:
        op = litert.read_op(path)
        q_x = torch.cat([litert.random_input(op, batch, seed) for seed in range(batches)])
        ours = {r: litert.run_qkit(op, q_x, rounding=r) for r in ROUNDINGS}
        for resolver in litert.RESOLVERS:
            theirs = litert.run_litert(op, q_x, resolver)
            row = counts.setdefault((op.op, resolver), dict(op=op.op, resolver=resolver, outputs=0,
                                                            mismatches=dict.fromkeys(ROUNDINGS, 0)))
            row["outputs"] += theirs.numel()
            for r, q in ours.items():
                row["mismatches"][r] += int((q != theirs).sum())
    return list(counts.values())
