"""Deploy: write a model as an ONNX file that ONNX Runtime runs, float in, float out.

Equation of every quantized tensor in the file: ``x ≈ scale * (q - zero_point)``,
on qkit's own grids. :func:`to_onnx` writes

* a model converted by ``qkit.ptq.convert(model, "int8", calibration)`` with
  ONNX Runtime's quantized operators (the "QOperator" form: ``QLinearConv``,
  ``QGemm``, ``QLinearAdd``, ``QLinearConcat``, ``QLinearGlobalAveragePool``,
  ``QuantizeLinear``/``DequantizeLinear`` at the edges): the weights are qkit's
  ``q_w``, the biases qkit's int32 ``bias_q``, every scale and zero point
  qkit's (:mod:`qkit.export.int8_ops` derives the operator for each module);
* a float model with the standard operators (``Conv``, ``Gemm``,
  ``BatchNormalization``, ``Relu``, ...; :mod:`qkit.export.float_ops`), written
  by the same graph walk (:mod:`qkit.export.walk`): the float baseline in the
  same runtime.

**Why uint8, weights included: exact on every x86 CPU.** ONNX Runtime's
int8 GEMMs (MLAS) multiply a uint8 activation by a weight byte. With an int8
(signed) weight, CPUs without VNNI use ``vpmaddubsw``, which adds *pairs* of
u8×s8 products into a *saturating int16*: 255·127 + 255·127 = 64 770 > 32 767,
so full-range int8 weights give wrong accumulators on AVX2 — silently, and only
on some machines. (That is why ONNX Runtime's own quantizer, and torch's fbgemm
observers, offer ``reduce_range``: 7-bit weights or activations keep the pair sum
in int16.) With VNNI (``vpdpbusd``, AVX-512 VNNI / AVX-VNNI) the products go
straight into int32: exact. A uint8 × uint8 product is widened to 16 bits and
multiplied with ``vpmaddwd`` into int32 on every x86 path: exact everywhere. So
by default (``weights="uint8"``) the file stores the weights as ``q_w + 128``
with zero point 128 (per output channel) and the activations as ``q + 128`` with
zero point ``z + 128`` — the same real values, the full 8 bits, no ``reduce_range``,
the same result on an AVX2 laptop and a VNNI server, whatever session options the
runtime that loads it uses. :func:`optimized_ops` shows the kernels ONNX Runtime
really runs: QLinearConv and QGemm, still on uint8 weights.

The price, on a CPU with VNNI: the uint8 file forgoes its u8×s8 dot product
(measured on an AVX-512 VNNI server, batch 256, one thread: 1.3× to 2.0× the time
of the same zoo model with int8 weights, identical outputs there;
``benchmarks/bench_deploy.py`` and lesson 04 measure it on the machine at hand).
``weights="int8"`` writes that file: fast and exact on VNNI CPUs, but on CPUs
without VNNI wrong wherever a pair sum passes 32 767, unless the session that
loads it sets ``session.x64quantprecision`` to ``"1"`` (ONNX Runtime then
rewrites every int8 weight as uint8 when it loads the file, on x86: what the
default does once, in the file).

**Where ONNX Runtime and qkit differ: requantization.** Both compute the same
int32 accumulator ``acc = Σ (q_x - z_x) q_w + bias_q``. qkit then rounds
``acc · M`` (``M = s_x s_w / s_y``) by TensorFlow Lite's reference rule for the op
(a fixed-point multiplier for convolutions, float64 for fully connected layers:
:data:`qkit.fixedpoint.ROUNDINGS`); ONNX Runtime multiplies by M in float32 and
rounds half to even. Both round the same real
number ``acc · M`` to a neighbouring integer, so a layer's outputs agree within 1
level (tests check it on every kind of layer) and differ only where ``acc · M`` is
near a half. Such 1-level differences change a zoo model's answer rarely (tests:
≥ 99.5 % of the digits' test answers agree with qkit's integer model).

Example:
    >>> import os, tempfile
    >>> from torch import nn
    >>> from qkit import ptq
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3)).eval()
    >>> X = torch.randn(64, 1, 8, 8)
    >>> q = ptq.convert(model, "int8", X, backend="ref")
    >>> path = to_onnx(q, os.path.join(tempfile.mkdtemp(), "tiny_int8.onnx"), X[:1])
    >>> ops = optimized_ops(path)        # what ONNX Runtime runs: integer kernels, no float Conv or Gemm
    >>> ops["com.microsoft:QLinearConv"], ops["com.microsoft:QGemm"], ops["Conv"] + ops["Gemm"]
    (1, 1, 0)
    >>> from qkit.nn import Dequantize
    >>> level = next(float(m.qp.scale) for m in q.modules() if isinstance(m, Dequantize))  # output grid
    >>> bool((OnnxModel(path)(X) - q(X)).abs().max() <= 1.01 * level)   # within one output level
    True
    >>> file_size(path)                  # bytes of the file: 804 weight bytes, scales, biases, the graph
    2340
"""

