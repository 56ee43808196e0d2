"""qkit's int8 kernels against the real TensorFlow Lite interpreter (ai-edge-litert), bit for bit.

The oracle is TFLite's reference kernels (``OpResolverType.BUILTIN_REF``) running the
one-op files of ``tests/litert/`` (made by ``tests/litert/make_models.py``, see its
README). Each file is first checked to hold what ``cases.json`` says it holds, so a
broken generator cannot pass by writing a trivial model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from qkit import litert

pytestmark = pytest.mark.lesson03

HERE = Path(__file__).resolve().parent / "litert"
CASES = json.loads((HERE / "cases.json").read_text())
PADDING = {"SAME": 0, "VALID": 1}  # TFLite's Padding enum


def inputs(op: litert.LiteOp) -> list[torch.Tensor]:
    """Full-range random batches (FC: many rows, so a wrong rounding shows), then all -128 and all 127."""
    batch = 512 if op.op == "FULLY_CONNECTED" else 8
    xs = [litert.random_input(op, batch, seed) for seed in range(3)]
    return xs + [torch.full((2, *op.input_shape[1:]), v, dtype=torch.int8) for v in (-128, 127)]


@pytest.fixture(scope="module")
def oracle():
    """name -> (LiteOp, [input], [TFLite reference output]), computed once."""
    out = {}
    for name in CASES:
        op = litert.read_op(HERE / f"{name}.tflite")
        xs = inputs(op)
        out[name] = (op, xs, [litert.run_litert(op, x, "reference") for x in xs])
    return out


def test_every_shipped_file_is_a_case():
    assert sorted(p.stem for p in litert.shipped_models(HERE)) == sorted(CASES)
    assert litert.models_dir().resolve() == HERE
    for path in litert.shipped_models(HERE):
        assert path.stat().st_size < 20_000, f"{path.name} should be a few KB"


@pytest.mark.parametrize("name", sorted(CASES))
def test_file_holds_the_op_it_claims(name):
    claims, op = CASES[name], litert.read_op(HERE / f"{name}.tflite")
    assert op.op == claims["op"]
    assert op.activation == claims.get("activation")
    assert (op.bias is None) == (claims.get("bias") is False)
    shape = claims["input_shape"]  # TFLite layout, batch 1
    assert list(op.input_shape) == (shape if op.op == "FULLY_CONNECTED" else [shape[0], shape[3], shape[1], shape[2]])
    assert op.q_w.dtype == torch.int8 and op.w_qp.qmin == -127 and (op.w_qp.zero_point == 0).all()
    assert op.q_w.abs().max() > 64, "weights should use their grid"
    if op.bias is not None:
        assert op.bias.dtype == torch.int32 and op.bias.shape == (op.q_w.shape[0],) and (op.bias != 0).any()
    if op.op == "FULLY_CONNECTED":
        assert (op.w_qp.axis is not None) == claims.get("per_channel", False)
        return
    assert op.w_qp.axis == 0 and op.w_qp.scale.numel() == op.q_w.shape[0], "TFLite quantizes conv weights per channel"
    if "padding" in claims:
        assert op.options["padding"] == PADDING[claims["padding"]]
    if "stride" in claims:
        assert op.stride == tuple(claims["stride"])
    if "dilation" in claims:
        assert op.dilation == tuple(claims["dilation"])
    if op.op == "DEPTHWISE_CONV_2D":
        assert op.groups == op.input_shape[1] and op.q_w.shape[1] == 1
        assert op.options["depthMultiplier"] == claims["multiplier"] == op.q_w.shape[0] // op.groups
    else:
        assert op.groups == 1


def test_same_padding_is_tflites():
    op = litert.read_op(HERE / "conv_stride2_same.tflite")  # 8x8, k 3, stride 2: one extra row below
    assert op.padding == (0, 1, 0, 1)
    assert litert.read_op(HERE / "conv_dilation2.tflite").padding == (2, 2, 2, 2)


@pytest.mark.parametrize("backend", ["ref", "fast"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_qkit_matches_tflite_reference(oracle, name, backend):
    op, xs, expected = oracle[name]
    for x, want in zip(xs, expected):
        got = litert.run_qkit(op, x, backend=backend)
        assert got.dtype == torch.int8 and got.shape == want.shape
        mismatches = int((got != want).sum())
        assert mismatches == 0, f"{name} ({backend}): {mismatches} of {want.numel()} outputs differ from TFLite"


@pytest.mark.parametrize("rounding", ["single", "double_up", "double", "float64"])
def test_fast_equals_ref_for_every_rounding(oracle, rounding):
    """The compiled epilogue of every rule, on the files' real grids and full-range inputs."""
    for name, (op, xs, _) in sorted(oracle.items()):
        for x in xs[:1] + xs[-2:]:
            want = litert.run_qkit(op, x, backend="ref", rounding=rounding)
            assert torch.equal(litert.run_qkit(op, x, backend="fast", rounding=rounding), want), name


