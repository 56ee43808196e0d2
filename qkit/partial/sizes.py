"""Partial quantization, part 1: which layers there are, how many bytes their weights take at b bits.

Every technique of lesson 07 works on the **BN-folded** copy of the model
(:func:`qkit.graph.fold_batchnorm`), the graph a real conversion quantizes, so a
"layer" is a ``Conv2d``/``Linear`` module of that folded graph, named by its
dotted path there (``"stem.conv"``, ``"blocks.0.conv1"``, ``"fc"``). A layer's
weights at ``b`` bits are stored per output channel on a symmetric grid,
``w ≈ scale[c] * q`` (``x ≈ scale * (q - zero_point)`` with ``zero_point = 0``),
so their packed size is::

    bytes(b) = ceil(numel · b / 8) + 4 · out_channels     (b < 32: packed q + one float32 scale per channel)
    bytes(32) = 4 · numel                                  (float32, no scales)

Scope: conv/linear weights and their scales only; biases (float32 or int32
either way), BatchNorm-free activations and the file's own overhead are left
out — :func:`qkit.measure.model_size` measures real files.

Each layer's *activation point* is where its output is fake-quantized: after
the ReLU/ReLU6 that is its only reader in the folded graph (as an integer
kernel fuses it), else the layer's own output (a conv feeding a residual add,
the final ``fc``'s logits).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from qkit._checks import as_tensor, check_int
from qkit.graph import fold_batchnorm
from qkit.ptq.calibrate import check_calibration as ptq_check_calibration

FLOAT_BITS = 32  # "keep this layer in float"
ACTIVATIONS = (nn.ReLU, nn.ReLU6)


class Folded(NamedTuple):
    """A BN-folded copy of a model, with its layers in graph order and each layer's activation point."""

    gm: fx.GraphModule
    layers: list[str]  # conv/linear module names, graph order
    points: dict[str, str]  # layer -> module whose output is its quantized activation


def check_model(model) -> nn.Module:
    """``model`` if it is an ``nn.Module``, else a ``TypeError``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return model


def fold(model: nn.Module) -> Folded:
    """Fold ``model``'s BatchNorms (a copy) and find its layers and their activation points."""
    gm = fold_batchnorm(check_model(model))  # ValueError if it cannot be traced
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    layers: list[str] = []
    points: dict[str, str] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], (nn.Conv2d, nn.Linear)):
            continue
        if node.target in points:  # a layer called twice: one set of weights, hooked once
            continue
        users = list(node.users)
        user = users[0] if len(users) == 1 else None
        fused = (user is not None and user.op == "call_module" and calls[node.target] == 1
                 and isinstance(modules[user.target], ACTIVATIONS) and calls[user.target] == 1)
        layers.append(node.target)
        points[node.target] = user.target if fused else node.target
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to quantize")
    return Folded(gm, layers, points)


def layers(model: nn.Module) -> list[str]:
    """The conv/linear layers of ``model``'s BN-folded graph, by name, in graph order.

    Example:
        >>> from qkit import models
        >>> layers(models.load("mlp"))
        ['fc1', 'fc2']
        >>> layers(models.load("mobilenet_v1"))[:3]
        ['stem.conv', 'blocks.0.conv1', 'blocks.0.conv2']
    """
    return fold(model).layers


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """What each layer is: ``"linear"``, ``"depthwise"`` (one filter per channel), ``"pointwise"`` (1×1) or ``"conv"``.

    Example:
        >>> from qkit import models
        >>> kinds = layer_kinds(models.load("mobilenet_v1"))
        >>> kinds["stem.conv"], kinds["blocks.0.conv1"], kinds["blocks.0.conv2"], kinds["fc"]
        ('conv', 'depthwise', 'pointwise', 'linear')
    """
    folded = fold(model)
    modules = dict(folded.gm.named_modules())
    kinds = {}
    for n in folded.layers:
        m = modules[n]
        if isinstance(m, nn.Linear):
            kinds[n] = "linear"
        elif m.groups > 1 and m.groups == m.in_channels:
            kinds[n] = "depthwise"
        elif tuple(m.kernel_size) == (1, 1):
            kinds[n] = "pointwise"
        else:
            kinds[n] = "conv"
    return kinds


def check_choice(name: str, bits) -> int:
    """A weight bit-width: an int in 2..16, or 32 for float."""
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"{name} must be an int in [2, 16] or 32 (float); got {type(bits).__name__} {bits!r}")
    if int(bits) != FLOAT_BITS:
        check_int(name, int(bits), low=2, high=16)
    return int(bits)


