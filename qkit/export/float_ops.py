"""Float32 layers as standard ONNX operators, and the ops that only move values (any dtype).

The float model is written with the operators ONNX Runtime optimizes best
(``Conv``, ``Gemm``, ``BatchNormalization``, ``Relu``, ``Clip``, pools,
``Add``, ``Concat``); ONNX Runtime then folds each BatchNorm into its Conv and
fuses the ReLUs itself. Float islands of a converted model (ops left in float
between a Dequantize and a Quantize) are written the same way.

The reshaping ops (flatten, view, reshape, squeeze, permute, max-pool, dropout)
work on uint8 tensors just as on float ones, so they serve the int8 graph too:
a max-pool keeps the order of the levels and the shift by 128 of
:mod:`qkit.export.int8_ops` keeps the order, so pooling the uint8 levels is
pooling the values.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qkit.export.walk import SKIP, Writer, call_writer, module_writer


def f32(x) -> np.ndarray:
    return np.asarray(x.detach().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)


def pair(v) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


# -- layers with weights ------------------------------------------------------------------------------
@module_writer(nn.Conv2d)
def conv2d(w: Writer, n, mod: nn.Conv2d) -> str:
    if mod.padding_mode != "zeros" or isinstance(mod.padding, str):
        raise ValueError(f"module {n.target!r} (Conv2d): only numeric zero padding is exported; got "
                         f"padding={mod.padding!r}, padding_mode={mod.padding_mode!r}")
    inputs = [w.float_input(n, "Conv2d"), w.const(f"{n.target}.weight", f32(mod.weight))]
    if mod.bias is not None:
        inputs.append(w.const(f"{n.target}.bias", f32(mod.bias)))
    ph, pw = pair(mod.padding)
    return w.node("Conv", inputs, n.target, kernel_shape=list(mod.kernel_size), strides=pair(mod.stride),
                  pads=[ph, pw, ph, pw], dilations=pair(mod.dilation), group=mod.groups)


@module_writer(nn.Linear)
def linear(w: Writer, n, mod: nn.Linear) -> str:
    x = w.float_input(n, "Linear")
    if len(w.shape(n.args[0])) != 2:
        raise ValueError(f"module {n.target!r} (Linear) gets a {len(w.shape(n.args[0]))}-d input; "
                         "to_onnx writes Linear as Gemm on (N, features): flatten before it")
    inputs = [x, w.const(f"{n.target}.weight", f32(mod.weight))]
    if mod.bias is not None:
        inputs.append(w.const(f"{n.target}.bias", f32(mod.bias)))
    return w.node("Gemm", inputs, n.target, transB=1)


@module_writer(nn.BatchNorm2d)
def batchnorm2d(w: Writer, n, mod: nn.BatchNorm2d) -> str:
    if not mod.track_running_stats or mod.running_mean is None:
        raise ValueError(f"module {n.target!r} (BatchNorm2d) has no running statistics to export")
    c = mod.num_features
    gamma = f32(mod.weight) if mod.weight is not None else np.ones(c, np.float32)
    beta = f32(mod.bias) if mod.bias is not None else np.zeros(c, np.float32)
    inputs = [w.float_input(n, "BatchNorm2d"), w.const(f"{n.target}.weight", gamma),
              w.const(f"{n.target}.bias", beta), w.const(f"{n.target}.running_mean", f32(mod.running_mean)),
              w.const(f"{n.target}.running_var", f32(mod.running_var))]
    return w.node("BatchNormalization", inputs, n.target, epsilon=float(mod.eps))


# -- activations --------------------------------------------------------------------------------------
@module_writer(nn.ReLU)
@call_writer(F.relu, torch.relu, "relu", "relu_")
def relu(w: Writer, n, mod=None) -> str:
    return w.node("Relu", [w.float_input(n, "ReLU")], n.name)


@module_writer(nn.ReLU6)
@call_writer(F.relu6)
def relu6(w: Writer, n, mod=None) -> str:
    lo, hi = w.const("zero", np.float32(0.0)), w.const("six", np.float32(6.0))
    return w.node("Clip", [w.float_input(n, "ReLU6"), lo, hi], n.name)


@module_writer(nn.Sigmoid)
@call_writer(torch.sigmoid, "sigmoid")
def sigmoid(w: Writer, n, mod=None) -> str:
    return w.node("Sigmoid", [w.float_input(n, "sigmoid")], n.name)


@module_writer(nn.Tanh)
@call_writer(torch.tanh, "tanh")
def tanh(w: Writer, n, mod=None) -> str:
    return w.node("Tanh", [w.float_input(n, "tanh")], n.name)


# -- arithmetic between tensors -----------------------------------------------------------------------
def _operand(w: Writer, n, a) -> str:
    if isinstance(a, (int, float)):
        return w.const("scalar", np.float32(a))
    if w.is_int8(a):
        raise ValueError(f"node {n.name!r} adds or multiplies an int8 value in float: not exportable")
    return w.name(a)


@call_writer(operator.add, torch.add, "add", operator.iadd)
def add(w: Writer, n, mod=None) -> str:
    if len(n.args) != 2 or n.kwargs:
        raise ValueError(f"node {n.name!r}: only a + b is exported (no alpha, no out)")
    return w.node("Add", [_operand(w, n, a) for a in n.args], n.name)


@call_writer(operator.mul, torch.mul, "mul")
def mul(w: Writer, n, mod=None) -> str:
    return w.node("Mul", [_operand(w, n, a) for a in n.args[:2]], n.name)


@call_writer(torch.cat, torch.concat)
def cat(w: Writer, n, mod=None) -> str:
    xs = n.args[0]
    dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
    if any(w.is_int8(x) for x in xs):
        raise ValueError(f"node {n.name!r} concatenates int8 values outside qkit's QuantCat")
    return w.node("Concat", [w.name(x) for x in xs], n.name, axis=int(dim))


# -- pools ---------------------------------------------------------------------------------------------
def _max_pool(w: Writer, n, kernel, stride, padding, dilation, ceil_mode) -> str:
    stride = kernel if stride is None or stride == [] else stride
    ph, pw = pair(padding)
    return w.node("MaxPool", [w.name(n.args[0])], n.name, kernel_shape=pair(kernel), strides=pair(stride),
                  pads=[ph, pw, ph, pw], dilations=pair(dilation), ceil_mode=int(ceil_mode))


@module_writer(nn.MaxPool2d)
def max_pool2d_module(w: Writer, n, mod: nn.MaxPool2d) -> str:
    return _max_pool(w, n, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode)


@call_writer(F.max_pool2d)
def max_pool2d(w: Writer, n, mod=None) -> str:
    names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")
    args = dict(zip(names, n.args)) | dict(n.kwargs)
    return _max_pool(w, n, args["kernel_size"], args.get("stride"), args.get("padding", 0),
                     args.get("dilation", 1), args.get("ceil_mode", False))


def _global_pool(w: Writer, n, keepdim: bool) -> str:
    y = w.node("GlobalAveragePool", [w.float_input(n, "global average pool")], n.name)
    return y if keepdim else w.node("Flatten", [y], f"{n.name}_squeeze", axis=1)


@module_writer(nn.AdaptiveAvgPool2d)
def adaptive_avg_pool2d_module(w: Writer, n, mod) -> str:
    if mod.output_size not in (1, (1, 1), [1, 1]):
        raise ValueError(f"module {n.target!r} (AdaptiveAvgPool2d): only output_size 1 is exported; got "
                         f"{mod.output_size!r}")
    return _global_pool(w, n, True)


@call_writer(F.adaptive_avg_pool2d)
def adaptive_avg_pool2d(w: Writer, n, mod=None) -> str:
    if w.shape(n)[2:] != (1, 1):
        raise ValueError(f"node {n.name!r}: only adaptive_avg_pool2d(x, 1) is exported")
    return _global_pool(w, n, True)


@call_writer(torch.mean, "mean")
def mean(w: Writer, n, mod=None) -> str:
    dims = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim")
    keepdim = bool(n.args[2] if len(n.args) > 2 else n.kwargs.get("keepdim", False))
    if len(w.shape(n.args[0])) != 4 or not isinstance(dims, (tuple, list)) or sorted(d % 4 for d in dims) != [2, 3]:
        raise ValueError(f"node {n.name!r}: only the mean over H and W of (N, C, H, W) is exported")
    return _global_pool(w, n, keepdim)


# -- moving values: any dtype --------------------------------------------------------------------------
@module_writer(nn.Identity, nn.Dropout)
@call_writer("contiguous")
def alias(w: Writer, n, mod=None) -> str:
    return w.name(n.args[0])


@module_writer(nn.Flatten, nn.Unflatten)
@call_writer(torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, "flatten", "view", "reshape",
             "squeeze", "unsqueeze")
def reshape(w: Writer, n, mod=None) -> str:
    """Any reshape, to the recorded output shape; the batch dimension stays free (``0``: copy it)."""
    x, out = n.args[0], w.shape(n)
    keeps_batch = len(out) >= 1 and len(w.shape(x)) >= 1 and out[0] == w.shape(x)[0]
    shape = [0, *out[1:]] if keeps_batch else list(out)
    return w.node("Reshape", [w.name(x), w.const("shape", np.array(shape, np.int64))], n.name)


@call_writer(torch.permute, "permute")
def permute(w: Writer, n, mod=None) -> str:
    dims = n.args[1:] if n.op == "call_method" and not isinstance(n.args[1], (tuple, list)) else n.args[1]
    return w.node("Transpose", [w.name(n.args[0])], n.name, perm=[int(d) for d in dims])


@call_writer(torch.transpose, "transpose")
def transpose(w: Writer, n, mod=None) -> str:
    perm = list(range(len(w.shape(n.args[0]))))
    a, b = (int(d) % len(perm) for d in n.args[1:3])
    perm[a], perm[b] = perm[b], perm[a]
    return w.node("Transpose", [w.name(n.args[0])], n.name, perm=perm)


@call_writer("size", "dim", "numel", getattr)
def shape_query(w: Writer, n, mod=None):
    """Shape queries make no tensor: the reshapes that use them read the recorded shapes."""
    if n.target is getattr and n.args[1] not in ("shape", "ndim"):
        raise ValueError(f"node {n.name!r} reads attribute {n.args[1]!r}: not exportable")
    return SKIP
