"""qkit.binarize / qkit.ternarize: one float scale, q in {-1, +1} or {-1, 0, +1}.

Expected scales are recomputed in float64 numpy (compared with a float32 tolerance).
"""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hypothesis_profiles import examples

import qkit

pytestmark = pytest.mark.lesson01

EPS32 = float(np.finfo(np.float32).eps)

finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite)


def _np(x):
    return x.astype(np.float64)


@settings(max_examples=examples(200), deadline=None)
@given(x=arrays)
def test_binarize(x):
    q, qp = qkit.binarize(torch.from_numpy(x))
    assert q.dtype == torch.int8 and q.shape == x.shape
    assert set(q.unique().tolist()) <= {-1, 1}
    assert np.array_equal(q.numpy(), np.where(x >= 0, 1, -1))  # 0 counts as +1
    assert (qp.qmin, qp.qmax, qp.axis) == (-1, 1, None)
    assert qp.scale.dim() == 0 and qp.scale.dtype == torch.float32
    assert qp.zero_point.item() == 0 and qp.zero_point.dtype == torch.int32
    want = max(np.abs(_np(x)).mean(), EPS32)
    assert qp.scale.item() == pytest.approx(want, rel=1e-5)
    x_hat = qkit.dequantize(q, qp)
    assert torch.equal(x_hat, qp.scale * q.to(torch.float32))


@settings(max_examples=examples(200), deadline=None)
@given(x=arrays, scale_off=st.sampled_from([0.9, 1.1, 0.5, 2.0]))
def test_binary_scale_is_least_squares(x, scale_off):
    assume(np.abs(_np(x)).mean() > 2 * EPS32)  # below that the documented eps floor rules
    xt = torch.from_numpy(x)
    q, qp = qkit.binarize(xt)
    xd, qd = _np(x), q.numpy().astype(np.float64)
    s = float(qp.scale)
    best = ((xd - s * qd) ** 2).sum()
    other = ((xd - s * scale_off * qd) ** 2).sum()
    assert best <= other * (1 + 1e-6) + 1e-12


@settings(max_examples=examples(200), deadline=None)
@given(x=arrays, delta=st.one_of(st.none(), st.floats(0.0, 1e6)))
def test_ternarize(x, delta):
    xd = _np(x)
    a = np.abs(xd)
    thr = 0.7 * a.mean() if delta is None else float(np.float32(delta))
    # elements within float32 noise of the threshold may go either way
    assume(not np.any(np.abs(a - thr) <= 1e-5 * max(thr, 1e-30)))
    q, qp = qkit.ternarize(torch.from_numpy(x), delta=delta)
    assert q.dtype == torch.int8 and q.shape == x.shape
    assert set(q.unique().tolist()) <= {-1, 0, 1}
    keep = a > thr
    assert np.array_equal(q.numpy(), (np.sign(xd) * keep).astype(np.int8))
    assert (qp.qmin, qp.qmax, qp.axis) == (-1, 1, None)
    assert qp.zero_point.item() == 0
    want = a[keep].mean() if keep.any() else 0.0
    assert qp.scale.item() == pytest.approx(max(want, EPS32), rel=1e-5)
    assert np.isfinite(qp.scale.item()) and qp.scale.item() > 0
    assert torch.equal(qkit.dequantize(q, qp), qp.scale * q.to(torch.float32))


def test_ternarize_default_delta_by_hand():
    x = torch.tensor([0.1, -1.0, 0.3, 2.0, -0.5, 0.0])
    # mean|x| = 3.9 / 6 = 0.65 -> delta = 0.455: keep -1.0, 2.0, -0.5
    q, qp = qkit.ternarize(x)
    assert q.tolist() == [0, -1, 0, 1, -1, 0]
    assert qp.scale.item() == pytest.approx((1.0 + 2.0 + 0.5) / 3, rel=1e-6)
    q2, _ = qkit.ternarize(x, delta_factor=0.1)  # delta 0.065: keep all but 0
    assert q2.tolist() == [1, -1, 1, 1, -1, 0]