def check_choices(choices) -> tuple[int, ...]:
    """The distinct bit-widths of ``choices``, ascending; each in 2..16 or 32.

    Example:
        >>> check_choices([8, 32, 2, 8])
        (2, 8, 32)
        >>> check_choices([1, 8])
        Traceback (most recent call last):
        ...
        ValueError: choices[0] must be an int in [2, 16]; got 1
    """
    if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
        raise TypeError(f"choices must be a sequence of bit-widths like (2, 4, 8, 32); got {type(choices).__name__}")
    choices = list(choices)
    if not choices:
        raise ValueError("choices is empty: give at least one bit-width, e.g. (2, 4, 8, 32)")
    return tuple(sorted({check_choice(f"choices[{i}]", b) for i, b in enumerate(choices)}))


def layer_bytes(weight: torch.Tensor, bits: int) -> int:
    """Packed bytes of one weight tensor at ``bits``: ``ceil(numel·b/8) + 4·out`` (b < 32) or ``4·numel``.

    Example:
        >>> layer_bytes(torch.zeros(128, 64), 4)    # 8192 weights · 4 bits = 4096 B, 128 scales · 4 B
        4608
        >>> layer_bytes(torch.zeros(10, 128), 32)   # 1280 float32 weights
        5120
    """
    numel, out = weight.numel(), weight.shape[0]
    if bits == FLOAT_BITS:
        return 4 * numel
    return math.ceil(numel * bits / 8) + 4 * out


def check_bits_map(names: list[str], bits) -> dict[str, int]:
    """``{layer: bits}`` for every layer (those not in ``bits`` are float, 32), checking names and values."""
    if not isinstance(bits, dict):
        raise TypeError(f"bits must be a dict {{layer name: bits}}; got {type(bits).__name__}")
    unknown = [k for k in bits if k not in names]
    if unknown:
        raise ValueError(f"bits names no such layer: {unknown}; the layers of the BN-folded model are {names}")
    return {n: check_choice(f"bits[{n!r}]", bits.get(n, FLOAT_BITS)) for n in names}


def sizes(folded: Folded, choices: tuple[int, ...]) -> dict[str, dict[int, int]]:
    """``{layer: {bits: bytes}}`` for every layer and choice."""
    modules = dict(folded.gm.named_modules())
    return {n: {b: layer_bytes(modules[n].weight, b) for b in choices} for n in folded.layers}


def weight_bytes(model: nn.Module, bits: dict[str, int]) -> int:
    """Bytes of all conv/linear weights (and their per-channel scales) with each layer at its ``bits``.

    Args:
        model: a float model; its layers are those of :func:`layers`.
        bits: ``{layer: bits}``, each 2..16 or 32 (float); a layer left out counts as float.

    Returns:
        ``sum over layers of ceil(numel·b/8) + 4·out_channels`` (``4·numel`` for b = 32).

    Example:
        >>> from qkit import models
        >>> mlp = models.load("mlp")                 # fc1: 128×64, fc2: 10×128
        >>> weight_bytes(mlp, {})                    # 4 · (8192 + 1280)
        37888
        >>> weight_bytes(mlp, {"fc1": 4})            # (4096 + 4·128) + 4·1280
        9728
        >>> weight_bytes(mlp, {"fc1": 2, "fc2": 8})  # (2048 + 512) + (1280 + 40)
        3880
    """
    folded = fold(model)
    bits = check_bits_map(folded.layers, bits)
    modules = dict(folded.gm.named_modules())
    return sum(layer_bytes(modules[n].weight, b) for n, b in bits.items())


def check_budget(budget_bytes) -> int:
    """A positive int number of bytes."""
    return check_int("budget_bytes", budget_bytes, low=1)


def check_data(X, y) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` as tensors (numpy accepted): float inputs, integer labels, as many of each, not none."""
    X, y = as_tensor("X", X), as_tensor("y", y)
    if not X.is_floating_point():
        raise TypeError(f"X must hold floating-point inputs; got dtype {X.dtype}")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class labels; got dtype {y.dtype}")
    if X.dim() == 0 or y.dim() != 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must hold the same, non-zero number of samples (y 1-d); got X of shape "
                         f"{tuple(X.shape)} and y of shape {tuple(y.shape)}")
    return X.float(), y.long()


def check_calibration(calibration) -> torch.Tensor:
    """The calibration batch as a float32 tensor (numpy accepted), not empty, finite (ptq's checks)."""
    if calibration is None:
        raise ValueError("activations need calibration data: pass a batch of representative inputs "
                         "(e.g. 256 training images), or act_bits=None for float activations")
    return ptq_check_calibration(calibration)
