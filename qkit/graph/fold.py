"""BatchNorm folding: trace the model, fold every BatchNorm into the conv (or linear) before it.

In eval mode a BatchNorm is a fixed per-channel affine map of its input ``z``::

    bn(z) = γ (z - μ) / σ + β,      σ = sqrt(running_var + eps)

and the conv (or linear) before it is ``z = w * x + b``. Composing the two gives
one conv with, per output channel ``c``::

    w'[c] = w[c] · γ[c] / σ[c]                       (every weight of filter c)
    b'[c] = (b[c] - μ[c]) · γ[c] / σ[c] + β[c]       (b = 0 for a conv without bias)

So after folding there is nothing left to quantize but convs and linears: step 1
of post-training quantization, and the weights QAT must train (those deployment
will see). The arithmetic is done in float64 and rounded once to float32, so
the folded model matches the original to float32 rounding (~1e-6 relative).

A BatchNorm2d that does not follow a conv of its own (say, after a residual
add) is still a per-channel affine map: it becomes a 1×1 depthwise conv with
``w' = γ/σ`` and ``b' = β - μ γ/σ``, which the integer converter handles like
any other conv.

Scope: ``torch.fx`` symbolic tracing (the model's ``forward`` must not branch on
tensor values); BatchNorm1d folds into a preceding ``nn.Linear``; a BatchNorm
must have running statistics (``track_running_stats=True``).
"""

from __future__ import annotations

import copy

import torch
import torch.fx as fx
from torch import nn

from qkit.graph.trace import trace
from qkit.graph.weights import set_module


def _bn_affine(bn: nn.modules.batchnorm._BatchNorm, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(γ/σ, β - μ γ/σ)`` of an eval-mode BatchNorm, float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{where}: BatchNorm without running statistics (track_running_stats=False) "
                         "normalises with each batch's own statistics and cannot be folded")
    sigma = torch.sqrt(bn.running_var.double() + bn.eps)  # (C,)
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(sigma)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(sigma)
    factor = gamma / sigma  # (C,)  γ/σ
    return factor, beta - bn.running_mean.double() * factor  # (C,), (C,)


def fold_conv_bn(layer: nn.Conv2d | nn.Linear, bn: nn.modules.batchnorm._BatchNorm,
                 where: str = "layer") -> nn.Conv2d | nn.Linear:
    """A new conv/linear equal to ``bn(layer(x))`` in eval mode: ``w' = w γ/σ``, ``b' = (b - μ) γ/σ + β``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> conv, bn = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)
        >>> _ = bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.eval()
        >>> x = torch.randn(2, 3, 5, 5)
        >>> bool(torch.allclose(fold_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-5))
        True
    """
    factor, shift = _bn_affine(bn, where)
    if factor.numel() != layer.weight.shape[0]:
        raise ValueError(f"{where}: BatchNorm of {factor.numel()} channels after a layer with "
                         f"{layer.weight.shape[0]} outputs")
    folded = _copy_layer(layer)
    view = (-1,) + (1,) * (layer.weight.dim() - 1)
    w = layer.weight.detach().double() * factor.view(view)  # w' = w γ/σ, per output channel
    b = layer.bias.detach().double() if layer.bias is not None else torch.zeros_like(factor)
    folded.weight = nn.Parameter(w.float())
    folded.bias = nn.Parameter((b * factor + shift).float())  # b' = (b - μ) γ/σ + β
    return folded


def bn_as_conv(bn: nn.BatchNorm2d, where: str = "bn") -> nn.Conv2d:
    """A standalone BatchNorm2d as the equal 1×1 depthwise conv: ``w = γ/σ``, ``b = β - μ γ/σ``."""
    factor, shift = _bn_affine(bn, where)
    c = factor.numel()
    conv = nn.Conv2d(c, c, 1, groups=c)
    conv.weight = nn.Parameter(factor.float().view(c, 1, 1, 1))
    conv.bias = nn.Parameter(shift.float())
    return conv


def _copy_layer(layer: nn.Module) -> nn.Module:
    """A fresh copy of a conv/linear with a bias slot (the folded one always has a bias)."""
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.in_features, layer.out_features)
    return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                     layer.dilation, layer.groups, bias=True, padding_mode=layer.padding_mode)


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """Trace a copy of ``model`` (eval mode) and fold every BatchNorm away; the float result is equal.

    ``conv → bn`` (and ``linear → BatchNorm1d``) pairs become one layer whose
    output has no other reader; other BatchNorm2d become 1×1 depthwise convs.
    The returned GraphModule has ``folded_bn``: ``{layer path: BatchNorm path}``.

    Raises:
        ValueError: the model cannot be traced, or a BatchNorm has no running statistics.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
        >>> folded = fold_batchnorm(model)
        >>> [type(m).__name__ for m in folded.children()], folded.folded_bn
        (['Conv2d', 'ReLU'], {'0': '1'})
    """
    gm = trace(copy.deepcopy(model).eval(), "folding BatchNorm")
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    folded = {}
    for node in list(gm.graph.nodes):
        bn = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            continue
        prev = node.args[0] if node.args else None
        layer = modules.get(prev.target) if isinstance(prev, fx.Node) and prev.op == "call_module" else None
        pair_ok = (isinstance(layer, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or (
            isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d))
        if pair_ok and len(prev.users) == 1 and calls[prev.target] == 1 and calls[node.target] == 1:
            set_module(gm, prev.target, fold_conv_bn(layer, bn, where=node.target))
            node.replace_all_uses_with(prev)
            gm.graph.erase_node(node)
            folded[prev.target] = node.target
        elif isinstance(bn, nn.BatchNorm2d) and calls[node.target] == 1:
            set_module(gm, node.target, bn_as_conv(bn, where=node.target))
            folded[node.target] = node.target  # a BatchNorm turned into a conv of its own
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.folded_bn = folded
    return gm
