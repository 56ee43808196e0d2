"""qkit's integer modules as ONNX Runtime's quantized operators, on qkit's own grids, as uint8.

Equation of every tensor: ``x ≈ scale * (q - zero_point)``. qkit stores int8
levels ``q`` in [-128, 127]; the file stores ``u = q + 128`` in [0, 255] with
zero point ``z + 128``. Nothing changes value::

    scale * (u - (z + 128)) = scale * (q + 128 - z - 128) = scale * (q - z)

so the scales are qkit's float32 scales, every zero point is qkit's plus 128,
and the int8 weights ``q_w`` (scale scheme, ``z_w = 0``) become uint8 ``q_w + 128``
with zero point 128 (per output channel, one per scale). Why uint8 for the
weights as well: see :mod:`qkit.export` (exact on every x86 CPU).

Operator by operator (``M = s_x s_w / s_y`` as in :mod:`qkit.kernels.ref`):

* ``Quantize`` -> ``Mul(x, 1/s)`` then ``QuantizeLinear(scale 1, zero point z + 128)``:
  qkit rounds ``x * (1/s)`` in float32 (as torch does), ONNX's QuantizeLinear
  divides by its scale; with the reciprocal multiplied first and a scale of 1
  both compute the same float32 product, round half to even, add, saturate:
  the same levels, bit for bit.
* ``Dequantize`` -> ``DequantizeLinear``: ``(u - zp) * s`` in float32, as qkit.
* ``QuantConv2d`` -> ``QLinearConv`` with qkit's int32 ``bias_q`` as its bias
  input: ``acc = Σ (u_x - zp_x)(u_w - 128) + bias_q`` is qkit's accumulator (1)
  exactly; ONNX Runtime then requantizes in float32, ``round_half_even(acc · M)``,
  where qkit multiplies by a fixed-point M (rounding twice, or once:
  ``rounding=``). The two agree except near the half-way points: within 1 level.
* ``QuantLinear`` -> ``QGemm`` (ONNX Runtime's contrib op, domain
  ``com.microsoft``): the same accumulator and requantization, as a GEMM.
* a fused ReLU/ReLU6, ``QuantReLU`` -> ``Clip`` on the uint8 levels of the clamped
  grid (:func:`qkit.nn.clamp_grid`), written only where it clamps anything.
* ``QuantAdd``, ``QuantCat``, ``QuantGlobalAvgPool`` -> ``QLinearAdd``, ``QLinearConcat``,
  ``QLinearGlobalAveragePool`` (``com.microsoft``): ONNX Runtime rescales in float
  where qkit uses TensorFlow Lite's fixed-point arithmetic; both round about the
  same real number: within 1 level. (qkit's average pool rounds twice, like its
  layers: up to 0.75 level from the exact mean when ``M`` is in [1/4, 1/2);
  ONNX Runtime's rounds once.)
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.export.walk import MS, Writer, module_writer
from qkit.kernels import quantize_bias
from qkit.nn import Dequantize, QuantConv2d, QuantLinear, Quantize, clamp_grid
from qkit.ptq.modules import QuantAdd, QuantCat, QuantGlobalAvgPool, QuantReLU
from qkit.qparams import QParams

OFFSET = 128  # int8 level q is uint8 level q + 128


def u8(q: torch.Tensor) -> np.ndarray:
    """int8 levels as the uint8 levels ``q + 128`` (same values on the shifted grid)."""
    return (q.detach().numpy().astype(np.int16) + OFFSET).astype(np.uint8)


def grid(w: Writer, base: str, qp: QParams) -> list[str]:
    """``[scale, zero_point]`` initializers of a per-tensor int8 grid, as float32 and uint8 (``z + 128``)."""
    return [w.const(f"{base}_scale", np.float32(float(qp.scale))),
            w.const(f"{base}_zero_point", np.uint8(int(qp.zero_point) + OFFSET))]


def clip(w: Writer, y: str, qp: QParams, activation: str | None, base: str) -> str:
    """``Clip`` of uint8 levels to the grid with ``activation`` folded in; ``y`` itself if that clamps nothing."""
    qp = clamp_grid(qp, activation)
    if (qp.qmin, qp.qmax) == (-128, 127):
        return y
    lo, hi = w.const(f"{base}_min", np.uint8(qp.qmin + OFFSET)), w.const(f"{base}_max", np.uint8(qp.qmax + OFFSET))
    return w.node("Clip", [y, lo, hi], f"{base}_clamp")


def _int8_input(w: Writer, n, what: str) -> str:
    if not w.is_int8(n.args[0]):
        raise ValueError(f"module {n.target!r} ({what}) expects an int8 input; the recorded run gave "
                         f"{w.value(n.args[0]).dtype}")
    return w.name(n.args[0])


@module_writer(Quantize)
def quantize(w: Writer, n, mod: Quantize) -> str:
    inv = np.float32(1.0) / np.float32(float(mod.qp.scale))  # qkit.quantize's 1/scale, float32
    scaled = w.node("Mul", [w.float_input(n, "Quantize"), w.const(f"{n.target}_inv_scale", inv)], n.target)
    one = w.const("one", np.float32(1.0))
    zp = w.const(f"{n.target}_zero_point", np.uint8(int(mod.qp.zero_point) + OFFSET))
    return w.node("QuantizeLinear", [scaled, one, zp], f"{n.target}_q")


@module_writer(Dequantize)
def dequantize(w: Writer, n, mod: Dequantize) -> str:
    return w.node("DequantizeLinear", [_int8_input(w, n, "Dequantize"), *grid(w, n.target, mod.qp)], n.target)


def _weight(w: Writer, n, mod) -> list[str]:
    """``[w, w_scale, w_zero_point]``: uint8 ``q_w + 128`` with zero points 128 (default), or int8 ``q_w`` with 0.

    The two hold the same products: ``(q_w + 128) - 128 = q_w``. Which one is exact on
    which CPU: :mod:`qkit.export` (``weights=`` of :func:`qkit.export.to_onnx`).
    """
    scale = mod.w_qp.scale.detach().numpy().astype(np.float32)  # () or (C_out,)
    if w.options.get("weights", "uint8") == "int8":
        q, zp = mod.q_w.detach().numpy(), np.zeros(scale.shape, np.int8)  # int8 (C_out, ...), zero points 0
    else:
        q, zp = u8(mod.q_w), np.full(scale.shape, OFFSET, np.uint8)  # uint8 (C_out, ...), zero points 128
    return [w.const(f"{n.target}_weight", q), w.const(f"{n.target}_w_scale", scale),
            w.const(f"{n.target}_w_zero_point", zp)]


def _bias(w: Writer, n, mod) -> str:
    """qkit's int32 ``bias_q = round_half_even(b / (s_x s_w))`` (stage 2 of qkit.kernels.ref)."""
    channels = mod.q_w.shape[0]
    return w.const(f"{n.target}_bias_q", quantize_bias(mod.bias, mod.x_qp, mod.w_qp, channels).numpy())


