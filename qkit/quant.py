"""Quantize, dequantize and fake-quantize tensors on a given grid.

Equation: ``x ≈ scale * (q - zero_point)``, computed in this order (the order
torch's fake-quantize kernels use, so results are bit-exact with them)::

    inv_scale = 1 / scale                                    # float32
    q = clamp(round_half_even(x * inv_scale) + zero_point, qmin, qmax)
    x_hat = (q - zero_point) * scale                          # float32

Rounding to the nearest level gives the *rounding error* (at most scale/2 in
magnitude); the clamp gives the *clipping error* for values outside the grid's
float range.
"""

from __future__ import annotations

import torch

from qkit._checks import as_float_tensor, as_int_tensor, check_int
from qkit.qparams import QParams


def storage_dtype(qmin: int, qmax: int) -> torch.dtype:
    """Smallest torch integer dtype that the kit stores a ``[qmin, qmax]`` grid in.

    Example:
        >>> storage_dtype(-128, 127), storage_dtype(0, 255), storage_dtype(-32768, 32767)
        (torch.int8, torch.uint8, torch.int32)
    """
    if -128 <= qmin and qmax <= 127:
        return torch.int8
    if 0 <= qmin and qmax <= 255:
        return torch.uint8
    return torch.int32


def check_qparams(qp: QParams) -> None:
    """Raise if ``qp`` is not a usable grid (wrong types, scale <= 0, zero_point off-grid).

    Example:
        >>> bad = QParams(torch.tensor(-0.1), torch.tensor(0, dtype=torch.int32), -128, 127)
        >>> check_qparams(bad)
        Traceback (most recent call last):
        ...
        ValueError: scale must be positive and finite; got -0.1
    """
    if not isinstance(qp, QParams):
        raise TypeError(f"expected a qkit.QParams; got {type(qp).__name__}")
    qmin = check_int("qmin", qp.qmin)
    qmax = check_int("qmax", qp.qmax)
    if qmin >= qmax:
        raise ValueError(f"qmin must be < qmax; got qmin={qmin}, qmax={qmax}")
    if not isinstance(qp.scale, torch.Tensor) or not qp.scale.is_floating_point():
        raise TypeError(f"scale must be a float tensor; got {qp.scale!r}")
    if not isinstance(qp.zero_point, torch.Tensor) or qp.zero_point.is_floating_point():
        raise TypeError(f"zero_point must be an integer tensor; got {qp.zero_point!r}")
    if qp.scale.shape != qp.zero_point.shape:
        raise ValueError(
            f"scale and zero_point must have one shape; got {tuple(qp.scale.shape)} "
            f"and {tuple(qp.zero_point.shape)}"
        )
    want_dim = 0 if qp.axis is None else 1
    if qp.scale.dim() != want_dim:
        kind = "per-tensor (axis=None) needs 0-d" if qp.axis is None else "per-channel needs 1-d"
        raise ValueError(f"{kind} scale and zero_point; got shape {tuple(qp.scale.shape)}")
    bad = ~(torch.isfinite(qp.scale) & (qp.scale > 0))
    if bad.any():
        raise ValueError(
            f"scale must be positive and finite; got {qp.scale.reshape(-1)[bad.reshape(-1)][0].item():g}"
        )
    off = (qp.zero_point < qmin) | (qp.zero_point > qmax)
    if off.any():
        raise ValueError(
            f"zero_point must lie in [qmin, qmax] = [{qmin}, {qmax}]; "
            f"got {qp.zero_point.reshape(-1)[off.reshape(-1)][0].item()}"
        )


