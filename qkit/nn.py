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

Two lighter schemes of lesson 04 live here too (``qkit.ptq.convert`` builds them):

* ``Float16Linear`` / ``Float16Conv2d``: weights *stored* as float16 (half the
  bytes), cast back to float32 on every call; the arithmetic stays float32.
* ``DynamicQuantLinear`` / ``DynamicQuantConv2d``: int8 weights (per output
  channel, scale scheme); each call quantizes its input on the min-max grid of
  that very batch, accumulates ``Σ q_x q_w`` in int32 and scales the result
  back to float: ``y = s_x s_w (Σ q_x q_w - z_x Σ q_w) + b``. No calibration data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qkit import kernels
from qkit.kernels import ref
from qkit.kernels.fast import int8_matmul
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


def _conv_geometry(conv: nn.Conv2d) -> dict:
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"only numeric zero padding is supported; got padding={conv.padding!r}, "
                         f"padding_mode={conv.padding_mode!r}")
    return dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)


class Float16Linear(nn.Module):
    """An ``nn.Linear`` whose weight and bias are stored as float16; computes in float32.

    Example:
        >>> _ = torch.manual_seed(0); layer = nn.Linear(16, 4)
        >>> half = Float16Linear.from_float(layer)
        >>> half.weight.dtype, half(torch.randn(2, 16)).dtype
        (torch.float16, torch.float32)
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().half())  # float16 storage: 2 bytes a weight
        self.register_buffer("bias", None if bias is None else bias.detach().half())

    @classmethod
    def from_float(cls, linear: nn.Linear) -> Float16Linear:
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear; got {type(linear).__name__}")
        return cls(linear.weight, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.float()
        return F.linear(x, self.weight.float(), bias)  # float32 arithmetic on the float16 values

    def extra_repr(self) -> str:
        return f"weight={tuple(self.weight.shape)} float16"


class Float16Conv2d(Float16Linear):
    """An ``nn.Conv2d`` whose weight and bias are stored as float16; computes in float32."""

    @classmethod
    def from_float(cls, conv: nn.Conv2d) -> Float16Conv2d:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"expected an nn.Conv2d; got {type(conv).__name__}")
        layer = cls(conv.weight, conv.bias)
        layer.geometry = _conv_geometry(conv)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.float()
        return F.conv2d(x, self.weight.float(), bias, **self.geometry)


def _batch_grid(x: torch.Tensor) -> QParams:
    """Per-tensor affine int8 grid on the min-max range of this very batch (dynamic quantization)."""
    lo, hi = torch.aminmax(x.detach())
    return choose_qparams(lo, hi, 8)


class DynamicQuantLinear(nn.Module):
    """An ``nn.Linear`` with int8 weights whose input is quantized per call: float in, float out.

    ``y = s_x s_w[m] (Σ_k q_x q_w[m, k] - z_x Σ_k q_w[m, k]) + b[m]``: the sum
    runs int8 × int8 → int32 (:func:`qkit.kernels.fast.int8_matmul`), the
    zero point is folded through the weight's row sums, the bias stays float.
    ``s_x, z_x`` come from the min and max of the batch at hand, so one sample's
    output depends (slightly) on the other samples in its batch.

    Example:
        >>> _ = torch.manual_seed(0); layer = nn.Linear(32, 8); x = torch.randn(4, 32)
        >>> dyn = DynamicQuantLinear.from_float(layer)
        >>> dyn.q_w.dtype, bool((dyn(x) - layer(x)).abs().max() < 0.05)
        (torch.int8, True)
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, per_channel: bool = True) -> None:
        super().__init__()
        self.w_qp = _weight_grid(weight, per_channel)
        self.register_buffer("q_w", quantize(weight.detach(), self.w_qp).contiguous())  # int8
        self.register_buffer("w_scale", self.w_qp.scale)  # float32, (M,) or 0-d
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        k = self.q_w[0].numel()
        ref.check_accumulator(k, -128, torch.zeros(1, dtype=torch.int32))  # worst case z_x = -128

    @classmethod
    def from_float(cls, linear: nn.Linear, *, per_channel: bool = True) -> DynamicQuantLinear:
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear; got {type(linear).__name__}")
        return cls(linear.weight, linear.bias, per_channel=per_channel)

    def _row_sums(self) -> torch.Tensor:
        return self.q_w.reshape(self.q_w.shape[0], -1).to(torch.int32).sum(dim=1)  # (M,) int32

    def _to_float(self, acc: torch.Tensor, x_qp: QParams, channel_dim: int) -> torch.Tensor:
        """int32 ``Σ q_x q_w`` -> float: subtract ``z_x Σ q_w``, scale by ``s_x s_w``, add the bias."""
        view = [1] * acc.dim()
        view[channel_dim] = -1
        acc = acc - int(x_qp.zero_point) * self._row_sums().view(view)  # int32, exact (checked K)
        scale = (x_qp.scale * self.w_scale).reshape(view if self.w_scale.dim() else [])
        y = acc.float() * scale  # float32 (acc above 2**24 rounds like any float32 sum)
        return y if self.bias is None else y + self.bias.view(view)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_qp = _batch_grid(x)
        q_x = quantize(x, x_qp).reshape(-1, x.shape[-1])  # (N, K) int8
        acc = int8_matmul(q_x.contiguous(), self.q_w.T)  # (N, M) int32
        return self._to_float(acc, x_qp, 1).reshape(*x.shape[:-1], -1)

    def extra_repr(self) -> str:
        return f"q_w={tuple(self.q_w.shape)} int8, per_channel={self.w_qp.axis is not None}"


