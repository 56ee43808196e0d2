"""Which channels are tied together: the dataflow analysis structured pruning needs before it removes any.

Removing output channel ``j`` of a conv is not a local edit. Everything that
reads that channel must lose it too, and some layers cannot lose it alone:

* a conv or linear layer with ``groups == 1`` **produces** a fresh set of
  channels (rows of its weight) and **consumes** its input's (columns);
* BatchNorm, activations, pools and a depthwise conv (``groups == in ==
  out``) **pass** their input's channels through: channel ``j`` in is channel
  ``j`` out, so they lose the same ``j`` (a depthwise filter is per channel);
* ``a + b`` (a residual add) **ties** its inputs: channel ``j`` of ``a`` is
  added to channel ``j`` of ``b``, so every producer feeding the add must drop
  the same indices — one *group* of channels with several producers;
* ``torch.cat([a, b], dim=1)`` **offsets** them: channel ``j`` of ``b`` is
  channel ``len(a) + j`` of the result;
* ``flatten`` of an ``(N, C, H, W)`` map turns channel ``c`` into the
  ``H·W`` features ``c·H·W … c·H·W + H·W - 1`` of the next linear layer;
* the model's input and output (the logits: their count is the number of
  classes) are **fixed**, and so is anything reaching an operation this
  analysis does not know (it cannot say how that op would use the channels).

:func:`analyse` traces the model with ``torch.fx`` and propagates, node by
node, a channel *layout*: the list of ``(group, length)`` segments that make up
the tensor's dimension 1 (one segment for a conv's output; several after a
``cat``). Residual adds merge groups (union–find). The result says, for every
group, which layers produce it and whether it may be pruned, and for every
layer which of its dimensions follow which segments — all the surgery in
:mod:`qkit.prune.channels` needs.

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
>>> [(g.producers, g.size, g.fixed) for g in analyse(net).groups]
[([], 1, "the model's input"), (['0'], 4, None), (['5'], 3, "the model's output (logits)")]

Scope: channels live in dimension 1 (``NCHW`` convs, ``(N, features)``
linears); tensors of rank 3, linears applied to a non-flattened map, grouped
convs other than depthwise, a PReLU with one slope per channel, a tensor added to
a parameter (``x + self.offset``), ``view``/``reshape``, and a module called twice
are left alone (their channels fixed), never pruned wrongly.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from qkit.graph.trace import trace

# modules that keep channel j at channel j (elementwise, spatial pools)
PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
                nn.SiLU, nn.GELU, nn.ELU, nn.Identity, nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d,
                nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
PASS_FUNCTIONS = {F.relu, F.relu6, torch.relu, F.leaky_relu, F.hardswish, F.silu, F.gelu, torch.sigmoid,
                  torch.tanh, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d,
                  F.dropout, operator.neg}
PASS_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous", "clone", "neg"}
TIE_FUNCTIONS = {operator.add, operator.iadd, torch.add, operator.sub, torch.sub, operator.mul, torch.mul}
TIE_METHODS = {"add", "add_", "sub", "mul"}

Layout = list  # [(group id, length), ...] along dimension 1


@dataclass
class Use:
    """How one layer's parameters follow channels.

    ``role``: ``"out"`` (weight rows and bias: a producer), ``"in"`` (weight
    columns: a consumer), ``"channel"`` (BatchNorm's per-channel vectors, a
    depthwise conv's filters). ``layout``: the segments of that dimension;
    ``factor``: features per channel (``H·W`` for a linear after a flatten, else 1).
    """

    layer: str
    role: str
    layout: Layout
    factor: int = 1


@dataclass
class Group:
    """One set of channel indices that must be pruned together.

    ``producers``: layers whose weight rows are these channels (more than one
    after a residual add); ``fixed``: why it may not be pruned, or ``None``;
    ``batchnorms``: ``{producer: BatchNorm right after it}``, for the ``"bn"`` criterion.
    """

    id: int
    size: int
    producers: list = field(default_factory=list)
    fixed: str | None = None
    batchnorms: dict = field(default_factory=dict)


@dataclass
class Structure:
    """What :func:`analyse` found: groups (prunable or not) and every layer's uses of them."""

    groups: list
    uses: list
    passthrough: dict  # depthwise conv name -> the producers whose channels it follows

    def prunable(self) -> list:
        """The groups that may lose channels."""
        return [g for g in self.groups if g.fixed is None]

    def group_of(self, layer: str) -> Group | None:
        """The group whose channels ``layer`` produces, or None."""
        return next((g for g in self.groups if layer in g.producers), None)


class _Analysis:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.producers: list[list[str]] = []
        self.fixed: list[str | None] = []
        self.bns: list[dict] = []
        self.uses: list[Use] = []
        self.passthrough: dict = {}

    def new(self, size: int, producer: str | None = None, fixed: str | None = None) -> Layout:
        gid = len(self.parent)
        self.parent.append(gid)
        self.size.append(size)
        self.producers.append([producer] if producer else [])
        self.fixed.append(fixed)
        self.bns.append({})
        return [(gid, size)]

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        self.parent[b] = a
        self.producers[a] += self.producers[b]
        self.fixed[a] = self.fixed[a] or self.fixed[b]
        self.bns[a].update(self.bns[b])

    def fix(self, layout: Layout | None, why: str) -> None:
        for g, _ in layout or ():
            root = self.find(g)
            self.fixed[root] = self.fixed[root] or why

    def result(self) -> Structure:
        groups = []
        for g in range(len(self.parent)):
            if self.find(g) == g:
                groups.append(Group(g, self.size[g], self.producers[g], self.fixed[g], self.bns[g]))
        uses = [Use(u.layer, u.role, [(self.find(g), n) for g, n in u.layout], u.factor) for u in self.uses]
        follows = {name: sorted({p for g in gids for p in self.producers[self.find(g)]})
                   for name, gids in self.passthrough.items()}
        return Structure(groups, uses, follows)


def _shape(node) -> tuple | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def _channels(node) -> int:
    """Size of dimension 1 of the tensor ``node`` makes (1 for scalars, vectors, non-tensors)."""
    shape = _shape(node)
    return shape[1] if shape is not None and len(shape) >= 2 else 1


def analyse(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 8, 8)) -> Structure:
    """Trace ``model`` and find its channel groups (see the module docstring).

    Args:
        model: a ``torch.fx``-traceable module (not modified; its train/eval mode is restored).
        input_shape: the shape of one example input, to learn every tensor's shape
            (flatten sizes); the zoo's digits are ``(1, 1, 8, 8)``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) < 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape)):
        raise ValueError(f"input_shape must be a tuple of positive ints (batch, channels, ...), e.g. (1, 1, 8, 8); "
                         f"got {input_shape!r}")
    gm = trace(model, "channel pruning")
    modes = {m: m.training for m in model.modules()}  # gm shares model's submodules: restore each one's mode
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    try:
        with torch.no_grad():
            ShapeProp(gm.eval()).propagate(torch.zeros(tuple(input_shape), dtype=dtype))
    except Exception as err:  # noqa: BLE001 - any failure here means the example shape does not fit
        raise ValueError(f"channel pruning runs the model once on zeros of input_shape={tuple(input_shape)} to learn "
                         f"its tensors' shapes, and that failed: {type(err).__name__}: {err}") from None
    finally:
        for m, mode in modes.items():
            m.training = mode
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module":
            calls[n.target] = calls.get(n.target, 0) + 1

    a = _Analysis()
    info: dict[fx.Node, tuple[Layout, int]] = {}  # node -> (layout, factor)

    def tensor_args(n: fx.Node) -> list[fx.Node]:
        return [x for x in n.all_input_nodes if x in info]

    def opaque(n: fx.Node, why: str) -> None:
        for x in tensor_args(n):
            a.fix(info[x][0], why)
        shape = _shape(n)
        if shape is not None and len(shape) >= 2:
            info[n] = (a.new(shape[1], fixed=why), 1)

    def flatten(n: fx.Node, src: fx.Node, start: int, end: int) -> None:
        shape, (layout, factor) = _shape(src), info[src]
        if start != 1 or end not in (-1, len(shape) - 1):
            return opaque(n, f"flatten({start}, {end}) at {n.name}")
        info[n] = (layout, factor * math.prod(shape[2:]))

    for n in gm.graph.nodes:
        shape = _shape(n)
        if n.op == "placeholder":
            if shape is not None and len(shape) >= 2:
                info[n] = (a.new(shape[1], fixed="the model's input"), 1)
        elif n.op == "output":
            for x in n.all_input_nodes:
                if x in info:
                    a.fix(info[x][0], "the model's output (logits)")
        elif n.op == "call_module":
            m, name = modules[n.target], n.target
            src = n.args[0] if n.args and isinstance(n.args[0], fx.Node) and n.args[0] in info else None
            if src is None:
                opaque(n, f"{name} ({type(m).__name__}) without a tensor input")
                continue
            layout, factor = info[src]
            rank = len(_shape(src))
            if calls[name] > 1 and isinstance(m, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
                opaque(n, f"{name} is called {calls[name]} times")
            elif isinstance(m, nn.Conv2d) and rank == 4 and factor == 1:
                if m.groups == 1:
                    a.uses.append(Use(name, "in", layout))
                    a.uses.append(Use(name, "out", a.new(m.out_channels, producer=name)))
                    info[n] = (a.uses[-1].layout, 1)
                elif m.groups == m.in_channels == m.out_channels:
                    a.uses.append(Use(name, "channel", layout))
                    a.passthrough[name] = [g for g, _ in layout]
                    info[n] = (layout, 1)
                else:
                    opaque(n, f"{name} is a grouped conv (groups={m.groups})")
            elif isinstance(m, nn.Linear) and rank == 2:
                a.uses.append(Use(name, "in", layout, factor))
                a.uses.append(Use(name, "out", a.new(m.out_features, producer=name)))
                info[n] = (a.uses[-1].layout, 1)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm) and factor == 1:
                a.uses.append(Use(name, "channel", layout))
                if src.op == "call_module" and len(layout) == 1:  # the BN right after a producer
                    root = a.find(layout[0][0])
                    if src.target in a.producers[root]:
                        a.bns[root][src.target] = name
                info[n] = (layout, factor)
            elif isinstance(m, nn.PReLU) and m.num_parameters != 1:
                opaque(n, f"{name} is a PReLU with one slope per channel")
            elif isinstance(m, PASS_MODULES):
                info[n] = (layout, factor)
            elif isinstance(m, nn.Flatten):
                flatten(n, src, m.start_dim, m.end_dim)
            else:
                opaque(n, f"{name} ({type(m).__name__}) is not a layer channel pruning knows")
        elif n.op in ("call_function", "call_method"):
            kind = n.target if n.op == "call_function" else str(n.target)
            args = tensor_args(n)
            if n.op == "call_function" and n.target in PASS_FUNCTIONS or n.op == "call_method" and kind in PASS_METHODS:
                if args and isinstance(n.args[0], fx.Node) and n.args[0] in info:
                    info[n] = info[n.args[0]]
                else:
                    opaque(n, f"{n.name}")
            elif n.op == "call_function" and n.target in TIE_FUNCTIONS or n.op == "call_method" and kind in TIE_METHODS:
                others = [x for x in n.all_input_nodes if x not in info and _channels(x) > 1]
                if others:  # e.g. x + self.offset of shape (1, C, 1, 1): a tensor whose channels nobody slices
                    opaque(n, f"{n.name} combines channels with {others[0].name}, which no layer produces")
                elif len(args) == 1 and _shape(args[0]) == shape:
                    info[n] = info[args[0]]  # x + constant: channels pass
                elif len(args) == 2 and _shape(args[0]) == _shape(args[1]) == shape:
                    (la, fa), (lb, fb) = info[args[0]], info[args[1]]
                    if fa == fb and [k for _, k in la] == [k for _, k in lb]:
                        for (ga, _), (gb, _) in zip(la, lb):
                            a.union(ga, gb)
                        info[n] = (la, fa)
                    else:
                        opaque(n, f"{n.name} adds tensors whose channels are laid out differently")
                else:
                    opaque(n, f"{n.name} broadcasts")
            elif n.op == "call_function" and n.target is torch.cat or n.op == "call_method" and kind == "cat":
                dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
                parts = n.kwargs.get("tensors", n.args[0] if n.args else ())
                if (dim in (1, 1 - len(shape)) and all(isinstance(p, fx.Node) and p in info for p in parts)
                        and all(info[p][1] == 1 for p in parts)):
                    info[n] = ([s for p in parts for s in info[p][0]], 1)
                else:
                    opaque(n, f"{n.name} concatenates along dimension {dim}")
            elif n.op == "call_function" and n.target is torch.flatten or kind == "flatten":
                start = n.kwargs.get("start_dim", n.args[1] if len(n.args) > 1 else (0 if n.op == "call_function" else 0))
                end = n.kwargs.get("end_dim", n.args[2] if len(n.args) > 2 else -1)
                if args and n.args[0] in info:
                    flatten(n, n.args[0], start, end)
                else:
                    opaque(n, n.name)
            elif shape is None:  # e.g. x.size(): not a tensor, uses no channel
                continue
            else:
                opaque(n, f"{n.name} ({getattr(n.target, '__name__', n.target)}) is not an operation "
                          "channel pruning knows")
    return a.result()
