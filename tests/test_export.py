"""qkit.export.to_onnx against the real ONNX Runtime: zoo models, single layers, what the file holds."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from qkit import measure, models, ptq
from qkit.export import OnnxModel, file_size, optimized_ops, session, to_onnx
from qkit.nn import Dequantize, QuantConv2d, QuantLinear, Quantize
from qkit.train import one_thread

pytestmark = pytest.mark.lesson04

FLOAT_KERNELS = {"Conv", "Gemm", "MatMul", "FusedConv", "com.microsoft:FusedConv", "com.microsoft:FusedGemm",
                 "com.microsoft:FusedMatMul", "com.microsoft:NchwcConv"}


# -- the zoo, converted and exported once per test session ---------------------------------------------
@pytest.fixture(scope="module")
def exported(zoo, calibration, tmp_path_factory):
    """``exported(name)`` -> (float model, int8 model, int8 file, fp32 file), made on first use."""
    cache, root = {}, tmp_path_factory.mktemp("onnx")

    def get(name):
        if name not in cache:
            model = zoo[name]
            q = ptq.convert(model, "int8", calibration)
            cache[name] = (model, q, to_onnx(q, root / f"{name}_int8.onnx", calibration[:2]),
                           to_onnx(model, root / f"{name}_fp32.onnx", calibration[:2]))
        return cache[name]
    return get


@pytest.mark.parametrize("name", models.names())
def test_zoo_int8_agrees_with_qkit_and_fp32_with_float(name, exported, digits_test):
    model, q, p8, p32 = exported(name)
    X, _ = digits_test
    with torch.no_grad(), one_thread():
        ours, ort8 = q(X), OnnxModel(p8)(X)  # (N, 10) float32 each
        ref, ort32 = model(X), OnnxModel(p32)(X)
    agree = (ours.argmax(1) == ort8.argmax(1)).float().mean().item()
    assert agree >= 0.995, f"{name}: ONNX Runtime int8 agrees with qkit's integer model on {agree:.2%} of answers"
    assert torch.allclose(ort32, ref, rtol=1e-4, atol=1e-4), f"{name}: fp32 max |diff| {(ort32 - ref).abs().max()}"
    assert torch.equal(ort32.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("name", models.names())
def test_zoo_file_holds_qkits_integers(name, exported):
    _, q, p8, p32 = exported(name)
    onnx.checker.check_model(onnx.load(p8))
    onnx.checker.check_model(onnx.load(p32))
    graph = onnx.load(p8).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    layers = [q.get_submodule(n.target) for n in q.graph.nodes  # in the graph's order, as the file's
              if n.op == "call_module" and isinstance(q.get_submodule(n.target), (QuantConv2d, QuantLinear))]
    nodes = [n for n in graph.node if n.op_type in ("QLinearConv", "QGemm")]
    assert len(nodes) == len(layers)
    for layer, node in zip(layers, nodes):
        weight = inits[node.input[3]]
        assert weight.dtype == np.uint8 and weight.shape == tuple(layer.q_w.shape)
        assert np.array_equal(weight.astype(np.int64) - 128, layer.q_w.numpy().astype(np.int64)), node.name
        assert np.array_equal(inits[node.input[4]], layer.w_qp.scale.numpy())
        bias = inits[node.input[8] if node.op_type == "QLinearConv" else node.input[6]]
        s = float(layer.x_qp.scale) * layer.w_qp.scale.double().numpy()  # bias grid s_x·s_w, float64
        b = np.zeros(len(bias)) if layer.bias is None else layer.bias.double().numpy()
        assert bias.dtype == np.int32 and np.array_equal(bias, np.round(b / s).astype(np.int32)), node.name
    floats = [(k, v.shape) for k, v in inits.items() if v.dtype == np.float32 and v.ndim > 1]
    assert not floats, f"float tensors with more than one axis in an int8 file: {floats}"
    ops = optimized_ops(p8)
    assert not FLOAT_KERNELS & set(ops), f"ONNX Runtime runs float kernels for the int8 file: {dict(ops)}"
    # the file sizes next to measure.model_size: the weights shrink about 4× in ONNX too
    assert file_size(p8) == os.path.getsize(p8)
    assert measure.tensor_bytes(OnnxModel(p8)) == file_size(p8)
    weights = sum(layer.q_w.numel() for layer in layers)
    ratio = file_size(p32) / file_size(p8)
    assert weights < file_size(p8) and ratio > (3.5 if file_size(p32) > 1e6 else 2), (file_size(p8), file_size(p32))
    assert 0.5 < file_size(p8) / measure.model_size(q) < 2, (file_size(p8), measure.model_size(q))


# -- single layers: ORT's levels within 1 of qkit's ---------------------------------------------------
class AddRelu(nn.Module):
    """QuantAdd (+ReLU) of two int8 values on different grids (the input's, ReLU's clamped copy of it)."""

    def forward(self, x):
        return F.relu(x + F.relu(x))


class Cat(nn.Module):
    """QuantCat whose inputs are rescaled: both on the input's grid, the output on [0, max] only."""

    def forward(self, x):
        return torch.cat([F.relu(x), F.relu6(x)], dim=1)


