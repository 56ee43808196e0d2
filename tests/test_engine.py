"""qkit.kernels.engine: every exact int8 matmul path that runs here is bit-identical to int64; the choice."""

from __future__ import annotations

import pytest
import torch

import qkit.data
import qkit.models
import qkit.ptq
from qkit import choose_qparams, quantize, tensor_range, weight_qparams
from qkit.kernels import engine, fast, int8_conv2d, int8_linear
from qkit.kernels import matmul as mm

pytestmark = pytest.mark.lesson03

RUNNABLE = [name for name, (_, check) in mm.CANDIDATES.items() if check() is None]
SHAPES = [(1, 1, 1), (3, 1, 5), (7, 13, 5), (5, 1024, 3), (4, 1025, 6), (3, 2049, 2), (9, 3000, 17),
          (33, 64, 1), (1, 300, 40)]


def int64_matmul(a, b):
    return (a.long() @ b.long()).to(torch.int32)  # exact for these sizes: |.| <= 3000 · 2**14 < 2**31


def test_this_machine_has_more_than_one_path():
    assert {"int_mm", "float32"} <= set(RUNNABLE)  # float32 runs everywhere; torch 2.13 has _int_mm


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("n,k,m", SHAPES)
def test_candidate_is_exact_on_random_and_extreme_data(name, n, k, m):
    fn = mm.CANDIDATES[name][0]
    gen = torch.Generator().manual_seed(n * 7919 + k * 31 + m)
    a = torch.randint(-128, 128, (n, k), generator=gen, dtype=torch.int8)
    b = torch.randint(-128, 128, (m, k), generator=gen, dtype=torch.int8).T  # (K, M) view, as layers pass it
    got = fn(a, b)
    assert got.dtype == torch.int32 and got.shape == (n, m)
    assert torch.equal(got, int64_matmul(a, b))
    for va, vb in [(-128, -128), (127, -128), (127, 127), (-128, 127)]:  # full range everywhere
        a_x, b_x = torch.full((n, k), va, dtype=torch.int8), torch.full((k, m), vb, dtype=torch.int8)
        assert torch.equal(fn(a_x, b_x), torch.full((n, m), k * va * vb, dtype=torch.int32)), (va, vb)


@pytest.mark.parametrize("name", RUNNABLE)
def test_candidate_is_exact_on_mixed_extreme_rows(name):
    """Rows alternating -128/127 against columns of -128 (the AVX2 u8×s8 saturation case) and random."""
    a = torch.tensor([-128, 127] * 700, dtype=torch.int8).reshape(2, 700).repeat(3, 1)  # (6, 700)
    a[1::2] = -128
    b = torch.full((700, 5), -128, dtype=torch.int8)
    b[::2, 1] = 127
    assert torch.equal(mm.CANDIDATES[name][0](a, b), int64_matmul(a, b))


def test_float32_chunk_bound_is_tight():
    """One chunk of 1024 products of -128 · -128 sums to exactly 2**24; unchunked 1025 would not be safe."""
    a, b = torch.full((1, 1024), -128, dtype=torch.int8), torch.full((1024, 1), -128, dtype=torch.int8)
    assert mm.CHUNK * 128 * 128 == 2 ** 24
    assert int(mm.float32_chunked(a, b)) == 2 ** 24
    a2 = torch.cat([a, torch.ones(1, 1, dtype=torch.int8)], 1)  # (1, 1025): 2**24 + 1 is no float32
    assert int(mm.float32_chunked(a2, torch.cat([b, torch.ones(1, 1, dtype=torch.int8)]))) == 2 ** 24 + 1


def test_float32_path_ignores_a_lowered_matmul_precision():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        a = torch.randint(-128, 128, (8, 2000), dtype=torch.int8)
        b = torch.randint(-128, 128, (2000, 8), dtype=torch.int8)
        assert torch.equal(mm.float32_chunked(a, b), int64_matmul(a, b))
        assert torch.get_float32_matmul_precision() == "medium"  # restored
    finally:
        torch.set_float32_matmul_precision(before)


