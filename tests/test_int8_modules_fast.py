"""The int8 modules' fast paths: compiled add / rescale / pool, kept constants, Quantize / Dequantize, whole models."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import qkit.ptq
from qkit import choose_qparams, dequantize, quantize
from qkit.fixedpoint import multiply_by_quantized_multiplier as mbqm
from qkit.fixedpoint import quantize_multiplier
from qkit.kernels import compiled, conv_engine
from qkit.kernels.compiled import Compiled
from qkit.nn import Dequantize, QuantConv2d, QuantLinear, Quantize, clamp_grid
from qkit.ptq import modules

pytestmark = pytest.mark.lesson04

GRIDS = [(-1.0, 1.0), (0.0, 4.0), (-6.0, 0.5), (-0.01, 0.02), (-30.0, 30.0)]


def int8(seed, shape, channels_last=False):
    q = torch.randint(-128, 128, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.int8)
    q.view(-1)[:4] = torch.tensor([-128, 127, -128, 127], dtype=torch.int8)
    return q.contiguous(memory_format=torch.channels_last) if channels_last else q


def tflite_add(q_a, q_b, a_qp, b_qp, y_qp, activation):
    """TFLite's integer add written from its formulas with qkit.fixedpoint (an independent reference)."""
    s_a, s_b, s_y = float(a_qp.scale), float(b_qp.scale), float(y_qp.scale)
    twice = 2 * max(s_a, s_b)
    acc = sum(mbqm((q.long() - int(qp.zero_point)) << 20, *quantize_multiplier(s / twice)).long()
              for q, qp, s in ((q_a, a_qp, s_a), (q_b, b_qp, s_b)))
    y = mbqm(acc, *quantize_multiplier(twice / (2**20 * s_y))).long() + int(y_qp.zero_point)
    qp = clamp_grid(y_qp, activation)
    return y.clamp(qp.qmin, qp.qmax).to(torch.int8)


@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_compiled_add_equals_tflites_formulas(activation, channels_last):
    for i, (ga, gb, gy) in enumerate(zip(GRIDS, GRIDS[1:] + GRIDS[:1], GRIDS[2:] + GRIDS[:2])):
        a_qp, b_qp, y_qp = choose_qparams(*ga), choose_qparams(*gb), choose_qparams(*gy)
        q_a, q_b = int8(i, (3, 5, 4, 4), channels_last), int8(i + 9, (3, 5, 4, 4), channels_last)
        got = modules.QuantAdd(a_qp, b_qp, y_qp, activation)(q_a, q_b)
        assert torch.equal(got, tflite_add(q_a, q_b, a_qp, b_qp, y_qp, activation)), (ga, gb, gy)
    assert modules.ADD.ran and not modules.ADD.failed  # the compiled kernel ran


def test_rescale_and_pool_equal_the_fixed_point_formulas():
    for i, (gx, gy) in enumerate(zip(GRIDS, GRIDS[1:] + GRIDS[:1])):
        x_qp, y_qp = choose_qparams(*gx), choose_qparams(*gy)
        q = int8(i, (2, 6, 3, 5), channels_last=True)
        m, s = quantize_multiplier(float(x_qp.scale) / float(y_qp.scale))
        want = (mbqm(q.long() - int(x_qp.zero_point), m, s).long() + int(y_qp.zero_point)).clamp(-128, 127)
        assert torch.equal(modules.rescale(q, x_qp, y_qp), want.to(torch.int8)), (gx, gy)
        m, s = quantize_multiplier(float(x_qp.scale) / (15 * float(y_qp.scale)))
        acc = (q.long() - int(x_qp.zero_point)).sum(dim=(2, 3), keepdim=True)
        want = (mbqm(acc, m, s).long() + int(y_qp.zero_point)).clamp(-128, 127).to(torch.int8)
        for keepdim in (True, False):
            got = modules.QuantGlobalAvgPool(x_qp, y_qp, keepdim)(q)
            assert torch.equal(got, want if keepdim else want.reshape(2, 6)), (gx, gy, keepdim)


