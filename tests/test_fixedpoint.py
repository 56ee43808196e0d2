"""qkit.fixedpoint: acc * M ≈ acc * multiplier * 2**(shift - 31), bit-exact with TFLite.

The spec is a plain-Python-int transcription of TFLite's reference
(kernels/internal/common.cc, default double-rounding build; quantization_util.cc
QuantizeMultiplier; gemmlowp fixedpoint.h), with C semantics spelled out:
truncating `/`, arithmetic `>>`, two's-complement `&`, int32 overflow = UB.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

from qkit.fixedpoint import (
    ROUNDINGS,
    multiply_by_quantized_multiplier,
    multiply_by_real_multiplier,
    quantize_multiplier,
    quantize_multipliers,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

pytestmark = pytest.mark.lesson03

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


# ---------------------------------------------------------------- the spec, in C semantics
class UndefinedBehaviour(Exception):
    """The C++ reference would hit undefined behaviour (signed overflow)."""


def c_div(n: int, d: int) -> int:
    """C/C++ integer `/`: truncates toward zero (Python's // floors)."""
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def to_int32(v: int) -> int:
    """static_cast<int32_t>: keep the low 32 bits (modular, as C++20 defines it)."""
    return (v + 2**31) % 2**32 - 2**31


def int32_mul(a: int, b: int) -> int:
    """int32 * int32 in C: overflow is undefined behaviour."""
    p = a * b
    if not INT32_MIN <= p <= INT32_MAX:
        raise UndefinedBehaviour(f"{a} * {b} overflows int32")
    return p


def ref_srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul(int32, int32)."""
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b  # int64 product of two int32: exact
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = to_int32(c_div(ab_64 + nudge, 1 << 31))
    return INT32_MAX if overflow else ab_x2_high32


def ref_rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT(int32, int), scalar: masks are 0 / ~0."""
    assert 0 <= exponent <= 31
    mask = to_int32((1 << exponent) - 1)
    remainder = x & mask
    threshold = (mask >> 1) + ((~0 if x < 0 else 0) & 1)
    return (x >> exponent) + ((~0 if remainder > threshold else 0) & 1)


def ref_mbqm(x: int, quantized_multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier(int32 x, int32 quantized_multiplier, int shift)."""
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    if left_shift > 30:
        raise UndefinedBehaviour("1 << left_shift overflows int")
    return ref_rdbpot(ref_srdhm(int32_mul(x, 1 << left_shift), quantized_multiplier), right_shift)


def ref_quantize_multiplier(double_multiplier: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier (no TFLITE_SINGLE_ROUNDING, no TFLITE_EMULATE_FLOAT)."""
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    v = Fraction(q * float(1 << 31))  # the double q * (1LL << 31)
    sign = 1 if v >= 0 else -1
    q_fixed = sign * math.floor(abs(v) + Fraction(1, 2))  # TfLiteRound = std::round
    assert q_fixed <= 1 << 31  # TFLITE_CHECK
    if q_fixed == 1 << 31:
        q_fixed = c_div(q_fixed, 2)
        shift += 1
    assert q_fixed <= INT32_MAX  # TFLITE_CHECK_LE
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def round_half_away(v: Fraction) -> int:
    return (1 if v >= 0 else -1) * math.floor(abs(v) + Fraction(1, 2))


# ---------------------------------------------------------------- strategies
EDGES = [INT32_MIN, INT32_MIN + 1, -(2**30), -2, -1, 0, 1, 2, 2**30, INT32_MAX - 1, INT32_MAX]
int32s = st.one_of(st.sampled_from(EDGES), st.integers(INT32_MIN, INT32_MAX))
multipliers = st.one_of(st.sampled_from([2**30, 2**30 + 1, INT32_MAX]), st.integers(2**30, INT32_MAX))
shifts = st.integers(-31, 30)


def acc_for(shift: int):
    """Any int32, or (biased toward) one whose acc * 2**shift fits int32."""
    bound = 2**31 >> max(shift, 0)
    return st.one_of(int32s, st.integers(-bound, bound - 1), st.sampled_from([-bound, bound - 1]))


def i32(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int32)


# ---------------------------------------------------------------- the spec agrees with the maths
def test_spec_rounding_on_hand_examples():
    # SRDHM: a * b / 2**31 = 0.5, -0.5, -1.5, 1.5 -> ties toward +inf; saturation.
    assert [ref_srdhm(2**30, 1), ref_srdhm(-(2**30), 1)] == [1, 0]
    assert [ref_srdhm(-3 * 2**29, 2), ref_srdhm(3 * 2**29, 2)] == [-1, 2]
    assert ref_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX
    # RDBPOT: 5/4, 6/4, -6/4, 2/4, -2/4 -> ties away from zero.
    assert [ref_rdbpot(v, 2) for v in (5, 6, -6, 2, -2, 7)] == [1, 2, -2, 1, -1, 2]
    assert ref_rdbpot(INT32_MIN, 31) == -1 and ref_rdbpot(INT32_MAX, 31) == 1
    assert ref_quantize_multiplier(0.5) == (2**30, 0)
    assert ref_quantize_multiplier(1 - 2**-33) == (2**30, 1)


# ---------------------------------------------------------------- building blocks
@settings(max_examples=examples(200), deadline=None)
@given(pairs=st.lists(st.tuples(int32s, int32s), min_size=1, max_size=30))
def test_srdhm_matches_reference_and_rounds_half_up(pairs):
    a, b = zip(*pairs)
    got = saturating_rounding_doubling_high_mul(i32(a), i32(b))
    assert got.dtype == torch.int32 and got.shape == (len(pairs),)
    assert got.tolist() == [ref_srdhm(x, y) for x, y in pairs]
    for (x, y), g in zip(pairs, got.tolist()):
        if not x == y == INT32_MIN:
            assert g == math.floor(Fraction(x * y, 2**31) + Fraction(1, 2))


@settings(max_examples=examples(200), deadline=None)
@given(xs=st.lists(int32s, min_size=1, max_size=30), exps=st.data())
def test_rdbpot_matches_reference_and_rounds_half_away(xs, exps):
    e = exps.draw(st.lists(st.integers(0, 31), min_size=len(xs), max_size=len(xs)))
    got = rounding_divide_by_pot(i32(xs), i32(e))
    assert got.dtype == torch.int32
    assert got.tolist() == [ref_rdbpot(x, k) for x, k in zip(xs, e)]
    assert got.tolist() == [round_half_away(Fraction(x, 2**k)) for x, k in zip(xs, e)]
    k = e[0]  # a Python-int exponent broadcasts
    assert rounding_divide_by_pot(i32(xs), k).tolist() == [ref_rdbpot(x, k) for x in xs]


def test_building_blocks_refuse_bad_inputs():
    with pytest.raises(ValueError, match=r"exponent must lie in \[0, 31\]; got 32"):
        rounding_divide_by_pot(i32([1]), 32)
    with pytest.raises(ValueError, match="exponent"):
        rounding_divide_by_pot(i32([1]), -1)
    with pytest.raises(ValueError, match="a must hold int32 values"):
        saturating_rounding_doubling_high_mul(torch.tensor([2**31]), 1)
    with pytest.raises(TypeError, match="b must hold integers"):
        saturating_rounding_doubling_high_mul(i32([1]), torch.tensor([0.5]))
    with pytest.raises(ValueError, match="broadcast"):
        saturating_rounding_doubling_high_mul(i32([1, 2]), i32([1, 2, 3]))


# ---------------------------------------------------------------- multiply_by_quantized_multiplier
@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), m=st.one_of(multipliers, int32s), shift=shifts)
def test_mbqm_per_tensor_matches_reference(data, m, shift):
    accs = data.draw(st.lists(acc_for(shift), min_size=1, max_size=20))
    try:
        want = [ref_mbqm(a, m, shift) for a in accs]
    except UndefinedBehaviour:
        with pytest.raises(ValueError, match="must fit int32"):
            multiply_by_quantized_multiplier(i32(accs), m, shift)
        return
    got = multiply_by_quantized_multiplier(i32(accs), m, shift)
    assert got.dtype == torch.int32 and got.shape == (len(accs),)
    assert got.tolist() == want


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), shift=shifts)
def test_mbqm_refuses_exactly_where_cpp_is_undefined(data, shift):
    acc = data.draw(acc_for(shift))
    m = data.draw(multipliers)
    try:
        want = ref_mbqm(acc, m, shift)
    except UndefinedBehaviour:
        with pytest.raises(ValueError, match=f"acc={acc}, shift={shift}"):
            multiply_by_quantized_multiplier(torch.tensor(acc, dtype=torch.int32), m, shift)
    else:
        assert multiply_by_quantized_multiplier(torch.tensor(acc, dtype=torch.int32), m, shift).item() == want


