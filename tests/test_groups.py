"""qkit.groups: per-group quantization as per-channel quantization of a reshaped view.

References are written here in numpy (the documented order of operations) or
taken from torch's per-channel fake-quantize op; never from qkit.groups itself.
"""

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hypothesis_profiles import examples

import qkit
from qkit.groups import fake_quantize_grouped, group_view, quantize_grouped, scale_overhead_bits, ungroup
from qkit.models import load

pytestmark = pytest.mark.lesson02

F32 = np.float32


def numpy_grouped_fake_quant(w, bits, g):
    """Scale scheme, one grid per run of g weights along the last axis, in numpy float32."""
    qmax = 2 ** (bits - 1) - 1
    rows = w.astype(F32).reshape(-1, g)  # (G, g)
    scale = np.maximum(np.abs(rows).max(axis=1, keepdims=True) / F32(qmax), np.finfo(F32).eps)  # (G, 1)
    q = np.clip(np.round(rows * (F32(1) / scale)), -qmax - 1, qmax)
    return (q * scale).reshape(w.shape)


@st.composite
def weights(draw, max_dims=3):
    """(array, group_size, axis) with group_size dividing the grouped axis."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, max_side=8))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    k = shape[axis]
    g = draw(st.sampled_from([d for d in range(1, k + 1) if k % d == 0]))
    w = draw(hnp.arrays(F32, shape, elements=st.floats(-100, 100, width=32)))
    return w, g, axis


# ---------------------------------------------------------------- the view

def test_group_view_layout():
    w = torch.arange(24.0).reshape(4, 6)
    assert torch.equal(group_view(w, 3), torch.tensor(np.arange(24.0, dtype=F32).reshape(8, 3)))
    # along axis 0: the groups run down the columns
    col = group_view(w, 2, axis=0)
    assert torch.equal(col[0], torch.tensor([0.0, 6.0])) and torch.equal(col[1], torch.tensor([12.0, 18.0]))
    assert torch.equal(col[2], torch.tensor([1.0, 7.0]))


@settings(max_examples=examples(80), deadline=None)
@given(case=weights())
def test_ungroup_inverts_group_view(case):
    w, g, axis = case
    view = group_view(w, g, axis)
    assert view.shape == (w.size // g, g)
    assert torch.equal(ungroup(view, w.shape, axis), torch.from_numpy(w))
    # every group holds g neighbours along axis
    moved = np.moveaxis(w, axis, -1)
    assert np.array_equal(view.numpy(), moved.reshape(-1, g))


# ---------------------------------------------------------------- quantization

@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("scheme", ["scale", "affine"])
def test_group_size_k_is_per_channel(bits, scheme):
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(bits))
    got = fake_quantize_grouped(w, bits, 32, scheme=scheme)
    qp = qkit.choose_qparams(w.min(1).values, w.max(1).values, bits, scheme=scheme, axis=0)
    ref = torch.fake_quantize_per_channel_affine(w, qp.scale, qp.zero_point, 0, qp.qmin, qp.qmax)
    assert torch.equal(got, ref)


@pytest.mark.parametrize("g", [1, 4, 16, 64])
def test_matches_numpy_reference(g):
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(g)) * 0.1
    got = fake_quantize_grouped(w, 4, g)
    np.testing.assert_array_equal(got.numpy(), numpy_grouped_fake_quant(w.numpy(), 4, g))
    q, qp = quantize_grouped(w, 4, g)
    assert q.shape == (8 * 64 // g, g) and q.dtype == torch.int8 and qp.axis == 0
    assert torch.equal(ungroup(qkit.dequantize(q, qp), w.shape), got)


@settings(max_examples=examples(80), deadline=None)
@given(case=weights(), bits=st.integers(2, 8), scheme=st.sampled_from(["scale", "affine"]))
def test_each_group_error_at_most_half_its_step(case, bits, scheme):
    w, g, axis = case
    _, qp = quantize_grouped(w, bits, g, scheme=scheme, axis=axis)
    err = group_view(fake_quantize_grouped(w, bits, g, scheme=scheme, axis=axis) - torch.from_numpy(w), g, axis)
    assert (err.abs().amax(dim=1) <= qp.scale / 2 * (1 + 1e-6)).all()


@st.composite
def matrices(draw):
    """(M, K) weights with K = g * (number of groups per row)."""
    m, g, per_row = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    w = draw(hnp.arrays(F32, (m, g * per_row), elements=st.floats(-100, 100, width=32)))
    return w, g


@settings(max_examples=examples(60), deadline=None)
@given(case=matrices(), bits=st.integers(2, 8), scheme=st.sampled_from(["scale", "affine"]))
def test_nested_groups_never_have_a_larger_step(case, bits, scheme):
    """What is guaranteed: a group inside a larger group (or a channel row) has a range
    inside the larger one's, so its step is no larger, and its worst error is within
    the larger grid's worst-case bound scale/2."""
    w, g = case
    k = w.shape[1]
    sizes = [d for d in range(1, k + 1) if k % d == 0 and d % g == 0]  # multiples of g dividing K
    _, small = quantize_grouped(w, bits, g, scheme=scheme)
    err = (fake_quantize_grouped(w, bits, g, scheme=scheme) - torch.from_numpy(w)).abs()  # (M, K)
    for big_g in sizes:  # big_g == K is per-channel
        _, big = quantize_grouped(w, bits, big_g, scheme=scheme)
        parent = big.scale.repeat_interleave(big_g // g)  # the big group holding each small one
        assert (small.scale <= parent).all()
        assert (group_view(err, big_g).amax(dim=1) <= big.scale / 2 * (1 + 1e-6)).all()


def test_smaller_groups_can_still_have_a_larger_max_error():
    """...but not a larger-or-equal *actual* error: 3-bit row [3, 2, 2, 1] sits exactly on the
    per-channel grid (step 1), while the group [2, 1] gets step 2/3 and 1 -> 4/3."""
    w = torch.tensor([[3.0, 2.0, 2.0, 1.0]])
    assert (fake_quantize_grouped(w, 3, 4) - w).abs().max() == 0
    assert (fake_quantize_grouped(w, 3, 2) - w).abs().max() == pytest.approx(1 / 3, rel=1e-6)


@pytest.mark.parametrize("bits", [3, 4])
def test_smaller_groups_lower_the_error_on_real_weights(bits):
    """Statistically (not a law): on the zoo MLP's weights the MSE falls as groups shrink."""
    w = load("mlp").fc1.weight.detach()  # (128, 64)
    mse = [((fake_quantize_grouped(w, bits, g) - w) ** 2).mean().item() for g in (64, 32, 16, 8)]
    assert mse[0] > mse[1] > mse[2] > mse[3]
    per_tensor = qkit.choose_qparams(w.min(), w.max(), bits, scheme="scale")
    assert ((qkit.fake_quantize(w, per_tensor) - w) ** 2).mean().item() > mse[0]


def test_gradient_is_straight_through():
    w = torch.randn(4, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    fake_quantize_grouped(w, 4, 4).sum().backward()
    assert torch.equal(w.grad, torch.ones(4, 8))  # min-max grids clip nothing


# ---------------------------------------------------------------- storage cost

def test_scale_overhead_bits():
    n = 4096 * 11008
    assert scale_overhead_bits((4096, 11008), "tensor") == float(Fraction(32, n))
    assert scale_overhead_bits((4096, 11008), "channel") == float(Fraction(32 * 4096, n))
    assert scale_overhead_bits((4096, 11008), "group", 128, scale_bits=16) == 16 / 128
    assert scale_overhead_bits((4096, 11008), "group", 64, scale_bits=16, zero_point_bits=4) == 20 / 64
    assert scale_overhead_bits((10, 3, 3), "channel", scale_bits=32) == 32 / 9  # 1 scale per 9 weights


# ---------------------------------------------------------------- errors

def test_errors():
    w = torch.zeros(4, 6)
    with pytest.raises(ValueError, match=r"group_size must divide the length of axis 1 \(6 for shape "
                                         r"\(4, 6\)\); got group_size=4, which leaves 2 weights over"):
        group_view(w, 4)
    with pytest.raises(ValueError, match=r"group_size must be an int >= 1; got 0"):
        quantize_grouped(w, 4, 0)
    with pytest.raises(TypeError, match="group_size must be an int; got float"):
        fake_quantize_grouped(w, 4, 2.0)
    with pytest.raises(ValueError, match=r"axis must be an int in \[-2, 1\]; got 2"):
        group_view(w, 2, axis=2)
    with pytest.raises(ValueError, match="at least one dimension"):
        group_view(torch.tensor(1.0), 1)
    with pytest.raises(ValueError, match=r"x has 24 values but shape \(5, 6\) holds 30"):
        ungroup(group_view(w, 3), (5, 6))
    with pytest.raises(ValueError, match=r"granularity must be one of \('tensor', 'channel', 'group'\)"):
        scale_overhead_bits((4, 6), "row")
    with pytest.raises(ValueError, match="group_size goes with granularity='group' only"):
        scale_overhead_bits((4, 6), "channel", 3)
    with pytest.raises(ValueError, match="group_size goes with granularity='group' only"):
        scale_overhead_bits((4, 6), "group")
    with pytest.raises(ValueError, match="group_size must divide"):
        scale_overhead_bits((4, 6), "group", 4)
