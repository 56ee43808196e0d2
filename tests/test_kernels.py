"""Lesson 03: integer-only int8 kernels (qkit.kernels): ref vs fast vs eager, vs float, errors."""

from __future__ import annotations

import types
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

from qkit import QParams, choose_qparams, dequantize, quantize
from qkit.fixedpoint import multiply_by_quantized_multiplier, quantize_multipliers
from qkit.kernels import BACKENDS, compiled, fast, int8_conv2d, int8_linear

pytestmark = pytest.mark.lesson03

SETTINGS = settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
zero_points = st.sampled_from([-128, 127, 0]) | st.integers(-128, 127)


def grid(scale, zero_point=0, qmin=-128, qmax=127, axis=None) -> QParams:
    scale = torch.as_tensor(scale, dtype=torch.float32)
    return QParams(scale, torch.full(scale.shape, zero_point, dtype=torch.int32), qmin, qmax, axis)


def weight_grid(m: int, per_channel: bool, gen: torch.Generator) -> QParams:
    if per_channel:
        return grid(torch.rand(m, generator=gen) * 0.02 + 1e-3, axis=0)
    return grid(torch.rand((), generator=gen) * 0.02 + 1e-3)


def output_grid(y: torch.Tensor, x_qp: QParams, w_qp: QParams, squeeze: float) -> QParams:
    """A grid for float outputs ``y``, ``squeeze`` < 1 clips both ends; ``M = s_x s_w / s_y < 1``."""
    qp = choose_qparams(y.min().item() * squeeze, y.max().item() * squeeze)
    floor = 2 * float(x_qp.scale) * float(w_qp.scale.max())  # keeps M below 1/2
    return qp if float(qp.scale) >= floor else choose_qparams(-128 * floor, 127 * floor)


def float_reference(q_x, x_qp, q_w, w_qp, bias, op, **geometry) -> torch.Tensor:
    """The float model on the same grids, in float64: what the integers approximate."""
    x, w = dequantize(q_x, x_qp).double(), dequantize(q_w, w_qp).double()
    return op(x, w, None if bias is None else bias.double(), **geometry)


def linear_case(seed, n, k, m, z_x, per_channel, with_bias, squeeze):
    gen = torch.Generator().manual_seed(seed)
    q_x = torch.randint(-128, 128, (n, k), generator=gen, dtype=torch.int8)
    q_w = torch.randint(-128, 128, (m, k), generator=gen, dtype=torch.int8)
    x_qp, w_qp = grid(torch.rand((), generator=gen) * 0.05 + 1e-3, z_x), weight_grid(m, per_channel, gen)
    bias = torch.randn(m, generator=gen) * 0.5 if with_bias else None
    y = float_reference(q_x, x_qp, q_w, w_qp, bias, F.linear)
    return q_x, x_qp, q_w, w_qp, bias, output_grid(y, x_qp, w_qp, squeeze), y


@SETTINGS
@given(seed=st.integers(0, 2**31), n=st.sampled_from([1, 2, 7, 33]), k=st.integers(1, 300),
       m=st.sampled_from([1, 3, 16, 29]), z_x=zero_points, per_channel=st.booleans(),
       with_bias=st.booleans(), squeeze=st.floats(0.3, 1.2))
def test_linear_backends_bit_exact_and_within_one_level_of_float(
        seed, n, k, m, z_x, per_channel, with_bias, squeeze):
    """ref == eager == fast bit for bit; and |int - quantize(float)| <= 1 (ref.py's error bound)."""
    q_x, x_qp, q_w, w_qp, bias, y_qp, y = linear_case(seed, n, k, m, z_x, per_channel, with_bias, squeeze)
    out = {b: int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend=b) for b in BACKENDS}
    assert out["ref"].dtype == torch.int8 and out["ref"].shape == (n, m)
    assert torch.equal(out["ref"], out["eager"])
    assert torch.equal(out["ref"], out["fast"])
    expected = quantize(y.float(), y_qp).int()
    assert (out["ref"].int() - expected).abs().max() <= 1


