"""qkit.kernels.roundings: per-layer counts of outputs where two requantization roundings disagree."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from qkit import QParams, choose_qparams, data, models, ptq, quantize, tensor_range, weight_qparams
from qkit.fixedpoint import multiply_by_quantized_multiplier, quantize_multipliers
from qkit.kernels import ref
from qkit.kernels.roundings import rounding_disagreements
from qkit.nn import Dequantize, QuantConv2d, QuantLinear, Quantize

pytestmark = pytest.mark.lesson03


def single_rounding_python(acc: int, multiplier: int, shift: int) -> int:
    """One rounding of the exact product, ties toward +inf, in Python ints (independent of qkit)."""
    total = 31 - shift
    return (acc * multiplier + (1 << (total - 1))) >> total


def srdhm_python(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul in Python ints (C's truncating division)."""
    s = a * b + (1 << 30 if a * b >= 0 else 1 - (1 << 30))
    return abs(s) // 2**31 * (1 if s >= 0 else -1)


def test_counts_match_an_independent_int64_recount_on_the_mlp():
    X, _ = data.digits("test")
    int8 = ptq.convert(models.load("mlp"), "int8", X[:128])
    rows = {r.name: r for r in rounding_disagreements(int8, X)}
    q_x = quantize(X.flatten(1), int8.get_submodule("fc1").x_qp)  # the first layer's input
    layer = int8.get_submodule("fc1")
    acc = (q_x.long() - int(layer.x_qp.zero_point)) @ layer.q_w.long().T  # (N, M) int64
    acc += ref.quantize_bias(layer.bias, layer.x_qp, layer.w_qp, layer.q_w.shape[0]).long()
    mult, shift = quantize_multipliers(
        (layer.x_qp.scale.double() * layer.w_qp.scale.double() / layer.y_qp.scale.double()).contiguous())
    double = multiply_by_quantized_multiplier(acc, mult, shift).long()  # (N, M)
    single = torch.tensor([[single_rounding_python(int(a), int(m), int(s))
                            for a, m, s in zip(row.tolist(), mult.tolist(), shift.tolist())] for row in acc])
    z, lo, hi = int(layer.y_qp.zero_point), layer.y_qp.qmin, layer.y_qp.qmax
    expected = int(((double + z).clamp(lo, hi) != (single + z).clamp(lo, hi)).sum())
    assert rows["fc1"].differ["single"] == expected
    assert rows["fc1"].outputs == acc.numel() and rows["fc1"].kind == "linear"
    assert list(rows) == ["fc1", "fc2"]


def test_conv_and_depthwise_layers_are_counted_and_classified():
    torch.manual_seed(0)
    x = torch.rand(16, 4, 6, 6)
    convs = [nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 6, 3, padding=1)]
    x_qp = choose_qparams(*tensor_range(x))
    mid_qp = choose_qparams(*tensor_range(convs[0](x)))
    y_qp = choose_qparams(*tensor_range(convs[1](convs[0](x))))
    model = nn.Sequential(Quantize(x_qp), QuantConv2d.from_float(convs[0], x_qp, mid_qp),
                          QuantConv2d.from_float(convs[1], mid_qp, y_qp), Dequantize(y_qp))
    rows = rounding_disagreements(model, x)
    assert [(r.name, r.kind) for r in rows] == [("1", "depthwise"), ("2", "conv")]
    q_mid = model[1](model[0](x))  # the second layer's input, recomputed
    layer = model[2]
    outs = [ref.int8_conv2d(q_mid, layer.x_qp, layer.q_w, layer.w_qp, layer.bias, layer.y_qp, padding=1,
                            rounding=r) for r in ("double", "single")]
    assert rows[1].differ["single"] == int((outs[0] != outs[1]).sum())
    assert rows[1].outputs == outs[0].numel()


def test_single_rounding_never_differs_when_the_final_shift_is_zero():
    torch.manual_seed(1)
    lin = nn.Linear(32, 8)
    x = torch.randn(64, 32)
    x_qp = choose_qparams(*tensor_range(x))
    s_w = weight_qparams(lin.weight.detach(), 8, per_channel=False).scale
    s_y = float(x_qp.scale * s_w / 0.75)  # M = s_x s_w / s_y = 0.75: multiplier in Q0.31, rs = 0
    y_qp = QParams(torch.tensor(s_y), torch.tensor(0, dtype=torch.int32), -128, 127)
    model = nn.Sequential(Quantize(x_qp), QuantLinear.from_float(lin, x_qp, y_qp, per_channel=False))
    (row,) = rounding_disagreements(model, x)
    assert row.rs == (0, 0)
    assert row.differ["single"] == 0 and row.predicted == 0.0


@given(acc=st.integers(-2**24, 2**24), multiplier=st.integers(2**30, 2**31 - 1), rs=st.integers(1, 20))
def test_the_two_roundings_part_only_on_a_tie_of_the_second(acc, multiplier, rs):
    """The module docstring's claim: a difference means the first rounding landed on a tie."""
    double = int(multiply_by_quantized_multiplier(torch.tensor([acc]), multiplier, -rs))
    single = single_rounding_python(acc, multiplier, -rs)
    if double != single:
        y = srdhm_python(acc, multiplier)
        assert y % 2**rs == 2 ** (rs - 1)  # y / 2**rs is exactly n + 1/2
        assert abs(double - single) == 1


def test_errors_say_what_was_expected():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        rounding_disagreements("model", torch.zeros(1))
    with pytest.raises(ValueError, match="no QuantLinear or QuantConv2d"):
        rounding_disagreements(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2))
    X, _ = data.digits("test")
    int8 = ptq.convert(models.load("mlp"), "int8", X[:32])
    with pytest.raises(ValueError, match="rounding must be one of"):
        rounding_disagreements(int8, X[:4], roundings=("triple",))


def test_kernel_rules_finds_the_reference_rule_of_each_op():
    """TFLite's reference kernels: convolutions follow the pair; qkit's default for an op matches it."""
    from qkit import litert
    from qkit.kernels.roundings import kernel_rules

    paths = [litert.models_dir() / f"{name}.tflite" for name in ("conv_same", "dw_m1_same", "fc_bias")]
    rows = {(r["op"], r["resolver"]): r for r in kernel_rules(paths, batches=2)}
    assert set(rows) == {(op, res) for op in litert.OPS for res in litert.RESOLVERS}
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        assert rows[(op, "reference")]["mismatches"]["double"] == 0
    fc = rows[("FULLY_CONNECTED", "reference")]
    assert min(fc["mismatches"].values()) == 0 and fc["outputs"] > 0
    conv = rows[("CONV_2D", "reference")]  # the rules do differ on these inputs: the count can tell them apart
    assert max(conv["mismatches"].values()) > 0