@pytest.mark.parametrize(
    "acc, shift, ok",
    [(2**29, 1, True), (2**30, 1, False), (-(2**30), 1, True), (-(2**30) - 1, 1, False),
     (1, 30, True), (2, 30, False), (-2, 30, True), (-3, 30, False)],
)
def test_mbqm_left_shift_overflow_boundary(acc, shift, ok):
    if ok:  # -2**30 * 2 and -2 * 2**30 are INT32_MIN: representable, defined
        assert multiply_by_quantized_multiplier(i32([acc]), 2**30, shift).tolist() == [acc * 2**shift // 2]
    else:
        with pytest.raises(ValueError, match="must fit int32"):
            multiply_by_quantized_multiplier(i32([acc]), 2**30, shift)


@settings(max_examples=examples(150), deadline=None)
@given(data=st.data(), n=st.integers(1, 4), channels=st.integers(1, 6))
def test_mbqm_per_channel_matches_reference(data, n, channels):
    ms = data.draw(st.lists(st.one_of(multipliers, int32s), min_size=channels, max_size=channels))
    ss = data.draw(st.lists(shifts, min_size=channels, max_size=channels))
    bounds = [2**31 >> max(s, 0) for s in ss]  # keep acc * 2**shift inside int32
    acc = [[data.draw(st.integers(-b, b - 1)) for b in bounds] for _ in range(n)]
    got = multiply_by_quantized_multiplier(i32(acc), i32(ms), i32(ss))  # (N, M), (M,), (M,)
    assert got.dtype == torch.int32 and got.shape == (n, channels)
    assert got.tolist() == [[ref_mbqm(a, m, s) for a, m, s in zip(row, ms, ss)] for row in acc]
    per_row = multiply_by_quantized_multiplier(i32(acc).T, i32(ms)[:, None], i32(ss)[:, None])
    assert per_row.T.tolist() == got.tolist()  # any axis, given a broadcastable shape


def test_mbqm_saturating_case_and_inputs():
    # INT32_MIN * INT32_MIN / 2**31 = 2**31 saturates to INT32_MAX, then / 2**1 rounds to 2**30.
    got = multiply_by_quantized_multiplier(i32([INT32_MIN]), INT32_MIN, -1)
    assert got.tolist() == [2**30]
    # numpy input, int64 tensor holding int32 values, 0-d tensor.
    assert multiply_by_quantized_multiplier(np.array([4, -4], dtype=np.int32), 2**30, 0).tolist() == [2, -2]
    assert multiply_by_quantized_multiplier(torch.tensor([6]), 3 * 2**29, 0).dtype == torch.int32
    assert multiply_by_quantized_multiplier(torch.tensor(8), 2**30, -2).tolist() == 1


@pytest.mark.parametrize(
    "acc, m, s, err, msg",
    [
        (torch.tensor([1.0]), 2**30, 0, TypeError, "acc must hold integers"),
        (torch.tensor([2**31]), 2**30, 0, ValueError, "acc must hold int32 values"),
        (i32([1]), 2**31, 0, ValueError, "multiplier must be an int"),
        (i32([1]), 2**30, 31, ValueError, r"shift must lie in \[-31, 30\]; got 31"),
        (i32([1]), 2**30, -32, ValueError, r"shift must lie in \[-31, 30\]; got -32"),
        (i32([1]), 2**30, 0.0, TypeError, "shift must hold integers"),
        (i32([1]), True, 0, TypeError, "multiplier must be"),
        (torch.zeros(2, 3, dtype=torch.int32), i32([1] * 4), 0, ValueError, "broadcast"),
        (torch.zeros(2, 3, dtype=torch.int32), torch.ones(2, 2, 3, dtype=torch.int32), 0,
         ValueError, "without enlarging"),
    ],
)
def test_mbqm_refuses_bad_inputs(acc, m, s, err, msg):
    with pytest.raises(err, match=msg):
        multiply_by_quantized_multiplier(acc, m, s)


# ---------------------------------------------------------------- quantize_multiplier
def check_against_reference(real: float):
    want = ref_quantize_multiplier(real)
    if want[1] > 30:
        with pytest.raises(ValueError, match="shift must be <= 30"):
            quantize_multiplier(real)
        return
    got = quantize_multiplier(real)
    assert got == want and all(type(v) is int for v in got)
    assert got[0] == 0 or 2**30 <= got[0] <= INT32_MAX


@settings(max_examples=examples(300), deadline=None)
@given(
    real=st.one_of(
        st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
        st.floats(1.0, 2.0**40),
        st.floats(5e-324, 2.0**-30),  # tiny, subnormal included: flush to zero below 2**-32
        st.floats(1.0 - 2**-30, 1.0),  # near 1: q * 2**31 rounds up to 2**31
    )
)
def test_quantize_multiplier_matches_reference(real):
    check_against_reference(real)


@pytest.mark.parametrize(
    "real, want",
    [
        (0.0, (0, 0)), (-0.0, (0, 0)), (0.5, (2**30, 0)), (0.75, (3 * 2**29, 0)),
        (1.0, (2**30, 1)), (2.0**-32, (2**30, -31)), (2.0**-33, (0, 0)),
        (math.nextafter(2.0**-32, 0.0), (2**30, -31)),  # q = 1 - 2**-53 rounds up, shift -32 + 1
        (1 - 2**-33, (2**30, 1)),  # q * 2**31 = 2**31 - 1/4 rounds up to 2**31: halve, ++shift
        (1 - 2**-32, (2**30, 1)),  # 2**31 - 1/2: a tie, rounded away from zero
        (1 - 2**-31, (INT32_MAX, 0)),  # 2**31 - 1: exact
        (2.0**30 - 0.5, (INT32_MAX, 30)),  # the largest accepted shift
    ] + [(2.0**k, (2**30, k + 1)) for k in range(-32, 30)],
)
def test_quantize_multiplier_worked_values(real, want):
    assert ref_quantize_multiplier(real) == want  # the spec agrees with the hand derivation
    assert quantize_multiplier(real) == want


@pytest.mark.parametrize(
    "real, err, msg",
    [
        (-1e-9, ValueError, "finite and >= 0"), (-1.0, ValueError, "finite and >= 0"),
        (math.nan, ValueError, "finite"), (math.inf, ValueError, "finite"),
        (-math.inf, ValueError, "finite"), (2.0**30, ValueError, "shift must be <= 30"),
        (2.0**30 - 0.25, ValueError, "shift 31"), (1e300, ValueError, "below 2\\*\\*30"),
        ("0.5", TypeError, "real must be a float"), (True, TypeError, "real must be a float"),
        (torch.tensor(0.5), TypeError, "quantize_multipliers"),
    ],
)
def test_quantize_multiplier_refuses(real, err, msg):
    with pytest.raises(err, match=msg):
        quantize_multiplier(real)


@settings(max_examples=examples(100), deadline=None)
@given(reals=st.lists(st.floats(0.0, 2.0**20), min_size=1, max_size=8), f32=st.booleans())
def test_quantize_multipliers_per_channel(reals, f32):
    dtype = torch.float32 if f32 else torch.float64
    t = torch.tensor(reals, dtype=dtype)
    m, s = quantize_multipliers(t if f32 else t.numpy())
    assert m.dtype == s.dtype == torch.int32 and m.shape == s.shape == (len(reals),)
    want = [ref_quantize_multiplier(r) for r in t.tolist()]  # float32 values, exactly
    assert list(zip(m.tolist(), s.tolist())) == want


def test_quantize_multipliers_refuses_integers():
    with pytest.raises(TypeError, match="floating-point"):
        quantize_multipliers(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="finite"):
        quantize_multipliers(torch.tensor([0.5, math.nan]))


# ---------------------------------------------------------------- the meaning
@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), real=st.one_of(st.floats(2.0**-40, 1.0, exclude_max=True), st.floats(1.0, 2.0**12)))
def test_result_is_within_one_of_the_exact_product(data, real):
    m, s = quantize_multiplier(real)
    left, right = max(s, 0), max(-s, 0)
    bound = 2**31 >> left
    acc = data.draw(st.one_of(st.integers(-bound, bound - 1), st.sampled_from([-bound, bound - 1, 0, 1, -1])))
    got = multiply_by_quantized_multiplier(i32([acc]), m, s).item()
    exact = Fraction(acc) * Fraction(real)
    err = abs(got - exact)
    assert err <= 1
    if m:  # rounding 1 (<= 1/2), rounding 2 (<= 2**-(right+1) before /2**right), multiplier (<= 1/2 ulp)
        tight = Fraction(1, 2) + (Fraction(1, 2 ** (right + 1)) if right else 0) \
            + Fraction(abs(acc) * 2**left, 2 ** (32 + right))
        assert err <= tight
        if abs(exact - math.floor(exact) - Fraction(1, 2)) > tight - Fraction(1, 2):
            assert got == round_half_away(exact)  # far from a tie: correctly rounded
    else:  # flushed to zero: real < 2**-32, so |acc * real| < 1/2
        assert got == 0 and err < Fraction(1, 2)


