"""Integer-only int8 kernels: ``ref`` (the specification) and ``fast`` (bit for bit equal).

Equation: ``x ≈ scale * (q - zero_point)``; ``acc = Σ_k (q_x - z_x) q_w + bias_q``
in int32, then ``q_y = clamp(multiply_by_quantized_multiplier(acc, M, rounding=...) + z_y)``
with ``M = s_x s_w / s_y`` (derived in :mod:`qkit.kernels.ref`); ``rounding`` defaults to
TensorFlow Lite's reference rule for the op ("float64" for linear, "double" for conv2d).

Backends:

* ``"ref"``: :mod:`qkit.kernels.ref`, readable int64 code; the specification.
* ``"fast"``: :mod:`qkit.kernels.fast`, an exact int8 matmul plus a requantization
  epilogue fused by ``torch.compile`` (compiled on first use, a few seconds).
  The matmul is the fastest exact path on this CPU (``torch._int_mm``, a chunked
  float32 GEMM or ONNX Runtime's ``MatMulInteger``), chosen once per process by
  :mod:`qkit.kernels.engine`: :func:`info` / :func:`describe` say which and why,
  ``QKIT_INT8_MATMUL=int_mm|float32|onnxruntime`` forces one.
* ``"eager"``: the same matmul with the unfused epilogue of :mod:`qkit.fixedpoint`;
  what ``"fast"`` falls back to when compilation is unavailable.

>>> from qkit import choose_qparams, quantize
>>> x_qp, w_qp, y_qp = choose_qparams(-1.0, 3.0), choose_qparams(-1.0, 1.0, scheme="scale"), choose_qparams(-4.0, 4.0)
>>> q_x = quantize(torch.tensor([[0.5, 2.0, -1.0]]), x_qp)
>>> q_w = quantize(torch.tensor([[1.0, 0.5, 0.25], [-1.0, 0.0, 1.0]]), w_qp)
>>> for backend in BACKENDS:
...     print(backend, int8_linear(q_x, x_qp, q_w, w_qp, None, y_qp, backend=backend))
ref tensor([[ 39, -49]], dtype=torch.int8)
eager tensor([[ 39, -49]], dtype=torch.int8)
fast tensor([[ 39, -49]], dtype=torch.int8)
"""

from __future__ import annotations

import torch  # noqa: F401  (used by the doctest above)

from qkit.kernels import engine, fast, ref
from qkit.kernels.engine import describe, info
from qkit.kernels.ref import quantize_bias, output_multipliers, requantize
from qkit.qparams import QParams

BACKENDS = ("ref", "eager", "fast")


def _check_backend(backend) -> None:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")


def int8_linear(q_x, x_qp: QParams, q_w, w_qp: QParams, bias, y_qp: QParams, *,
                backend: str = "fast", rounding: str = "float64") -> torch.Tensor:
    """int8 ``(N, K)`` × int8 ``(M, K)`` weight (+ float or int32 bias) -> int8 ``(N, M)``, integers only.

    See :func:`qkit.kernels.ref.int8_linear` for the arguments; ``backend`` is
    ``"fast"`` (default), ``"eager"`` or ``"ref"``, all giving the same bits;
    ``rounding`` is ``"float64"`` (default: TensorFlow Lite's reference FULLY_CONNECTED),
    ``"double"`` or ``"single"`` (:data:`qkit.fixedpoint.ROUNDINGS`).

    Raises:
        TypeError: ``q_x``/``q_w`` not int8, ``bias`` not float, a grid not a QParams.
        ValueError: shapes that do not match, ``w_qp`` not scale scheme, a grid of
            the wrong granularity or outside int8, a zero_point off its grid, a
            bias that does not fit int32, a K that could overflow the int32
            accumulator, or an unknown backend.
    """
    _check_backend(backend)
    if backend == "ref":
        return ref.int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, rounding=rounding)
    return fast.int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, fused=backend == "fast", rounding=rounding)


def int8_conv2d(q_x, x_qp: QParams, q_w, w_qp: QParams, bias, y_qp: QParams, *, stride=1, padding=0,
                dilation=1, groups=1, backend: str = "fast", rounding: str = "double") -> torch.Tensor:
    """int8 ``(N, C_in, H, W)`` conv2d -> int8 ``(N, C_out, H_out, W_out)``, integers only.

    See :func:`qkit.kernels.ref.int8_conv2d`; ``stride``, ``padding``, ``dilation``
    (int or pair) and ``groups`` mean what they mean in ``torch.nn.functional.conv2d``;
    ``rounding`` defaults to ``"double"`` (TensorFlow Lite's reference CONV_2D / DEPTHWISE_CONV_2D).
    Errors as :func:`int8_linear`, plus geometry that does not fit.
    """
    _check_backend(backend)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, rounding=rounding)
    if backend == "ref":
        return ref.int8_conv2d(q_x, x_qp, q_w, w_qp, bias, y_qp, **geometry)
    return fast.int8_conv2d(q_x, x_qp, q_w, w_qp, bias, y_qp, **geometry, fused=backend == "fast")


__all__ = ["BACKENDS", "describe", "engine", "info", "int8_conv2d", "int8_linear", "output_multipliers",
           "quantize_bias", "requantize"]
