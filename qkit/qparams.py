"""Quantization parameters: which integer grid a float range is mapped onto.

The one equation of the whole kit::

    x ≈ scale * (q - zero_point),      q an integer in [qmin, qmax]

Mapping a float range [A1, A2] onto the B-bit grid [qmin, qmax] is the straight
line through (A1, qmin) and (A2, qmax)::

    scale      = (A2 - A1) / (qmax - qmin)       # float step between two levels
    zero_point = qmin - round(A1 / scale)        # the integer that stands for 0.0

This is the **affine** map (``f(x) = x / scale + zero_point``). The **scale**
map is the special case ``zero_point = 0`` (``f(x) = m·x + c`` with ``c = 0``): the grid is
centred on 0 and ``scale = max(|A1|, |A2|) / qmax``.

Everything here is offline float code: it decides the grid, it does not touch
the data (see ``qkit.quant`` for that).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from qkit._checks import as_float_tensor, check_bool, check_int

#: Widest grid the kit handles. Float32 holds every integer up to 2**24, so
#: 16-bit grids stay exact through ``round(x / scale) + zero_point``.
MAX_BITS = 16

#: Smallest scale ``choose_qparams`` returns (float32 machine epsilon, the same
#: floor torch's observers use); a zero-width range gets exactly this scale.
MIN_SCALE = float(torch.finfo(torch.float32).eps)

SCHEMES = ("affine", "scale")


def qrange(bits: int, signed: bool = True, narrow: bool = False) -> tuple[int, int]:
    """Integer range ``(qmin, qmax)`` of a ``bits``-bit grid.

    Signed grids are two's complement, ``[-2**(bits-1), 2**(bits-1) - 1]``;
    unsigned grids are ``[0, 2**bits - 1]``. A *narrow* signed grid drops the
    most negative level so it is symmetric around 0 (``[-127, 127]`` for
    int8), which keeps ``-q`` representable and is what TFLite uses for
    weights.

    Args:
        bits: number of bits B, 1 <= B <= 16.
        signed: two's-complement range if True, else ``[0, 2**B - 1]``.
        narrow: drop ``-2**(B-1)`` (signed grids with B >= 2 only).

    Returns:
        ``(qmin, qmax)`` as Python ints.

    Raises:
        TypeError: ``bits`` is not an int, or a flag is not a bool.
        ValueError: ``bits`` is outside [1, 16], or ``narrow`` is asked of an
            unsigned or 1-bit grid.

    Example:
        >>> qrange(8)
        (-128, 127)
        >>> qrange(8, signed=True, narrow=True)
        (-127, 127)
        >>> qrange(8, signed=False)
        (0, 255)
        >>> qrange(4)
        (-8, 7)
    """
    check_int("bits", bits, low=1, high=MAX_BITS)
    check_bool("signed", signed)
    check_bool("narrow", narrow)
    if not signed:
        if narrow:
            raise ValueError("narrow=True applies to signed grids only; got signed=False")
        return 0, 2**bits - 1
    if narrow and bits < 2:
        raise ValueError(f"a narrow signed grid needs bits >= 2; got bits={bits}")
    return -(2 ** (bits - 1)) + int(narrow), 2 ** (bits - 1) - 1


class QParams(NamedTuple):
    """The grid: ``x ≈ scale * (q - zero_point)`` with ``qmin <= q <= qmax``.

    Attributes:
        scale: float32 step between two levels; 0-d (per-tensor) or 1-d, one
            entry per slice along ``axis`` (per-channel).
        zero_point: int32 integer that represents 0.0; same shape as ``scale``.
        qmin: smallest integer of the grid.
        qmax: largest integer of the grid.
        axis: channel axis of the tensor this grid applies to; None means one
            grid for the whole tensor.

    Example:
        >>> qp = QParams(torch.tensor(0.5), torch.tensor(3, dtype=torch.int32), -128, 127)
        >>> qp.levels
        256
        >>> qp.bits
        8
    """

    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int
    axis: int | None = None

    @property
    def levels(self) -> int:
        """Number of integers on the grid, ``qmax - qmin + 1``."""
        return self.qmax - self.qmin + 1

    @property
    def bits(self) -> int:
        """Bits needed to store one level: ``ceil(log2(levels))``."""
        return max(1, math.ceil(math.log2(self.levels)))

    @property
    def float_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The float values of the two ends of the grid, ``scale * (qmin - zero_point)``
        and ``scale * (qmax - zero_point)``: everything outside is clipped."""
        zp = self.zero_point.to(torch.float32)
        return self.scale * (self.qmin - zp), self.scale * (self.qmax - zp)


