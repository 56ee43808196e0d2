"""Integer-only inference modules (lesson 03): int8 in, int8 out, within one level of float."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qkit import choose_qparams, dequantize, quantize, tensor_range
from qkit.nn import (Dequantize, DynamicQuantConv2d, Float16Conv2d, QuantConv2d, QuantLinear, Quantize,
                     clamp_grid)
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


def test_an_integer_mlp_keeps_its_accuracy(zoo, calibration, digits_test):
    mlp, (Xt, yt) = zoo["mlp"], digits_test
    x = calibration.flatten(1)
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
    with pytest.raises(ValueError, match="levels fit int8"):  # uint8 levels do not
        QuantLinear.from_float(layer, choose_qparams(0.0, 1.0, signed=False), qp)
    with pytest.raises(ValueError, match="per-tensor grid"):
        QuantLinear.from_float(layer, qp, choose_qparams(torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 2.0]), axis=0))
    four = choose_qparams(-1.0, 1.0, bits=4)  # a sub-range of int8 (QAT's low-bit activations): accepted
    assert QuantLinear.from_float(layer, four, four)(torch.tensor([[-8, 7, 0, 1]], dtype=torch.int8)).abs().max() <= 8
    with pytest.raises(ValueError, match="numeric zero padding"):
        QuantConv2d.from_float(nn.Conv2d(1, 1, 3, padding="same"), qp, qp)
    assert dequantize(Quantize(qp)(torch.zeros(3)), qp).abs().max() == 0
    assert Dequantize(qp)(torch.zeros(2, dtype=torch.int8)).dtype == torch.float32


def test_quant_conv2d_built_directly_equals_from_float():
    """The constructor takes a float weight and conv2d's geometry keywords; from_float is a shortcut."""
    torch.manual_seed(2)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2)
    x = torch.randn(3, 4, 9, 9)
    x_qp, y_qp = _grid(x), _grid(conv(x))
    direct = QuantConv2d(conv.weight, conv.bias, x_qp, y_qp, stride=2, padding=1, groups=2, backend="ref")
    made = QuantConv2d.from_float(conv, x_qp, y_qp, backend="ref")
    q_x = quantize(x, x_qp)
    assert torch.equal(direct(q_x), made(q_x))
    assert direct.geometry == {"stride": (2, 2), "padding": (1, 1), "dilation": (1, 1), "groups": 2}
    assert list(direct.state_dict()) == list(made.state_dict()) == ["q_w", "bias"]
    default = QuantConv2d(conv.weight[:, :, :1, :1].repeat(1, 2, 1, 1), None, x_qp, y_qp, backend="ref")
    assert default(q_x).shape == (3, 6, 9, 9)  # stride 1, no padding, groups 1: a 1x1 conv


def test_float16_and_dynamic_convs_built_directly_equal_from_float():
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 6, 3, padding=2, dilation=2, groups=3)
    x = torch.randn(2, 3, 7, 7)
    for cls in (Float16Conv2d, DynamicQuantConv2d):
        direct = cls(conv.weight, conv.bias, padding=2, dilation=2, groups=3)
        assert torch.equal(direct(x), cls.from_float(conv)(x)), cls.__name__


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda qp: QuantConv2d(torch.randn(4, 9), None, qp, qp), ValueError, r"weight must be 4-d .* got shape \(4, 9\)"),
    (lambda qp: QuantConv2d(torch.ones(2, 1, 3, 3, dtype=torch.int8), None, qp, qp), TypeError,
     "weight must be a float tensor"),
    (lambda qp: QuantConv2d(torch.randn(3, 1, 3, 3), None, qp, qp, groups=2), ValueError,
     "groups=2 must divide the weight's 3 output channels"),
    (lambda qp: QuantConv2d(torch.randn(2, 1, 3, 3), None, qp, qp, padding="same"), ValueError,
     "numeric zero padding"),
    (lambda qp: QuantConv2d(torch.randn(2, 1, 3, 3), None, qp, qp, stride=0), ValueError, "stride"),
    (lambda qp: QuantConv2d(torch.randn(2, 1, 3, 3), None, qp, qp, backend="gpu"), ValueError,
     "backend must be one of"),
    (lambda qp: QuantConv2d(torch.randn(2, 1, 3, 3), None, qp, qp, relu="yes"), TypeError, "relu"),
    (lambda qp: QuantLinear(torch.randn(2, 1, 3, 3), None, qp, qp), ValueError, r"weight must be 2-d"),
    (lambda qp: DynamicQuantConv2d(torch.randn(2, 3), None), ValueError, "weight must be 4-d"),
    (lambda qp: Float16Conv2d("w", None), TypeError, "weight must be a float tensor"),
])
def test_layers_built_directly_refuse_bad_arguments_clearly(make, error, match):
    with pytest.raises(error, match=match):
        make(choose_qparams(-1.0, 1.0))


def test_clamp_grid_is_relu_and_relu6_on_the_grid():
    qp = choose_qparams(-2.0, 8.0)  # scale 10/255, zero_point -77
    assert clamp_grid(qp, None) is qp
    relu = clamp_grid(qp, "relu")
    assert (relu.qmin, relu.qmax) == (int(qp.zero_point), qp.qmax)
    relu6 = clamp_grid(qp, "relu6")
    six = round(6.0 / float(qp.scale)) + int(qp.zero_point)  # the level of 6.0, computed here
    assert (relu6.qmin, relu6.qmax) == (int(qp.zero_point), six)
    layer = QuantLinear(torch.randn(3, 4), None, qp, qp, relu=True, backend="ref")
    assert layer.y_qp.qmin == int(qp.zero_point)  # relu=True fuses the same clamp
