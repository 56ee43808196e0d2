"""Neural architecture search, part 2: an architecture of the space as a real ``nn.Module``.

``stem → blocks → global average pool → flatten → fc``, the skeleton of the zoo's CNNs
(:mod:`qkit.models`), built from the zoo's parts so that the PTQ/QAT passes of earlier
lessons fold and quantize it too: every conv is followed by its BatchNorm, attribute names
``conv, bn, relu`` (:class:`qkit.models.ConvBNReLU`) or ``conv1, bn1, relu1, …``.

Parameters of each block on ``w`` channels with a ``k×k`` kernel (BN: 2 per channel):

* plain: ``w·w·k² + 2w``;
* separable: depthwise ``w·k² + 2w``, pointwise ``w·w + 2w``;
* residual: two plain convs, ``2·(w·w·k² + 2w)``;

plus the stem ``w·k² + 2w`` and the classifier ``10·w + 10``.

>>> from qkit.nas.space import Arch
>>> count_params(Arch("plain", 1, 8, 3))     # stem 72 + 16, block 576 + 16, fc 90
770
>>> build(Arch("plain", 1, 8, 3))(torch.zeros(2, 1, 8, 8)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn

from qkit.models import ConvBNReLU, _Classifier
from qkit.nas.space import Arch


class SeparableBlock(nn.Module):
    """Depthwise ``k×k`` (``conv1, bn1, relu1``), then pointwise ``1×1`` (``conv2, bn2, relu2``)."""

    def __init__(self, width: int, k: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, k, padding=k // 2, groups=width, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(width), nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(width), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, w, H, W) -> (N, w, H, W)
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))


class ResidualBlock(nn.Module):
    """``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + x)``: two ``k×k`` convs and the identity shortcut."""

    def __init__(self, width: int, k: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, k, padding=k // 2, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(width), nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, k, padding=k // 2, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(width), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, w, H, W) -> (N, w, H, W)
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + x)


class SearchedCNN(_Classifier):
    """A network of the search space; ``arch`` says which."""

    family = "searched tiny CNN (qkit.nas)"

    def __init__(self, arch: Arch) -> None:
        w, k = arch.width, arch.kernel
        make = {"plain": lambda: ConvBNReLU(w, w, k), "separable": lambda: SeparableBlock(w, k),
                "residual": lambda: ResidualBlock(w, k)}
        if arch.block not in make:
            raise ValueError(f"block must be one of {sorted(make)}; got {arch.block!r}")
        super().__init__(ConvBNReLU(1, w, k), [make[arch.block]() for _ in range(arch.depth)], w)
        self.arch = arch


def build(arch: Arch) -> nn.Module:
    """A freshly initialised network of architecture ``arch`` (seed torch first for the same weights)."""
    if not isinstance(arch, Arch):
        raise TypeError(f"arch must be a qkit.nas.Arch; got {type(arch).__name__}")
    return SearchedCNN(arch)


def count_params(arch: Arch) -> int:
    """Trainable parameters of ``build(arch)`` (weights, BN's γ and β, the fc bias)."""
    return sum(p.numel() for p in build(arch).parameters())
