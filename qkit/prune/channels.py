"""Structured pruning: remove whole output channels (filters), so the layers really get smaller.

Unstructured pruning zeroes single weights; the tensors keep their shapes and a
dense kernel does the same work. Removing output channel ``j`` of a conv (row
``j`` of its weight, ``(cout, cin, kh, kw)``) instead makes the layer
``cout - 1`` wide, and the layers that read it one input narrower: a conv that
keeps half its filters and reads half its inputs does ``1/2 · 1/2 = 1/4`` of the
multiply-accumulates and stores a quarter of the weights.

Which channels go. **L1 criterion** (Li et al. 2017, "Pruning Filters for
Efficient ConvNets"): a filter's score is ``s_j = Σ |W[j, :, :, :]|``; the
channels with the smallest scores go. **BN criterion** (Liu et al. 2017,
"Learning Efficient Convolutional Networks through Network Slimming"):
``s_j = |γ_j|`` of the BatchNorm right after the conv — that BN multiplies the
channel by ``γ_j / σ_j``, so a small ``|γ_j|`` means a channel that barely
reaches the next layer. Channels tied by a residual add (one *group*, see
:mod:`qkit.prune.structure`) are scored by the sum of their producers' scores
and lose the same indices in every producer.

The surgery, for a kept index list ``K`` of a group:

* producers (conv / linear weight rows): ``W ← W[K]``, ``b ← b[K]``;
* per-channel layers (BatchNorm's ``γ, β``, running mean and variance; a
  depthwise conv's filters): ``v ← v[K]``;
* consumers (weight columns): ``W ← W[:, K]``, with concat offsets added and,
  after a flatten of ``H·W`` positions, ``K`` expanded to ``c·H·W + s``.

If a removed channel's output is exactly 0 everywhere (its filter and BN
``γ, β`` zeroed), removal changes no output: the consumers only lose terms
``w · 0``. Otherwise the removed activations are missed, and a fine-tune
(:func:`qkit.prune.finetune`) wins the accuracy back: see the grid ``qkit/results/channels.py``.

>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
>>> with torch.no_grad():  # row L1 norms 1.0, 0.2, 3.0, 0.5: rows 1 and 3 are the weakest
...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 0.2, 0], [1, 1, 1], [0, 0, -0.5]]))
>>> small = channels(net, 0.5, input_shape=(1, 3))  # one example input: 3 features
>>> small[0].weight
Parameter containing:
tensor([[1., 0., 0.],
        [1., 1., 1.]], requires_grad=True)
>>> small[2].weight.shape, torch.equal(small[2].weight, net[2].weight[:, [0, 2]])
(torch.Size([2, 2]), True)

The logits layer (``net[2]``) is never pruned: its outputs are the classes.
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from qkit.graph.weights import get_module
from qkit.prune.structure import Group, Structure, analyse

CRITERIA = ("l1", "bn")


def _check_fraction(what: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a fraction in [0, 1), a float; got {type(value).__name__} {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{what} must be a fraction in [0, 1) (1 would remove every channel); got {value}")
    return float(value)


def _ordered(structure: Structure, model: nn.Module) -> list[Group]:
    """Groups in model order (by first producer), producers in model order too."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    for g in structure.groups:
        g.producers.sort(key=order.__getitem__)
    key = lambda g: order[g.producers[0]] if g.producers else -1  # noqa: E731
    return sorted(structure.groups, key=key)


