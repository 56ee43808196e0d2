"""What each requantization point of a QAT model is, in words (lesson 05 prints it)."""

from __future__ import annotations

import operator

import torch
from torch import nn


def point_kinds(qat_model) -> list[tuple[str, str]]:
    """``[(node name, what it is)]`` for each requantization point of a :func:`qkit.qat.prepare` model.

    Example:
        >>> from torch import nn
        >>> from qkit import qat
        >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
        >>> point_kinds(qat.prepare(m, calibration=torch.randn(4, 1, 4, 4)))
        [('input_1', 'model input'), ('_1', 'conv + ReLU (fused)'), ('_3', 'linear (logits)')]
    """
    gm = qat_model.graph_module
    nodes = {n.name: n for n in gm.graph.nodes}
    names = list(qat_model.points)

    def layer(n) -> str:
        mod = gm.get_submodule(n.target) if n.op == "call_module" else None
        if isinstance(mod, nn.Conv2d):
            return "depthwise conv" if mod.groups > 1 and mod.groups == mod.in_channels else "conv"
        return "linear" if isinstance(mod, nn.Linear) else ""

    def kind(n) -> str:
        if n.op == "placeholder":
            return "model input"
        if n.op == "call_function":
            return {operator.add: "residual add", torch.add: "residual add", torch.cat: "concatenation"}.get(
                n.target, str(getattr(n.target, "__name__", n.target)))
        if n.op != "call_module":
            return str(n.target)
        mod = gm.get_submodule(n.target)
        if isinstance(mod, (nn.ReLU, nn.ReLU6)):
            src = n.args[0]
            src = src.args[0] if src.op == "call_module" and src.target.startswith("act_quant") else src
            return f"{layer(src) or kind(src)} + {type(mod).__name__} (fused)"
        if isinstance(mod, nn.Conv2d):
            return f"{layer(n)}, no ReLU after it"
        if isinstance(mod, nn.Linear):
            return "linear (logits)" if n.name == names[-1] else "linear, no ReLU after it"
        if isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
            return "global average pool"
        return type(mod).__name__

    return [(name, kind(nodes[name])) for name in names]
