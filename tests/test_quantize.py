"""qkit.quantize / qkit.dequantize: x ≈ scale * (q - zero_point)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

import qkit
from qkit import QParams

pytestmark = pytest.mark.lesson01

EPS32 = float(np.finfo(np.float32).eps)


@st.composite
def qparams(draw, axis=None, channels=1):
    """A grid from choose_qparams over a random range: any bits, scheme, signedness."""
    scheme = draw(st.sampled_from(["affine", "scale"]))
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if (scheme == "scale" and signed) else 1, 16))
    narrow = draw(st.booleans()) if (signed and bits >= 2) else False
    ends = st.floats(-1e4, 1e4, allow_nan=False, width=32)
    los, his = [], []
    for _ in range(channels):
        a, b = draw(ends), draw(ends)
        los.append(min(a, b))
        his.append(max(a, b))
    if axis is None:
        lo, hi = los[0], his[0]
    else:
        lo, hi = torch.tensor(los), torch.tensor(his)
    return qkit.choose_qparams(lo, hi, bits, scheme=scheme, signed=signed, narrow=narrow, axis=axis)


def reference_quantize(x: np.ndarray, scale: float, zp: int, qmin: int, qmax: int) -> np.ndarray:
    """The documented order of operations, in numpy (round half to even)."""
    inv = np.float32(1.0) / np.float32(scale)
    q = np.round(x.astype(np.float32) * inv) + np.float32(zp)
    return np.clip(q, qmin, qmax).astype(np.int64)


def expected_dtype(qmin, qmax):
    if qmin >= -128 and qmax <= 127:
        return torch.int8
    if qmin >= 0 and qmax <= 255:
        return torch.uint8
    return torch.int32


@settings(max_examples=examples(200), deadline=None)
@given(qp=qparams(), u=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50))
def test_round_trip_error_at_most_half_a_step(qp, u):
    lo, hi = (v.item() for v in qp.float_range)
    x = torch.tensor([lo + (hi - lo) * t for t in u], dtype=torch.float32).clamp(lo, hi)
    q = qkit.quantize(x, qp)
    x_hat = qkit.dequantize(q, qp)
    assert x_hat.dtype == torch.float32
    s = qp.scale.item()
    err = (x_hat - x).abs()
    slack = 4 * EPS32 * (x.abs() + x_hat.abs()) + 1e-30
    assert (err <= s / 2 + slack).all(), (err.max().item(), s)
    assert torch.equal(q.to(torch.int64), torch.from_numpy(
        reference_quantize(x.numpy(), s, qp.zero_point.item(), qp.qmin, qp.qmax)))


@settings(max_examples=examples(60), deadline=None)
@given(qp=qparams())
def test_idempotent_on_the_grid(qp):
    q = torch.arange(qp.qmin, qp.qmax + 1).to(expected_dtype(qp.qmin, qp.qmax))
    again = qkit.quantize(qkit.dequantize(q, qp), qp)
    assert torch.equal(again, q)


@pytest.mark.parametrize(
    ("bits", "signed", "dtype"),
    [
        (8, True, torch.int8),
        (8, False, torch.uint8),
        (4, True, torch.int8),
        (4, False, torch.int8),  # [0, 15] fits int8
        (7, False, torch.int8),
        (1, True, torch.int8),
        (9, True, torch.int32),
        (9, False, torch.int32),
        (16, True, torch.int32),
        (16, False, torch.int32),
    ],
)
def test_output_dtypes_and_values(bits, signed, dtype):
    qp = qkit.choose_qparams(-3.0, 5.0, bits, signed=signed)
    x = torch.linspace(-3.0, 5.0, 101)
    q = qkit.quantize(x, qp)
    assert q.dtype == dtype
    assert qkit.storage_dtype(qp.qmin, qp.qmax) == dtype
    ref = reference_quantize(x.numpy(), qp.scale.item(), qp.zero_point.item(), qp.qmin, qp.qmax)
    assert torch.equal(q.to(torch.int64), torch.from_numpy(ref))  # e.g. 200 survives uint8
    assert qkit.dequantize(q, qp).dtype == torch.float32


@settings(max_examples=examples(100), deadline=None)
@given(qp=qparams(), k=st.floats(1.0, 1e6))
def test_values_beyond_the_range_clip(qp, k):
    lo, hi = (v.item() for v in qp.float_range)
    s = qp.scale.item()
    x = torch.tensor([lo - k * s, hi + k * s, float("-inf"), float("inf")])
    q = qkit.quantize(x, qp).to(torch.int64)
    assert q.tolist() == [qp.qmin, qp.qmax, qp.qmin, qp.qmax]
    x_hat = qkit.dequantize(q, qp)
    assert torch.isfinite(x_hat).all()


def _per_channel_case(shape, axis, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.rand(shape, generator=g) * 5
    lo, hi = qkit.tensor_range(x, axis=axis)
    return x, lo, hi


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((5, 7), 0), ((5, 7), 1), ((5, 7), -1), ((5, 7), -2),
     ((4, 3, 2, 5), 0), ((4, 3, 2, 5), 1), ((4, 3, 2, 5), -1), ((4, 3, 2, 5), 2)],
)
@pytest.mark.parametrize(("bits", "scheme", "signed"),
                         [(8, "affine", True), (4, "scale", True), (8, "affine", False), (12, "affine", True)])
def test_per_channel_equals_per_tensor_slice_by_slice(shape, axis, bits, scheme, signed):
    x, lo, hi = _per_channel_case(shape, axis, seed=bits + len(shape))
    qp = qkit.choose_qparams(lo, hi, bits, scheme=scheme, signed=signed, axis=axis)
    q = qkit.quantize(x, qp)
    x_hat = qkit.dequantize(q, qp)
    fq = qkit.fake_quantize(x, qp)
    assert q.shape == x.shape and x_hat.shape == x.shape
    for c in range(x.shape[axis]):
        one = qkit.choose_qparams(lo[c].item(), hi[c].item(), bits, scheme=scheme, signed=signed)
        xc = x.select(axis, c)
        qc = qkit.quantize(xc, one)
        assert torch.equal(q.select(axis, c), qc)
        assert torch.equal(x_hat.select(axis, c), qkit.dequantize(qc, one))
        assert torch.equal(fq.select(axis, c), qkit.fake_quantize(xc, one))


def test_per_channel_scales_really_differ_per_channel():
    # guards the test above against a vacuous pass: channel ranges differ a lot
    x = torch.stack([torch.linspace(-1, 1, 9), torch.linspace(-100, 100, 9)])  # (2, 9)
    qp = qkit.choose_qparams(*qkit.tensor_range(x, axis=0), axis=0)
    x_hat = qkit.dequantize(qkit.quantize(x, qp), qp)
    assert (x_hat - x).abs()[0].max() <= qp.scale[0] / 2 + 1e-6
    assert qp.scale[1] > 50 * qp.scale[0]


def qp8(scale=0.1, zp=0, qmin=-128, qmax=127, axis=None):
    return QParams(torch.tensor(scale, dtype=torch.float32), torch.tensor(zp, dtype=torch.int32),
                   qmin, qmax, axis)


def test_int8_trap_no_wrap_around():
    # -128 - 127 does not fit int8; computed in int8 it would wrap to 1
    qp = qp8(scale=0.5, zp=127)
    x_hat = qkit.dequantize(torch.tensor([-128, 127], dtype=torch.int8), qp)
    assert x_hat.tolist() == [(-128 - 127) * 0.5, 0.0]
    qp = qp8(scale=0.25, zp=-128)
    x_hat = qkit.dequantize(torch.tensor([127, -128], dtype=torch.int8), qp)
    assert x_hat.tolist() == [(127 + 128) * 0.25, 0.0]
    qp = QParams(torch.tensor(1.0), torch.tensor(0, dtype=torch.int32), 0, 255)
    assert qkit.dequantize(torch.tensor([255], dtype=torch.uint8), qp).tolist() == [255.0]


def test_dequantize_refuses_values_off_the_grid():
    narrow = qp8(qmin=-127, qmax=127)
    with pytest.raises(ValueError, match=r"q must lie in \[qmin, qmax\] = \[-127, 127\]"):
        qkit.dequantize(torch.tensor([0, -128], dtype=torch.int8), narrow)
    four = qp8(qmin=-8, qmax=7)
    with pytest.raises(ValueError, match="q must lie in"):
        qkit.dequantize(torch.tensor([8], dtype=torch.int8), four)
    with pytest.raises(ValueError, match="q must lie in"):
        qkit.dequantize(torch.tensor([300], dtype=torch.int32), qp8())


def test_nan_is_refused_inf_clips():
    qp = qp8()
    with pytest.raises(ValueError, match="NaN"):
        qkit.quantize(torch.tensor([0.0, float("nan")]), qp)
    with pytest.raises(ValueError, match="NaN"):
        qkit.fake_quantize(torch.tensor([float("nan")]), qp)
    q = qkit.quantize(torch.tensor([float("inf"), float("-inf")]), qp)
    assert q.tolist() == [127, -128]


def test_dtype_errors():
    qp = qp8()
    with pytest.raises(TypeError, match="x must hold floating-point values"):
        qkit.quantize(torch.tensor([1, 2], dtype=torch.int8), qp)
    with pytest.raises(TypeError, match="x must hold floating-point values"):
        qkit.quantize(torch.tensor([True]), qp)
    with pytest.raises(TypeError, match="q must hold integers"):
        qkit.dequantize(torch.tensor([1.0, 2.0]), qp)
    with pytest.raises(TypeError, match="q must hold integers"):
        qkit.dequantize(np.array([1.0]), qp)
    with pytest.raises(TypeError, match="expected a qkit.QParams"):
        qkit.quantize(torch.tensor([1.0]), (torch.tensor(0.1), torch.tensor(0), -128, 127))


@pytest.mark.parametrize(
    ("qp", "match"),
    [
        (qp8(scale=0.0), "scale must be positive and finite"),
        (qp8(scale=-0.1), "scale must be positive and finite; got -0.1"),
        (qp8(scale=float("inf")), "scale must be positive and finite"),
        (qp8(scale=float("nan")), "scale must be positive and finite"),
        (qp8(zp=128), r"zero_point must lie in \[qmin, qmax\] = \[-128, 127\]; got 128"),
        (qp8(zp=-5, qmin=0, qmax=255), r"zero_point must lie in \[qmin, qmax\] = \[0, 255\]; got -5"),
        (qp8(qmin=5, qmax=5, zp=5), "qmin must be < qmax"),
        (QParams(torch.tensor([0.1, 0.2]), torch.tensor([0, 0], dtype=torch.int32), -128, 127, None),
         "per-tensor"),
        (QParams(torch.tensor([0.1, 0.2]), torch.tensor([0], dtype=torch.int32), -128, 127, 0),
         "scale and zero_point must have one shape"),
        (QParams(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 0, 0], dtype=torch.int32), -128, 127, 0),
         "per-channel QParams hold 3 channels but x has 4 slices along axis 0"),
        (QParams(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 0, 0], dtype=torch.int32), -128, 127, 1),
         "per-channel QParams hold 3 channels but x has 5 slices along axis 1"),
        (QParams(torch.tensor([0.1, -0.2, 0.3, 0.1]), torch.tensor([0, 0, 0, 0], dtype=torch.int32), -128, 127, 0),
         "scale must be positive and finite; got -0.2"),
    ],
)
def test_bad_qparams(qp, match):
    x = torch.zeros(4, 5)
    with pytest.raises(ValueError, match=match):
        qkit.quantize(x, qp)
    with pytest.raises(ValueError, match=match):
        qkit.dequantize(torch.zeros(4, 5, dtype=torch.int8), qp)
    with pytest.raises(ValueError, match=match):
        qkit.fake_quantize(x, qp)


def test_per_channel_axis_out_of_range():
    qp = QParams(torch.tensor([0.1, 0.2]), torch.tensor([0, 0], dtype=torch.int32), -128, 127, 2)
    with pytest.raises(ValueError, match="axis must be an int in"):
        qkit.quantize(torch.zeros(2, 2), qp)


def test_numpy_input_accepted():
    qp = qkit.choose_qparams(-1.0, 2.0)
    xs = [0.0, 0.3, -0.77, 1.999, 2.5]
    ref = qkit.quantize(torch.tensor(xs), qp)
    for arr in (np.array(xs, dtype=np.float32), np.array(xs, dtype=np.float64)):
        q = qkit.quantize(arr, qp)
        assert isinstance(q, torch.Tensor) and torch.equal(q, ref)
    back = qkit.dequantize(ref.numpy(), qp)
    assert isinstance(back, torch.Tensor) and torch.equal(back, qkit.dequantize(ref, qp))
    assert torch.equal(qkit.fake_quantize(np.array(xs), qp), qkit.dequantize(ref, qp))


def test_worked_example_by_hand():
    # [-1, 2] on int8: scale = 3/255, zero_point = -43
    qp = qkit.choose_qparams(-1.0, 2.0)
    q = qkit.quantize(torch.tensor([-1.0, 0.0, 0.5, 2.0, 9.0, -9.0]), qp)
    # 0.5 * 85 = 42.5 (exactly, in float32 too) -> round half to even gives 42, not 43
    assert q.tolist() == [-128, -43, -1, 127, 127, -128]