# ---------------------------------------------------------------- rounding="float64": TFLite's reference FC
def ref_float_requant(acc: int, real: float) -> int:
    """C: static_cast<int32_t>(round(static_cast<double>(acc) * real)); Python floats are IEEE doubles."""
    product = float(acc) * real  # one IEEE double product, as in C
    r = round_half_away(Fraction(product))  # C's round, on the exact value of that double
    return max(INT32_MIN, min(INT32_MAX, r))  # out of range is UB in C; qkit saturates


def test_float64_is_a_rounding_and_rounds_ties_away():
    assert "float64" in ROUNDINGS
    acc = i32([2, -2, 6, -6, 5, -5])  # times 1/4: 0.5, -0.5, 1.5, -1.5, 1.25, -1.25
    assert multiply_by_real_multiplier(acc, 0.25).tolist() == [1, -1, 2, -2, 1, -1]
    assert multiply_by_quantized_multiplier(acc, 2**30, -1, rounding="float64").tolist() == [1, -1, 2, -2, 1, -1]
    assert multiply_by_quantized_multiplier(acc, 2**30, -1, rounding="single").tolist() == [1, 0, 2, -1, 1, -1]
    assert multiply_by_quantized_multiplier(acc, 2**30, -1, rounding="double").tolist() == [1, -1, 2, -2, 2, -1]