def linear_layer(seed, n, k, m):
    gen = torch.Generator().manual_seed(seed)
    x, w = torch.randn(n, k, generator=gen) * 0.5 + 0.3, torch.randn(m, k, generator=gen) / k ** 0.5
    b = torch.randn(m, generator=gen) * 0.1
    x_qp, w_qp = choose_qparams(*tensor_range(x)), weight_qparams(w, narrow=True)
    y_qp = choose_qparams(*tensor_range(torch.nn.functional.linear(x, w, b)))
    return quantize(x, x_qp), x_qp, quantize(w, w_qp), w_qp, b, y_qp


def conv_layer(seed, n, c_in, c_out, size, kernel, groups):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, size, size, generator=gen).clamp(min=-1.0)
    w = torch.randn(c_out, c_in // groups, kernel, kernel, generator=gen) * 0.1
    b = torch.randn(c_out, generator=gen) * 0.1
    x_qp, w_qp = choose_qparams(*tensor_range(x)), weight_qparams(w)
    y_qp = choose_qparams(-4.0, 4.0)
    return quantize(x, x_qp), x_qp, quantize(w, w_qp), w_qp, b, y_qp


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("n,k,m", [(1, 1, 4), (37, 300, 19), (16, 2500, 8), (256, 64, 64)])
def test_int8_linear_on_each_forced_path_equals_ref(forced_matmul, name, n, k, m):
    forced_matmul(name)
    args = linear_layer(n + k + m, n, k, m)
    want = int8_linear(*args, backend="ref")
    for backend in ("fast", "eager"):
        assert torch.equal(int8_linear(*args, backend=backend), want), backend
    assert engine.info().chosen == name


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("c_in,c_out,kernel,groups,geometry", [
    (3, 8, 3, 1, dict(padding=1)),
    (128, 4, 3, 1, dict(stride=2, padding=1)),  # K = 1152: two float32 chunks
    (8, 6, 3, 2, dict(dilation=2, padding=2)),
    (4, 4, 1, 1, dict()),  # K = 4
    (2, 5, 1, 1, dict()),  # K = 2
])
def test_int8_conv2d_on_each_forced_path_equals_ref(forced_matmul, name, c_in, c_out, kernel, groups, geometry):
    forced_matmul(name)
    args = conv_layer(c_in * c_out, 2, c_in, c_out, 7, kernel, groups)
    want = int8_conv2d(*args, groups=groups, **geometry, backend="ref")
    assert torch.equal(int8_conv2d(*args, groups=groups, **geometry, backend="fast"), want)


def test_info_names_the_choice_and_the_reasons(forced_matmul):
    engine.reset()
    info = engine.info()
    assert info.chosen in RUNNABLE and not info.forced
    assert info.capability == torch.backends.cpu.get_cpu_capability()
    assert "fastest exact path" in info.reason
    by = {c.name: c for c in info.candidates}
    assert set(by) == set(engine.PATHS)
    for name in RUNNABLE:
        assert by[name].exact is True and len(by[name].seconds) >= 1
    chosen = by[info.chosen]
    assert all(chosen.score <= c.score for c in info.candidates if c.exact)
    text = engine.describe()
    assert text.startswith(f"int8 matmul path: {info.chosen}") and info.capability in text
    assert info.probe_seconds < 5.0  # "about a second" with margin for a loaded machine


def test_the_choice_is_the_fastest_by_the_probe_timings(forced_matmul, monkeypatch):
    fake = {"int_mm": 3.0, "float32": 1.0, "onnxruntime": 2.0}
    fn_to_name = {fn: name for name, (fn, _) in mm.CANDIDATES.items()}
    monkeypatch.setattr(engine, "_time", lambda fn, n, k, m: fake[fn_to_name[fn]] * 1e-4)
    engine.reset()
    assert engine.info().chosen == "float32"
    fake.update(float32=5.0)
    engine.reset()
    assert engine.info().chosen == min((n for n in RUNNABLE), key=fake.get)


def test_a_wrong_candidate_is_never_chosen(forced_matmul, monkeypatch):
    wrong = lambda a, b: torch.zeros(a.shape[0], b.shape[1], dtype=torch.int32)  # noqa: E731
    monkeypatch.setitem(mm.CANDIDATES, "int_mm", (wrong, lambda: None))
    monkeypatch.setattr(engine, "_time", lambda fn, n, k, m: 1e-6 if fn is wrong else 1e-3)  # and "fastest"
    engine.reset()
    info = engine.info()
    assert info.chosen != "int_mm"
    assert "int_mm gives wrong sums here" in info.reason
    assert next(c for c in info.candidates if c.name == "int_mm").exact is False
    args = linear_layer(5, 9, 50, 7)
    assert torch.equal(int8_linear(*args), int8_linear(*args, backend="ref"))
    forced_matmul("int_mm")
    with pytest.raises(ValueError, match="cannot be used on this machine: wrong sums"):
        engine.info()


def test_env_var_forces_a_path_and_rejects_bad_values(forced_matmul, monkeypatch):
    forced_matmul("float32")
    info = engine.info()
    assert info.chosen == "float32" and info.forced and "QKIT_INT8_MATMUL=float32" in info.reason
    forced_matmul("cuda")
    with pytest.raises(ValueError, match=r"QKIT_INT8_MATMUL must be one of .*'int_mm'.*got 'cuda'"):
        fast.int8_matmul(torch.ones(2, 2, dtype=torch.int8), torch.ones(2, 2, dtype=torch.int8))
    monkeypatch.setitem(mm.CANDIDATES, "onnxruntime", (mm.onnxruntime_u8u8, lambda: "not installed (test)"))
    forced_matmul("onnxruntime")
    with pytest.raises(ValueError, match="cannot be used on this machine: not installed"):
        engine.info()


@pytest.fixture(scope="module")
def digits_x():
    return qkit.data.digits("test")[0]


@pytest.mark.parametrize("name", RUNNABLE)
def test_model_converted_inside_inference_mode_runs_inside_and_outside(forced_matmul, digits_x, name):
    forced_matmul(name)
    X = digits_x
    want = qkit.ptq.convert(qkit.models.load("mlp"), "int8", X[:64])(X)
    with torch.inference_mode():
        m = qkit.ptq.convert(qkit.models.load("mlp"), "int8", X[:64])
        inside, again = m(X), m(X)
    outside = m(X)
    with torch.no_grad():
        no_grad = m(X)
    for out in (inside, again, outside, no_grad):
        assert torch.equal(out, want)


def test_inference_tensor_weights_written_in_place_are_not_served_stale():
    with torch.inference_mode():
        args = list(linear_layer(3, 6, 20, 5))
        first = int8_linear(*args)
        args[2].mul_(-1).clamp_(-127, 127)  # in place: an inference tensor has no version counter
        second = int8_linear(*args)
    assert torch.equal(first, int8_linear(*linear_layer(3, 6, 20, 5), backend="ref"))
    assert torch.equal(second, int8_linear(*args, backend="ref"))
    assert not torch.equal(first, second)


def test_the_package_exposes_info_and_describe():
    import qkit.kernels

    assert qkit.kernels.info() is engine.info()
    assert str(qkit.kernels.info()) == qkit.kernels.describe()


AVX2_SCRIPT = r"""
import torch
from qkit.kernels import engine, int8_linear
from qkit.kernels import matmul as mm
info = engine.info()
by = {c.name: c for c in info.candidates}
a = torch.full((8, 600), -128, dtype=torch.int8); a[::2] = 127
b = torch.full((600, 8), -128, dtype=torch.int8); b[:, ::3] = 127
raw_ok = torch.equal(mm.int_mm(a, b), (a.long() @ b.long()).int())
print(info.capability, info.chosen, by["int_mm"].exact, raw_ok)
assert by[info.chosen].exact is True
assert raw_ok or by["int_mm"].exact is False, "int_mm is wrong on full-range data but passed the probe"
assert by["int_mm"].exact is not False or info.chosen != "int_mm"
from qkit import QParams
g = lambda s, z=0: QParams(torch.tensor(s), torch.tensor(z, dtype=torch.int32), -128, 127)
args = (a, g(0.02, -3), b.T.contiguous(), g(0.01), None, g(40.0))
assert torch.equal(int8_linear(*args), int8_linear(*args, backend="ref"))
"""


def test_a_cpu_limited_to_avx2_gets_an_exact_path():
    """oneDNN limited to AVX2 (as on an AVX2-only laptop): whatever ``_int_mm`` does there, the choice is exact.

    On this kit's torch 2.13, ``torch._int_mm`` under ``ONEDNN_MAX_CPU_ISA=AVX2`` gives wrong
    (saturated) sums on full-range data; the probe must notice and choose another path.
    """
    import os
    import subprocess
    import sys

    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    env.pop(engine.ENV, None)
    run = subprocess.run([sys.executable, "-c", AVX2_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not run.stdout.startswith("AVX512"), run.stdout  # torch obeyed ATEN_CPU_CAPABILITY


def test_the_hand_written_onnx_model_is_what_onnx_helper_builds():
    import onnx  # the [test] extra installs it
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    ours = onnx.load_from_string(mm.matmul_integer_model())
    onnx.checker.check_model(ours, full_check=True)
    zero = np.array(128, dtype=np.uint8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "za", "zb"], ["Y"])], "qkit_int8_matmul",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, ["N", "K"]),
         helper.make_tensor_value_info("B", TensorProto.UINT8, ["K", "M"])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, ["N", "M"])],
        [numpy_helper.from_array(zero, "za"), numpy_helper.from_array(zero, "zb")])
    theirs = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    theirs.ir_version = 8
    theirs.ClearField("producer_name")
    assert ours == theirs


