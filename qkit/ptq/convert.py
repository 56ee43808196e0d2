"""Step 3 of full-integer post-training quantization: rewrite the float graph into an int8 one.

The BN-folded float graph is walked node by node (``torch.fx``); every value
gets an int8 representation on its calibrated grid ``x ≈ scale * (q - zero_point)``
and/or a float one, made on demand:

* a ``Quantize`` is inserted where a float value first feeds an integer
  operation (the model input), a ``Dequantize`` where an int8 value feeds a
  float one (the model output, float islands);
* **int8 operations** take int8 and give int8: ``nn.Conv2d``/``nn.Linear``
  (``QuantConv2d``/``QuantLinear``, with a following ReLU/ReLU6 fused in as the
  clamp of the output grid), ReLU/ReLU6 (a clamp), residual add and
  concatenation and global average pooling (fixed-point rescaling,
  :mod:`qkit.ptq.modules`), and the ops that move int8 values without doing
  arithmetic on them, on the same grid: max-pool (order is kept by the grid),
  flatten/reshape/view/permute, dropout/identity;
* **float islands**: any other op without weights runs on dequantized inputs,
  in float32, and its result is quantized again on its own calibrated grid
  when an integer op reads it;
* layers named in ``skip`` (partial quantization) run as float islands too;
* any other module with weights or buffers (LayerNorm, Conv1d, an unfolded
  BatchNorm1d, …) raises a ``ValueError`` naming the layer and its type: it
  would silently stay float otherwise.

Every activation grid is stored once, in the model's ``act_scale`` (float32)
and ``act_zero_point`` (int32) buffers; each layer's grids are views of them
and each layer stores ``q_w`` (int8), ``w_scale`` and ``bias`` (float32), so
``state_dict()`` is the whole artifact and ``load_state_dict`` restores it.
The layers' buffers are views of one storage per dtype (:func:`qkit.graph.share_storage`):
``torch.save`` writes each storage once, so the file carries one int8 and one
float32 record for all layers instead of three records per layer.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from qkit.graph.storage import share_storage
from qkit.nn import Dequantize, QuantConv2d, QuantLinear, Quantize
from qkit.ptq.calibrate import Calibration
from qkit.ptq.modules import QuantAdd, QuantCat, QuantGlobalAvgPool, QuantReLU, clamp_grid
from qkit.qparams import QParams


class ReportRow(NamedTuple):
    """One line of ``ptq_report``: which node ran where, and what it was."""

    node: str  # module path for modules, node name for functions and methods
    runs: str  # "int8", "float island" (int8 mode); "fp16", "dynamic int8", "float32" (other modes)
    op: str  # e.g. "Conv2d+BatchNorm2d+ReLU", "add", "flatten"


RELU_MODULES = {nn.ReLU: "relu", nn.ReLU6: "relu6"}
RELU_CALLS = {F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu6: "relu6", "relu": "relu",
              "relu_": "relu"}
PASS_MODULES = (nn.Flatten, nn.MaxPool2d, nn.Unflatten)
ALIAS_MODULES = (nn.Identity, nn.Dropout)
PASS_CALLS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, torch.permute, torch.transpose,
              F.max_pool2d, "flatten", "view", "reshape", "squeeze", "unsqueeze", "permute", "transpose",
              "contiguous"}
SHAPE_CALLS = {"size", "dim", "numel"}
ADD_CALLS = {operator.add, torch.add, "add", operator.iadd}
CAT_CALLS = {torch.cat, torch.concat}
GAP_CALLS = {torch.mean, "mean", F.adaptive_avg_pool2d}


def _key(node: fx.Node):
    return node.target if node.op in ("call_function", "call_method") else None


def _op_name(node: fx.Node, modules: dict) -> str:
    if node.op == "call_module":
        return type(modules[node.target]).__name__
    return getattr(node.target, "__name__", str(node.target))


class _Builder:
    """Walks the folded float graph once, writing the integer graph (see the module docstring)."""

    def __init__(self, gm: fx.GraphModule, cal: Calibration, *, per_channel: bool, backend: str,
                 skip: frozenset = frozenset(), weight_grids: dict | None = None,
                 rounding: str | None = None) -> None:
        self.gm, self.cal, self.per_channel, self.backend = gm, cal, per_channel, backend
        self.skip, self.weight_grids = skip, weight_grids or {}
        self.rounding = {} if rounding is None else {"rounding": rounding}  # conv/linear
        self.pool_rounding = {} if rounding is None else {"rounding": "float64"}  # concat rescale, global pool
        self.modules = dict(gm.named_modules())
        self.graph = fx.Graph()
        self.owned: dict = {}  # target -> module / tensor of the new GraphModule
        self.plain: dict = {}  # old node -> new node with the value as the float graph has it
        self.q: dict = {}  # old node -> (new node holding int8, its QParams)
        self.grids: dict = {}  # old node name -> calibrated QParams
        self.absorbed: set = set()  # activation nodes fused into their producer
        self.report: list[ReportRow] = []

    # -- values --------------------------------------------------------------------------------
    def is_float(self, n) -> bool:
        meta = self.cal.meta.get(n.name) if isinstance(n, fx.Node) else None
        return isinstance(meta, tuple) and meta[0].is_floating_point

    def grid(self, n: fx.Node) -> QParams:
        if n.name not in self.grids:
            self.grids[n.name] = self.cal.observers[n.name].qparams(8)  # per-tensor affine int8
        return self.grids[n.name]

    def name(self, base: str) -> str:
        name, i = base, 1
        while name in self.owned:
            name, i = f"{base}_{i}", i + 1
        return name

    def call(self, target: str, module: nn.Module, *args) -> fx.Node:
        self.owned[target] = module
        return self.graph.call_module(target, args)

    def int8(self, n: fx.Node) -> tuple[fx.Node, QParams]:
        """The int8 version of ``n``'s value (quantized on its grid here if it only exists in float)."""
        if n not in self.q:
            qp = self.grid(n)
            self.q[n] = (self.call(self.name(f"{n.name}_quantize"), Quantize(qp), self.plain[n]), qp)
        return self.q[n]

    def value(self, n):
        """The float-graph version of ``n`` (dequantized here if it only exists in int8)."""
        if not isinstance(n, fx.Node):
            return n
        if n not in self.plain:
            q, qp = self.q[n]
            self.plain[n] = self.call(self.name(f"{n.name}_dequantize"), Dequantize(qp), q)
        return self.plain[n]

    def any_version(self, n):
        """For shape queries: int8 and float versions have the same shape."""
        return self.q[n][0] if isinstance(n, fx.Node) and n not in self.plain and n in self.q else self.value(n)

    # -- patterns ------------------------------------------------------------------------------
    def activation(self, n: fx.Node) -> str | None:
        if n.op == "call_module":
            return RELU_MODULES.get(type(self.modules[n.target]))
        if n.op in ("call_function", "call_method"):
            return RELU_CALLS.get(_key(n))
        return None

    def fusable_activation(self, n: fx.Node):
        """The ReLU/ReLU6 node that alone reads ``n``'s output, if any: it becomes the output clamp."""
        users = list(n.users)
        if len(users) == 1 and self.activation(users[0]) and self.is_float(users[0]):
            return users[0], self.activation(users[0])
        return None, None

    def is_global_pool(self, n: fx.Node, mod) -> bool:
        if isinstance(mod, nn.AdaptiveAvgPool2d):
            return mod.output_size in (1, (1, 1))
        if _key(n) == F.adaptive_avg_pool2d:
            return (n.args[1:] or [n.kwargs.get("output_size")])[0] in (1, (1, 1), [1, 1])
        if _key(n) in ("mean", torch.mean):
            dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
            meta = self.cal.meta.get(n.args[0].name) if isinstance(n.args[0], fx.Node) else None
            return (isinstance(meta, tuple) and len(meta[1]) == 4 and isinstance(dims, (tuple, list))
                    and sorted(d % 4 for d in dims) == [2, 3])
        return False

    # -- the walk ------------------------------------------------------------------------------
    def run(self) -> fx.GraphModule:
        for n in self.gm.graph.nodes:
            if n in self.absorbed:
                continue
            if n.op == "placeholder":
                self.plain[n] = self.graph.node_copy(n)
            elif n.op == "output":
                self.graph.output(fx.node.map_arg(n.args[0], self.value))
            elif n.op == "get_attr":
                self.get_attr(n)
            else:
                self.compute(n)
        gm = fx.GraphModule(self.owned, self.graph)
        _store_grids(gm)
        share_storage(gm)
        gm.ptq_report = self.report
        return gm

    def get_attr(self, n: fx.Node) -> None:
        attr = self.gm
        for part in n.target.split("."):
            attr = getattr(attr, part)
        if isinstance(attr, nn.Parameter):
            raise ValueError(f"node {n.name!r} reads the parameter {n.target!r} directly (a functional layer); "
                             "mode='int8' converts weights held by nn.Conv2d / nn.Linear modules only")
        self.owned[n.target] = attr
        self.plain[n] = self.graph.get_attr(n.target)

    def compute(self, n: fx.Node) -> None:
        mod = self.modules.get(n.target) if n.op == "call_module" else None
        key = _key(n)
        x = n.args[0] if n.args else None
        floats = isinstance(x, fx.Node) and self.is_float(x) and self.is_float(n)
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            if n.target in self.skip:  # partial quantization: this layer stays float
                return self.island(n, mod, "float (skip)")
            return self.layer(n, mod)
        if floats and self.activation(n):
            q, qp = self.int8(x)
            self.q[n] = (self.call(self.name(n.name), QuantReLU(qp, self.activation(n)), q), qp)
            return self.row(n, "int8")
        if floats and isinstance(mod, ALIAS_MODULES):
            self.q[n] = self.int8(x)
            return self.row(n, "int8")
        if floats and (isinstance(mod, PASS_MODULES) or key in PASS_CALLS):
            q, qp = self.int8(x)
            args = (q,) + tuple(fx.node.map_arg(n.args[1:], self.any_version))
            kwargs = fx.node.map_arg(n.kwargs, self.any_version)
            if mod is not None:
                self.owned[n.target] = mod
                new = self.graph.call_module(n.target, args, kwargs)
            else:
                new = self.graph.create_node(n.op, n.target, args, kwargs)
            self.q[n] = (new, qp)
            return self.row(n, "int8")
        if floats and self.is_global_pool(n, mod):
            q, qp = self.int8(x)
            keepdim = mod is not None or key == F.adaptive_avg_pool2d or bool(
                n.kwargs.get("keepdim", n.args[2] if len(n.args) > 2 else False))
            y_qp = self.grid(n)
            self.q[n] = (self.call(self.name(n.target if mod else n.name),
                                   QuantGlobalAvgPool(qp, y_qp, keepdim, **self.pool_rounding), q), y_qp)
            return self.row(n, "int8")
        if key in ADD_CALLS and len(n.args) == 2 and not n.kwargs and all(self.is_float(a) for a in n.args) \
                and self.is_float(n):
            return self.add(n)
        if key in CAT_CALLS and self.is_float(n) and isinstance(x, (list, tuple)) and all(
                self.is_float(a) for a in x):
            dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
            ins = [self.int8(a) for a in x]
            y_qp = self.grid(n)
            self.q[n] = (self.call(self.name(n.name), QuantCat([qp for _, qp in ins], y_qp, dim, **self.pool_rounding),
                                   *[q for q, _ in ins]), y_qp)
            return self.row(n, "int8")
        if key in SHAPE_CALLS or (key is getattr and n.args[1] in ("shape", "ndim")):
            self.plain[n] = self.graph.create_node(n.op, n.target, *fx.node.map_arg((n.args, n.kwargs),
                                                                                   self.any_version))
            return
        if mod is not None and (any(True for _ in mod.parameters()) or any(True for _ in mod.buffers())):
            raise ValueError(f"layer {n.target!r} of type {type(mod).__name__} has weights but no integer "
                             "implementation: mode='int8' converts nn.Conv2d, nn.Linear and BatchNorm2d "
                             "(folded); use mode='dynamic' or 'fp16', or replace the layer")
        self.island(n, mod)

    def layer(self, n: fx.Node, mod) -> None:
        x = n.args[0]
        if isinstance(mod, nn.Linear) and len(self.cal.meta[x.name][1]) != 2:
            raise ValueError(f"layer {n.target!r} (Linear) gets a {len(self.cal.meta[x.name][1])}-d input; "
                             "the integer linear takes (N, features): flatten before it")
        act_node, act = self.fusable_activation(n)
        out = act_node if act_node is not None else n
        q, x_qp = self.int8(x)
        y_qp = self.grid(out)
        cls = QuantLinear if isinstance(mod, nn.Linear) else QuantConv2d
        try:
            qlayer = cls.from_float(mod, x_qp, y_qp, per_channel=self.per_channel, relu=act is not None,
                                    backend=self.backend, w_qp=self.weight_grids.get(n.target), **self.rounding)
        except ValueError as err:
            raise ValueError(f"layer {n.target!r} ({type(mod).__name__}): {err}") from None
        qlayer.y_qp = clamp_grid(qlayer.y_qp, act)
        qlayer.clamp = (act, y_qp.qmin, y_qp.qmax)  # to clamp again when a state with other grids is loaded
        qlayer.register_buffer("w_scale", qlayer.w_qp.scale)  # float32: part of the artifact
        self.q[out] = (self.call(self.name(n.target), qlayer, q), y_qp)  # a reused layer: one per call
        if act_node is not None:
            self.absorbed.add(act_node)
        folded = getattr(self.gm, "folded_bn", {}).get(n.target)
        op = type(mod).__name__ if folded is None else (
            "BatchNorm2d as 1x1 depthwise Conv2d" if folded == n.target else f"{type(mod).__name__}+BatchNorm")
        self.report.append(ReportRow(n.target, "int8", op + {None: "", "relu": "+ReLU", "relu6": "+ReLU6"}[act]))

    def add(self, n: fx.Node) -> None:
        (qa, a_qp), (qb, b_qp) = self.int8(n.args[0]), self.int8(n.args[1])
        act_node, act = self.fusable_activation(n)
        out = act_node if act_node is not None else n
        y_qp = self.grid(out)
        self.q[out] = (self.call(self.name(n.name), QuantAdd(a_qp, b_qp, y_qp, act), qa, qb), y_qp)
        if act_node is not None:
            self.absorbed.add(act_node)
        self.report.append(ReportRow(n.name, "int8", "add" + {None: "", "relu": "+ReLU", "relu6": "+ReLU6"}[act]))

    def island(self, n: fx.Node, mod, runs: str = "float island") -> None:
        args, kwargs = fx.node.map_arg((n.args, n.kwargs), self.value)
        if mod is not None:
            self.owned[n.target] = mod
            self.plain[n] = self.graph.call_module(n.target, args, kwargs)
        else:
            self.plain[n] = self.graph.create_node(n.op, n.target, args, kwargs, name=n.name)
        if self.is_float(n):
            self.row(n, runs)

    def row(self, n: fx.Node, runs: str) -> None:
        name = n.target if n.op == "call_module" else n.name
        self.report.append(ReportRow(name, runs, _op_name(n, self.modules)))


