"""Argument checks shared by the layers of :mod:`qkit.nn`: a float weight of the right rank, conv geometry."""

from __future__ import annotations

import torch
from torch import nn

from qkit._checks import check_int
from qkit.kernels import ref


def check_weight(weight, dim: int, layout: str) -> torch.Tensor:
    """``weight``, checked to be a float tensor with ``dim`` dimensions (``layout`` names them)."""
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        got = f"dtype {weight.dtype}" if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise TypeError(f"weight must be a float tensor {layout}; got {got}")
    if weight.dim() != dim:
        raise ValueError(f"weight must be {dim}-d {layout}; got shape {tuple(weight.shape)}")
    return weight


def conv_geometry(weight: torch.Tensor, stride, padding, dilation, groups) -> dict:
    """Checked conv2d geometry, as ``torch.nn.functional.conv2d`` takes it (pairs and ``groups``)."""
    if isinstance(padding, str):
        raise ValueError(f"only numeric zero padding is supported; got padding={padding!r}")
    groups = check_int("groups", groups, low=1)
    if weight.shape[0] % groups:
        raise ValueError(f"groups={groups} must divide the weight's {weight.shape[0]} output channels")
    return dict(stride=ref.pair("stride", stride, 1), padding=ref.pair("padding", padding, 0),
                dilation=ref.pair("dilation", dilation, 1), groups=groups)


def geometry_of(conv: nn.Conv2d) -> dict:
    """The geometry keywords of a float ``nn.Conv2d`` (zero padding only), for a converted layer's constructor."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"only numeric zero padding is supported; got padding={conv.padding!r}, "
                         f"padding_mode={conv.padding_mode!r}")
    return dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