EPILOGUES = {"float64": "_FLOAT64", "double": "_Compiled"}  # which compiled kernel each rounding runs


@pytest.mark.parametrize("rounding", sorted(EPILOGUES))
def test_fast_really_runs_the_compiled_epilogue(rounding):
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(0, 5, 40, 6, 3, True, True, 1.0)
    kernel = getattr(fast, EPILOGUES[rounding])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed compilation would warn
        out = int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, rounding=rounding)
    assert kernel.ran and not kernel.failed
    assert torch.equal(out, int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend="ref", rounding=rounding))


def float64_rounding(acc, real, z_y=0, qmin=-128, qmax=127):
    """TFLite's reference FULLY_CONNECTED rounding, written out: round(fl(acc · M)), ties away, clamped."""
    v = acc.double() * real  # float64, one IEEE product per output
    r = torch.trunc(v) + torch.where((v - torch.trunc(v)).abs() >= 0.5, torch.sign(v), 0.0)
    return torch.clamp(r + z_y, qmin, qmax).to(torch.int8)


def near_tie_case(gen, m=48, rows=64):
    """Multipliers fl(h / a0) (a0·M lands within an ulp of the half-integer h), a0 and its neighbours, and
    multipliers from 2**-36 to 2**25 (small D: many outputs near a tie), plus exact ties (M = k / 2**j)."""
    a0 = torch.randint(1, 2**24, (m,), generator=gen)
    h = torch.randint(-120, 120, (m,), generator=gen).double() + 0.5
    reals = torch.cat([h.abs() / a0.double(), torch.exp2(torch.empty(m).uniform_(-36, 25, generator=gen)).double(),
                       torch.tensor([0.5, 0.25, 0.75, 1.5, 3 * 2.0**-12, 2.0**-36, 2.0**25], dtype=torch.float64)])
    acc = torch.randint(-(2**31), 2**31, (rows, reals.numel()), generator=gen, dtype=torch.int64)
    acc[:, :m] = (a0 * h.sign().long()) + torch.randint(-1, 2, (rows, m), generator=gen) * (torch.arange(rows) % 2)[:, None]
    scaled = (torch.randn(rows, m, generator=gen, dtype=torch.float64) * 150 / reals[m:2 * m]).round()
    acc[:, m:2 * m] = scaled.clamp(-(2**31), 2**31 - 1).long()
    acc[:, 2 * m:] = torch.randint(-3000, 3000, (rows, 7), generator=gen)
    acc[:3] = torch.tensor([-(2**31), 2**31 - 1, 0])[:, None]
    return acc.to(torch.int32), reals


def test_float64_rounding_in_integers_gives_the_float64_bits():
    """epilogue_float64 (eager and compiled) and requantize equal round(fl(acc·M)), near-ties built on purpose."""
    gen = torch.Generator().manual_seed(11)
    flagged = 0
    for _ in range(4):
        acc, reals = near_tie_case(gen)
        z_y, y_qp = 5, grid(1.0, 5)
        want = float64_rounding(acc, reals, z_y)
        zeros, shift = torch.zeros(reals.numel(), dtype=torch.int32), torch.zeros(reals.numel(), dtype=torch.int32)
        prepared = fast.Prepared(zeros, reals, shift, True, fast.fused_constants(reals, shift, y_qp, "float64"),
                                 y_qp, "float64")
        raw, near_ties = fast.epilogue_float64(acc, zeros, *prepared.fused_args)
        wrong = raw != want
        assert not (wrong & ~fast_near_mask(acc, reals)).any()  # only flagged outputs may be off before the fix
        flagged += int(near_ties)
        assert torch.equal(fast.requantize(acc, prepared, fused=True), want)
        assert torch.equal(fast.requantize(acc, prepared, fused=False), want)
    assert flagged > 0  # the float64 recomputation was exercised


