"""qkit.fake_quantize is bit-exact with torch's own fake-quantize ops, gradients included.

What torch accepts (checked empirically on torch 2.13, CPU):
  * fake_quantize_per_tensor_affine(x, float scale, int zero_point, qmin, qmax) needs
    qmin <= qmax and qmin <= zero_point <= qmax; qmin <= 0 <= qmax is NOT required.
    qkit's QParams needs qmin < qmax and zero_point in [qmin, qmax], and qrange always
    contains 0, so every grid drawn below (qrange(bits, signed, narrow), any zero_point
    on the grid, any positive float32 scale) is accepted by both.
  * fake_quantize_per_channel_affine wants zero_point int32 (float zero_points select a
    different formula, int64 is refused), and a non-negative axis.
  * per-channel only: torch casts round(x / scale) to int64 *before* clamping, so values
    with |x / scale| >= 2**63 overflow (+1e38 comes back as qmin). qkit clamps in float
    and gives qmax, the right answer; the per-channel strategy keeps x within a few grid
    widths of 0 and test_huge_values_clip_per_channel pins qkit's behaviour. The per-tensor op
    saturates correctly, so the per-tensor strategy includes huge values and ±inf.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

import qkit
from qkit import QParams

pytestmark = pytest.mark.lesson01

scales = st.floats(2.0**-27, 2.0**13, width=32)  # positive float32 scales


@st.composite
def grids(draw):
    signed = draw(st.booleans())
    bits = draw(st.integers(1, 16))
    narrow = draw(st.booleans()) if (signed and bits >= 2) else False
    qmin, qmax = qkit.qrange(bits, signed, narrow)
    return qmin, qmax


@st.composite
def values(draw, scale, zp, qmin, qmax, huge=True):
    """x values of every interesting kind for a grid: ties, in-range, clipped, zeros, huge."""
    n = draw(st.integers(1, 40))
    out = []
    for _ in range(n):
        kind = draw(st.sampled_from(["tie", "grid", "free", "zero", "huge"] if huge else
                                    ["tie", "grid", "free", "zero"]))
        k = draw(st.integers(qmin - zp - 3, qmax - zp + 3))  # levels around the grid
        if kind == "tie":
            out.append((k + 0.5) * scale)  # near a rounding tie (exact tie if representable)
        elif kind == "grid":
            out.append(k * scale)
        elif kind == "free":
            out.append(draw(st.floats(-2.0, 2.0)) * (qmax - qmin + 1) * scale)
        elif kind == "zero":
            out.append(draw(st.sampled_from([0.0, -0.0])))
        else:
            out.append(draw(st.sampled_from([1e30, -1e30, 3e38, -3e38, float("inf"), float("-inf")])))
    return torch.tensor(out, dtype=torch.float32)


def _with_grad(x):
    return x.detach().clone().requires_grad_(True)


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data(), grid=grids(), scale=scales)
def test_per_tensor_bit_exact_with_torch(data, grid, scale):
    qmin, qmax = grid
    zp = data.draw(st.integers(qmin, qmax))
    qp = QParams(torch.tensor(scale, dtype=torch.float32), torch.tensor(zp, dtype=torch.int32), qmin, qmax)
    x = data.draw(values(scale, zp, qmin, qmax))
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(len(x)))

    xa, xb = _with_grad(x), _with_grad(x)
    ours = qkit.fake_quantize(xa, qp)
    theirs = torch.fake_quantize_per_tensor_affine(xb, float(qp.scale), int(qp.zero_point), qmin, qmax)
    assert ours.dtype == torch.float32
    assert torch.equal(ours, theirs), (ours, theirs)
    ours.backward(g)
    theirs.backward(g)
    assert torch.equal(xa.grad, xb.grad), (xa.grad, xb.grad)

    # and fake_quantize is exactly dequantize(quantize(x)) (no NaN in x by construction)
    assert torch.equal(ours.detach(), qkit.dequantize(qkit.quantize(x, qp), qp))


@settings(max_examples=examples(150), deadline=None)
@given(data=st.data(), grid=grids(), ndim=st.sampled_from([1, 2, 4]))
def test_per_channel_bit_exact_with_torch(data, grid, ndim):
    qmin, qmax = grid
    shape = [data.draw(st.integers(1, 3)) for _ in range(ndim)]
    axis = data.draw(st.integers(-ndim, ndim - 1))
    channels = shape[axis]
    scale = torch.tensor([data.draw(scales) for _ in range(channels)], dtype=torch.float32)
    zp = torch.tensor([data.draw(st.integers(qmin, qmax)) for _ in range(channels)], dtype=torch.int32)
    qp = QParams(scale, zp, qmin, qmax, axis)

    # fill channel by channel with values of every kind, on that channel's own grid
    x = torch.empty(shape).movedim(axis, 0)  # (C, ...)
    per = x[0].numel()
    for c in range(channels):
        s, z = scale[c].item(), int(zp[c])
        vals = data.draw(values(s, z, qmin, qmax, huge=False))
        x[c] = vals.repeat(per // len(vals) + 1)[:per].reshape(x[c].shape)
    x = x.movedim(0, axis).contiguous()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(x.numel()))

    xa, xb = _with_grad(x), _with_grad(x)
    ours = qkit.fake_quantize(xa, qp)
    theirs = torch.fake_quantize_per_channel_affine(xb, scale, zp, axis % ndim, qmin, qmax)
    assert torch.equal(ours, theirs), (ours, theirs)
    ours.backward(g)
    theirs.backward(g)
    assert torch.equal(xa.grad, xb.grad), (xa.grad, xb.grad)
    assert torch.equal(ours.detach(), qkit.dequantize(qkit.quantize(x, qp), qp))


def test_huge_values_clip_per_channel():
    # torch's per-channel op overflows here (see module docstring); qkit must clip
    qp = QParams(torch.tensor([1e-3, 1.0]), torch.tensor([0, 3], dtype=torch.int32), -128, 127, 0)
    x = torch.tensor([[1e38, -1e38, float("inf")], [float("-inf"), 3e38, -3e38]])
    out = qkit.fake_quantize(x, qp)
    want = torch.tensor([[127 * 1e-3, -128 * 1e-3, 127 * 1e-3], [-131.0, 124.0, -131.0]])
    assert torch.allclose(out, want, rtol=1e-6, atol=0)
    assert torch.equal(qkit.quantize(x, qp), torch.tensor([[127, -128, 127], [-128, 127, -128]], dtype=torch.int8))


def test_straight_through_mask_by_hand():
    # 2-bit grid on [-1, 1]: scale 2/3, zero_point 0 -> float range [-4/3, 2/3]
    qp = qkit.choose_qparams(-1.0, 1.0, bits=2)
    x = torch.tensor([-2.0, -1.3, -0.3, 0.2, 0.66, 0.7, 1.2], requires_grad=True)
    qkit.fake_quantize(x, qp).sum().backward()
    # inside where round(x / scale) is in [-2, 1]: -1.3 -> -1.95 -> -2 (in), 0.7 -> 1.05 -> 1 (in)
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_float64_input_is_computed_in_float32():
    qp = qkit.choose_qparams(-1.0, 1.0)
    x = torch.linspace(-1.5, 1.5, 50, dtype=torch.float64)
    out = qkit.fake_quantize(x, qp)
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.fake_quantize_per_tensor_affine(
        x.float(), float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax))