class DynamicQuantConv2d(DynamicQuantLinear):
    """An ``nn.Conv2d`` with int8 weights whose input is quantized per call (see ``DynamicQuantLinear``).

    The int32 sum is an im2col matmul (depthwise: shifted products); the border
    is padded with ``z_x``, the integer of 0.0, so the folded zero point is exact there too.
    """

    @classmethod
    def from_float(cls, conv: nn.Conv2d, *, per_channel: bool = True) -> DynamicQuantConv2d:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"expected an nn.Conv2d; got {type(conv).__name__}")
        layer = cls(conv.weight, conv.bias, per_channel=per_channel)
        layer.geometry = _conv_geometry(conv)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_qp = _batch_grid(x)
        q_x, q_w, (sh, sw), (ph, pw), (dh, dw), groups, (ho, wo) = ref.conv_geometry(
            quantize(x, x_qp), self.q_w, **self.geometry)
        n, c_out, cin_g, kh, kw = q_x.shape[0], q_w.shape[0], q_w.shape[1], q_w.shape[2], q_w.shape[3]
        xp = F.pad(q_x, (pw, pw, ph, ph), value=int(x_qp.zero_point))  # (N, C_in, Hp, Wp) int8
        cout_g = c_out // groups
        if cin_g == 1:  # depthwise: kH·kW shifted int32 products, channels last
            xp = xp.permute(0, 2, 3, 1).repeat_interleave(cout_g, dim=3)  # (N, Hp, Wp, C_out) int8
            w = q_w.reshape(c_out, kh * kw).T.to(torch.int32)  # (kH·kW, C_out)
            acc = torch.zeros(n, ho, wo, c_out, dtype=torch.int32)
            for i in range(kh):
                for j in range(kw):
                    tap = xp[:, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
                    acc += tap.to(torch.int32) * w[i * kw + j]  # (N, Ho, Wo, C_out) int32
        else:  # im2col, one int8 matmul per group
            patches = xp.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)  # (N, C, Ho, Wo, ., .)
            patches = patches[..., ::dh, ::dw].permute(0, 2, 3, 1, 4, 5)  # (N, Ho, Wo, C_in, kH, kW)
            w2 = q_w.reshape(c_out, cin_g * kh * kw)  # (C_out, K) int8
            accs = [int8_matmul(patches[:, :, :, g * cin_g: (g + 1) * cin_g].reshape(n * ho * wo, -1),
                                w2[g * cout_g: (g + 1) * cout_g].T) for g in range(groups)]  # (R, C_out/g)
            acc = torch.cat(accs, dim=1).reshape(n, ho, wo, c_out)  # int32
        return self._to_float(acc, x_qp, 3).permute(0, 3, 1, 2)  # (N, C_out, Ho, Wo) float32