@settings(max_examples=examples(300), deadline=None)
@given(accs=st.lists(int32s, min_size=1, max_size=20),
       real=st.one_of(st.floats(0.0, 1.0), st.floats(1.0, 2.0**12), st.sampled_from([0.25, 0.5, 1 / 3, 0.1])))
def test_real_multiplier_matches_the_c_formula(accs, real):
    got = multiply_by_real_multiplier(i32(accs), real).tolist()
    assert got == [ref_float_requant(a, real) for a in accs]


@settings(max_examples=examples(200), deadline=None)
@given(data=st.data(), n=st.integers(1, 4), channels=st.integers(1, 6))
def test_real_multiplier_per_channel(data, n, channels):
    reals = data.draw(st.lists(st.floats(0.0, 4.0), min_size=channels, max_size=channels))
    accs = data.draw(st.lists(st.lists(int32s, min_size=channels, max_size=channels), min_size=n, max_size=n))
    got = multiply_by_real_multiplier(i32(accs), torch.tensor(reals, dtype=torch.float64))
    assert got.dtype == torch.int32 and got.tolist() == [[ref_float_requant(a, r) for a, r in zip(row, reals)]
                                                         for row in accs]


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), m=multipliers, shift=st.integers(-31, 0))
def test_float64_pair_is_one_rounding_of_the_pair_value(data, m, shift):
    """rounding="float64" with (multiplier, shift): C's round of double(acc) * multiplier * 2**(shift-31)."""
    accs = data.draw(st.lists(int32s, min_size=1, max_size=20))
    real = m * 2.0 ** (shift - 31)  # exact in a double
    got = multiply_by_quantized_multiplier(i32(accs), m, shift, rounding="float64").tolist()
    assert got == [ref_float_requant(a, real) for a in accs]
    for a, g in zip(accs, got):  # one rounding: within 1/2 (+ the product's own rounding) of the exact value
        exact = Fraction(a) * Fraction(m) / 2 ** (31 - shift)
        if abs(exact) < 2**31 - 1:
            assert abs(g - exact) <= Fraction(1, 2) + Fraction(1, 2**21)


