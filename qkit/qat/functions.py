"""Autograd functions of quantization-aware training: LSQ, PACT and the sign STE.

Each function rounds in the forward pass and gives the backward pass a chosen
*surrogate* gradient, because the true derivative of rounding is 0 almost
everywhere (nothing would learn). With ``v = x / scale`` (zero point 0)::

    LSQ   (Esser et al. 2019)       y = clamp(round(v), qmin, qmax) * scale
          dy/dx = 1 if qmin <= v <= qmax else 0
          dy/ds = round(v) - v  if qmin <= v <= qmax,  qmin if v < qmin,  qmax if v > qmax
    PACT  (Choi et al. 2018)        y = round(clip(x, 0, alpha) / step) * step,
                                    step = alpha / (2**bits - 1)
          dy/dx = 1 if 0 <= x < alpha else 0,          dy/dalpha = 1 if x >= alpha else 0
    sign  (Courbariaux et al. 2015) y = scale * sign(x),  sign(0) = +1
          dy/dx = 1,                                   dy/dscale = sign(x)

The LSQ rule is what the product rule gives for ``round(v) * s`` when
``d round(u)/du`` is replaced by 1 (the straight-through estimator):
``d/ds [round(x/s) * s] = round(v) + s * (-x/s**2) = round(v) - v``; outside the
grid the forward pass *is* ``qmin * s`` or ``qmax * s``, so ``qmin``/``qmax`` is
the true derivative there.

``x / scale`` is computed as ``x * (1 / scale)`` in the dtype of the inputs,
the order torch's fake-quantize kernels use, so in float32 the forward passes
are bit-exact with ``torch.fake_quantize_per_tensor_affine`` (and
``qkit.fake_quantize``) on the same grid. NaN in ``x`` is not searched for (a
reduction per training step); it comes out as NaN.

Scope: torch's own LSQ op, ``torch._fake_quantize_learnable_per_tensor_affine``,
tests ``round(v)`` against the grid instead of ``v``; the two differ only for
``v`` within half a step outside the grid (there torch says "inside"). We follow
the paper.
"""

from __future__ import annotations

import math
import numbers

import torch

from qkit._checks import as_tensor, check_int
from qkit.qparams import MAX_BITS, MIN_SCALE


# --- argument checks -------------------------------------------------------------------


def _float_tensor(name: str, x) -> torch.Tensor:
    """A floating tensor (numpy arrays and numbers converted), its dtype kept (float64 for gradcheck)."""
    t = as_tensor(name, x)
    if isinstance(x, numbers.Real) and not isinstance(x, torch.Tensor):
        t = t.to(torch.get_default_dtype())
    if not t.is_floating_point():
        raise TypeError(f"{name} must hold floating-point values; got dtype {t.dtype}")
    return t


def _check_scale_shape(name: str, scale: torch.Tensor, x: torch.Tensor) -> None:
    """``scale`` is one number, or has x's number of dims and broadcasts to x's shape."""
    if scale.numel() == 1 and scale.dim() <= x.dim():
        return
    ok = scale.dim() == x.dim()
    if ok:
        try:
            ok = torch.broadcast_shapes(scale.shape, x.shape) == x.shape
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(
            f"{name} must be 0-d (per tensor) or have x's {x.dim()} dims and broadcast to "
            f"x.shape={tuple(x.shape)} (per channel, e.g. (C, 1, 1, 1) for a conv weight, (C, 1) "
            f"for a linear weight); got shape {tuple(scale.shape)}"
        )


def _check_positive(name: str, t: torch.Tensor, *, allow_zero: bool = False) -> None:
    """One reduction: NaN makes ``min`` NaN and every comparison False."""
    if t.numel() == 0:
        raise ValueError(f"{name} is empty")
    low = t.detach().min()
    if not (low >= 0 if allow_zero else low > 0):
        want = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {want} (and not NaN); got a value {low.item():g}")


