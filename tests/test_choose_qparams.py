"""qkit.choose_qparams: [x_min, x_max] -> (scale, zero_point) on a B-bit grid.

Expected values are recomputed here in numpy float32 from the formulas of
DESIGN.md §3 / the module docstring, never copied from qkit's output.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

import qkit

pytestmark = pytest.mark.lesson01

F32 = np.float32
EPS32 = F32(np.finfo(np.float32).eps)  # documented floor of every scale

# float32-representable bounds, wide enough to be interesting, small enough that
# x_max - x_min cannot overflow float32 (that case has its own test below).
bound = st.floats(-2.0**100, 2.0**100, allow_nan=False, width=32)


@st.composite
def grids(draw, schemes=("affine", "scale")):
    """(bits, scheme, signed, narrow) combinations choose_qparams accepts."""
    scheme = draw(st.sampled_from(schemes))
    signed = draw(st.booleans())
    lowest = 2 if (scheme == "scale" and signed) else 1
    bits = draw(st.integers(lowest, 16))
    narrow = draw(st.booleans()) if (signed and bits >= 2) else False
    return bits, scheme, signed, narrow


@st.composite
def ranges(draw):
    a, b = draw(bound), draw(bound)
    return min(a, b), max(a, b)


def expected_scale(x_min, x_max, qmin, qmax, scheme):
    """The documented formula, independently in numpy float32 (with the eps floor)."""
    lo, hi = F32(min(x_min, 0.0)), F32(max(x_max, 0.0))
    if scheme == "affine":
        s = (hi - lo) / F32(qmax - qmin)
    else:
        s = np.maximum(np.abs(F32(x_min)), np.abs(F32(x_max))) / F32(qmax)
    return max(F32(s), EPS32)


def assert_zero_exact(qp, shape=()):
    """quantize(0) is the zero_point and dequantizes to exactly 0.0."""
    q = qkit.quantize(torch.zeros(shape), qp)
    zp = qp.zero_point.to(torch.int64)
    if qp.axis is not None:
        view = [1] * len(shape)
        view[qp.axis] = -1
        zp = zp.view(view)
    assert torch.equal(q.to(torch.int64), zp.expand(shape))
    assert (qkit.dequantize(q, qp) == 0.0).all()


@settings(max_examples=examples(300), deadline=None)
@given(r=ranges(), grid=grids())
def test_per_tensor_properties(r, grid):
    x_min, x_max = r
    bits, scheme, signed, narrow = grid
    qp = qkit.choose_qparams(x_min, x_max, bits, scheme=scheme, signed=signed, narrow=narrow)
    qmin, qmax = qkit.qrange(bits, signed, narrow)

    assert (qp.qmin, qp.qmax, qp.axis) == (qmin, qmax, None)
    assert qp.scale.dtype == torch.float32 and qp.scale.dim() == 0
    assert qp.zero_point.dtype == torch.int32 and qp.zero_point.dim() == 0
    s = qp.scale.item()
    assert math.isfinite(s) and s > 0
    assert F32(s) == expected_scale(x_min, x_max, qmin, qmax, scheme)
    zp = qp.zero_point.item()
    assert qmin <= zp <= qmax
    if scheme == "scale":
        assert zp == 0
    else:
        lo = F32(min(x_min, 0.0))
        assert zp == int(np.clip(qmin - np.round(lo / F32(s)), qmin, qmax))

    # 0.0 lands exactly on the grid
    assert_zero_exact(qp)

    # the grid covers the (0-widened) range to within half a step
    lo_f, hi_f = (v.item() for v in qp.float_range)
    lo, hi = min(x_min, 0.0), max(x_max, 0.0)
    slack = s * 1e-3 + 1e-6 * max(abs(lo), abs(hi))
    assert hi_f >= hi - s / 2 - slack
    if scheme == "affine" or signed:  # an unsigned scale grid clips negatives by design
        assert lo_f <= lo + s / 2 + slack


@settings(max_examples=examples(100), deadline=None)
@given(data=st.data(), grid=grids(), channels=st.integers(1, 6))
def test_per_channel_is_per_tensor_channel_by_channel(data, grid, channels):
    bits, scheme, signed, narrow = grid
    rs = [data.draw(ranges()) for _ in range(channels)]
    lo = torch.tensor([a for a, _ in rs], dtype=torch.float32)
    hi = torch.tensor([b for _, b in rs], dtype=torch.float32)
    axis = data.draw(st.sampled_from([0, 1, -1]))
    kw = dict(scheme=scheme, signed=signed, narrow=narrow)
    qp = qkit.choose_qparams(lo, hi, bits, axis=axis, **kw)
    assert qp.axis == axis
    assert qp.scale.shape == (channels,) and qp.zero_point.shape == (channels,)
    assert qp.scale.dtype == torch.float32 and qp.zero_point.dtype == torch.int32
    for c, (a, b) in enumerate(rs):
        one = qkit.choose_qparams(a, b, bits, **kw)
        assert qp.scale[c].item() == one.scale.item()
        assert qp.zero_point[c].item() == one.zero_point.item()
    # zeros of a tensor whose `axis` has `channels` slices are exact
    shape = [2, 2]
    shape[axis] = channels
    assert_zero_exact(qp, tuple(shape))


@settings(max_examples=examples(100), deadline=None)
@given(a=st.one_of(st.just(0.0), st.just(-0.0), bound), grid=grids())
def test_zero_width_range(a, grid):
    bits, scheme, signed, narrow = grid
    qp = qkit.choose_qparams(a, a, bits, scheme=scheme, signed=signed, narrow=narrow)
    s = qp.scale.item()
    assert math.isfinite(s) and s > 0
    assert not torch.isnan(qp.scale).any()
    assert qp.qmin <= qp.zero_point.item() <= qp.qmax
    assert_zero_exact(qp)
    # and the value itself is usable: quantize/dequantize give no NaN
    back = qkit.dequantize(qkit.quantize(torch.tensor([a]), qp), qp)
    assert torch.isfinite(back).all()


def test_zero_zero_gives_the_documented_floor():
    for scheme in ("affine", "scale"):
        qp = qkit.choose_qparams(0.0, 0.0, scheme=scheme)
        assert F32(qp.scale.item()) == EPS32


def test_seed_example_by_hand():
    # [A1, A2] = [-1, 2] on signed 8 bits: scale 3/255, zero_point -128 - round(-85) = -43
    qp = qkit.choose_qparams(-1.0, 2.0, bits=8)
    assert qp.scale.item() == pytest.approx(3 / 255, rel=1e-6)
    assert qp.zero_point.item() == -43
    qp = qkit.choose_qparams(-1.0, 2.0, bits=8, scheme="scale")
    assert qp.scale.item() == pytest.approx(2 / 127, rel=1e-6)
    assert qp.zero_point.item() == 0
    # a range excluding 0 is widened: [0.5, 2] -> [0, 2] on uint8 -> zero_point 0
    qp = qkit.choose_qparams(0.5, 2.0, bits=8, signed=False)
    assert qp.zero_point.item() == 0
    assert qp.scale.item() == pytest.approx(2 / 255, rel=1e-6)


def test_numpy_and_int_inputs_are_accepted():
    ref = qkit.choose_qparams(-1.0, 2.0)
    for lo, hi in [
        (np.float32(-1.0), np.float32(2.0)),
        (np.float64(-1.0), np.float64(2.0)),
        (np.array(-1.0), np.array(2.0)),
        (-1, 2),
        (torch.tensor(-1.0), torch.tensor(2.0)),
    ]:
        qp = qkit.choose_qparams(lo, hi)
        assert torch.equal(qp.scale, ref.scale) and torch.equal(qp.zero_point, ref.zero_point)
    lo, hi = np.array([-1.0, -0.5, 0.0]), np.array([2.0, 0.5, 3.0])
    qp = qkit.choose_qparams(lo, hi, axis=0)
    ref = qkit.choose_qparams(torch.tensor(lo, dtype=torch.float32), torch.tensor(hi, dtype=torch.float32), axis=0)
    assert qp.scale.dtype == torch.float32 and qp.zero_point.dtype == torch.int32
    assert torch.equal(qp.scale, ref.scale) and torch.equal(qp.zero_point, ref.zero_point)


nan, inf = float("nan"), float("inf")
t = torch.tensor


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((nan, 1.0), {}, ValueError, "must be finite"),
        ((-1.0, nan), {}, ValueError, "must be finite"),
        ((-inf, 1.0), {}, ValueError, "must be finite"),
        ((0.0, inf), {}, ValueError, "must be finite"),
        ((2.0, 1.0), {}, ValueError, r"x_min must be <= x_max; got x_min=2 > x_max=1"),
        ((t([-1.0, 3.0, -2.0]), t([1.0, 4.0, -3.0])), {"axis": 0}, ValueError,
         r"x_min must be <= x_max; got x_min=-2 > x_max=-3 at channel 2"),
        ((t([-1.0, nan]), t([1.0, 1.0])), {"axis": 0}, ValueError, "NaN or inf at channel 1"),
        ((t([-1.0, 0.0]), t([1.0, inf])), {"axis": 0}, ValueError, "NaN or inf at channel 1"),
        ((-1.0, 1.0), {"scheme": "symmetric"}, ValueError, "scheme must be one of"),
        ((-1.0, 1.0), {"scheme": None}, ValueError, "scheme must be one of"),
        ((t([-1.0, -2.0]), t([1.0, 2.0])), {}, ValueError, r"pass axis=\.\.\. for per-channel"),
        ((-1.0, 1.0), {"axis": 0}, ValueError, "per-channel parameters need 1-d"),
        ((t([-1.0, -2.0]), t([1.0, 2.0, 3.0])), {"axis": 0}, ValueError, "one equal, non-zero length"),
        ((t([]), t([])), {"axis": 0}, ValueError, "one equal, non-zero length"),
        ((-1.0, 1.0, 1), {"scheme": "scale"}, ValueError, "scheme='scale' needs a positive qmax"),
        ((-1.0, 1.0, 0), {}, ValueError, r"bits must be an int in \[1, 16\]"),
        ((-1.0, 1.0, 8.0), {}, TypeError, "bits must be an int"),
        ((-1.0, 1.0), {"signed": False, "narrow": True}, ValueError, "signed grids only"),
        (("-1", 1.0), {}, TypeError, "x_min must be a torch.Tensor, numpy array or number"),
        ((t([-1, 0]), t([1, 2])), {"axis": 0}, TypeError, "x_min must hold floating-point"),
        ((t([-1.0, 0.0]), t([1.0, 2.0])), {"axis": 0.0}, TypeError, "axis must be an int"),
    ],
)
def test_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        qkit.choose_qparams(*args, **kwargs)


@pytest.mark.parametrize("scheme", ["affine", "scale"])
def test_range_too_wide_for_float32_is_refused(scheme):
    # both bounds are finite float32, but x_max - x_min is not: no inf scale may escape
    try:
        qp = qkit.choose_qparams(-3e38, 3e38, scheme=scheme)
    except ValueError as e:
        assert "too wide" in str(e)
    else:
        assert torch.isfinite(qp.scale).all() and (qp.scale > 0).all()