from __future__ import annotations

import os

import torch
from torch import nn

from qkit.export import float_ops, int8_ops  # noqa: F401  (they register their writers)
from qkit.export.runtime import OnnxModel, optimized_ops, session
from qkit.export.walk import IR_VERSION, MS, OPSET, as_graph, walk


WEIGHTS = ("uint8", "int8")


def to_onnx(converted_model: nn.Module, path, example_input, *, weights: str = "uint8") -> str:
    """Write ``converted_model`` (int8 from ``ptq.convert``, or a float model) as an ONNX file at ``path``.

    Args:
        converted_model: ``qkit.ptq.convert(model, "int8", calibration)``'s result, or
            a float ``nn.Module`` of conv/linear/BatchNorm2d/ReLU/pool/add/cat layers.
        path: file to write (its directory must exist).
        example_input: one float batch shaped like the model's input (any batch
            size: the file's batch dimension is free, ``N``).
        weights: how an int8 model's weights are stored: ``"uint8"`` (default: ``q_w + 128``,
            exact on every x86 CPU) or ``"int8"`` (``q_w``: faster with VNNI, wrong on AVX2-only
            CPUs unless the session sets ``session.x64quantprecision``; see the module docstring).

    Returns:
        ``path``, as a string.

    Raises:
        TypeError: ``converted_model`` not an nn.Module, ``example_input`` not a float tensor.
        ValueError: ``weights`` not one of :data:`WEIGHTS`; a layer or operation with no ONNX
            export (the message names it and its type: e.g. a ``"dynamic"`` or ``"fp16"``
            conversion, a LayerNorm); a model torch.fx cannot trace; an output that is not a
            float tensor.
    """
    import onnx
    from onnx import TensorProto, helper

    if not isinstance(converted_model, nn.Module):
        raise TypeError(f"converted_model must be a torch.nn.Module; got {type(converted_model).__name__}")
    if not isinstance(example_input, torch.Tensor) or example_input.dtype != torch.float32:
        got = (f"dtype {example_input.dtype}" if isinstance(example_input, torch.Tensor)
               else type(example_input).__name__)
        raise TypeError(f"example_input must be a float32 torch.Tensor batch; got {got}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}; got {weights!r}")
    if example_input.dim() < 1 or len(example_input) < 1:
        raise ValueError(f"example_input must be a batch of at least one sample; got shape "
                         f"{tuple(example_input.shape)}")
    was_training = converted_model.training
    converted_model.eval()
    try:
        nodes, inits, in_shape, outputs = walk(as_graph(converted_model), example_input, weights=weights)
    finally:
        converted_model.train(was_training)
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *in_shape[1:]])]
    outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape[1:]]) for name, shape in outputs]
    graph = helper.make_graph(nodes, f"qkit_{type(converted_model).__name__}", inputs, outs, inits)
    opsets = [helper.make_opsetid("", OPSET)]
    if any(n.domain == MS for n in nodes):
        opsets.append(helper.make_opsetid(MS, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="qkit", ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    path = os.fspath(path)
    onnx.save(model, path)
    return path


def file_size(path) -> int:
    """Bytes of the ONNX file at ``path``: the deployed artifact, next to :func:`qkit.measure.model_size`."""
    return os.path.getsize(os.fspath(path))


__all__ = ["WEIGHTS", "OnnxModel", "file_size", "optimized_ops", "session", "to_onnx"]