def choose_qparams(
    x_min,
    x_max,
    bits: int = 8,
    *,
    scheme: str = "affine",
    signed: bool = True,
    narrow: bool = False,
    axis: int | None = None,
) -> QParams:
    """Choose ``scale`` and ``zero_point`` that map ``[x_min, x_max]`` onto a B-bit grid.

    The range is first widened to hold 0 (``x_min <= 0 <= x_max``) so that
    0.0 lands exactly on an integer: zero padding, ReLU zeros and pruned
    weights then cost no error at all. Then

    * ``scheme="affine"``: ``scale = (x_max - x_min) / (qmax - qmin)`` and
      ``zero_point = qmin - round_half_even(x_min / scale)``;
    * ``scheme="scale"``: ``zero_point = 0`` and
      ``scale = max(|x_min|, |x_max|) / qmax``. On an unsigned grid this map
      only covers ``[0, x_max]``: negative values will be clipped to 0.

    A scale below :data:`MIN_SCALE` (float32 epsilon) is raised to it, so a
    zero-width range (``x_min == x_max``) gives a valid tiny scale, never a
    division by zero. Arithmetic is float32, as in torch's observers.

    Args:
        x_min: smallest value to represent: a number, or a 1-d tensor (one
            entry per channel) when ``axis`` is given.
        x_max: largest value to represent, same shape as ``x_min``.
        bits: grid width B (1..16).
        scheme: ``"affine"`` or ``"scale"``.
        signed: signed grid (int8-like) or unsigned (uint8-like).
        narrow: drop the most negative level (signed only), see :func:`qrange`.
        axis: channel axis of the tensor these parameters will quantize; None
            for one set of parameters for the whole tensor.

    Returns:
        A :class:`QParams` with float32 ``scale`` and int32 ``zero_point``.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: NaN or infinite bounds, ``x_min > x_max``, an unknown
            scheme, per-channel bounds without ``axis`` (or the reverse), or a
            signed 1-bit grid with ``scheme="scale"`` (its qmax is 0), or a
            range so wide that its float32 scale overflows.

    Example:
        The lesson's problem: map [A1, A2] = [-1.0, 2.0] onto signed 8 bits.

        >>> qp = choose_qparams(-1.0, 2.0, bits=8)
        >>> round(qp.scale.item(), 6), qp.zero_point.item(), qp.qmin, qp.qmax
        (0.011765, -43, -128, 127)
        >>> qp = choose_qparams(-1.0, 2.0, bits=8, scheme="scale")
        >>> round(qp.scale.item(), 6), qp.zero_point.item()
        (0.015748, 0)

        A range that excludes 0 is widened to include it:

        >>> choose_qparams(0.5, 2.0, bits=8, signed=False).zero_point.item()
        0
    """
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}; got {scheme!r}")
    qmin, qmax = qrange(bits, signed, narrow)
    if scheme == "scale" and qmax <= 0:
        raise ValueError(
            f"scheme='scale' needs a positive qmax, but a signed {bits}-bit grid is "
            f"[{qmin}, {qmax}]; use bits >= 2 or scheme='affine'"
        )
    lo = as_float_tensor("x_min", x_min)
    hi = as_float_tensor("x_max", x_max)
    _check_bounds(lo, hi, axis)

    lo = torch.clamp(lo, max=0.0)  # widen to hold 0.0 exactly
    hi = torch.clamp(hi, min=0.0)
    if scheme == "affine":
        scale = (hi - lo) / float(qmax - qmin)
        scale = torch.clamp(scale, min=MIN_SCALE)
        zero_point = qmin - torch.round(lo / scale)  # in [qmin, qmax] by construction
        zero_point = torch.clamp(zero_point, qmin, qmax)
    else:
        scale = torch.maximum(-lo, hi) / float(qmax)
        scale = torch.clamp(scale, min=MIN_SCALE)
        zero_point = torch.zeros_like(scale)
    if not torch.isfinite(scale).all():  # e.g. x_max - x_min overflows float32
        raise ValueError(
            f"the range [x_min, x_max] is too wide for a float32 scale on a {bits}-bit "
            "grid (x_max - x_min overflows float32)"
        )
    return QParams(scale.to(torch.float32), zero_point.to(torch.int32), qmin, qmax, axis)