@module_writer(QuantConv2d)
def quant_conv2d(w: Writer, n, mod: QuantConv2d) -> str:
    g = mod.geometry
    ph, pw = g["padding"]
    inputs = [_int8_input(w, n, "QuantConv2d"), *grid(w, f"{n.target}_x", mod.x_qp), *_weight(w, n, mod),
              *grid(w, f"{n.target}_y", mod.y_qp), _bias(w, n, mod)]
    y = w.node("QLinearConv", inputs, n.target, kernel_shape=list(mod.q_w.shape[2:]), strides=list(g["stride"]),
               pads=[ph, pw, ph, pw], dilations=list(g["dilation"]), group=int(g["groups"]))
    return clip(w, y, mod.y_qp, None, n.target)  # mod.y_qp has the fused ReLU/ReLU6 in qmin/qmax already


@module_writer(QuantLinear)
def quant_linear(w: Writer, n, mod: QuantLinear) -> str:
    inputs = [_int8_input(w, n, "QuantLinear"), *grid(w, f"{n.target}_x", mod.x_qp), *_weight(w, n, mod),
              _bias(w, n, mod), *grid(w, f"{n.target}_y", mod.y_qp)]
    y = w.node("QGemm", inputs, n.target, domain=MS, transB=1)
    return clip(w, y, mod.y_qp, None, n.target)


@module_writer(QuantReLU)
def quant_relu(w: Writer, n, mod: QuantReLU) -> str:
    return clip(w, _int8_input(w, n, "QuantReLU"), mod.qp, mod.activation, n.target)


@module_writer(QuantAdd)
def quant_add(w: Writer, n, mod: QuantAdd) -> str:
    a, b = (w.name(x) for x in n.args)
    inputs = [a, *grid(w, f"{n.target}_a", mod.a_qp), b, *grid(w, f"{n.target}_b", mod.b_qp),
              *grid(w, f"{n.target}_y", mod.y_qp)]
    return clip(w, w.node("QLinearAdd", inputs, n.target, domain=MS), mod.y_qp, mod.activation, n.target)


@module_writer(QuantCat)
def quant_cat(w: Writer, n, mod: QuantCat) -> str:
    inputs = grid(w, f"{n.target}_y", mod.y_qp)
    for i, (x, qp) in enumerate(zip(n.args, mod.x_qps)):
        inputs += [w.name(x), *grid(w, f"{n.target}_x{i}", qp)]
    return w.node("QLinearConcat", inputs, n.target, domain=MS, axis=int(mod.dim))


@module_writer(QuantGlobalAvgPool)
def quant_global_avg_pool(w: Writer, n, mod: QuantGlobalAvgPool) -> str:
    inputs = [_int8_input(w, n, "QuantGlobalAvgPool"), *grid(w, f"{n.target}_x", mod.x_qp),
              *grid(w, f"{n.target}_y", mod.y_qp)]
    y = w.node("QLinearGlobalAveragePool", inputs, n.target, domain=MS, channels_last=0)  # (N, C, 1, 1)
    return y if mod.keepdim else w.node("Flatten", [y], f"{n.target}_squeeze", axis=1)