def _sum_to(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sum ``grad`` over the dims that ``like`` was broadcast along, back to ``like``'s shape/dtype."""
    return grad.sum_to_size(like.shape).to(like.dtype)


# --- LSQ -------------------------------------------------------------------------------


class _LSQ(torch.autograd.Function):
    """LSQ quantize-dequantize; see the module docstring for the gradients."""

    @staticmethod
    def forward(ctx, x, scale, qmin, qmax, grad_scale):
        v = x * (1.0 / scale)  # like x: the unrounded level x / s
        ctx.save_for_backward(v, scale)
        ctx.x_dtype, ctx.qmin, ctx.qmax, ctx.grad_scale = x.dtype, qmin, qmax, grad_scale
        return torch.clamp(torch.round(v), qmin, qmax) * scale

    @staticmethod
    def backward(ctx, grad):
        v, scale = ctx.saved_tensors
        below, above = v < ctx.qmin, v > ctx.qmax  # like x, bool
        inside = ~(below | above)
        grad_x = grad_s = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad * inside).to(ctx.x_dtype)
        if ctx.needs_input_grad[1]:
            d_s = torch.where(below, float(ctx.qmin), torch.where(above, float(ctx.qmax), torch.round(v) - v))
            grad_s = _sum_to(grad * d_s * ctx.grad_scale, scale)  # scale's shape
        return grad_x, grad_s, None, None, None


def lsq_quantize(x, scale, qmin: int, qmax: int, grad_scale: float = 1.0) -> torch.Tensor:
    """LSQ fake quantization: ``clamp(round(x / scale), qmin, qmax) * scale``, learnable scale.

    Learned Step Size Quantization (Esser et al., ICLR 2020, arXiv 2019), zero
    point 0. Rounding is half-to-even (``torch.round``). Gradients, each times
    the upstream gradient, with ``v = x / scale``:

    * ``d/dx = 1`` where ``qmin <= v <= qmax``, else 0 (straight-through inside);
    * ``d/dscale = round(v) - v`` inside, ``qmin`` below, ``qmax`` above, times
      ``grad_scale``, summed over the elements that share a scale.

    Args:
        x: float tensor (any float dtype; float64 for gradcheck).
        scale: positive float tensor: 0-d (per tensor), or with ``x``'s number
            of dims and broadcastable to it (per channel: ``(C, 1, 1, 1)`` for a
            conv weight ``(C, Cin, kH, kW)``, ``(C, 1)`` for a linear weight).
            A 1-d ``(C,)`` scale is refused for a 2-d ``x``: it would broadcast
            along the last axis, not the channels.
        qmin, qmax: the integer grid, ``qmin < qmax`` (e.g. ``qkit.qrange(4)``).
        grad_scale: factor on the scale's gradient; Esser et al. use
            :func:`lsq_grad_scale`.

    Returns:
        Tensor of ``x``'s shape holding only values ``k * scale``, ``qmin <= k <= qmax``.

    Raises:
        TypeError: a non-tensor/non-number input, an integer tensor, non-int bounds.
        ValueError: ``qmin >= qmax``, a scale that is not positive (or NaN) or has
            the wrong shape, a ``grad_scale`` that is not a positive finite number.

    Example:
        >>> x = torch.tensor([-1.3, -0.2, 0.26, 0.9], requires_grad=True)
        >>> s = torch.tensor(0.5, requires_grad=True)     # grid -1.0, -0.5, 0, 0.5 (2 bits)
        >>> y = lsq_quantize(x, s, -2, 1); y              # v = -2.6 (clipped), -0.4, 0.52, 1.8 (clipped)
        tensor([-1.0000, -0.0000,  0.5000,  0.5000], grad_fn=<_LSQBackward>)
        >>> y.sum().backward(); x.grad                    # 1 inside the grid only
        tensor([0., 1., 1., 0.])
        >>> round(s.grad.item(), 4)                       # qmin + (0 + 0.4) + (1 - 0.52) + qmax
        -0.12
    """
    x = _float_tensor("x", x)
    scale = _float_tensor("scale", scale)
    qmin, qmax = check_int("qmin", qmin), check_int("qmax", qmax)
    if qmin >= qmax:
        raise ValueError(f"qmin must be < qmax; got qmin={qmin}, qmax={qmax}")
    if isinstance(grad_scale, bool) or not isinstance(grad_scale, numbers.Real) or not (
        0 < grad_scale < math.inf
    ):
        raise ValueError(f"grad_scale must be a positive finite number; got {grad_scale!r}")
    _check_scale_shape("scale", scale, x)
    _check_positive("scale", scale)
    return _LSQ.apply(x, scale, qmin, qmax, float(grad_scale))