def fast_near_mask(acc, reals):
    """Outputs whose exact a·M lies within 2**-40 of a half-integer (a superset of what the epilogue flags)."""
    exact = acc.double() * reals  # close enough to locate near-ties (error ~2**-44 for |a·M| < 2**10)
    return ((exact.abs() - exact.abs().floor() - 0.5).abs() < 2.0**-40) | (exact.abs() >= 2.0**9)


def test_float64_epilogue_refuses_multipliers_outside_its_range():
    """M >= 2**26 or < 2**-36 (D out of 1..62) takes the eager float64 path: still the float64 bits."""
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(5, 4, 20, 3, 0, False, False, 1.0)
    for real in (2.0**-37, 2.0**26):
        reals = torch.full((3,), real, dtype=torch.float64)
        shift, y = torch.zeros(3, dtype=torch.int32), grid(1.0, 0)
        prepared = fast.Prepared(torch.zeros(3, dtype=torch.int32), reals, shift,
                                 fast._build(q_w, None, x_qp, w_qp, y, "float64").fusable,
                                 fast.fused_constants(reals, shift, y, "float64"), y, "float64")
        acc = torch.tensor([[3, -2**20, 2**30]], dtype=torch.int32).repeat(2, 1)
        assert torch.equal(fast.requantize(acc, prepared), float64_rounding(acc, reals))


def test_compiled_epilogue_is_traced_once_for_all_sizes(monkeypatch):
    """dynamic=True without duck sizing: a square first call must not pin N == M."""
    from torch._dynamo.utils import counters

    code = fast.epilogue.__code__.replace(co_name="epilogue_fresh", co_firstlineno=1)  # no dynamo state yet
    fresh = types.FunctionType(code, fast.epilogue.__globals__)
    monkeypatch.setattr(fast, "epilogue", fresh)
    monkeypatch.setattr(fast._Compiled, "fn", None)
    monkeypatch.setattr(fast._Compiled, "seen", set())
    monkeypatch.setattr(fast._Compiled, "direct_failed", True)  # the torch.compile path, traced by dynamo

    def call(n, m):
        q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(n * m, n, 12, m, 5, True, True, 1.0)
        out = int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp)
        assert torch.equal(out, int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend="ref"))
        return counters["stats"]["unique_graphs"]

    before = call(6, 6)
    assert [call(n, m) for n, m in [(9, 3), (33, 29), (2, 17), (64, 64)]] == [before] * 4


def test_numpy_inputs_are_accepted():
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(7, 3, 10, 4, -1, False, True, 1.0)
    want = int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend="ref")
    for b in BACKENDS:
        assert torch.equal(int8_linear(q_x.numpy(), x_qp, q_w.numpy(), w_qp, bias.numpy(), y_qp, backend=b), want)


def test_outputs_clamp_at_both_ends_bit_exact():
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(1, 33, 200, 29, -20, True, True, 0.2)
    out = {b: int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend=b) for b in BACKENDS}
    assert (out["ref"] == -128).sum() > 10 and (out["ref"] == 127).sum() > 10
    assert torch.equal(out["ref"], out["fast"]) and torch.equal(out["ref"], out["eager"])