def groups(model: nn.Module, *, input_shape: tuple[int, ...] = (1, 1, 8, 8)) -> list[dict]:
    """The model's channel groups: what :func:`channels` may prune, and what it leaves alone and why.

    Returns:
        One dict per group, in model order: ``layers`` (the producers: layers whose
        output channels these are; several when a residual add ties them),
        ``channels`` (how many), ``prunable`` (bool) and ``why`` (the reason it is
        fixed, or ``None``).

    Example:
        >>> from qkit import models
        >>> [(g["layers"], g["channels"]) for g in groups(models.load("resnet"))][:3]
        [(['stem.conv', 'blocks.0.conv2'], 16), (['blocks.0.conv1'], 16), (['blocks.1.conv1'], 32)]
        >>> groups(models.load("resnet"))[-1]
        {'layers': ['fc'], 'channels': 10, 'prunable': False, 'why': "the model's output (logits)"}
    """
    _check_model(model)
    return [{"layers": list(g.producers), "channels": g.size, "prunable": g.fixed is None, "why": g.fixed}
            for g in _ordered(analyse(model, input_shape), model) if g.producers]


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")


def _amounts(structure: Structure, model: nn.Module, amount) -> dict[int, float]:
    """``{group id: fraction to remove}`` from a fraction or ``{layer name: fraction}``."""
    prunable = structure.prunable()
    if not isinstance(amount, dict):
        fraction = _check_fraction("amount", amount)
        return {g.id: fraction for g in prunable}
    layers = {name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    out: dict[int, float] = {}
    named: dict[int, str] = {}
    for name, value in amount.items():
        if not isinstance(name, str):
            raise TypeError(f"amount's keys must be layer names (str); got {type(name).__name__} {name!r}")
        fraction = _check_fraction(f"amount[{name!r}]", value)
        if name not in layers:
            raise ValueError(f"amount names {name!r}, which is not a conv/linear layer of the model; "
                             f"its layers are {sorted(layers)}")
        if name in structure.passthrough:
            raise ValueError(f"{name!r} is a depthwise conv: its channels are its input's, produced by "
                             f"{structure.passthrough[name]}; prune that layer instead")
        g = structure.group_of(name)
        if g is None:
            raise ValueError(f"{name!r} produces no channels channel pruning can follow")
        if g.fixed is not None:
            raise ValueError(f"{name!r}'s output channels cannot be pruned: they are {g.fixed}")
        if g.id in out and out[g.id] != fraction:
            raise ValueError(f"{named[g.id]!r} and {name!r} feed the same residual add, so they must lose the "
                             f"same channels; got fractions {out[g.id]} and {fraction}")
        out[g.id], named[g.id] = fraction, name
    return out


def _scores(model: nn.Module, g: Group, criterion: str) -> torch.Tensor:
    """Per-channel score of group ``g``, summed over its producers: (size,) float32."""
    total = torch.zeros(g.size)
    for p in g.producers:
        if criterion == "l1":
            w = get_module(model, p).weight.detach()
            total += w.abs().flatten(1).sum(1).float()  # (cout,) Σ|W[j]|
        else:
            bn = g.batchnorms.get(p)
            if bn is None:
                raise ValueError(f"criterion='bn' scores a channel by |γ| of the BatchNorm right after its "
                                 f"layer, but {p!r} has none; use criterion='l1'")
            total += get_module(model, bn).weight.detach().abs().float()  # (cout,) |γ_j|
    return total


def _keep(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices (sorted) of the channels kept when ``round(fraction · n)`` lowest-scored ones go (≥ 1 kept)."""
    n = len(scores)
    remove = min(int(fraction * n + 0.5), n - 1)
    order = torch.sort(scores, stable=True).indices  # lowest first; ties: the lower index goes first
    return order[remove:].sort().values


def _index(layout, keep: dict[int, torch.Tensor], factor: int) -> torch.Tensor:
    """Kept positions along a dimension laid out as ``layout`` (concat offsets; ``factor`` features per channel)."""
    parts, offset = [], 0
    for g, n in layout:
        parts.append(keep.get(g, torch.arange(n)) + offset)
        offset += n
    idx = torch.cat(parts)  # (kept channels,)
    if factor > 1:
        idx = (idx[:, None] * factor + torch.arange(factor)).flatten()  # channel c -> features c·f … c·f + f - 1
    return idx


def _param(t: torch.Tensor | None, idx: torch.Tensor, dim: int = 0):
    if t is None:
        return None
    return nn.Parameter(t.detach().index_select(dim, idx.to(t.device)).clone(), requires_grad=t.requires_grad)


@torch.no_grad()
def _cut(m: nn.Module, role: str, idx: torch.Tensor) -> None:
    """Slice one layer's parameters along the dimension ``role`` names (in place, on the copy)."""
    k = len(idx)
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        if m.affine:
            m.weight, m.bias = _param(m.weight, idx), _param(m.bias, idx)
        if m.running_mean is not None:
            m.running_mean = m.running_mean.index_select(0, idx.to(m.running_mean.device)).clone()
            m.running_var = m.running_var.index_select(0, idx.to(m.running_var.device)).clone()
        m.num_features = k
    elif role == "in":
        m.weight = _param(m.weight, idx, 1)
        if isinstance(m, nn.Conv2d):
            m.in_channels = k
        else:
            m.in_features = k
    else:  # "out", or "channel" of a depthwise conv
        m.weight, m.bias = _param(m.weight, idx), _param(m.bias, idx)
        if isinstance(m, nn.Conv2d):
            m.out_channels = k
            if role == "channel":
                m.in_channels = m.groups = k
        else:
            m.out_features = k


def channels(model: nn.Module, amount, *, criterion: str = "l1",
             input_shape: tuple[int, ...] = (1, 1, 8, 8)) -> nn.Module:
    """A copy of ``model`` with a fraction of its output channels removed, every layer resized to match.

    Args:
        model: a ``torch.fx``-traceable model (any zoo model). Not modified.
        amount: the fraction of channels removed from every prunable group
            (``round(amount · n)``, at least one channel kept), or ``{layer name:
            fraction}`` for chosen conv/linear layers (the others keep all their
            channels). The logits layer, the layers feeding the output, and depthwise
            convs (their channels are their input's) cannot be named.
        criterion: ``"l1"`` (Li et al. 2017: smallest ``Σ|W[j]|`` goes) or ``"bn"``
            (Liu et al. 2017: smallest ``|γ_j|`` of the following BatchNorm goes).
            A residual group is scored by the sum over its producers.
        input_shape: one example input's shape, for the flatten sizes (digits: ``(1, 1, 8, 8)``).

    Returns:
        A deep copy of ``model``, same class and same layer names, with smaller
        ``Conv2d``/``Linear``/``BatchNorm`` layers; in ``model``'s train/eval mode. It
        traces again and converts (``qkit.ptq.convert``, ``qkit.qat.prepare``) as the original does.

    Raises:
        TypeError: ``model`` is not a module, ``amount`` neither a number nor a dict.
        ValueError: a fraction outside [0, 1), an unknown criterion, a layer name
            that is not a conv/linear layer or whose channels cannot be pruned.

    Example:
        >>> from qkit import models
        >>> small = channels(models.load("resnet"), 0.5)
        >>> small.blocks[1].conv2, small.fc
        (Conv2d(16, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False), Linear(in_features=32, out_features=10, bias=True))
        >>> small(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """
    _check_model(model)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
    if not isinstance(amount, (dict, numbers.Real)) or isinstance(amount, bool):
        raise TypeError(f"amount must be a fraction (float) or a dict {{layer name: fraction}}; "
                        f"got {type(amount).__name__}")
    structure = analyse(model, input_shape)
    fractions = _amounts(structure, model, amount)
    by_id = {g.id: g for g in structure.groups}
    keep = {gid: _keep(_scores(model, by_id[gid], criterion), f) for gid, f in fractions.items()}
    pruned = copy.deepcopy(model)
    for use in structure.uses:
        if any(g in keep for g, _ in use.layout):
            _cut(get_module(pruned, use.layer), use.role, _index(use.layout, keep, use.factor))
    return pruned
