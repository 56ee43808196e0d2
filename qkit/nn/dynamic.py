"""Dynamic-range int8 layers: int8 weights; each call quantizes its input on that batch's min-max grid.

``y = s_x s_w (Σ q_x q_w - z_x Σ q_w) + b``: float in, float out, int32 sums, no calibration data.
"""

from __future__ import annotations

import torch
from torch import nn

from qkit._checks import check_bool
from qkit.kernels import ref
from qkit.kernels.fast import conv2d_sums, int8_matmul
from qkit.nn.layers import check_weight, conv_geometry, geometry_of
from qkit.qparams import QParams, choose_qparams, weight_qparams
from qkit.quant import quantize


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
        check_bool("per_channel", per_channel)
        self.w_qp = weight_qparams(weight, 8, per_channel=per_channel)
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

    The int32 sum is :func:`qkit.kernels.fast.conv2d_sums` (im2col matmul;
    depthwise: shifted products), the border padded with ``z_x``, the integer
    of 0.0, so the folded zero point is exact there too.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, stride=1, padding=0, dilation=1,
                 groups=1, per_channel: bool = True) -> None:
        geometry = conv_geometry(check_weight(weight, 4, "(C_out, C_in/groups, kH, kW)"), stride, padding,
                                 dilation, groups)
        super().__init__(weight, bias, per_channel=per_channel)
        self.geometry = geometry

    @classmethod
    def from_float(cls, conv: nn.Conv2d, *, per_channel: bool = True) -> DynamicQuantConv2d:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"expected an nn.Conv2d; got {type(conv).__name__}")
        return cls(conv.weight, conv.bias, **geometry_of(conv),
                   per_channel=per_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_qp = _batch_grid(x)
        q_x = quantize(x, x_qp)  # (N, C_in, H, W) int8
        acc = conv2d_sums(q_x, self.q_w, int(x_qp.zero_point), **self.geometry)  # (N, Ho, Wo, C_out) int32
        return self._to_float(acc, x_qp, 3).permute(0, 3, 1, 2)  # (N, C_out, Ho, Wo) float32