def _check_bounds(lo: torch.Tensor, hi: torch.Tensor, axis: int | None) -> None:
    """Validate a (per-tensor or per-channel) pair of range bounds."""
    if axis is None:
        if lo.dim() != 0 or hi.dim() != 0:
            raise ValueError(
                "per-tensor parameters need scalar x_min and x_max; got shapes "
                f"{tuple(lo.shape)} and {tuple(hi.shape)} (pass axis=... for per-channel)"
            )
    else:
        check_int("axis", axis)
        if lo.dim() != 1 or lo.shape != hi.shape or lo.numel() == 0:
            raise ValueError(
                "per-channel parameters need 1-d x_min and x_max of one equal, non-zero "
                f"length; got shapes {tuple(lo.shape)} and {tuple(hi.shape)}"
            )
    bad = ~(torch.isfinite(lo) & torch.isfinite(hi))
    if bad.any():
        where = "" if axis is None else f" at channel {int(bad.nonzero()[0, 0])}"
        raise ValueError(f"x_min and x_max must be finite numbers; got NaN or inf{where}")
    wrong = lo > hi
    if wrong.any():
        i = 0 if axis is None else int(wrong.nonzero()[0, 0])
        a, b = lo.reshape(-1)[i].item(), hi.reshape(-1)[i].item()
        where = "" if axis is None else f" at channel {i}"
        raise ValueError(f"x_min must be <= x_max; got x_min={a:g} > x_max={b:g}{where}")


def tensor_range(x, axis: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest and largest value of ``x``, overall or per slice along ``axis``.

    Feed the result to :func:`choose_qparams` for a min-max grid.

    Args:
        x: float tensor (or numpy array), not empty.
        axis: None for one (min, max) pair; an axis for one pair per slice.

    Returns:
        ``(x_min, x_max)``: 0-d tensors, or 1-d of length ``x.shape[axis]``.

    Example:
        >>> w = torch.tensor([[-1.0, 0.5], [0.25, 3.0]])
        >>> tensor_range(w)
        (tensor(-1.), tensor(3.))
        >>> tensor_range(w, axis=0)
        (tensor([-1.0000,  0.2500]), tensor([0.5000, 3.0000]))
    """
    x = as_float_tensor("x", x)
    if x.numel() == 0:
        raise ValueError("x is empty: there is no range to measure")
    if axis is None:
        return x.min(), x.max()
    check_int("axis", axis, low=-x.dim(), high=x.dim() - 1)
    flat = x.movedim(axis, 0).reshape(x.shape[axis], -1)  # (C, everything else)
    return flat.min(dim=1).values, flat.max(dim=1).values


def weight_qparams(w, bits: int = 8, *, per_channel: bool = True, narrow: bool = False) -> QParams:
    """The symmetric (scale-scheme) min-max grid of a weight: the kit's one weight-grid rule.

    Weights are centred on zero, so they take the **scale** scheme
    (``zero_point == 0``), one scale per output channel (``axis=0``, every
    other dimension of a conv filter flattened) unless ``per_channel=False``::

        scale[c] = max|w[c]| / qmax           x ≈ scale * (q - 0)

    ``narrow=True`` drops ``qmin`` (int8: [-127, 127]), so the grid is
    symmetric and ``-q`` never overflows — TensorFlow Lite's int8 weight spec.

    Args:
        w: float weight tensor, ``(out, ...)``.
        bits: bits per weight.
        per_channel: one scale per output channel (axis 0), else one for all.
        narrow: leave out the most negative integer.

    Example:
        >>> w = torch.tensor([[-1.0, 0.5], [0.25, 2.54]])
        >>> qp = weight_qparams(w, narrow=True)
        >>> qp.scale, qp.zero_point, (qp.qmin, qp.qmax), qp.axis
        (tensor([0.0079, 0.0200]), tensor([0, 0], dtype=torch.int32), (-127, 127), 0)
        >>> weight_qparams(w, 4, per_channel=False).scale      # 2.54 / 7
        tensor(0.3629)
    """
    w = as_float_tensor("w", w).detach()
    axis = 0 if per_channel else None
    return choose_qparams(*tensor_range(w, axis=axis), bits, scheme="scale", narrow=narrow, axis=axis)
