"""Binary (-1/+1) and ternary (-1/0/+1) quantizers, each with one float scale.

Equations (``zero_point = 0``)::

    binary:   q = sign(x) ∈ {-1, +1},          x ≈ scale * q,  scale = mean(|x|)
    ternary:  q = sign(x) * [|x| > delta] ∈ {-1, 0, +1},
              x ≈ scale * q,  scale = mean(|x| over |x| > delta),  delta = 0.7 * mean(|x|)

``scale = mean(|x|)`` minimises ``||x - scale * sign(x)||²`` (Rastegari et al.,
XNOR-Net, ECCV 2016). ``delta ≈ 0.7 * mean(|x|)`` is the approximately optimal
threshold for Gaussian-like weights derived in Li et al., Ternary Weight
Networks (2016); ``scale`` is then the least-squares value for that mask.

Both return ``(q, qp)`` so that ``qkit.dequantize(q, qp)`` gives the float
approximation, exactly as for the B-bit quantizers. The grid ``[qmin, qmax]``
is ``[-1, 1]`` for both; a binary ``q`` simply never uses the level 0.
"""

from __future__ import annotations

import torch

from qkit._checks import as_float_tensor, check_int
from qkit.qparams import MIN_SCALE, QParams


def _per_slice(x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """View ``x`` as (channels, rest): one row per slice along ``axis`` (one row if None)."""
    if x.numel() == 0:
        raise ValueError("x is empty: there is nothing to quantize")
    if torch.isnan(x).any():
        raise ValueError("x contains NaN: NaN has no place on an integer grid")
    if axis is None:
        return x.reshape(1, -1)
    axis = check_int("axis", axis, low=-x.dim(), high=x.dim() - 1)
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def _qparams(scale: torch.Tensor, axis: int | None) -> QParams:
    scale = torch.clamp(scale, min=MIN_SCALE).to(torch.float32)
    if axis is None:
        scale = scale.reshape(())
    return QParams(scale, torch.zeros_like(scale, dtype=torch.int32), -1, 1, axis)


def binarize(x, *, axis: int | None = None) -> tuple[torch.Tensor, QParams]:
    """1-bit quantization: ``q = sign(x)`` (0 counts as +1), ``scale = mean(|x|)``.

    Args:
        x: float tensor.
        axis: None for one scale for the whole tensor; an axis for one scale
            per slice (e.g. per output channel of a weight).

    Returns:
        ``(q, qp)``: int8 ``q`` in {-1, +1} and the grid, so that
        ``dequantize(q, qp) = scale * q``.

    Example:
        >>> from qkit.quant import dequantize
        >>> q, qp = binarize(torch.tensor([0.5, -1.5, 0.0, 2.0]))
        >>> q, qp.scale
        (tensor([ 1, -1,  1,  1], dtype=torch.int8), tensor(1.))
        >>> dequantize(q, qp)
        tensor([ 1., -1.,  1.,  1.])
    """
    x = as_float_tensor("x", x)
    flat = _per_slice(x, axis)  # (C, R)
    scale = flat.abs().mean(dim=1)  # (C,)
    q = torch.where(x >= 0, 1, -1).to(torch.int8)
    return q, _qparams(scale, axis)


def ternarize(
    x, *, delta=None, delta_factor: float = 0.7, axis: int | None = None
) -> tuple[torch.Tensor, QParams]:
    """Ternary quantization: ``q = sign(x)`` where ``|x| > delta``, else 0.

    Args:
        x: float tensor.
        delta: threshold below which values become 0: a number, or one per
            slice when ``axis`` is given. Default ``delta_factor * mean(|x|)``.
        delta_factor: the factor of the default threshold (0.7 after TWN).
        axis: None for one scale; an axis for one scale (and threshold) per slice.

    Returns:
        ``(q, qp)``: int8 ``q`` in {-1, 0, +1} and the grid; ``scale`` is the
        mean ``|x|`` of the values kept (the least-squares choice).

    Example:
        >>> q, qp = ternarize(torch.tensor([0.1, -1.0, 0.3, 2.0]), delta=0.25)
        >>> q, qp.scale
        (tensor([ 0, -1,  1,  1], dtype=torch.int8), tensor(1.1000))
    """
    x = as_float_tensor("x", x)
    flat = _per_slice(x, axis)  # (C, R)
    a = flat.abs()  # (C, R)
    if delta is None:
        if not isinstance(delta_factor, (int, float)) or isinstance(delta_factor, bool) or delta_factor < 0:
            raise ValueError(f"delta_factor must be a number >= 0; got {delta_factor!r}")
        thr = delta_factor * a.mean(dim=1)  # (C,)
    else:
        thr = as_float_tensor("delta", delta).reshape(-1)
        if thr.numel() not in (1, a.shape[0]) or not torch.isfinite(thr).all() or (thr < 0).any():
            raise ValueError(
                f"delta must be a finite number >= 0 (or one per channel, {a.shape[0]}); "
                f"got {delta!r}"
            )
        thr = thr.expand(a.shape[0])
    keep = a > thr[:, None]  # (C, R) bool
    kept = keep.sum(dim=1)  # (C,)
    scale = (a * keep).sum(dim=1) / kept.clamp(min=1)  # (C,) mean |x| of kept values
    if axis is None:
        mask = keep.reshape(x.shape)
    else:
        mask = keep.reshape(x.movedim(axis, 0).shape).movedim(0, axis)
    q = (torch.sign(x) * mask).to(torch.int8)
    return q, _qparams(scale, axis)