def test_ternarize_threshold_is_strict():
    # |x| == delta is dropped: q = sign(x) only where |x| > delta
    q, qp = qkit.ternarize(torch.tensor([0.5, -0.5, 0.75, -1.0]), delta=0.5)
    assert q.tolist() == [0, 0, 1, -1]
    assert qp.scale.item() == pytest.approx(0.875)


def test_nothing_kept_gives_a_valid_scale():
    q, qp = qkit.ternarize(torch.tensor([0.5, -0.2]), delta=10.0)
    assert q.tolist() == [0, 0]
    assert torch.isfinite(qp.scale) and qp.scale > 0
    q, qp = qkit.binarize(torch.zeros(4))
    assert q.tolist() == [1, 1, 1, 1] and torch.isfinite(qp.scale) and qp.scale > 0


@pytest.mark.parametrize(
    ("shape", "axis"), [((4, 9), 0), ((4, 9), 1), ((4, 9), -1), ((3, 2, 3, 3), 0), ((3, 2, 3, 3), 1)]
)
@pytest.mark.parametrize("fn", ["binarize", "ternarize"])
def test_per_channel_equals_per_tensor_slice_by_slice(shape, axis, fn):
    g = torch.Generator().manual_seed(len(shape) * 10 + axis)
    x = torch.randn(shape, generator=g) * torch.arange(1, shape[axis] + 1).reshape(
        [-1 if d == axis % len(shape) else 1 for d in range(len(shape))])  # scales differ by channel
    f = getattr(qkit, fn)
    q, qp = f(x, axis=axis)
    assert qp.axis == axis and qp.scale.shape == (shape[axis],) and qp.zero_point.shape == (shape[axis],)
    assert q.dtype == torch.int8 and q.shape == x.shape
    for c in range(shape[axis]):
        qc, qpc = f(x.select(axis, c))
        assert torch.equal(q.select(axis, c), qc)
        assert qp.scale[c].item() == pytest.approx(qpc.scale.item(), rel=1e-6)
    x_hat = qkit.dequantize(q, qp)
    view = [1] * len(shape)
    view[axis] = -1
    assert torch.equal(x_hat, q.to(torch.float32) * qp.scale.view(view))
    assert qp.scale.max() > 1.5 * qp.scale.min()  # the per-channel scales really differ


def test_per_channel_delta():
    x = torch.tensor([[0.1, 0.5, -0.9], [1.0, -3.0, 6.0]])
    q, qp = qkit.ternarize(x, delta=torch.tensor([0.2, 2.0]), axis=0)
    assert q.tolist() == [[0, 1, -1], [0, -1, 1]]
    assert qp.scale.tolist() == pytest.approx([0.7, 4.5])


def test_numpy_input():
    x = np.array([0.5, -1.5, 0.0, 2.0], dtype=np.float32)
    q, qp = qkit.binarize(x)
    assert q.tolist() == [1, -1, 1, 1] and qp.scale.item() == pytest.approx(1.0)
    q, qp = qkit.ternarize(x, delta=0.25)
    assert q.tolist() == [1, -1, 0, 1] and qp.scale.item() == pytest.approx(4.0 / 3)


nan = float("nan")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: qkit.binarize(torch.tensor([1.0, nan])), ValueError, "NaN"),
        (lambda: qkit.ternarize(torch.tensor([nan])), ValueError, "NaN"),
        (lambda: qkit.binarize(torch.tensor([])), ValueError, "empty"),
        (lambda: qkit.ternarize(torch.zeros(0, 3)), ValueError, "empty"),
        (lambda: qkit.ternarize(torch.ones(3), delta=-0.1), ValueError, "delta must be a finite number >= 0"),
        (lambda: qkit.ternarize(torch.ones(3), delta=nan), ValueError, "delta must be a finite number >= 0"),
        (lambda: qkit.ternarize(torch.ones(2, 3), delta=torch.tensor([0.1, 0.1, 0.1]), axis=0),
         ValueError, r"one per channel, 2"),
        (lambda: qkit.ternarize(torch.ones(3), delta_factor=-1.0), ValueError, "delta_factor must be a number >= 0"),
        (lambda: qkit.binarize(torch.ones(3, dtype=torch.int32)), TypeError, "floating-point"),
        (lambda: qkit.binarize(torch.ones(2, 3), axis=2), ValueError, "axis must be an int in"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
