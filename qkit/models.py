"""The tiny model zoo: small classifiers for the 8×8 digits, with shipped weights.

Besides a perceptron, the zoo holds scaled-down members of the CNN families in
TensorFlow Lite's table of quantized CNNs (MobileNet-v1, MobileNet-v2, Inception, ResNet) and one wide
MLP whose int8 speed-up can show. Pretrained state_dicts live in ``qkit/zoo/``
and are made by ``python -m qkit.zoo.make`` (deterministic: fixed seed, one thread).

Every model is built from plain modules (``nn.Conv2d``, ``nn.BatchNorm2d``,
``nn.ReLU``/``nn.ReLU6``, ``nn.Linear``, pools, ``nn.Flatten``); the only work
done in a ``forward`` is a residual add or a branch concatenation, so a
post-training pass can find and fold every ``conv → bn (→ relu)`` triple by
attribute name (``conv1, bn1, relu1``, or ``conv, bn, relu`` in a
:class:`ConvBNReLU`).

>>> names()
['inception', 'mlp', 'mobilenet_v1', 'mobilenet_v2', 'resnet', 'wide_mlp']
>>> model = load("mlp")
>>> sum(p.numel() for p in model.parameters())
9610
>>> describe("mlp")  # MACs: 64·128 + 128·10
{'name': 'mlp', 'family': 'multilayer perceptron', 'params': 9610, 'macs': 9472}
"""

from __future__ import annotations

from importlib import resources

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """64 → 128 → 10 perceptron with ReLU: small, yet its weights look like real ones."""

    family = "multilayer perceptron"

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 8, 8) -> (N, 10)
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class WideMLP(nn.Module):
    """64 → 1024 → 1024 → 10 perceptron: big enough (1.1 M MACs per image) for int8 speed to show.

    Its 1024×1024 layer is the shape of the int8 linear benchmarks; the file is 4.5 MB of float32.
    """

    family = "wide multilayer perceptron"

    def __init__(self, hidden: int = 1024) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1, self.relu1 = nn.Linear(64, hidden), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(hidden, hidden), nn.ReLU()
        self.fc3 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 8, 8) -> (N, 10)
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(self.flatten(x))))))


class ConvBNReLU(nn.Sequential):
    """``conv`` (no bias) → ``bn`` → ``relu`` (``nn.ReLU``, ``nn.ReLU6``, or none), 'same' padding."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act=nn.ReLU) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if act is not None:
            self.relu = act()


class _Classifier(nn.Module):
    """stem → blocks → global average pool → flatten → fc: the skeleton of every CNN below."""

    def __init__(self, stem: nn.Module, blocks: list[nn.Module], channels: int) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 8, 8) -> (N, 10)
        return self.fc(self.flatten(self.pool(self.blocks(self.stem(x)))))


class DepthwiseSeparable(nn.Module):
    """Depthwise 3×3 (``conv1, bn1, relu1``) then pointwise 1×1 (``conv2, bn2, relu2``)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, stride, padding=1, groups=cin, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU()
        self.conv2 = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(cout), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))


class MobileNetV1(_Classifier):
    """MobileNet-v1-like (Howard et al. 2017, depthwise-separable convolutions).

    Scaled down: one 3×3 stem conv (16 channels, stride 1) and 5 depthwise-separable
    blocks 16→32→64(/2)→64→128(/2)→128 instead of 13 blocks up to 1024 channels;
    8×8 → 2×2 feature maps instead of 224 → 7.
    """

    family = "MobileNet-v1 (Howard et al. 2017)"

    def __init__(self) -> None:
        plan = [(16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)]
        super().__init__(ConvBNReLU(1, 16), [DepthwiseSeparable(*p) for p in plan], 128)


