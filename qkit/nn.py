"""Integer-only inference modules: int8 in, int8 out, built from float layers.

Equation of every tensor that flows between them: ``x ≈ scale * (q - zero_point)``.
A float network becomes an integer one by wrapping it as::

    Quantize(x_qp) -> QuantLinear / QuantConv2d (int8 -> int8) ... -> Dequantize(y_qp)

Each ``Quant*`` layer stores its weight already quantized (int8, per output
channel, scale scheme), its float bias and the grids of its input and output;
the per-weight constants of the integer kernel (zero-point row sums, int32
bias, fixed-point multipliers) are computed once by ``qkit.kernels`` and
cached. ReLU needs no module of its own on an int8 tensor whose grid starts at
0.0: it is the clamp of the output grid (``QuantLinear(..., relu=True)``
clamps below at ``zero_point``, which is what ReLU means on the grid).
"""

from __future__ import annotations

import torch
from torch import nn

from qkit import kernels
from qkit.qparams import QParams, choose_qparams, tensor_range
from qkit.quant import check_qparams, dequantize, quantize


def _weight_grid(weight: torch.Tensor, per_channel: bool) -> QParams:
    axis = 0 if per_channel else None
    flat = weight.detach().reshape(weight.shape[0], -1) if per_channel else weight.detach()
    return choose_qparams(*tensor_range(flat, axis=axis), 8, scheme="scale", axis=axis)


def _check_int8_grid(name: str, qp: QParams) -> QParams:
    check_qparams(qp)
    if qp.axis is not None or (qp.qmin, qp.qmax) != (-128, 127):
        raise ValueError(f"{name} must be a per-tensor int8 grid (qmin -128, qmax 127); got {qp}")
    return qp


class Quantize(nn.Module):
    """float32 -> int8 on the grid ``qp`` (the entry of an integer network).

    Example:
        >>> qp = choose_qparams(-1.0, 1.0)
        >>> Quantize(qp)(torch.tensor([-1.0, 0.0, 0.5]))
        tensor([-128,   -1,   63], dtype=torch.int8)
    """

    def __init__(self, qp: QParams) -> None:
        super().__init__()
        self.qp = _check_int8_grid("qp", qp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quantize(x, self.qp)


class Dequantize(nn.Module):
    """int8 on the grid ``qp`` -> float32 (the exit of an integer network)."""

    def __init__(self, qp: QParams) -> None:
        super().__init__()
        self.qp = _check_int8_grid("qp", qp)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return dequantize(q, self.qp)


class _QuantLayer(nn.Module):
    """Shared parts: int8 weight + grids as state, int8 -> int8 forward through qkit.kernels."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, x_qp: QParams, y_qp: QParams,
                 *, per_channel: bool, relu: bool, backend: str) -> None:
        super().__init__()
        self.x_qp = _check_int8_grid("x_qp", x_qp)
        y_qp = _check_int8_grid("y_qp", y_qp)
        if relu:  # ReLU on the grid: nothing below the level of 0.0
            y_qp = y_qp._replace(qmin=max(y_qp.qmin, int(y_qp.zero_point)))
        self.y_qp = y_qp
        self.w_qp = _weight_grid(weight, per_channel)  # per output channel: axis 0
        self.register_buffer("q_w", quantize(weight.detach(), self.w_qp).contiguous())  # int8
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.backend = backend

    def extra_repr(self) -> str:
        return (f"q_w={tuple(self.q_w.shape)} int8, per_channel={self.w_qp.axis is not None}, "
                f"x_zero_point={int(self.x_qp.zero_point)}, y_zero_point={int(self.y_qp.zero_point)}, "
                f"backend={self.backend!r}")


class QuantLinear(_QuantLayer):
    """An ``nn.Linear`` running integer-only: int8 (N, in) -> int8 (N, out).

    Example:
        >>> _ = torch.manual_seed(0); layer = nn.Linear(16, 4)
        >>> x = torch.randn(8, 16)
        >>> x_qp = choose_qparams(*tensor_range(x)); y = layer(x)
        >>> y_qp = choose_qparams(*tensor_range(y))
        >>> qlayer = QuantLinear.from_float(layer, x_qp, y_qp, backend="ref")
        >>> q_y = qlayer(quantize(x, x_qp))
        >>> q_y.dtype, q_y.shape
        (torch.int8, torch.Size([8, 4]))
        >>> steps_off = (dequantize(q_y, y_qp) - y).abs().max() / y_qp.scale   # in output levels
        >>> bool(steps_off < 4)          # weight and input rounding, then one level of output rounding
        True
    """

    @classmethod
    def from_float(cls, linear: nn.Linear, x_qp: QParams, y_qp: QParams, *, per_channel: bool = True,
                   relu: bool = False, backend: str = "fast") -> QuantLinear:
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear; got {type(linear).__name__}")
        return cls(linear.weight, linear.bias, x_qp, y_qp, per_channel=per_channel, relu=relu,
                   backend=backend)

    def forward(self, q_x: torch.Tensor) -> torch.Tensor:
        return kernels.int8_linear(q_x, self.x_qp, self.q_w, self.w_qp, self.bias, self.y_qp,
                                   backend=self.backend)


class QuantConv2d(_QuantLayer):
    """An ``nn.Conv2d`` running integer-only: int8 (N, C_in, H, W) -> int8 (N, C_out, H', W')."""

    @classmethod
    def from_float(cls, conv: nn.Conv2d, x_qp: QParams, y_qp: QParams, *, per_channel: bool = True,
                   relu: bool = False, backend: str = "fast") -> QuantConv2d:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"expected an nn.Conv2d; got {type(conv).__name__}")
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"only numeric zero padding is supported; got padding={conv.padding!r}, "
                             f"padding_mode={conv.padding_mode!r}")
        layer = cls(conv.weight, conv.bias, x_qp, y_qp, per_channel=per_channel, relu=relu, backend=backend)
        layer.geometry = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                              groups=conv.groups)
        return layer

    def forward(self, q_x: torch.Tensor) -> torch.Tensor:
        return kernels.int8_conv2d(q_x, self.x_qp, self.q_w, self.w_qp, self.bias, self.y_qp,
                                   backend=self.backend, **self.geometry)