def test_output_grid_narrower_than_int8_is_respected():
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(2, 7, 50, 16, 0, False, True, 0.5)
    relu_qp = QParams(y_qp.scale, y_qp.zero_point, int(y_qp.zero_point), 127)  # a fused ReLU
    out = {b: int8_linear(q_x, x_qp, q_w, w_qp, bias, relu_qp, backend=b) for b in BACKENDS}
    assert out["ref"].min() == int(y_qp.zero_point)
    assert torch.equal(out["ref"], out["fast"]) and torch.equal(out["ref"], out["eager"])


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_fused_epilogue_equals_multiply_by_quantized_multiplier(rounding):
    """The rewritten SRDHM / rounding shift (or the single rounding), eager and compiled, on extreme int32 values."""
    gen = torch.Generator().manual_seed(3)
    reals = torch.cat([torch.rand(60, generator=gen, dtype=torch.float64) ** 8,
                       torch.tensor([0.0, 2.0**-33, 2.0**-31, 0.5, 1 - 2.0**-30, 0.999], dtype=torch.float64)])
    multiplier, shift = quantize_multipliers(reals)  # (66,) int32; shifts in [-31, 0]
    assert shift.min() == -31 and shift.max() == 0
    acc = torch.randint(-(2**31), 2**31, (300, 66), generator=gen, dtype=torch.int64)
    acc[:4] = torch.tensor([-(2**31), 2**31 - 1, -1, 0])[:, None]
    acc[4:40] = torch.randint(-3000, 3000, (36, 66), generator=gen)  # ties are frequent here
    acc = acc.to(torch.int32)  # (300, 66)
    z_y = 7
    want = torch.clamp(multiply_by_quantized_multiplier(acc, multiplier, shift, rounding=rounding).long() + z_y,
                       -128, 127)
    y_qp = grid(1.0, z_y)
    prepared = fast.Prepared(torch.zeros(66, dtype=torch.int32), multiplier, shift, True,
                             fast.fused_constants(multiplier, shift, y_qp, rounding), y_qp, rounding)
    assert torch.equal(fast.epilogue(acc, prepared.offset, *prepared.fused_args), want.to(torch.int8))
    assert torch.equal(fast.requantize(acc, prepared, fused=True), want.to(torch.int8))
    assert torch.equal(fast.requantize(acc[:1], prepared, fused=True), want[:1].to(torch.int8))


@pytest.mark.parametrize("rounding", sorted(EPILOGUES))
def test_fast_falls_back_to_eager_once_when_compile_fails(monkeypatch, rounding):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler here")
        return run

    def broken_inductor(*args, **kwargs):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(compiled, "compile_fx", broken_inductor)  # the direct path fails first
    kernel = getattr(fast, EPILOGUES[rounding])
    monkeypatch.setattr(kernel, "fn", None)
    monkeypatch.setattr(kernel, "failed", False)
    monkeypatch.setattr(kernel, "seen", set())
    monkeypatch.setattr(kernel, "direct", {})
    monkeypatch.setattr(kernel, "direct_failed", False)
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(4, 9, 30, 5, -7, True, True, 1.0)
    want = int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend="ref", rounding=rounding)
    with pytest.warns(UserWarning, match="torch.compile .* failed"):
        assert torch.equal(int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, rounding=rounding), want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning is given once only
        assert torch.equal(int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, rounding=rounding), want)


def test_k_of_one_is_exact():
    """torch 2.13's CPU ``_int_mm`` returns garbage for K = 1; int8_matmul must not."""
    a = torch.tensor([[15], [-128], [127]], dtype=torch.int8)
    b = torch.tensor([[-57, 115, -128]], dtype=torch.int8)
    assert torch.equal(fast.int8_matmul(a, b), (a.long() @ b.long()).int())
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(8, 4, 1, 5, -128, True, True, 1.0)
    assert torch.equal(int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp),
                       int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend="ref"))


def test_untrustworthy_int_mm_is_replaced_by_an_exact_matmul(monkeypatch):
    from qkit.kernels import engine

    monkeypatch.delenv(engine.ENV, raising=False)
    monkeypatch.setattr(torch, "_int_mm", lambda a, b: torch.zeros(a.shape[0], b.shape[1], dtype=torch.int32))
    engine.reset()
    try:
        q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(9, 6, 50, 7, 20, True, True, 1.0)
        out = int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp)
        assert engine.info().chosen != "int_mm"
        assert "int_mm gives wrong sums here" in engine.info().reason
        assert torch.equal(out, int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend="ref"))
    finally:
        engine.reset()


