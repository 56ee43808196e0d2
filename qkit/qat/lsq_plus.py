"""LSQ+ (Bhalgat et al. 2020): a learned step *and* a learned zero point, for activations that can be negative.

LSQ's grid has its zero point at 0 (:func:`qkit.qat.lsq_quantize`). A signed
b-bit grid ``[-2^(b-1), 2^(b-1) - 1]`` is lopsided at low bits — at 2 bits it is
{-2, -1, 0, 1}·s — and a value range such as a linear bottleneck's ``[-0.5, 3]``
wastes most of it. LSQ+ learns an offset as well. To stay deployable here the
offset is an integer zero point ``z`` (learned as a float, used rounded)::

    x_hat = (clamp(round(x / s) + z, qmin, qmax) - z) · s        (qkit.fake_quantize's order)
    z = clamp(round(zero_point), qmin, qmax)

Gradients (straight-through inside the grid, with v = x / s)::

    d/dx = 1 inside, 0 outside
    d/ds = round(v) - v inside;  (qmin - z) below, (qmax - z) above
    d/dz = 0 inside (x_hat does not depend on z there);  -s outside

both of ``s`` and ``z`` times Esser et al.'s gradient scale ``g``. Bhalgat et al.
learn a real-valued offset β; an integer ``z = -β/s`` is the offset the integer
model can hold, and rounding it straight-through is what lets ``qat.convert``
deploy exactly what training simulated.
"""

from __future__ import annotations

import torch


class _LSQPlus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax, grad_scale):
        z = torch.round(zero_point).clamp(qmin, qmax)  # the integer zero point in use
        v = x * (1.0 / scale)
        q = torch.round(v) + z  # unclamped level
        below, above = q < qmin, q > qmax
        ctx.save_for_backward(v, below, above, scale, z)
        ctx.consts = (qmin, qmax, grad_scale)
        return (torch.clamp(q, qmin, qmax) - z) * scale

    @staticmethod
    def backward(ctx, grad):
        v, below, above, scale, z = ctx.saved_tensors
        qmin, qmax, g = ctx.consts
        inside = ~(below | above)
        d_scale = torch.where(below, qmin - z, torch.where(above, qmax - z, torch.round(v) - v))
        d_zero = torch.where(inside, torch.zeros_like(v), -scale.expand_as(v))
        return grad * inside, (grad * d_scale).sum() * g, (grad * d_zero).sum() * g, None, None, None


def lsq_plus_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int, qmax: int,
                      grad_scale: float = 1.0) -> torch.Tensor:
    """LSQ+ fake quantization, per tensor (see the module docstring).

    Example:
        >>> x = torch.tensor([-0.9, 0.2, 0.6, 3.0], requires_grad=True)
        >>> s = torch.tensor(0.5, requires_grad=True); z = torch.tensor(-1.2, requires_grad=True)  # z = -1
        >>> y = lsq_plus_quantize(x, s, z, -2, 1); y        # levels -2..1 shifted by 1: values -0.5 .. 1.0
        tensor([-0.5000,  0.0000,  0.5000,  1.0000], grad_fn=<_LSQPlusBackward>)
        >>> y.sum().backward(); x.grad, z.grad              # clipped at both ends: dz = -s twice
        (tensor([0., 1., 1., 0.]), tensor(-1.))
    """
    if scale.dim() != 0 or zero_point.dim() != 0:
        raise ValueError(f"lsq_plus_quantize is per tensor: scale and zero_point must be 0-d; got shapes "
                         f"{tuple(scale.shape)} and {tuple(zero_point.shape)}")
    if not bool(scale > 0):
        raise ValueError(f"scale must be positive; got {float(scale):g}")
    if qmin >= qmax:
        raise ValueError(f"qmin must be < qmax; got qmin={qmin}, qmax={qmax}")
    return _LSQPlus.apply(x, scale, zero_point, qmin, qmax, float(grad_scale))
