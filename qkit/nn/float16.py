"""Float16-stored layers: weights and bias kept as float16 (half the bytes), arithmetic in float32."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qkit.nn.layers import check_weight, conv_geometry, geometry_of


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

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, stride=1, padding=0, dilation=1,
                 groups=1) -> None:
        geometry = conv_geometry(check_weight(weight, 4, "(C_out, C_in/groups, kH, kW)"), stride, padding,
                                 dilation, groups)
        super().__init__(weight, bias)
        self.geometry = geometry

    @classmethod
    def from_float(cls, conv: nn.Conv2d) -> Float16Conv2d:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"expected an nn.Conv2d; got {type(conv).__name__}")
        return cls(conv.weight, conv.bias, **geometry_of(conv))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.float()
        return F.conv2d(x, self.weight.float(), bias, **self.geometry)
