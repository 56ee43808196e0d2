"""The graph walk of the exporter: one ``torch.fx`` node in, a few ONNX nodes out.

A model is first turned into a ``torch.fx`` graph (a converted int8 model *is*
one; a float model is traced with :func:`qkit.graph.trace`), then run once on
the example input by an ``fx.Interpreter`` that records every node's value:
its shape and dtype tell each node's writer what it is working on (an int8
value becomes a uint8 ONNX tensor, see :mod:`qkit.export.int8_ops`), and the
shapes of reshapes are read from it instead of being recomputed.

Then every node, in order, is handed to its writer: a function of
``(Writer, node, module)`` that appends ONNX nodes and initializers and
returns the name of the ONNX tensor holding the node's value. The writers are
looked up by module type (:data:`MODULES`) or by call target (:data:`CALLS`),
filled by :mod:`qkit.export.float_ops` and :mod:`qkit.export.int8_ops`. A node
nobody can write raises a ``ValueError`` that names it and its type.

Only the batch dimension stays free (``N``): every other shape is the example's.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.fx as fx
from torch import nn

OPSET = 17  # ONNX's default domain; ONNX Runtime's contrib ops are "com.microsoft" version 1
IR_VERSION = 8  # the IR that goes with opset 17: readable by every ONNX Runtime since 1.10
MS = "com.microsoft"

#: writer by module type / by call target (function or method name); filled by float_ops and int8_ops
MODULES: dict[type, Callable] = {}
CALLS: dict[Any, Callable] = {}
SKIP = object()  # a writer's result for nodes that make no tensor (shape queries)


class _Recorder(fx.Interpreter):
    """Runs the graph once and keeps every node's value (``values[node]``)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict = {}

    def run_node(self, n: fx.Node):
        self.values[n] = out = super().run_node(n)
        return out


class Writer:
    """The ONNX graph under construction, and what the recorded run knows about each node."""

    def __init__(self, gm: fx.GraphModule, values: dict, options: dict | None = None) -> None:
        self.gm, self.values, self.options = gm, values, dict(options or {})
        self.modules = dict(gm.named_modules())
        self.nodes: list = []  # onnx NodeProto, in order
        self.inits: dict = {}  # name -> onnx TensorProto
        self.names: dict = {}  # fx node -> ONNX tensor name
        self.used: set = set()

    # -- names, constants, nodes ------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        base = base.replace(".", "_") or "t"
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, base: str, value) -> str:
        """An initializer holding ``value`` (numpy array or scalar, dtype kept) under a fresh name."""
        from onnx import numpy_helper

        name = self.fresh(base)
        self.inits[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def node(self, op: str, inputs: list, base: str, *, domain: str = "", **attrs) -> str:
        """Append one ONNX node with one output (named after ``base``); return the output's name."""
        from onnx import helper

        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.fresh(f"{base}_{op}"), domain=domain,
                                           **attrs))
        return out

    # -- what the recorded run knows ---------------------------------------------------------------
    def name(self, arg) -> str:
        """The ONNX tensor of an fx argument (a node already written)."""
        if not isinstance(arg, fx.Node) or arg not in self.names or self.names[arg] is SKIP:
            raise ValueError(f"expected a tensor argument; got {arg!r}")
        return self.names[arg]

    def value(self, arg):
        return self.values[arg] if isinstance(arg, fx.Node) else arg

    def is_int8(self, arg) -> bool:
        v = self.value(arg)
        return isinstance(v, torch.Tensor) and v.dtype == torch.int8

    def shape(self, arg) -> tuple:
        return tuple(self.value(arg).shape)

    def float_input(self, n: fx.Node, what: str) -> str:
        """The ONNX tensor of ``n``'s first argument, checked to be float (a float-only op)."""
        x = n.args[0]
        if self.is_int8(x):
            raise ValueError(f"node {n.name!r} ({what}) reads an int8 value: only qkit's integer modules "
                             "(qkit.nn, qkit.ptq.modules) can be exported on int8 values")
        return self.name(x)

    def describe(self, n: fx.Node) -> str:
        if n.op == "call_module":
            return f"module {n.target!r} of type {type(self.modules[n.target]).__name__}"
        return f"node {n.name!r} ({n.op} {getattr(n.target, '__name__', n.target)!s})"


def writer_of(w: Writer, n: fx.Node):
    """The writer of node ``n`` and its module (None for calls), or a ValueError naming what is missing."""
    if n.op == "call_module":
        mod = w.modules[n.target]
        for cls in type(mod).__mro__:
            if cls in MODULES:
                return MODULES[cls], mod
    elif n.op in ("call_function", "call_method"):
        fn = CALLS.get(n.target)
        if fn is not None:
            return fn, None
    raise ValueError(f"{w.describe(n)} has no ONNX export: qkit.export writes conv/linear/BatchNorm2d, ReLU/ReLU6, "
                     "pools, add, cat and reshapes in float, and qkit's integer modules (ptq.convert(..., 'int8'))")


def walk(gm: fx.GraphModule, example: torch.Tensor, **options):
    """Every node of ``gm`` written as ONNX: returns ``(nodes, initializers, input shape, output shapes)``.

    ``options`` reach the writers as ``Writer.options`` (e.g. ``weights="uint8"``, see :mod:`qkit.export`).
    """
    rec = _Recorder(gm)
    with torch.no_grad():
        rec.run(example)
    w = Writer(gm, rec.values, options)
    outputs = []
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            if w.names:
                raise ValueError(f"the model takes more than one input ({n.name!r}); to_onnx exports one input")
            w.names[n] = "input"
            w.used.add("input")
        elif n.op == "get_attr":
            value = w.values[n]
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"node {n.name!r} reads {n.target!r}, a {type(value).__name__}, not a tensor")
            arr = value.detach().numpy()
            w.names[n] = w.const(n.target, (arr.astype(np.int16) + 128).astype(np.uint8)
                                 if value.dtype == torch.int8 else arr)
        elif n.op == "output":
            args = n.args[0] if isinstance(n.args[0], (tuple, list)) else (n.args[0],)
            for i, a in enumerate(args):
                if w.is_int8(a) or not isinstance(w.value(a), torch.Tensor):
                    raise ValueError(f"output {i} of the model is not a float tensor; to_onnx writes float "
                                     "in, float out (a converted model ends with a Dequantize)")
                name = "output" if len(args) == 1 else f"output_{i}"
                w.nodes.append(_identity(w.name(a), name))
                outputs.append((name, w.shape(a)))
        else:
            fn, mod = writer_of(w, n)
            w.names[n] = fn(w, n, mod)
    return w.nodes, list(w.inits.values()), tuple(example.shape), outputs


def _identity(src: str, dst: str):
    from onnx import helper

    return helper.make_node("Identity", [src], [dst], name=f"{dst}_Identity")


def module_writer(*types: type):
    """Decorator: register a writer for these module types."""
    def register(fn):
        for t in types:
            MODULES[t] = fn
        return fn
    return register


def call_writer(*targets):
    """Decorator: register a writer for these functions / method names."""
    def register(fn):
        for t in targets:
            CALLS[t] = fn
        return fn
    return register


def as_graph(model: nn.Module) -> fx.GraphModule:
    """``model`` itself if it is a GraphModule (a converted model), else its ``torch.fx`` trace."""
    from qkit.graph import trace

    if isinstance(model, fx.GraphModule):
        return model
    import copy

    return trace(copy.deepcopy(model).eval(), "qkit.export.to_onnx")