def test_small_products_take_the_path_fastest_on_the_small_probe(forced_matmul, monkeypatch):
    fake = {"int_mm": (3.0, 1.0), "float32": (2.0, 2.0), "onnxruntime": (1.0, 9.0)}  # (large, small)
    fn_to_name = {fn: name for name, (fn, _) in mm.CANDIDATES.items()}
    monkeypatch.setattr(engine, "_time", lambda fn, n, k, m: fake[fn_to_name[fn]][(n, k, m) == engine.SMALL] * 1e-4)
    engine.reset()
    info = engine.info()
    runnable = RUNNABLE
    assert info.chosen == min(runnable, key=lambda n: fake[n][0])
    assert info.small == min(runnable, key=lambda n: fake[n][1]) and f"multiply-adds: {info.small}" in info.reason
    calls = []  # which function runs, by size
    monkeypatch.setattr(engine._State, "small_fn", lambda a, b: calls.append("small") or mm.float32_chunked(a, b))
    monkeypatch.setattr(engine._State, "fn", lambda a, b: calls.append("large") or mm.float32_chunked(a, b))
    a, b = torch.ones(256, 64, dtype=torch.int8), torch.ones(64, 128, dtype=torch.int8)
    assert torch.equal(engine.matmul(a, b), torch.full((256, 128), 64, dtype=torch.int32))
    big = torch.ones(256, 1024, dtype=torch.int8)
    assert torch.equal(engine.matmul(big, torch.ones(1024, 64, dtype=torch.int8)),
                       torch.full((256, 64), 1024, dtype=torch.int32))
    assert calls == ["small", "large"]