class Mean(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


def conv(**kw):
    return nn.Sequential(nn.Conv2d(kw.pop("cin", 3), kw.pop("cout", 6), kw.pop("k", 3), **kw))


LAYERS = {
    "linear": lambda: nn.Sequential(nn.Flatten(), nn.Linear(48, 20)),
    "linear+relu": lambda: nn.Sequential(nn.Flatten(), nn.Linear(48, 20), nn.ReLU()),
    "conv same": lambda: conv(padding=1),
    "conv same (per-tensor weights)": lambda: conv(padding=1),
    "linear (per-tensor weights)": lambda: nn.Sequential(nn.Flatten(), nn.Linear(48, 20)),
    "conv valid": lambda: conv(),
    "conv stride 2": lambda: conv(stride=2, padding=1),
    "conv dilation 2": lambda: conv(dilation=2, padding=2),
    "conv+relu6": lambda: nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU6()),
    "depthwise x1": lambda: conv(cin=6, cout=6, groups=6, padding=1),
    "depthwise x2+relu": lambda: nn.Sequential(nn.Conv2d(6, 12, 3, padding=1, groups=6), nn.ReLU()),
    "residual add+relu": AddRelu,
    "concat": Cat,
    "maxpool 3x3 pad 1, relu": lambda: nn.Sequential(nn.MaxPool2d(3, 1, padding=1), nn.ReLU()),
    "maxpool stride 2": lambda: nn.Sequential(nn.MaxPool2d(2)),
    "global average pool": lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    "mean over H, W": lambda: Mean(),
}


def levels(q_model, x, path):
    """(qkit's int8 levels, ORT's levels shifted back to int8) of the last Dequantize's input, and the same
    for the first Quantize's output; ORT's are read by making those uint8 tensors graph outputs."""
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, k=k: seen.__setitem__(k, (i[0] if k == "out" else o)))
             for k, m in (("in", next(m for m in q_model.modules() if isinstance(m, Quantize))),
                          ("out", next(m for m in q_model.modules() if isinstance(m, Dequantize))))]
    with torch.no_grad():
        q_model(x)
    for h in hooks:
        h.remove()
    model = onnx.load(path)
    quant = next(n for n in model.graph.node if n.op_type == "QuantizeLinear").output[0]
    deq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear").input[0]
    model.graph.output.extend([onnx.helper.make_tensor_value_info(t, onnx.TensorProto.UINT8, None)
                               for t in (quant, deq)])
    onnx.save(model, path + ".levels.onnx")
    _, u_in, u_out = session(path + ".levels.onnx", threads=1).run(None, {"input": x.numpy()})
    as_int8 = lambda u: torch.from_numpy(u.astype(np.int16) - 128)  # noqa: E731
    return (seen["in"].to(torch.int16), as_int8(u_in)), (seen["out"].to(torch.int16), as_int8(u_out))