def test_a_multiplier_above_one_takes_the_eager_code():
    a_qp, y_qp = choose_qparams(-8.0, 8.0), choose_qparams(-0.5, 0.5)  # s_a / s_y = 16
    q_a, q_b = int8(0, (2, 3)), int8(1, (2, 3))
    assert torch.equal(modules.QuantAdd(a_qp, a_qp, y_qp)(q_a, q_b), tflite_add(q_a, q_b, a_qp, a_qp, y_qp, None))
    m, s = quantize_multiplier(16.0)
    want = (mbqm(q_a.long() - int(a_qp.zero_point), m, s).long() + int(y_qp.zero_point)).clamp(-128, 127)
    assert torch.equal(modules.rescale(q_a, a_qp, y_qp), want.to(torch.int8))


def test_compiled_falls_back_to_eager_once_with_one_warning():
    def broken(x):
        raise RuntimeError("no compiler here")

    c = Compiled(broken, "test kernel", direct=False)
    c.fn = lambda *args: broken(*args)  # "compiled" and failing
    c.eager = lambda x: x + 1
    with pytest.warns(UserWarning, match="torch.compile of the test kernel failed"):
        assert c(torch.tensor(1)) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c(torch.tensor(2)) == 3 and c.failed  # eager from then on, silently


def test_quantize_and_dequantize_modules_give_the_functions_bits():
    qp = choose_qparams(-1.0, 3.0)
    s = float(qp.scale)
    ties = (torch.arange(-140, 140) + 0.5) * s  # exact halves of a level: round half to even
    x = torch.cat([torch.randn(500) * 2, ties, torch.tensor([float("inf"), -float("inf"), 1e30, -0.0])])
    assert torch.equal(Quantize(qp)(x), quantize(x, qp))
    q = int8(0, (7, 9))
    assert torch.equal(Dequantize(qp)(q), dequantize(q, qp))
    with pytest.raises(ValueError, match="NaN"):
        Quantize(qp)(torch.tensor([0.0, float("nan")]))
    narrow = qp._replace(qmin=-10, qmax=10)
    layer = Dequantize(qp)
    layer.qp = narrow
    with pytest.raises(ValueError, match="must lie in"):
        layer(q)  # off its grid: the function's error, not silence


def test_layers_keep_their_constants_until_a_source_changes():
    torch.manual_seed(0)
    qp = choose_qparams(-3.0, 3.0)
    layer = QuantLinear(torch.randn(4, 8), torch.randn(4), qp, qp)
    first = layer.constants()
    assert layer.constants() is first  # kept, not rebuilt
    x = quantize(torch.randn(5, 8), qp)
    before = layer(x)
    with torch.no_grad():
        layer.q_w.mul_(-1)  # an in-place write: the version counter moves
    assert layer.constants() is not first
    ref = copy.deepcopy(layer)
    ref.backend = "ref"
    assert torch.equal(layer(x), ref(x)) and not torch.equal(layer(x), before)
    kept = layer.constants()
    layer.y_qp = choose_qparams(-1.0, 1.0)  # a new grid object
    assert layer.constants() is not kept


def test_conv_constants_follow_load_state_dict():
    torch.manual_seed(1)
    qp = choose_qparams(-3.0, 3.0)
    a = QuantConv2d(torch.randn(4, 2, 3, 3), None, qp, qp, padding=1)
    b = copy.deepcopy(a)
    with torch.no_grad():
        b.q_w.zero_()
    x = quantize(torch.randn(2, 2, 5, 5), qp)
    assert not torch.equal(b(x), a(x))  # b keeps constants of its zeroed weight
    b.load_state_dict(a.state_dict())  # copies into b's buffers: their versions move
    assert torch.equal(b(x), a(x))