def lsq_grad_scale(numel_per_scale: int, qmax: int) -> float:
    """Esser et al.'s gradient scale ``g = 1 / sqrt(numel_per_scale * qmax)``.

    It keeps the scale's update about as large, relative to the scale, as the
    weights' updates are relative to the weights.

    Args:
        numel_per_scale: elements sharing one scale (a layer's weight count per
            tensor, ``Cin * kH * kW`` per channel, features per activation).
        qmax: the grid's top level (``2**(bits-1) - 1`` signed, ``2**bits - 1`` unsigned).

    Example:
        >>> lsq_grad_scale(28 * 3 * 3, 7)   # per channel of a (C, 28, 3, 3) conv, 4-bit signed: 1/sqrt(1764)
        0.023809523809523808
    """
    n = check_int("numel_per_scale", numel_per_scale, low=1)
    qmax = check_int("qmax", qmax, low=1)
    return 1.0 / math.sqrt(n * qmax)


def lsq_init_scale(x, qmax: int, *, axis: int | None = None) -> torch.Tensor:
    """Esser et al.'s initial step ``2 * mean(|x|) / sqrt(qmax)``, floored at float32 eps.

    Args:
        x: float tensor (a weight, or a calibration batch of activations).
        qmax: the grid's top level, >= 1.
        axis: None for one scale (0-d); an axis for one scale per slice along
            it, shape ``(C,)`` (reshape to ``(C, 1, 1, 1)`` before
            :func:`lsq_quantize`).

    Returns:
        A detached float tensor, 0-d or ``(C,)``, in ``x``'s dtype.

    Example:
        >>> w = torch.tensor([[1.0, -3.0], [0.5, 0.5]])
        >>> lsq_init_scale(w, 4)                       # 2 * 1.25 / 2
        tensor(1.2500)
        >>> lsq_init_scale(w, 4, axis=0)               # rows: mean |w| = 2.0 and 0.5
        tensor([2.0000, 0.5000])
    """
    x = _float_tensor("x", x).detach()
    qmax = check_int("qmax", qmax, low=1)
    if x.numel() == 0:
        raise ValueError("x is empty: there is no range to initialise a scale from")
    if axis is None:
        mean_abs = x.abs().mean()  # 0-d
    else:
        axis = check_int("axis", axis, low=-x.dim(), high=x.dim() - 1)
        mean_abs = x.abs().movedim(axis, 0).reshape(x.shape[axis], -1).mean(dim=1)  # (C,)
    if torch.isnan(mean_abs).any():
        raise ValueError("x contains NaN: no scale can be initialised from it")
    return torch.clamp(2.0 * mean_abs / math.sqrt(qmax), min=MIN_SCALE)


# --- PACT ------------------------------------------------------------------------------


class _PACT(torch.autograd.Function):
    """PACT clip + quantize; see the module docstring for the gradients."""

    @staticmethod
    def forward(ctx, x, alpha, levels):
        step = alpha / levels  # alpha's shape: the grid step
        ctx.save_for_backward(x, alpha)
        return torch.clamp(torch.round(x * (1.0 / step)), 0, levels) * step

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        grad_x = grad_a = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad * ((x >= 0) & (x < alpha))).to(x.dtype)
        if ctx.needs_input_grad[1]:
            grad_a = _sum_to(grad * (x >= alpha), alpha)  # alpha's shape
        return grad_x, grad_a, None


