"""Simulated quantization of a whole model at any bit-width (float arithmetic, quantized values).

``x ≈ scale * (q - zero_point)`` applied with ``fake_quantize`` to every weight
of every ``Conv2d``/``Linear`` (per output channel, scale scheme) — after
BatchNorm is folded into the convolutions, as a real conversion does — and, when a
calibration batch is given, to the output of every activation module
(ReLU, ReLU6) on a grid calibrated by an observer. This is what the integer
kernels would compute, up to rounding, at bit-widths they do not implement:
the tool for "how low can the bits go before accuracy falls off a cliff?".
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from qkit._checks import check_int
from qkit.graph import fold_batchnorm
from qkit.observers import OBSERVERS
from qkit.qparams import weight_qparams
from qkit.quant import fake_quantize

ACTIVATIONS = (nn.ReLU, nn.ReLU6)


@torch.no_grad()
def simulate(model: nn.Module, bits: int, calibration: torch.Tensor | None = None, *,
             act_bits: int | None = None, observer: str = "minmax") -> nn.Module:
    """A copy of ``model`` whose weights (and activations) hold only ``bits``-bit grid values.

    Args:
        model: a float model (left unchanged).
        bits: weight bit-width, 2..16 (per-channel, scale scheme, narrow: symmetric).
        calibration: a representative input batch; if given, every ReLU/ReLU6
            output is fake-quantized too, on a grid chosen by ``observer``.
        act_bits: activation bit-width (default: ``bits``).
        observer: a name from ``qkit.observers.OBSERVERS``.

    Returns:
        The simulated model, in eval mode.

    Example:
        >>> from qkit import data, models
        >>> from qkit.train import evaluate
        >>> X, y = data.digits("test")
        >>> mlp = models.load("mlp")
        >>> evaluate(simulate(mlp, 8, X[:64]), X, y) >= evaluate(mlp, X, y) - 0.01
        True
    """
    check_int("bits", bits, low=2, high=16)
    act_bits = bits if act_bits is None else check_int("act_bits", act_bits, low=2, high=16)
    if observer not in OBSERVERS:
        raise ValueError(f"unknown observer {observer!r}; choose one of {sorted(OBSERVERS)}")
    try:  # fold BatchNorm first, as qkit.ptq.convert does: folding changes the weights' ranges
        sim = fold_batchnorm(model)
    except ValueError:  # not traceable: simulate the unfolded copy
        sim = copy.deepcopy(model).eval()
    for module in sim.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            qp = weight_qparams(module.weight, bits, narrow=True)  # per output channel, symmetric
            module.weight.copy_(fake_quantize(module.weight, qp))
    if calibration is None:
        return sim
    acts = [m for m in sim.modules() if isinstance(m, ACTIVATIONS)]
    observers = {m: OBSERVERS[observer]() for m in acts}
    def record(mod, inputs, out) -> None:  # a hook that returns None leaves the output alone
        observers[mod].update(out)

    handles = [m.register_forward_hook(record) for m in acts]
    try:
        sim(calibration)
    finally:
        for h in handles:
            h.remove()
    grids = {m: observers[m].qparams(act_bits, signed=False) for m in acts}
    for m in acts:
        m.register_forward_hook(lambda mod, i, out: fake_quantize(out, grids[mod]))
    return sim