@pytest.mark.parametrize("kind", list(LAYERS))
def test_single_layer_within_one_level(kind, tmp_path):
    torch.manual_seed(0)
    model = LAYERS[kind]().eval()
    x = torch.randn(64, 3 if "depthwise" not in kind else 6, 4, 4) * 2
    q = ptq.convert(model, "int8", x, backend="ref", per_channel="per-tensor" not in kind)
    path = to_onnx(q, str(tmp_path / "layer.onnx"), x[:1])
    onnx.checker.check_model(onnx.load(path))
    (in_ours, in_ort), (ours, ort) = levels(q, x, path)
    assert torch.equal(in_ours, in_ort), "QuantizeLinear must give qkit's input levels bit for bit"
    diff = (ours - ort).abs()
    assert diff.max() <= 1, f"{kind}: {int((diff > 1).sum())} outputs more than 1 level apart (max {diff.max()})"
    assert (diff == 0).float().mean() > 0.6, f"{kind}: only {(diff == 0).float().mean():.1%} of levels equal"


def test_an_unfused_relu_clamps_in_the_file(tmp_path):
    """After a max-pool a ReLU is no output clamp of a layer: the file clamps the uint8 levels at z + 128."""
    torch.manual_seed(0)
    x = torch.randn(16, 3, 4, 4)
    q = ptq.convert(LAYERS["maxpool 3x3 pad 1, relu"]().eval(), "int8", x, backend="ref")
    graph = onnx.load(to_onnx(q, str(tmp_path / "relu.onnx"), x[:1])).graph
    clip = next(n for n in graph.node if n.op_type == "Clip")
    low = next(numpy_helper.to_array(t) for t in graph.initializer if t.name == clip.input[1])
    assert int(low) == int(q.act_zero_point[0]) + 128


# -- errors ---------------------------------------------------------------------------------------------
def test_friendly_errors(tmp_path, calibration):
    with pytest.raises(TypeError, match="torch.nn.Module"):
        to_onnx("model", tmp_path / "x.onnx", calibration[:1])
    layer = nn.Sequential(nn.Flatten(), nn.Linear(64, 2)).eval()
    with pytest.raises(TypeError, match="float32 torch.Tensor"):
        to_onnx(layer, tmp_path / "x.onnx", np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"module '1' of type DynamicQuantLinear has no ONNX export"):
        to_onnx(ptq.convert(layer, "dynamic"), tmp_path / "x.onnx", calibration[:1])
    norm = nn.Sequential(nn.Flatten(), nn.LayerNorm(64)).eval()
    with pytest.raises(ValueError, match=r"module '1' of type LayerNorm"):
        to_onnx(norm, tmp_path / "x.onnx", calibration[:1])
    assert not (tmp_path / "x.onnx").exists()


def test_int8_weights_are_rewritten_to_uint8_by_the_precision_option(exported, digits_test, tmp_path):
    """weights="int8": the file holds q_w itself; with session.x64quantprecision ONNX Runtime turns it into
    q_w + 128 when loading (exact on every x86 CPU) and gives the uint8 file's outputs exactly."""
    _, q, p8, _ = exported("resnet")
    ps8 = to_onnx(q, tmp_path / "resnet_s8.onnx", digits_test[0][:1], weights="int8")
    graph = onnx.load(ps8).graph
    conv = next(n for n in graph.node if n.op_type == "QLinearConv")
    weight = next(numpy_helper.to_array(t) for t in graph.initializer if t.name == conv.input[3])
    assert weight.dtype == np.int8
    precise = {"session.x64quantprecision": "1"}
    X = digits_test[0]
    with torch.no_grad():
        assert torch.equal(OnnxModel(ps8, config=precise)(X), OnnxModel(p8)(X))
    with pytest.raises(ValueError, match="weights must be one of"):
        to_onnx(q, tmp_path / "bad.onnx", X[:1], weights="int4")