def test_multiplier_of_one_or_more_takes_the_exact_eager_path():
    q_x = torch.tensor([[3, -4, 1], [1, 1, 1]], dtype=torch.int8)
    q_w = torch.tensor([[2, 1, 0], [1, -1, 1]], dtype=torch.int8)
    x_qp, w_qp, y_qp = grid(0.625, 1), grid(0.5), grid(0.125)  # M = 2.5 exactly: shift 2
    out = {b: int8_linear(q_x, x_qp, q_w, w_qp, None, y_qp, backend=b, rounding="double") for b in BACKENDS}
    assert out["ref"].tolist() == [[-2, 18], [0, 0]]  # 2.5 * [[-1, 7], [0, 0]], ties toward +inf
    assert torch.equal(out["ref"], out["fast"]) and torch.equal(out["ref"], out["eager"])
    big = grid(2.0**-24)  # M = 2**22 * 0.25: acc * 2**shift leaves int32
    for b in BACKENDS:
        with pytest.raises(ValueError, match="must fit int32"):
            int8_linear(q_x, x_qp, q_w, w_qp, torch.tensor([0.0, 2e5]), big, backend=b, rounding="double")


def test_largest_safe_k_is_exact_and_one_more_is_refused():
    k = 65793  # 255 * 128 * 65793 = 2147483520 <= 2**31 - 1
    q_x = torch.full((2, k), -128, dtype=torch.int8)
    q_w = torch.full((2, k), -128, dtype=torch.int8)
    x_qp, w_qp, y_qp = grid(1e-3, 127), grid(1e-3), grid(1e-6 * 2**31 / 100)  # acc -> about 100
    out = {b: int8_linear(q_x, x_qp, q_w, w_qp, None, y_qp, backend=b) for b in BACKENDS}
    assert out["ref"].tolist() == [[100, 100], [100, 100]]
    assert torch.equal(out["ref"], out["fast"]) and torch.equal(out["ref"], out["eager"])
    for b in BACKENDS:
        with pytest.raises(ValueError, match="could overflow"):
            int8_linear(q_x[:, :-1], x_qp, q_w[:, :-1], w_qp, torch.tensor([1.0, 0.0]), y_qp, backend=b)
        with pytest.raises(ValueError, match=r"K=65794 .* <= 255 \(z_x=127\)"):
            int8_linear(torch.cat([q_x, q_x[:, :1]], 1), x_qp, torch.cat([q_w, q_w[:, :1]], 1), w_qp,
                        None, y_qp, backend=b)


def test_cache_sees_in_place_changes_and_new_grids():
    q_x, x_qp, q_w, w_qp, bias, y_qp, _ = linear_case(5, 6, 20, 4, 10, True, True, 1.0)
    before = int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp)
    q_w[0] = 100  # in place: the version counter moves
    bias.mul_(-3)
    after = int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp)
    assert not torch.equal(before, after)
    assert torch.equal(after, int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, backend="ref"))
    moved = grid(x_qp.scale, -60)  # same weight, another input zero point
    assert torch.equal(int8_linear(q_x, moved, q_w, w_qp, bias, y_qp),
                       int8_linear(q_x, moved, q_w, w_qp, bias, y_qp, backend="ref"))


conv_shapes = st.tuples(st.sampled_from([1, 2, 3]), st.sampled_from([1, 2]), st.integers(1, 3),
                        st.integers(1, 3)).flatmap(lambda t: st.tuples(
                            st.just(t), st.sampled_from([1, t[0], 2 * t[0]] if t[0] > 1 else [1, 2, 3])))


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), shape=conv_shapes, depthwise_or_group=st.booleans(),
       stride=st.sampled_from([1, 2, (1, 2)]), padding=st.sampled_from([0, 1, (2, 0)]),
       dilation=st.sampled_from([1, 2, (2, 1)]), z_x=zero_points, with_bias=st.booleans(),
       squeeze=st.floats(0.4, 1.2))
