"""Integer-only inference modules (lesson 03): int8 in, int8 out, within one level of float."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qkit import choose_qparams, data, dequantize, models, quantize, tensor_range
from qkit.nn import Dequantize, QuantConv2d, QuantLinear, Quantize
from qkit.train import evaluate

pytestmark = pytest.mark.lesson03


def _grid(t):
    return choose_qparams(*tensor_range(t))


@pytest.mark.parametrize("relu", [False, True])
def test_quant_linear_matches_float_within_one_level(relu):
    torch.manual_seed(1)
    layer = nn.Linear(40, 12)
    x = torch.randn(64, 40)
    y = layer(x)
    y = torch.relu(y) if relu else y
    x_qp, y_qp = _grid(x), _grid(y)
    outs = {}
    for backend in ("ref", "fast"):
        q = QuantLinear.from_float(layer, x_qp, y_qp, relu=relu, backend=backend)
        outs[backend] = q(quantize(x, x_qp))
    assert torch.equal(outs["ref"], outs["fast"])
    # float computation on exactly the numbers the integer layer sees (dequantized x and w)
    w_hat = dequantize(q.q_w, q.w_qp)
    y_hat = torch.nn.functional.linear(dequantize(quantize(x, x_qp), x_qp), w_hat, layer.bias)
    expected = quantize(torch.relu(y_hat) if relu else y_hat, y_qp).int()
    assert (outs["fast"].int() - expected).abs().max() <= 1
    if relu:
        assert outs["fast"].min() >= int(y_qp.zero_point)  # nothing below the level of 0.0


def test_quant_conv2d_matches_float_within_one_level():
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    x = torch.randn(2, 3, 9, 9)
    y = conv(x)
    x_qp, y_qp = _grid(x), _grid(y)
    q = QuantConv2d.from_float(conv, x_qp, y_qp, backend="fast")
    q_y = q(quantize(x, x_qp))
    assert q_y.shape == y.shape and q_y.dtype == torch.int8
    y_hat = torch.nn.functional.conv2d(dequantize(quantize(x, x_qp), x_qp), dequantize(q.q_w, q.w_qp),
                                       conv.bias, stride=2, padding=1)
    assert (q_y.int() - quantize(y_hat, y_qp).int()).abs().max() <= 1
    ref = QuantConv2d.from_float(conv, x_qp, y_qp, backend="ref")
    assert torch.equal(ref(quantize(x, x_qp)), q_y)


def test_an_integer_mlp_keeps_its_accuracy():
    mlp = models.load("mlp")
    X, _ = data.digits("train")
    Xt, yt = data.digits("test")
    x = X[:256].flatten(1)
    hidden = torch.relu(mlp.fc1(x))
    x_qp, h_qp, o_qp = _grid(x), _grid(hidden), _grid(mlp.fc2(hidden))
    net = nn.Sequential(nn.Flatten(), Quantize(x_qp),
                        QuantLinear.from_float(mlp.fc1, x_qp, h_qp, relu=True),
                        QuantLinear.from_float(mlp.fc2, h_qp, o_qp), Dequantize(o_qp))
    with torch.no_grad():
        assert net[2](quantize(Xt.flatten(1), x_qp)).dtype == torch.int8
    assert evaluate(net, Xt, yt) >= evaluate(mlp, Xt, yt) - 0.01


def test_bad_arguments_are_named():
    layer = nn.Linear(4, 2)
    qp = choose_qparams(-1.0, 1.0)
    with pytest.raises(TypeError, match="nn.Linear"):
        QuantLinear.from_float(nn.Conv2d(1, 1, 1), qp, qp)
    with pytest.raises(ValueError, match="per-tensor int8 grid"):
        QuantLinear.from_float(layer, choose_qparams(-1.0, 1.0, bits=4), qp)
    with pytest.raises(ValueError, match="numeric zero padding"):
        QuantConv2d.from_float(nn.Conv2d(1, 1, 3, padding="same"), qp, qp)
    assert dequantize(Quantize(qp)(torch.zeros(3)), qp).abs().max() == 0
    assert Dequantize(qp)(torch.zeros(2, dtype=torch.int8)).dtype == torch.float32
