"""Integer-only int8 linear and conv2d, reference version: the specification.

Equation, for the input x, the weight w and the output y alike::

    x ≈ scale * (q - zero_point)

Derivation (the stages below are the code's stages). A linear layer computes
``y[n, m] = Σ_k x[n, k] w[m, k] + b[m]``. Put the grids in, with a per-tensor
affine input (``s_x``, ``z_x``) and a **scale**-scheme weight (``z_w = 0``,
``s_w[m]`` per output channel or one for all)::

    y[n, m] ≈ Σ_k s_x (q_x[n, k] - z_x) · s_w[m] q_w[m, k] + b[m]
            = s_x s_w[m] · acc[n, m]
    acc[n, m] = Σ_k (q_x[n, k] - z_x) q_w[m, k] + bias_q[m]                 (1)
    bias_q[m] = round_half_even(b[m] / (s_x s_w[m]))                          (2)

1. **Accumulate** (1) in int32. The bias is put on the accumulator's own grid
   (scale ``s_x s_w``) by (2), so adding it is one integer addition.
2. **Fold the zero point.** Expanding (1)::

       acc = Σ_k q_x q_w  -  z_x Σ_k q_w[m, k]  +  bias_q[m]

   The first term is a pure int8 × int8 → int32 matrix product, what the
   hardware's dot-product units compute; the second depends on the weight only,
   so a fast kernel precomputes the row sums once (``fast.py`` does; this
   reference keeps the plain form (1): the two are equal in exact integers).
   A non-zero ``z_w`` would add ``-z_w Σ_k q_x`` (new for every input) and
   ``K z_x z_w``: that is why int8 weights use the scale scheme.
3. **Requantize.** On the output grid ``q_y = z_y + y / s_y``, so::

       q_y = clamp(z_y + M[m] · acc, qmin_y, qmax_y),   M[m] = s_x s_w[m] / s_y   (3)

   ``M`` is formed in float64 once, as TensorFlow Lite forms it
   (:func:`real_multipliers`), then applied one of two ways, as TFLite's
   reference kernels do today (``kernels/internal/reference/integer_ops/``):

   * **conv2d** (``conv.h``, ``depthwise_conv.h``; ``rounding="double"``, the
     default of :func:`int8_conv2d`): ``M`` is stored as a fixed-point
     ``(multiplier, shift)`` (:func:`qkit.fixedpoint.quantize_multipliers`) and
     applied with :func:`qkit.fixedpoint.multiply_by_quantized_multiplier`
     (gemmlowp's rounding pair): no float at run time;
   * **linear** (``fully_connected.h``; ``rounding="float64"``, the default of
     :func:`int8_linear`): ``round(double(acc) * M)``, one rounding in float64,
     ties away from zero (:func:`qkit.fixedpoint.multiply_by_real_multiplier`).

   Both are within one level of each other; the fixed-point pair is what integer-only
   hardware runs, the float64 product what a CPU with a float unit can afford.
4. **Overflow guard.** An int8 ``q_x`` is in [-128, 127], so
   ``|q_x - z_x| <= A = max(z_x + 128, 127 - z_x)`` (128 for ``z_x = 0``, 255
   at either end), and ``|q_w| <= 128``. Hence::

       |acc| <= K · A · 128 + max|bias_q|  must be <= 2**31 - 1

   (no bias: K <= 65 793 in the worst case ``A = 255``, as in
   :mod:`qkit.overflow`; K <= 131 071 for ``z_x = 0``). Since ``A >= 128``,
   the folded terms ``Σ q_x q_w`` and ``z_x Σ q_w`` obey the same bound. The
   kernels refuse larger K: an int32 accumulator would wrap around silently.

Error against float (``t`` = the exact real result in output levels): the
fixed-point multiply (``rounding="double"``) rounds twice, ``|r - acc·M| <= 1/2 + 2**-(1+rs)``
(``rs = -shift >= 1``, so ``M < 1/2``) or ``1/2`` (``rs = 0``, ``M < 1``);
``bias_q`` is off by at most 1/2, i.e. ``M/2`` levels; ``M``'s own rounding
(2**-31 relative) and the float path's arithmetic are negligible, and the
float path rounds once (1/2). Altogether ``|r - round(t)| < 1/2 + 1/4 + 1/4 + 1/2 + ε = 3/2 + ε``;
both are integers and the clamp only narrows gaps, so
``|q_y - quantize(float result)| <= 1`` whenever ``M < 1`` (tests check it).

conv2d is the same computation with a patch of ``K = C_in/groups · kH · kW``
inputs in place of a row. Padding adds inputs whose *real* value is 0.0;
on the input grid 0.0 is the integer ``z_x``, not 0. Padding ``q_x`` with 0
would add ``-z_x · s_x`` at the border (after a ReLU with ``z_x = -128`` that
is the brightest value, not black). Here the input is centred first
(``q_x - z_x``) and padded with 0, which is the same thing.

Scope: int8 in, int8 out; per-tensor input and output grids; weights
per-tensor or per-channel along axis 0. A bias may come as float (quantized by
(2)) or, as a ``.tflite`` file stores it, already as int32 on the grid ``s_x s_w``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qkit._checks import as_tensor, check_int
from qkit.fixedpoint import (check_rounding, multiply_by_quantized_multiplier, multiply_by_real_multiplier,
                             quantize_multipliers)
from qkit.qparams import QParams
from qkit.quant import check_qparams

INT32_MAX = 2**31 - 1


def int8_tensor(name: str, q, dim: int, layout: str) -> torch.Tensor:
    """``q`` as a torch tensor, checked to be int8 with ``dim`` dimensions."""
    t = as_tensor(name, q)
    if t.dtype != torch.int8:
        raise TypeError(f"{name} must be an int8 tensor; got dtype {t.dtype}")
    if t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-d {layout}; got shape {tuple(t.shape)}")
    return t


def check_grids(x_qp: QParams, w_qp: QParams, y_qp: QParams, channels: int) -> None:
    """Raise unless x/y are per-tensor int8 grids and w a scale-scheme int8 grid for ``channels``."""
    for name, qp in (("x_qp", x_qp), ("w_qp", w_qp), ("y_qp", y_qp)):
        try:
            check_qparams(qp)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{name}: {err}") from None
        if qp.qmin < -128 or qp.qmax > 127:
            raise ValueError(f"{name} must be a grid inside int8's [-128, 127]; got [{qp.qmin}, {qp.qmax}]")
        if name != "w_qp" and qp.axis is not None:
            raise ValueError(f"{name} must be per-tensor (axis=None); got axis={qp.axis}")
    if w_qp.axis not in (None, 0):
        raise ValueError(f"w_qp must be per-tensor or per-channel along axis 0; got axis={w_qp.axis}")
    if w_qp.axis == 0 and w_qp.scale.numel() != channels:
        raise ValueError(
            f"w_qp holds {w_qp.scale.numel()} channels but the weight has {channels} output channels"
        )
    if (w_qp.zero_point != 0).any():
        bad = w_qp.zero_point.reshape(-1)[w_qp.zero_point.reshape(-1) != 0][0].item()
        raise ValueError(f"w_qp must be scale scheme (zero_point 0); got zero_point {bad}")


def quantize_bias(bias, x_qp: QParams, w_qp: QParams, channels: int) -> torch.Tensor:
    """Stage (2): ``bias_q = round_half_even(bias / (s_x s_w))`` as int32 ``(channels,)``.

    An int32 ``bias`` is taken as already quantized (TensorFlow Lite stores its
    biases so, on the scale ``s_x s_w``) and returned as it is; ``None`` gives zeros.

    Example:
        >>> from qkit import choose_qparams
        >>> x_qp = choose_qparams(-1.0, 1.0)                       # s_x = 2/255
        >>> w_qp = QParams(torch.tensor([0.01, 0.02]), torch.zeros(2, dtype=torch.int32), -127, 127, 0)
        >>> quantize_bias(torch.tensor([0.5, -0.001]), x_qp, w_qp, 2)   # 0.5/(2/255·0.01) = 6375
        tensor([6375,   -6], dtype=torch.int32)
        >>> quantize_bias(torch.tensor([6375, -6], dtype=torch.int32), x_qp, w_qp, 2)   # already int32
        tensor([6375,   -6], dtype=torch.int32)
    """
    if bias is None:
        return torch.zeros(channels, dtype=torch.int32)
    b = as_tensor("bias", bias)
    if not b.is_floating_point() and b.dtype != torch.int32:
        raise TypeError(f"bias must be a float tensor, an int32 tensor (already quantized) or None; "
                        f"got dtype {b.dtype}")
    if b.shape != (channels,):
        raise ValueError(f"bias must have shape ({channels},); got {tuple(b.shape)}")
    if b.dtype == torch.int32:
        return b
    if not torch.isfinite(b).all():
        raise ValueError("bias must be finite; got NaN or inf")
    scale = (x_qp.scale.double() * w_qp.scale.double()).expand(channels)  # (M,) exact product
    q = torch.round(b.double() / scale)  # (M,) float64, half to even
    if q.abs().max() > INT32_MAX:
        m = int(q.abs().argmax())
        raise ValueError(
            f"bias[{m}] = {b[m].item():g} is {q[m].item():.0f} on the accumulator grid "
            f"(scale s_x·s_w = {scale[m].item():.3g}): it does not fit int32"
        )
    return q.to(torch.int32)


def real_multipliers(x_qp: QParams, w_qp: QParams, y_qp: QParams, channels: int, *,
                     product: str = "float64") -> torch.Tensor:
    """Stage (3): the real ``M = s_x s_w / s_y``, float64 ``(channels,)``, formed as TensorFlow Lite forms it.

    The scales are float32 (a ``.tflite`` stores them so). ``product="float64"``
    widens each to double first, ``(double(s_x) * double(s_w)) / double(s_y)``:
    what TFLite's ``PopulateConvolutionQuantizationParams`` (``kernels/kernel_util.cc``;
    CONV_2D, DEPTHWISE_CONV_2D, per-channel FULLY_CONNECTED) and its reference
    FULLY_CONNECTED kernel do, per tensor and per channel alike.
    ``product="float32"`` multiplies the two float32 scales in float32 and widens
    the product, ``double(s_x * s_w) / double(s_y)``: TFLite's
    ``GetQuantizedConvolutionMultipler``, used by its *optimized* per-tensor
    FULLY_CONNECTED only. The two can differ in the last bits of ``M``.

    Example:
        >>> qp = lambda s: QParams(torch.tensor(s), torch.tensor(0, dtype=torch.int32), -128, 127)
        >>> m64 = real_multipliers(qp(0.1), qp(0.3), qp(0.7), 1)
        >>> m32 = real_multipliers(qp(0.1), qp(0.3), qp(0.7), 1, product="float32")
        >>> m64.dtype, bool(m64 != m32), bool(((m64 - m32) / m64).abs() < 2**-23)
        (torch.float64, True, True)
    """
    if product == "float64":
        xw = x_qp.scale.double() * w_qp.scale.double()  # exact: two 24-bit mantissas fit 53 bits
    elif product == "float32":
        xw = (x_qp.scale.float() * w_qp.scale.float()).double()  # rounded to float32 first
    else:
        raise ValueError(f"product must be 'float64' or 'float32'; got {product!r}")
    return (xw / y_qp.scale.double()).expand(channels).contiguous()  # (channels,) float64


def output_multipliers(x_qp: QParams, w_qp: QParams, y_qp: QParams, channels: int, rounding: str = "double"):
    """Stage (3): ``M`` (:func:`real_multipliers`) as int32 ``(multiplier, shift)``, each ``(channels,)``.

    For ``rounding="float64"``, which needs no fixed point, ``multiplier`` is the
    float64 ``M`` itself and ``shift`` is 0: what :func:`requantize` expects.
    """
    real = real_multipliers(x_qp, w_qp, y_qp, channels)  # (channels,) float64
    if check_rounding(rounding) == "float64":
        return real, torch.zeros(channels, dtype=torch.int32)
    return quantize_multipliers(real)


def check_accumulator(k: int, z_x: int, bias_q: torch.Tensor) -> None:
    """Stage (4): refuse a K whose worst case ``K · A · 128 + max|bias_q|`` exceeds 2**31 - 1.

    Example:
        >>> check_accumulator(65793, -128, torch.zeros(1, dtype=torch.int32))
        >>> check_accumulator(65794, -128, torch.zeros(1, dtype=torch.int32))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: the int32 accumulator could overflow: K=65794 ... reach 2147516160 > 2**31 - 1; ...
    """
    a = max(z_x + 128, 127 - z_x)
    b_max = int(bias_q.abs().max()) if bias_q.numel() else 0
    worst = k * a * 128 + b_max
    if worst > INT32_MAX:
        raise ValueError(
            f"the int32 accumulator could overflow: K={k} products of |q_x - z_x| <= {a} "
            f"(z_x={z_x}) and |q_w| <= 128, plus max|bias_q| = {b_max}, reach {worst} > "
            "2**31 - 1; use a shorter K (split the sum)"
        )


def requantize(acc: torch.Tensor, multiplier, shift, y_qp: QParams, rounding: str = "double") -> torch.Tensor:
    """Stage (3): ``q_y = clamp(multiply_by_quantized_multiplier(acc, multiplier, shift) + z_y)``.

    ``multiplier`` and ``shift`` broadcast along ``acc``'s last axis; ``rounding``
    is one of :data:`qkit.fixedpoint.ROUNDINGS` (``"double"``, ``"single"``,
    ``"float64"``, ``"double_up"``). With ``"float64"`` and a float ``multiplier`` (the real ``M`` of
    :func:`output_multipliers`), ``shift`` is ignored and
    :func:`qkit.fixedpoint.multiply_by_real_multiplier` applies ``M``.

    Example:
        >>> y_qp = QParams(torch.tensor(0.1), torch.tensor(-5, dtype=torch.int32), -128, 127)
        >>> requantize(torch.tensor([[10, -10, 20000]]), 1288490189, -1, y_qp)   # M = 0.3
        tensor([[ -2,  -8, 127]], dtype=torch.int8)
    """
    if rounding == "float64" and isinstance(multiplier, torch.Tensor) and multiplier.is_floating_point():
        q = multiply_by_real_multiplier(acc, multiplier)  # int32: round(double(acc) * M)
    else:
        q = multiply_by_quantized_multiplier(acc, multiplier, shift, rounding=rounding)  # int32
    q = q.long() + int(y_qp.zero_point)  # int64: q + z_y could pass 2**31 - 1
    return torch.clamp(q, y_qp.qmin, y_qp.qmax).to(torch.int8)


def int8_linear(q_x, x_qp: QParams, q_w, w_qp: QParams, bias, y_qp: QParams, *,
                rounding: str = "float64") -> torch.Tensor:
    """Reference int8 linear layer, stage by stage as in the module docstring.

    Args:
        q_x: int8 ``(N, K)`` input on the per-tensor affine grid ``x_qp``.
        x_qp: input grid (any zero_point in its range).
        q_w: int8 ``(M, K)`` weight on ``w_qp`` (scale scheme, per-tensor or axis 0).
        w_qp: weight grid.
        bias: float ``(M,)`` (quantized here to int32 at scale ``s_x s_w``), int32
            ``(M,)`` (already quantized, as TFLite stores it) or None.
        y_qp: per-tensor output grid.
        rounding: how stage 3 rounds: ``"float64"`` (default: TFLite's reference
            FULLY_CONNECTED), ``"double"`` (gemmlowp's pair) or ``"single"``.

    Returns:
        int8 ``(N, M)`` output on ``y_qp``.

    Example:
        >>> from qkit import choose_qparams, quantize, dequantize
        >>> x_qp = choose_qparams(-1.0, 3.0)                  # zero_point -64
        >>> w_qp = choose_qparams(-1.0, 1.0, scheme="scale")
        >>> y_qp = choose_qparams(-4.0, 4.0)
        >>> x, w = torch.tensor([[0.5, 2.0, -1.0]]), torch.tensor([[1.0, 0.5, 0.25], [-1.0, 0.0, 1.0]])
        >>> q_y = int8_linear(quantize(x, x_qp), x_qp, quantize(w, w_qp), w_qp, torch.tensor([0.1, 0.0]), y_qp)
        >>> dequantize(q_y, y_qp)                             # float: [[1.35, -1.5]]
        tensor([[ 1.3490, -1.5059]])
    """
    check_rounding(rounding)
    q_x = int8_tensor("q_x", q_x, 2, "(N, K)")
    q_w = int8_tensor("q_w", q_w, 2, "(M, K)")
    if q_x.shape[1] != q_w.shape[1]:
        raise ValueError(f"q_x is (N, K) = {tuple(q_x.shape)} but q_w is (M, K) = {tuple(q_w.shape)}: K differs")
    m, k = q_w.shape
    check_grids(x_qp, w_qp, y_qp, m)
    z_x = int(x_qp.zero_point)
    bias_q = quantize_bias(bias, x_qp, w_qp, m)  # (M,) int32
    check_accumulator(k, z_x, bias_q)
    multiplier, shift = output_multipliers(x_qp, w_qp, y_qp, m, rounding)  # (M,) each

    acc = (q_x.long() - z_x) @ q_w.long().T + bias_q  # (N, M) int64, fits int32 by stage 4
    return requantize(acc, multiplier, shift, y_qp, rounding)  # (N, M) int8


def pair(name: str, v, low: int) -> tuple[int, int]:
    """An int or a pair of ints, as ``torch.nn.functional.conv2d`` takes them, as a pair."""
    vs = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(vs) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints; got {v!r}")
    return tuple(check_int(name, x, low=low) for x in vs)


def conv_geometry(q_x, q_w, stride, padding, dilation, groups):
    """Check conv2d arguments; return ``(q_x, q_w, stride, padding, dilation, groups, (H_out, W_out))``."""
    q_x = int8_tensor("q_x", q_x, 4, "(N, C_in, H, W)")
    q_w = int8_tensor("q_w", q_w, 4, "(C_out, C_in/groups, kH, kW)")
    stride, padding = pair("stride", stride, 1), pair("padding", padding, 0)
    dilation = pair("dilation", dilation, 1)
    groups = check_int("groups", groups, low=1)
    (c_in, c_out), cin_g = (q_x.shape[1], q_w.shape[0]), q_w.shape[1]
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if cin_g * groups != c_in:
        raise ValueError(
            f"q_w has {cin_g} input channels per group but q_x has C_in={c_in} (groups={groups}): "
            f"expected {c_in // groups}"
        )
    out = []
    for d in range(2):
        span = dilation[d] * (q_w.shape[2 + d] - 1) + 1  # extent of the dilated kernel
        size = q_x.shape[2 + d] + 2 * padding[d]
        if size < span:
            raise ValueError(
                f"the padded input ({size}) is smaller than the dilated kernel ({span}) along {'HW'[d]}")
        out.append((size - span) // stride[d] + 1)
    return q_x, q_w, stride, padding, dilation, groups, tuple(out)


def int8_conv2d(q_x, x_qp, q_w, w_qp, bias, y_qp, *, stride=1, padding=0, dilation=1, groups=1,
                rounding: str = "double"):
    """Reference int8 conv2d: one tap ``(i, j)`` of the kernel at a time, in int64.

    Arguments as :func:`int8_linear`, with ``q_x`` int8 ``(N, C_in, H, W)`` and
    ``q_w`` int8 ``(C_out, C_in/groups, kH, kW)``; ``stride``, ``padding``,
    ``dilation`` (int or pair) and ``groups`` as in ``torch.nn.functional.conv2d``;
    ``rounding`` defaults to ``"double"``, as TFLite's reference CONV_2D and
    DEPTHWISE_CONV_2D round.

    Returns:
        int8 ``(N, C_out, H_out, W_out)`` on ``y_qp``.

    Example:
        A 2×2 image of ones (zero_point -128), a 3×3 kernel of ones, padding 1:
        each output sums the 4 ones, the 5 padded taps add real 0.0.

        >>> from qkit import choose_qparams, quantize, dequantize
        >>> x_qp, w_qp = choose_qparams(0.0, 2.55), choose_qparams(-1.0, 1.0, scheme="scale")
        >>> q_x = quantize(torch.full((1, 1, 2, 2), 1.0), x_qp)
        >>> q_w = quantize(torch.ones(1, 1, 3, 3), w_qp)
        >>> y_qp = choose_qparams(0.0, 5.1)
        >>> dequantize(int8_conv2d(q_x, x_qp, q_w, w_qp, None, y_qp, padding=1), y_qp)
        tensor([[[[4., 4.],
                  [4., 4.]]]])
    """
    check_rounding(rounding)
    q_x, q_w, (sh, sw), (ph, pw), (dh, dw), groups, (h_out, w_out) = conv_geometry(
        q_x, q_w, stride, padding, dilation, groups)
    n, c_out, cin_g, kh, kw = q_x.shape[0], q_w.shape[0], q_w.shape[1], q_w.shape[2], q_w.shape[3]
    check_grids(x_qp, w_qp, y_qp, c_out)
    z_x = int(x_qp.zero_point)
    bias_q = quantize_bias(bias, x_qp, w_qp, c_out)  # (C_out,) int32
    check_accumulator(cin_g * kh * kw, z_x, bias_q)
    multiplier, shift = output_multipliers(x_qp, w_qp, y_qp, c_out, rounding)  # (C_out,) each

    xc = F.pad(q_x.long() - z_x, (pw, pw, ph, ph))  # (N, C_in, H+2ph, W+2pw) int64; pad = real 0.0
    acc = bias_q.long().view(1, c_out, 1, 1).repeat(n, 1, h_out, w_out)  # (N, C_out, H_out, W_out) int64
    cout_g = c_out // groups
    for g in range(groups):
        ins, outs = slice(g * cin_g, (g + 1) * cin_g), slice(g * cout_g, (g + 1) * cout_g)
        for i in range(kh):
            for j in range(kw):
                tap = xc[:, ins, i * dh: i * dh + sh * (h_out - 1) + 1: sh,
                         j * dw: j * dw + sw * (w_out - 1) + 1: sw]  # (N, C_in/g, H_out, W_out)
                acc[:, outs] += torch.einsum("nchw,oc->nohw", tap, q_w[outs, :, i, j].long())
    return requantize(acc, multiplier.view(-1, 1, 1), shift.view(-1, 1, 1), y_qp, rounding)