def test_the_other_rule_would_be_caught(oracle):
    """The comparison can fail: each op family's other rounding disagrees with TFLite somewhere."""
    def mismatches(kind, rounding):
        return sum(int((litert.run_qkit(op, x, rounding=rounding) != want).sum())
                   for op, xs, wants in oracle.values() if (op.op == "FULLY_CONNECTED") == (kind == "fc")
                   for x, want in zip(xs, wants))
    assert mismatches("fc", "double") > 0  # TFLite's reference FC no longer uses the fixed-point pair
    assert mismatches("conv", "float64") > 0 and mismatches("conv", "single") > 0  # its convs still do


def test_fused_activation_clamps_inside_widened_grids(oracle):
    """On the ``*_wide`` files the fused ReLU / ReLU6 clamp lies inside the grid, and binds."""
    wide = [name for name in CASES if CASES[name].get("wide")]
    assert len(wide) >= 3
    for name in wide:
        op, xs, wants = oracle[name]
        assert op.y_qp.qmin == int(op.y_qp.zero_point) > -128  # ReLU and ReLU6: nothing below the level of 0.0
        if op.activation == "RELU6":  # zero point 0, scale 8/127: 6.0 is level round(95.25) = 95
            assert op.y_qp.qmax == round(6.0 / op.y_qp.scale.item()) < 127
        out = torch.cat([w.flatten() for w in wants])
        assert (out == op.y_qp.qmin).any() and out.min() >= op.y_qp.qmin and out.max() <= op.y_qp.qmax
        unclamped = op._replace(y_qp=op.y_qp._replace(qmin=-128, qmax=127))
        assert any((litert.run_qkit(unclamped, x) != w).any() for x, w in zip(xs, wants)), name


def test_int32_bias_is_used_as_stored(oracle):
    op, xs, expected = oracle["fc_bias"]
    shifted = op._replace(bias=op.bias + 1000)  # a different stored bias must change the output
    assert (litert.run_qkit(shifted, xs[0]) != expected[0]).any()


def test_reader_refuses_other_files(tmp_path):
    with pytest.raises(ValueError, match="exactly one of"):
        litert.read_op(HERE / "other" / "max_pool.tflite")
    bad = tmp_path / "notes.tflite"
    bad.write_bytes(b"this is not a flatbuffer at all")
    with pytest.raises(ValueError, match="not a .tflite file"):
        litert.read_op(bad)
    with pytest.raises(FileNotFoundError):
        litert.read_op(tmp_path / "missing.tflite")


def test_runners_refuse_bad_inputs():
    op = litert.read_op(HERE / "conv_same.tflite")
    with pytest.raises(TypeError, match="int8"):
        litert.run_litert(op, torch.zeros(1, 3, 7, 7))
    with pytest.raises(ValueError, match="shape"):
        litert.run_qkit(op, torch.zeros(1, 3, 6, 7, dtype=torch.int8))
    with pytest.raises(ValueError, match="resolver must be one of"):
        litert.run_litert(op, litert.random_input(op, 1), resolver="gpu")


def test_resolver_differences_table():
    """Runs and is well formed; the numbers themselves are for lesson 03 (they depend on the CPU)."""
    paths = [HERE / "fc_bias.tflite", HERE / "dw_m1_same.tflite"]
    rows = litert.resolver_differences(paths, batches=1, batch=4)
    assert [(r["file"], r["resolver"]) for r in rows] == [
        ("fc_bias", "optimized"), ("fc_bias", "xnnpack"), ("dw_m1_same", "optimized"), ("dw_m1_same", "xnnpack")]
    for r in rows:
        assert r["outputs"] == (4 * 6 if r["op"] == "FULLY_CONNECTED" else 4 * 4 * 7 * 7)
        assert 0 <= r["mismatches"] <= r["outputs"] and (r["mismatches"] == 0) == (r["max_abs_diff"] == 0)
    text = litert.format_table(rows)
    assert text.splitlines()[0].split() == ["file", "op", "resolver", "outputs", "mismatches", "max_abs_diff"]
    assert len(text.splitlines()) == 5


def test_rounding_matches_table():
    rows = litert.rounding_matches([HERE / "conv_same.tflite"], resolvers=("reference",), batches=1, batch=2)
    assert len(rows) == 1 and rows[0]["outputs"] == 2 * 4 * 7 * 7
    assert rows[0]["double"] == 0  # TFLite's reference conv: the fixed-point pair
    assert set(rows[0]) == {"file", "op", "resolver", "outputs", "double", "single", "float64", "double_up"}