GRID_ATTRS = {Quantize: ("qp",), Dequantize: ("qp",), QuantLinear: ("x_qp", "y_qp"), QuantConv2d: ("x_qp", "y_qp"),
              QuantReLU: ("qp",), QuantAdd: ("a_qp", "b_qp", "y_qp"), QuantCat: ("x_qps", "y_qp"),
              QuantGlobalAvgPool: ("x_qp", "y_qp")}


def _store_grids(gm: fx.GraphModule) -> None:
    """Put every activation grid in one table (``act_scale``, ``act_zero_point``); modules hold views."""
    index: dict[int, int] = {}
    scales, zero_points = [], []
    for module in gm.modules():
        for attr in GRID_ATTRS.get(type(module), ()):
            value = getattr(module, attr)
            for qp in value if isinstance(value, list) else [value]:
                if id(qp.scale) not in index:
                    index[id(qp.scale)] = len(scales)
                    scales.append(qp.scale)
                    zero_points.append(qp.zero_point)
    gm.register_buffer("act_scale", torch.stack(scales) if scales else torch.zeros(0))  # (A,) float32
    gm.register_buffer("act_zero_point", torch.stack(zero_points) if scales else torch.zeros(0, dtype=torch.int32))

    def view(qp: QParams) -> QParams:
        i = index[id(qp.scale)]
        return qp._replace(scale=gm.act_scale[i], zero_point=gm.act_zero_point[i])  # 0-d views

    for module in gm.modules():
        for attr in GRID_ATTRS.get(type(module), ()):
            value = getattr(module, attr)
            setattr(module, attr, [view(qp) for qp in value] if isinstance(value, list) else view(value))
    gm.register_load_state_dict_post_hook(_clamp_again)


