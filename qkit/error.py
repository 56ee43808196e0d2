"""How much a grid costs: quantization error, split into rounding and clipping.

For ``x_hat = fake_quantize(x, qp)`` the error ``x_hat - x`` has two sources:

* **rounding** — ``x`` inside the grid's float range moves to the nearest
  level: ``|error| <= scale / 2``, roughly uniform, so its mean square is
  ``scale² / 12``;
* **clipping** — ``x`` outside the range is clamped to the end level: the
  error grows without bound with the distance to the range.

Widening the range trades clipping error for rounding error (a bigger scale).
The signal-to-quantization-noise ratio ``SQNR = 10·log10(E[x²] / E[(x_hat - x)²])``
grows by ``20·log10(2) ≈ 6.02`` dB per extra bit when rounding dominates,
because each bit halves ``scale``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from qkit._checks import as_float_tensor
from qkit.qparams import QParams
from qkit.quant import fake_quantize

#: dB gained per bit when the step halves: 20·log10(2).
DB_PER_BIT = 20 * math.log10(2)


class ErrorSplit(NamedTuple):
    """Mean squared error of quantizing a tensor, by cause (sums to ``total``)."""

    rounding: float  # MSE contribution of values inside the grid's range
    clipping: float  # MSE contribution of values outside it
    total: float  # MSE over all values
    clipped_fraction: float  # share of values outside the range
    max_abs: float  # worst absolute error


def sqnr_db(x, x_hat) -> float:
    """Signal-to-quantization-noise ratio ``10·log10(Σx² / Σ(x_hat - x)²)`` in dB.

    Returns ``inf`` when ``x_hat == x`` exactly.

    Example:
        >>> round(sqnr_db(torch.tensor([1.0, -1.0]), torch.tensor([1.1, -0.9])), 3)   # noise 1/100
        20.0
    """
    x = as_float_tensor("x", x).double()
    x_hat = as_float_tensor("x_hat", x_hat).double()
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have one shape; got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    noise = ((x_hat - x) ** 2).sum().item()
    signal = (x**2).sum().item()
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def error_split(x, qp: QParams) -> ErrorSplit:
    """Quantize ``x`` on ``qp`` and split the mean squared error into rounding and clipping.

    Example:
        >>> from qkit.qparams import choose_qparams
        >>> qp = choose_qparams(-1.0, 1.0, bits=8, scheme="scale")   # covers [-1.008, 1]
        >>> e = error_split(torch.tensor([0.5, 3.0]), qp)
        >>> round(e.clipping, 4), e.clipped_fraction
        (2.0, 0.5)
    """
    x = as_float_tensor("x", x)
    err = (fake_quantize(x, qp) - x).double()  # same shape as x
    lo, hi = qp.float_range
    if qp.axis is not None:
        view = [1] * x.dim()
        view[qp.axis] = -1
        lo, hi = lo.view(view), hi.view(view)
    outside = (x < lo) | (x > hi)
    sq = err**2
    n = max(x.numel(), 1)
    clip = (sq * outside).sum().item() / n
    total = sq.sum().item() / n
    return ErrorSplit(
        rounding=total - clip,
        clipping=clip,
        total=total,
        clipped_fraction=outside.sum().item() / n,
        max_abs=err.abs().max().item() if x.numel() else 0.0,
    )