def test_real_multiplier_refuses_bad_inputs():
    with pytest.raises(ValueError, match="finite and >= 0"):
        multiply_by_real_multiplier(i32([1]), -0.5)
    with pytest.raises(ValueError, match="finite and >= 0"):
        multiply_by_real_multiplier(i32([1]), float("nan"))
    with pytest.raises(TypeError, match="float"):
        multiply_by_real_multiplier(i32([1]), torch.tensor([1]))
    with pytest.raises(ValueError, match="broadcast"):
        multiply_by_real_multiplier(i32([1, 2]), torch.tensor([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="rounding must be one of"):
        multiply_by_quantized_multiplier(i32([1]), 2**30, 0, rounding="float32")


# ---------------------------------------------------------------- rounding="double_up": ruy's pair
def ref_ruy_pair(x: int, m: int, shift: int) -> int:
    """ruy's x86 kernels (kernel_avx512.cc), C semantics: x << left, (x*m + 2**30) >> 31, (y + 2**(rs-1)) >> rs."""
    left, rs = max(shift, 0), max(-shift, 0)
    x = int32_mul(x, 2**left)
    y = (x * m + 2**30) >> 31  # arithmetic shift: floor
    return (y + ((1 << rs) >> 1)) >> rs


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), m=multipliers, shift=shifts)
def test_double_up_matches_ruys_formula(data, m, shift):
    accs = data.draw(st.lists(acc_for(shift), min_size=1, max_size=20))
    want = []
    for a in accs:
        try:
            want.append(ref_ruy_pair(a, m, shift))
        except UndefinedBehaviour:
            with pytest.raises(ValueError, match="must fit int32"):
                multiply_by_quantized_multiplier(i32([a]), m, shift, rounding="double_up")
            return
    assert multiply_by_quantized_multiplier(i32(accs), m, shift, rounding="double_up").tolist() == want
    # it differs from "double" only on negative ties of the second rounding
    double = multiply_by_quantized_multiplier(i32(accs), m, shift).tolist()
    for a, d, u in zip(accs, double, want):
        if d != u:
            assert u == d + 1 and a < 0


@settings(max_examples=examples(200), deadline=None)
@given(data=st.data(), shift=st.integers(-31, 0), rounding=st.sampled_from(["double", "single", "double_up"]))
def test_fast_merged_rounding_matches_fixedpoint(data, shift, rounding):
    """qkit.kernels.fast's one-shift rewrite (eager here; compiled in test_litert) for every fixed-point rule."""
    from qkit.kernels import fast

    m = data.draw(multipliers)
    accs = data.draw(st.lists(int32s, min_size=1, max_size=20))
    consts = fast.rounding_constants(torch.tensor([shift]), rounding)
    got = fast.rounding_multiply(i32(accs), torch.tensor([m]), *consts)
    want = multiply_by_quantized_multiplier(i32(accs), m, shift, rounding=rounding)
    assert got.tolist() == want.tolist()