def _clamp_again(gm: nn.Module, incompatible_keys) -> None:
    """After ``load_state_dict``: a fused ReLU6 clamps at the level of 6.0, which moves with the loaded scale."""
    for module in gm.modules():
        if hasattr(module, "clamp"):
            act, qmin, qmax = module.clamp
            module.y_qp = clamp_grid(module.y_qp._replace(qmin=qmin, qmax=qmax), act)


def convert_int8(gm: fx.GraphModule, cal: Calibration, *, per_channel: bool = True, backend: str = "fast",
                 skip=(), weight_grids: dict | None = None, rounding: str | None = None) -> fx.GraphModule:
    """The integer GraphModule of a BN-folded float GraphModule and its calibration (see module docstring).

    ``skip``: names of conv/linear layers of ``gm`` left in float (float islands, their inputs
    dequantized and their outputs quantized where an integer op reads them). ``weight_grids``:
    ``{layer name: QParams}`` for weights whose grid was chosen elsewhere (QAT); the others take
    :func:`qkit.weight_qparams` at 8 bits. ``rounding``: the requantization of every conv/linear
    (:data:`qkit.fixedpoint.ROUNDINGS`); when given, every concatenation and global pool also rounds
    once (``"float64"``). None keeps each op's TensorFlow Lite default.
    """
    return _Builder(gm, cal, per_channel=per_channel, backend=backend, skip=frozenset(skip),
                    weight_grids=weight_grids, rounding=rounding).run()