def test_conv2d_backends_bit_exact_and_within_one_level_of_float(
        seed, shape, depthwise_or_group, stride, padding, dilation, z_x, with_bias, squeeze):
    (groups, n, kh, kw), out_per_group = shape
    cin_g = 1 if depthwise_or_group else 2  # 1: depthwise (groups == C_in)
    c_in, c_out = cin_g * groups, out_per_group * groups
    gen = torch.Generator().manual_seed(seed)
    q_x = torch.randint(-128, 128, (n, c_in, 7, 6), generator=gen, dtype=torch.int8)
    q_w = torch.randint(-128, 128, (c_out, cin_g, kh, kw), generator=gen, dtype=torch.int8)
    x_qp, w_qp = grid(0.02, z_x), weight_grid(c_out, True, gen)
    bias = torch.randn(c_out, generator=gen) if with_bias else None
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = float_reference(q_x, x_qp, q_w, w_qp, bias, F.conv2d, **geometry)
    y_qp = output_grid(y, x_qp, w_qp, squeeze)
    out = {b: int8_conv2d(q_x, x_qp, q_w, w_qp, bias, y_qp, **geometry, backend=b) for b in BACKENDS}
    assert out["ref"].shape == y.shape and out["ref"].dtype == torch.int8
    assert torch.equal(out["ref"], out["eager"]) and torch.equal(out["ref"], out["fast"])
    assert (out["ref"].int() - quantize(y.float(), y_qp).int()).abs().max() <= 1