@pytest.mark.parametrize("path", conv_engine.PATHS)
def test_every_zoo_model_is_bit_identical_to_its_ref_backend(zoo, calibration, digits_test, monkeypatch, path):
    monkeypatch.setenv(conv_engine.ENV, path)
    conv_engine.reset()
    try:
        x = digits_test[0][:64]
        for name in ("inception", "mlp", "mobilenet_v1", "mobilenet_v2", "resnet", "wide_mlp"):
            fast_model = qkit.ptq.convert(zoo[name], "int8", calibration=calibration)
            ref_model = copy.deepcopy(fast_model)
            for mod in ref_model.modules():
                if isinstance(mod, (QuantConv2d, QuantLinear)):
                    mod.backend = "ref"
            with torch.no_grad():
                assert torch.equal(fast_model(x), ref_model(x)), name
    finally:
        monkeypatch.delenv(conv_engine.ENV)
        conv_engine.reset()


def test_wrong_vectorised_code_is_replaced_by_scalar_code_silently(monkeypatch):
    real_compile = torch.compile

    def compile_wrong_unless_scalar(fn, **kwargs):
        if kwargs.get("options", {}).get("cpp.simdlen") == 1:
            return real_compile(fn, **kwargs)
        return lambda x: fn(x) + 1  # vectorised code, cached or not, that gives other bits

    monkeypatch.setattr(torch, "compile", compile_wrong_unless_scalar)
    c = Compiled(lambda x: x * 3 - 1, "test kernel", direct=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a path found wrong is said in .mode, never warned
        assert torch.equal(c(torch.arange(40)), torch.arange(40) * 3 - 1)
    assert c.mode == "scalar" and not c.failed
    assert torch.equal(c(torch.arange(7)), torch.arange(7) * 3 - 1)


def test_a_wrong_cached_kernel_is_compiled_afresh(monkeypatch):
    real_compile = torch.compile

    def compile_wrong_if_cached(fn, **kwargs):
        if kwargs.get("options", {}).get("fx_graph_cache") is False:
            return real_compile(fn, **kwargs)
        return lambda x: fn(x) + 1  # a cached kernel that gives other bits

    monkeypatch.setattr(torch, "compile", compile_wrong_if_cached)
    c = Compiled(lambda x: x * 5, "test kernel", direct=False)
    assert torch.equal(c(torch.arange(40)), torch.arange(40) * 5)
    assert c.mode == "vectorized, uncached"


def test_compiled_code_wrong_even_without_vectorisation_gives_way_to_eager(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: (lambda x: fn(x) + 1))
    c = Compiled(lambda x: x * 3, "test kernel", direct=False)
    with pytest.warns(UserWarning, match="other bits than the eager code"):
        assert torch.equal(c(torch.arange(5)), torch.arange(5) * 3)
    assert c.mode == "eager"


def test_direct_kernel_serves_every_size_and_gives_the_eager_bits(monkeypatch):
    monkeypatch.setattr(compiled, "direct_trusted", lambda: True)  # the mechanism, on any CPU
    c = Compiled(lambda x, m: (x * m + 3) >> 2, "test kernel")
    m = torch.tensor([5, -7, 11])
    for rows in (6, 40, 3, 129):  # one symbolic trace, whatever the number of rows
        x = torch.randint(-1000, 1000, (rows, 3))
        assert torch.equal(c(x, m), (x * m + 3) >> 2)
    assert len(c.direct) == 1 and c.fn is None and c.mode == "direct"


@pytest.mark.parametrize("direct", [True, False])
def test_a_trace_made_with_one_tensor_twice_is_not_reused_for_two(monkeypatch, direct):
    """The single rounding passes round_up as round_down too; the double rounding then passes two tensors."""
    monkeypatch.setattr(compiled, "direct_trusted", lambda: direct)
    c = Compiled(lambda x, up, down: torch.where(x >= 0, x + up, x + down), "test kernel")
    x, up = torch.arange(-20, 20).reshape(4, 10), torch.full((10,), 7)
    assert torch.equal(c(x, up, up), torch.where(x >= 0, x + 7, x + 7))
    down = torch.full((10,), -5)
    assert torch.equal(c(x, up, down), torch.where(x >= 0, x + 7, x - 5))


def test_a_direct_kernel_with_two_outputs_serves_them_as_a_tuple(monkeypatch):
    """The float64 epilogue returns (int8 outputs, near-tie count): the direct path must take it, not give way."""
    monkeypatch.setattr(compiled, "direct_trusted", lambda: True)
    c = Compiled(lambda x: (x * 3, (x > 2).sum()), "test kernel")
    x = torch.arange(8)
    out = c(x)
    assert c.mode == "direct" and isinstance(out, tuple)
    again = c(torch.arange(5))
    assert isinstance(again, tuple) and torch.equal(again[0], torch.arange(5) * 3) and int(again[1]) == 2


def test_a_wrong_direct_kernel_gives_way_to_torch_compile(monkeypatch):
    def compile_fx_wrong(gm, fakes):
        return lambda *args: [gm(*args) + 1]  # inductor's kernel, giving other bits

    monkeypatch.setattr(compiled, "compile_fx", compile_fx_wrong)
    monkeypatch.setattr(compiled, "direct_trusted", lambda: True)
    c = Compiled(lambda x: x * 7, "test kernel")
    assert torch.equal(c(torch.arange(30)), torch.arange(30) * 7)
    assert not c.direct and c.fn is not None and c.mode == "vectorized"
    assert torch.equal(c(torch.arange(9)), torch.arange(9) * 7)


def test_direct_kernels_only_where_torch_runs_avx512(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not compiled.direct_trusted()
    c = Compiled(lambda x: x * 2 + 1, "test kernel")
    assert torch.equal(c(torch.arange(20)), torch.arange(20) * 2 + 1)
    assert not c.use_direct and not c.direct and c.fn is not None  # the torch.compile chain served it
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert compiled.direct_trusted()


AVX2_SCRIPT = """
import torch, qkit
from qkit import data, models, ptq
from qkit.kernels import compiled, fast
from qkit.nn import QuantConv2d, QuantLinear
from qkit.ptq import modules
X, _ = data.digits("train"); Xt, _ = data.digits("test")
print(torch.backends.cpu.get_cpu_capability())
for name in ("mlp", "resnet", "inception"):
    model = ptq.convert(models.load(name), "int8", calibration=X[:256])
    with torch.no_grad():
        got = model(Xt[:100])
        for mod in model.modules():
            if isinstance(mod, (QuantConv2d, QuantLinear)):
                mod.backend = "ref"
        assert torch.equal(got, model(Xt[:100])), name
print([c.mode for c in (fast._Compiled, fast._FLOAT64, fast._FLOAT_EPILOGUE, modules.ADD, modules.POOL)])
"""


def test_under_avx2_every_compiled_kernel_gives_refs_bits():
    """torch's AVX2 code (as on an AVX2-only laptop; simulated here by ATEN_CPU_CAPABILITY): whole models exact.

    inductor's vectorised AVX2 code for a 64-bit torch.where gave wrong bits here (torch 2.13):
    the check against eager must catch any such kernel and recompile it.
    """
    import os
    import subprocess
    import sys

    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    run = subprocess.run([sys.executable, "-c", AVX2_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not run.stdout.startswith("AVX512"), run.stdout
    assert "eager" not in run.stdout.splitlines()[-1], run.stdout  # compiled (afresh if need be), not eager


def test_the_pool_is_right_in_every_memory_layout_in_any_order():
    """A kernel traced for one layout must not serve another unchecked (it gave wrong sums here once)."""
    x_qp, y_qp = choose_qparams(-1.0, 2.0), choose_qparams(-0.5, 1.5)
    for i, channels_last in enumerate([True, False, True, False]):
        q = int8(i, (4, 10, 2 + i, 3), channels_last)
        m, s = quantize_multiplier(float(x_qp.scale) / (q.shape[2] * 3 * float(y_qp.scale)))
        acc = (q.long() - int(x_qp.zero_point)).sum(dim=(2, 3), keepdim=True)
        want = (mbqm(acc, m, s).long() + int(y_qp.zero_point)).clamp(-128, 127).to(torch.int8)
        assert torch.equal(modules.QuantGlobalAvgPool(x_qp, y_qp)(q), want), (i, channels_last)