def _params_for(x: torch.Tensor, qp: QParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``qp`` against ``x`` and shape scale/zero_point to broadcast over it."""
    check_qparams(qp)
    if qp.axis is None:
        return qp.scale.to(torch.float32), qp.zero_point.to(torch.int32)
    axis = check_int("axis", qp.axis, low=-x.dim(), high=x.dim() - 1) % x.dim() if x.dim() else None
    if axis is None or x.shape[axis] != qp.scale.numel():
        got = "a 0-d tensor" if axis is None else f"{x.shape[axis]} slices along axis {qp.axis}"
        raise ValueError(
            f"per-channel QParams hold {qp.scale.numel()} channels but x has {got} "
            f"(x.shape={tuple(x.shape)})"
        )
    view = [1] * x.dim()
    view[axis] = -1
    return qp.scale.to(torch.float32).view(view), qp.zero_point.to(torch.int32).view(view)


def _check_no_nan(x: torch.Tensor) -> None:
    if torch.isnan(x).any():
        raise ValueError("x contains NaN: NaN has no place on an integer grid")


def quantize(x, qp: QParams) -> torch.Tensor:
    """Map floats to grid integers: ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``.

    Rounding is round-half-to-even (as ``torch.round``), done on ``x * (1/scale)``
    in float32 exactly as torch's kernels do. Values beyond the grid are clipped
    to ``qmin``/``qmax``; that is the clipping error, by design.

    Args:
        x: float tensor (or numpy array / number). NaN is refused, ±inf clips.
        qp: the grid, from :func:`qkit.choose_qparams`.

    Returns:
        Integer tensor of ``x``'s shape: int8 or uint8 when ``[qmin, qmax]``
        fits, else int32.

    Example:
        >>> from qkit.qparams import choose_qparams
        >>> qp = choose_qparams(-1.0, 2.0, bits=8)       # scale 3/255, zero_point -43
        >>> quantize(torch.tensor([-1.0, 0.0, 0.5, 2.0, 9.0]), qp)
        tensor([-128,  -43,   -1,  127,  127], dtype=torch.int8)
    """
    x = as_float_tensor("x", x)
    scale, zero_point = _params_for(x, qp)
    _check_no_nan(x)
    q = torch.round(x * (1.0 / scale)) + zero_point  # float32, like torch's kernel
    q = torch.clamp(q, qp.qmin, qp.qmax)
    return q.to(storage_dtype(qp.qmin, qp.qmax))


def dequantize(q, qp: QParams) -> torch.Tensor:
    """Map grid integers back to floats: ``x_hat = (q - zero_point) * scale``.

    ``q - zero_point`` is formed in int32: in int8 it could wrap around
    (``-128 - 3`` is not representable), the classic trap.

    Args:
        q: integer tensor with every value in ``[qmin, qmax]``.
        qp: the grid ``q`` was quantized on.

    Returns:
        float32 tensor of ``q``'s shape.

    Example:
        >>> from qkit.qparams import choose_qparams
        >>> qp = choose_qparams(-1.0, 2.0, bits=8)
        >>> dequantize(torch.tensor([-128, -43, 127], dtype=torch.int8), qp)
        tensor([-1.,  0.,  2.])
    """
    q = as_int_tensor("q", q)
    scale, zero_point = _params_for(q, qp)
    if q.numel() and (q.min() < qp.qmin or q.max() > qp.qmax):
        raise ValueError(
            f"q must lie in [qmin, qmax] = [{qp.qmin}, {qp.qmax}]; got values in "
            f"[{q.min().item()}, {q.max().item()}]"
        )
    return (q.to(torch.int32) - zero_point).to(torch.float32) * scale


class _FakeQuantize(torch.autograd.Function):
    """Quantize-dequantize with the straight-through estimator (STE)."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):
        zp = zero_point.to(torch.float32)
        q = torch.round(x * (1.0 / scale)) + zp  # unclamped level, float32
        inside = (q >= qmin) & (q <= qmax)
        ctx.save_for_backward(inside)
        return (torch.clamp(q, qmin, qmax) - zp) * scale

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None, None


def fake_quantize(x, qp: QParams) -> torch.Tensor:
    """Quantize and dequantize in one float step: ``x_hat = dequantize(quantize(x))``.

    Used in quantization-aware training: the forward pass sees the grid's
    values while the weights stay float. The gradient is the straight-through
    estimator: 1 where ``x`` falls inside the grid's range, 0 where it is
    clipped (as ``torch.fake_quantize_per_tensor_affine`` does). Bit-exact with
    ``torch.fake_quantize_per_tensor_affine`` and
    ``torch.fake_quantize_per_channel_affine``.

    Args:
        x: float tensor; may require grad.
        qp: the grid.

    Returns:
        float32 tensor of ``x``'s shape holding only grid values.

    Example:
        >>> from qkit.qparams import choose_qparams
        >>> qp = choose_qparams(-1.0, 1.0, bits=2)  # levels -4/3, -2/3, 0, 2/3
        >>> x = torch.tensor([-2.0, -0.3, 0.2, 1.2], requires_grad=True)
        >>> fake_quantize(x, qp)                    # -2.0 and 1.2 are clipped
        tensor([-1.3333,  0.0000,  0.0000,  0.6667], grad_fn=<_FakeQuantizeBackward>)
        >>> fake_quantize(x, qp).sum().backward(); x.grad
        tensor([0., 1., 1., 0.])
    """
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float32:
        x = x.float()
    x = as_float_tensor("x", x)
    scale, zero_point = _params_for(x, qp)
    _check_no_nan(x.detach())
    return _FakeQuantize.apply(x, scale, zero_point, qp.qmin, qp.qmax)