@pytest.mark.parametrize("groups", [1, 3])  # 3: depthwise
@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_pads_with_the_input_zero_point(backend, groups):
    gen = torch.Generator().manual_seed(6)
    q_x = torch.randint(-128, 128, (1, 3, 5, 5), generator=gen, dtype=torch.int8)
    q_w = torch.randint(-128, 128, (3, 3 // groups, 3, 3), generator=gen, dtype=torch.int8)
    x_qp, w_qp, y_qp = grid(0.02, -100), grid(0.01), grid(0.1, 3)

    def conv(x, padding):
        return int8_conv2d(x, x_qp, q_w, w_qp, None, y_qp, padding=padding, groups=groups, backend=backend)

    padded_with_zero_point = F.pad(q_x, (1, 1, 1, 1), value=-100)
    assert torch.equal(conv(q_x, 1), conv(padded_with_zero_point, 0))
    assert not torch.equal(conv(q_x, 1), conv(F.pad(q_x, (1, 1, 1, 1), value=0), 0))


def _linear_args():
    return (torch.zeros(2, 4, dtype=torch.int8), grid(0.1, 3), torch.zeros(5, 4, dtype=torch.int8),
            grid(torch.full((5,), 0.01), axis=0), torch.zeros(5), grid(0.2, -1))


LINEAR_ERRORS = [
    (0, torch.zeros(2, 4), TypeError, "q_x must be an int8 tensor; got dtype torch.float32"),
    (2, torch.zeros(5, 4, dtype=torch.int32), TypeError, "q_w must be an int8 tensor"),
    (0, torch.zeros(2, 4, 1, dtype=torch.int8), ValueError, r"q_x must be 2-d \(N, K\)"),
    (2, torch.zeros(5, 3, dtype=torch.int8), ValueError, "K differs"),
    (3, grid(torch.full((5,), 0.01), 2, axis=0), ValueError, "scale scheme .zero_point 0.; got zero_point 2"),
    (3, grid(torch.full((4,), 0.01), axis=0), ValueError, "w_qp holds 4 channels but the weight has 5"),
    (3, grid(torch.full((5,), 0.01), axis=1), ValueError, "per-channel along axis 0; got axis=1"),
    (1, grid(0.1, 200), ValueError, r"x_qp: zero_point must lie in \[qmin, qmax\]"),
    (1, grid(torch.full((4,), 0.1), axis=1), ValueError, r"x_qp must be per-tensor \(axis=None\)"),
    (5, grid(torch.full((5,), 0.1), axis=0), ValueError, r"y_qp must be per-tensor"),
    (5, grid(0.1, 0, 0, 255), ValueError, r"inside int8's \[-128, 127\]; got \[0, 255\]"),
    (1, grid(-0.1), ValueError, "x_qp: scale must be positive"),
    (1, (0.1, 3), TypeError, "x_qp: expected a qkit.QParams"),
    (4, torch.zeros(5, dtype=torch.int64), TypeError, "bias must be a float tensor, an int32 tensor"),
    (4, torch.zeros(4), ValueError, r"bias must have shape \(5,\)"),
    (4, torch.tensor([0.0, 0, float("nan"), 0, 0]), ValueError, "bias must be finite"),
    (4, torch.tensor([0.0, 0, 0, 3e6, 0]), ValueError, r"bias\[3\] = 3e\+06 .* does not fit int32"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("position, value, error, match", LINEAR_ERRORS)
def test_linear_errors(position, value, error, match, backend):
    args = list(_linear_args())
    int8_linear(*args, backend=backend)  # the unchanged arguments are fine
    args[position] = value
    with pytest.raises(error, match=match):
        int8_linear(*args, backend=backend)


@pytest.mark.parametrize("backend", ["gpu", None, "FAST"])
def test_unknown_backend(backend):
    with pytest.raises(ValueError, match="backend must be one of"):
        int8_linear(*_linear_args(), backend=backend)
    with pytest.raises(ValueError, match="backend must be one of"):
        one = torch.zeros(1, 1, 1, 1, dtype=torch.int8)
        int8_conv2d(one, grid(0.1), one, grid(0.1), None, grid(0.1), backend=backend)


CONV_ERRORS = [
    (dict(q_x=torch.zeros(1, 4, 6, dtype=torch.int8)), ValueError, r"q_x must be 4-d \(N, C_in, H, W\)"),
    (dict(q_w=torch.zeros(2, 4, 3, 3)), TypeError, "q_w must be an int8 tensor"),
    (dict(q_w=torch.zeros(2, 3, 3, 3, dtype=torch.int8)), ValueError, "expected 4"),
    (dict(groups=3), ValueError, "groups=3 must divide C_in=4 and C_out=2"),
    (dict(groups=0), ValueError, "groups must be an int >= 1"),
    (dict(stride=0), ValueError, "stride must be an int >= 1"),
    (dict(padding=(1, 1, 1)), ValueError, "padding must be an int or a pair"),
    (dict(padding=-1), ValueError, "padding must be an int >= 0"),
    (dict(dilation=1.5), TypeError, "dilation must be an int"),
    (dict(dilation=4), ValueError, r"padded input \(6\) is smaller than the dilated kernel \(9\)"),
    (dict(q_w=torch.zeros(2, 4, 3, 3, dtype=torch.int8) + 1, x_qp=grid(0.1, 0), y_qp=grid(0.1),
          q_x=torch.zeros(1, 4, 6, 6, dtype=torch.int8)), None, None),  # fine
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("change, error, match", CONV_ERRORS)
def test_conv2d_errors(change, error, match, backend):
    args = dict(q_x=torch.zeros(1, 4, 6, 6, dtype=torch.int8), x_qp=grid(0.1, 5),
                q_w=torch.zeros(2, 4, 3, 3, dtype=torch.int8), w_qp=grid(torch.full((2,), 0.1), axis=0),
                bias=None, y_qp=grid(0.1))
    args.update(change)
    if error is None:
        assert int8_conv2d(**args, backend=backend).shape == (1, 2, 4, 4)
        return
    with pytest.raises(error, match=match):
        int8_conv2d(**args, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_overflow_guard_counts_the_patch(backend):
    q_x = torch.zeros(1, 8224, 3, 3, dtype=torch.int8)  # K = 8224 * 3 * 3 = 74016 > 65793
    q_w = torch.zeros(1, 8224, 3, 3, dtype=torch.int8)
    with pytest.raises(ValueError, match="K=74016"):
        int8_conv2d(q_x, grid(0.1, -128), q_w, grid(0.1), None, grid(0.1), backend=backend)
