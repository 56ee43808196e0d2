"""Inference modules that run compressed layers: integer-only int8, float16-stored, dynamic int8.

Equation of every tensor that flows between them: ``x ≈ scale * (q - zero_point)``.
A float network becomes an integer one by wrapping it as::

    Quantize(x_qp) -> QuantLinear / QuantConv2d (int8 -> int8) ... -> Dequantize(y_qp)

One file per kind of layer:

* :mod:`qkit.nn.int8` — ``Quantize``, ``Dequantize``, ``QuantLinear``,
  ``QuantConv2d`` and :func:`clamp_grid`: integer only. Each ``Quant*`` layer
  stores its weight already quantized (int8, per output channel, scale scheme),
  its float bias and the grids of its input and output; the per-weight
  constants of the integer kernel (zero-point row sums, int32 bias, fixed-point
  multipliers) are computed once by ``qkit.kernels`` and cached. ReLU needs no
  module of its own on an int8 tensor whose grid starts at 0.0: it is the clamp
  of the output grid (``QuantLinear(..., relu=True)`` clamps below at
  ``zero_point``, which is what ReLU means on the grid).
* :mod:`qkit.nn.float16` — ``Float16Linear`` / ``Float16Conv2d``: weights
  *stored* as float16 (half the bytes), cast back to float32 on every call; the
  arithmetic stays float32.
* :mod:`qkit.nn.dynamic` — ``DynamicQuantLinear`` / ``DynamicQuantConv2d``:
  int8 weights (per output channel, scale scheme); each call quantizes its
  input on the min-max grid of that very batch, accumulates ``Σ q_x q_w`` in
  int32 and scales the result back to float:
  ``y = s_x s_w (Σ q_x q_w - z_x Σ q_w) + b``. No calibration data.

Every layer is built from a float layer (``from_float``) or directly from a
float weight (conv layers also take ``torch.nn.functional.conv2d``'s geometry
keywords); :mod:`qkit.nn.layers` holds the argument checks they share.
(``qkit.ptq.convert`` builds all three kinds.)
"""

from qkit.nn.dynamic import DynamicQuantConv2d, DynamicQuantLinear
from qkit.nn.float16 import Float16Conv2d, Float16Linear
from qkit.nn.int8 import Dequantize, QuantConv2d, QuantLinear, Quantize, clamp_grid

__all__ = ["Dequantize", "DynamicQuantConv2d", "DynamicQuantLinear", "Float16Conv2d", "Float16Linear",
           "QuantConv2d", "QuantLinear", "Quantize", "clamp_grid"]