class InvertedResidual(nn.Module):
    """1×1 expand (``conv1, bn1, relu1``), depthwise 3×3 (``conv2, bn2, relu2``), 1×1 project (``conv3, bn3``).

    ReLU6 activations, linear bottleneck (no activation after the projection),
    and ``x + block(x)`` when stride is 1 and the channel count is unchanged.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4) -> None:
        super().__init__()
        mid = cin * expand
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6()
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, padding=1, groups=mid, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(mid), nn.ReLU6()
        self.conv3, self.bn3 = nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return x + out if self.residual else out


class MobileNetV2(_Classifier):
    """MobileNet-v2-like (Sandler et al. 2018, inverted residuals and linear bottlenecks).

    Scaled down: a 3×3 stem (16 channels, ReLU6), 5 inverted-residual blocks
    16→16→24(/2)→24→32(/2)→32 with expansion 4 (3 of them residual), a 1×1 head
    conv to 128 channels, instead of 17 blocks and a 1280-channel head.
    """

    family = "MobileNet-v2 (Sandler et al. 2018)"

    def __init__(self) -> None:
        plan = [(16, 16, 1), (16, 24, 2), (24, 24, 1), (24, 32, 2), (32, 32, 1)]
        blocks = [InvertedResidual(*p) for p in plan] + [ConvBNReLU(32, 128, 1, act=nn.ReLU6)]
        super().__init__(ConvBNReLU(1, 16, act=nn.ReLU6), blocks, 128)


class BasicBlock(nn.Module):
    """``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``, both convs 3×3.

    The shortcut is the identity, or a 1×1 conv + BN (``shortcut.conv, shortcut.bn``)
    when the stride or the channel count changes.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(cout), nn.ReLU()
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        same = stride == 1 and cin == cout
        self.shortcut = nn.Identity() if same else ConvBNReLU(cin, cout, 1, stride, act=None)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(_Classifier):
    """ResNet-like (He et al. 2016, residual learning with basic blocks).

    Scaled down: a 3×3 stem (16 channels) and 3 basic blocks 16→16→32(/2)→64(/2),
    like ResNet-18's first block per stage, instead of 101 layers of bottlenecks.
    TensorFlow Lite's Resnet_v2 is pre-activation; these blocks are the original
    post-activation ones, so every conv is followed by its BN (foldable).
    """

    family = "ResNet (He et al. 2016)"

    def __init__(self) -> None:
        blocks = [BasicBlock(16, 16), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2)]
        super().__init__(ConvBNReLU(1, 16), blocks, 64)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated along channels.

    ``branch1`` 1×1; ``branch2`` 1×1 → 3×3; ``branch3`` 1×1 → 3×3 → 3×3 (the
    Inception-v3 factorisation of 5×5); ``branch4`` 3×3 max-pool → 1×1.
    Every conv is a :class:`ConvBNReLU`.
    """

    def __init__(self, cin: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.branch1 = ConvBNReLU(cin, c1, 1)
        self.branch2 = nn.Sequential(ConvBNReLU(cin, c2[0], 1), ConvBNReLU(c2[0], c2[1], 3))
        self.branch3 = nn.Sequential(ConvBNReLU(cin, c3[0], 1), ConvBNReLU(c3[0], c3[1], 3), ConvBNReLU(c3[1], c3[1], 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), ConvBNReLU(cin, c4, 1))
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (N, c1 + c2 + c3 + c4, H, W)


class Inception(_Classifier):
    """Inception-like (Szegedy et al. 2015 GoogLeNet; 2016 Inception-v3).

    Scaled down: a 3×3 stem (16 channels), 2 inception blocks (40 then 80 output
    channels) with a 2×2 max-pool between them, instead of 11 blocks of up to
    2048 channels; no auxiliary classifier.
    """

    family = "Inception (Szegedy et al. 2015/2016)"

    def __init__(self) -> None:
        a = InceptionBlock(16, 8, (8, 16), (4, 8), 8)  # 8 + 16 + 8 + 8 = 40 channels, 8×8
        b = InceptionBlock(40, 16, (16, 32), (8, 16), 16)  # 16 + 32 + 16 + 16 = 80 channels, 4×4
        super().__init__(ConvBNReLU(1, 16), [a, nn.MaxPool2d(2), b], b.out_channels)


_ZOO = {
    "mlp": DigitsMLP,
    "mobilenet_v1": MobileNetV1,
    "mobilenet_v2": MobileNetV2,
    "resnet": ResNet,
    "inception": Inception,
    "wide_mlp": WideMLP,
}


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_ZOO)


def build(name: str) -> nn.Module:
    """A freshly initialised (untrained) model of the given zoo name."""
    if name not in _ZOO:
        raise ValueError(f"unknown model {name!r}; choose one of {names()}")
    return _ZOO[name]()


def load(name: str, pretrained: bool = True) -> nn.Module:
    """Build a zoo model, with its shipped weights if ``pretrained``; returned in eval mode."""
    model = build(name)
    if pretrained:
        with resources.files("qkit.zoo").joinpath(f"{name}.pt").open("rb") as f:
            model.load_state_dict(torch.load(f, weights_only=True))
    return model.eval()


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 8, 8)) -> int:
    """Multiply-accumulates of one forward pass, counted on conv and linear layers only.

    A conv output element costs ``(cin / groups) · kh · kw`` MACs; a linear one
    ``in_features``. BN, activations, pools, adds and concatenations are not counted.

    Example:
        >>> count_macs(nn.Conv2d(1, 4, 3, padding=1))  # 8·8 positions · 4 filters · 9 taps
        2304
    """
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += output.numel() * module.in_features

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def describe(name: str | None = None) -> dict | list[dict]:
    """Family, parameter count and MACs per image of one zoo model, or a list for all of them."""
    if name is None:
        return [describe(n) for n in names()]
    model = build(name)
    params = sum(p.numel() for p in model.parameters())
    return {"name": name, "family": type(model).family, "params": params, "macs": count_macs(model)}