def pact(x, alpha, bits: int) -> torch.Tensor:
    """PACT activation: clip to ``[0, alpha]``, quantize on ``2**bits - 1`` steps, learnable alpha.

    Parameterized Clipping Activation (Choi et al. 2018). With
    ``step = alpha / (2**bits - 1)`` the outputs are the levels ``k * step``,
    ``k = 0 .. 2**bits - 1``; rounding is half-to-even. Gradients, as in the
    paper (the rounding treated as the identity), times the upstream gradient:

    * ``d/dx = 1`` on ``0 <= x < alpha``, else 0;
    * ``d/dalpha = 1`` where ``x >= alpha``, else 0, summed to alpha's shape.

    The top level is ``(2**bits - 1) * step``, which may differ from ``alpha``
    by a rounding error of the last bit (it is what torch's fake-quantize with
    scale ``step`` gives).

    Args:
        x: float tensor (pre-activation).
        alpha: positive float tensor with one element (0-d or e.g. ``(1,)``).
        bits: 1 .. 16.

    Returns:
        Tensor of the broadcast shape of ``x`` and ``alpha`` (``x``'s shape for a 0-d alpha).

    Raises:
        TypeError: a non-tensor input, an integer tensor, non-int bits.
        ValueError: bits outside 1..16, alpha with several elements, alpha <= 0 or NaN.

    Example:
        >>> x = torch.tensor([-0.5, 0.4, 1.1, 3.0], requires_grad=True)
        >>> a = torch.tensor(2.0, requires_grad=True)
        >>> y = pact(x, a, 2); y                 # levels 0, 2/3, 4/3, 2
        tensor([0.0000, 0.6667, 1.3333, 2.0000], grad_fn=<_PACTBackward>)
        >>> y.sum().backward(); x.grad, a.grad   # only 3.0 is clipped at alpha
        (tensor([0., 1., 1., 0.]), tensor(1.))
    """
    x = _float_tensor("x", x)
    alpha = _float_tensor("alpha", alpha)
    bits = check_int("bits", bits, low=1, high=MAX_BITS)
    if alpha.numel() != 1:
        raise ValueError(f"alpha must hold one number (0-d or 1 element); got shape {tuple(alpha.shape)}")
    _check_positive("alpha", alpha)
    return _PACT.apply(x, alpha, 2**bits - 1)


def pact_penalty(alpha, weight: float) -> torch.Tensor:
    """PACT's L2 regulariser on the clip level: ``weight * alpha**2`` (summed if alpha has several).

    Add it to the loss so that alpha does not grow without bound.

    Example:
        >>> pact_penalty(torch.tensor(3.0), 1e-2)
        tensor(0.0900)
    """
    alpha = _float_tensor("alpha", alpha)
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (0 <= weight < math.inf):
        raise ValueError(f"weight must be a finite number >= 0; got {weight!r}")
    return weight * (alpha**2).sum()


# --- sign STE (binary weights) ---------------------------------------------------------


class _SignSTE(torch.autograd.Function):
    """``scale * sign(x)`` with the identity straight-through gradient for x."""

    @staticmethod
    def forward(ctx, x, scale):
        sign = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)  # like x: sign(0) = +1
        ctx.save_for_backward(sign, scale)
        return sign * scale

    @staticmethod
    def backward(ctx, grad):
        sign, scale = ctx.saved_tensors
        grad_x = grad if ctx.needs_input_grad[0] else None
        grad_s = _sum_to(grad * sign, scale) if ctx.needs_input_grad[1] else None
        return grad_x, grad_s


def sign_ste(x, scale) -> torch.Tensor:
    """Binary weights: ``scale * sign(x)`` with ``sign(0) = +1`` (as :func:`qkit.binarize`).

    Backward: ``d/dx`` is the upstream gradient unchanged — the identity
    straight-through estimator of BinaryConnect (Courbariaux et al. 2015): the
    float weights keep accumulating small updates that sign() would erase.
    (BinaryNet's variant also zeroes the gradient where ``|x| > 1``; this
    function does not.) ``d/dscale = upstream * sign(x)``, summed to scale's shape.

    Args:
        x: float tensor (the latent float weight).
        scale: non-negative float tensor, 0-d or broadcastable like LSQ's
            (e.g. ``mean(|w|)`` per output channel, shape ``(C, 1, 1, 1)``).

    Returns:
        Tensor of ``x``'s shape holding ``±scale``.

    Example:
        >>> w = torch.tensor([[0.3, -0.1], [0.0, -2.0]], requires_grad=True)
        >>> s = torch.tensor([[0.5], [1.0]], requires_grad=True)   # one scale per row
        >>> y = sign_ste(w, s); y
        tensor([[ 0.5000, -0.5000],
                [ 1.0000, -1.0000]], grad_fn=<_SignSTEBackward>)
        >>> y.sum().backward(); w.grad, s.grad.flatten()
        (tensor([[1., 1.],
                [1., 1.]]), tensor([0., 0.]))
    """
    x = _float_tensor("x", x)
    scale = _float_tensor("scale", scale)
    _check_scale_shape("scale", scale, x)
    _check_positive("scale", scale, allow_zero=True)
    return _SignSTE.apply(x, scale)
