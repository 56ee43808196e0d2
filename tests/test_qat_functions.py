"""qkit.qat.functions: LSQ, PACT and the sign STE, forward and backward.

Oracles, none of them the code under test:
  * forward: torch.fake_quantize_per_tensor_affine / _per_channel_affine and qkit.fake_quantize
    (bit-exact in float32: same order of operations, x * (1/scale));
  * backward: the gradient formulas written out here as elementwise masks (float64), and the
    same STE written the other way round, with `.detach()` (round(v) = v + (round(v) - v).detach()),
    differentiated by autograd; torch's own LSQ op away from the half-step bands where it differs;
  * finite differences (float64) only where the forward pass is smooth: see each test's docstring
    for what it proves. Inside the grid, rounding makes the true d/dx zero almost everywhere, so the
    STE (d/dx = 1) is a *choice*, not a derivative, and no finite difference can check it.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

import qkit
from qkit import QParams
from qkit.qat.functions import lsq_grad_scale, lsq_init_scale, lsq_quantize, pact, pact_penalty, sign_ste

pytestmark = pytest.mark.lesson06

GRIDS = [(-8, 7), (-2, 1), (-127, 127), (0, 15), (0, 255), (-1, 1), (-32768, 32767)]


def _x_away(v_low, v_high, n, scale, gen, margin=0.05, dtype=torch.float64):
    """x = v * scale with v uniform in [v_low, v_high], nudged off rounding ties and integers.

    Each v keeps a distance >= margin from every k + 0.5 (so round(v) is locally constant) and
    from every integer (so grid edges qmin, qmax are never hit). Used where a test needs the
    masks/rounding to be the same for the function and for a formula computed a different way.
    """
    v = torch.rand(n, generator=gen, dtype=torch.float64) * (v_high - v_low) + v_low
    frac = v - torch.floor(v)  # [0, 1)
    frac = frac.clamp(margin, 1 - margin)
    frac = torch.where((frac - 0.5).abs() < margin, 0.5 + margin * torch.sign(frac - 0.5 + 1e-12), frac)
    return ((torch.floor(v) + frac) * scale).to(dtype)


def _lsq_grads_formula(x, s, qmin, qmax, g, grad_scale=1.0):
    """The brief's formulas, elementwise, in float64 (s 0-d; exact-division v)."""
    x, s, g = x.double(), s.double(), g.double()
    v = x / s
    below, above = v < qmin, v > qmax
    inside = ~(below | above)
    dx = g * inside
    ds_elem = torch.where(below, float(qmin), torch.where(above, float(qmax), torch.round(v) - v))
    return dx, (g * ds_elem).sum() * grad_scale


def _lsq_detach(x, s, qmin, qmax):
    """LSQ written with the detach trick: autograd of this is the STE gradient (independent code)."""
    v = torch.clamp(x / s, qmin, qmax)  # clamp's backward passes inside [qmin, qmax], both ends included
    return (v + (torch.round(v) - v).detach()) * s


# --- LSQ forward ------------------------------------------------------------------------


@pytest.mark.parametrize("qmin,qmax", GRIDS)
def test_lsq_forward_bit_exact_with_torch_and_qkit(qmin, qmax):
    gen = torch.Generator().manual_seed(qmax - qmin)
    for scale in (0.37, 2.0**-5, 1e-3, 3.0):
        k = torch.randint(qmin - 4, qmax + 5, (500,), generator=gen).double()
        v = torch.cat([k + 0.5, k, torch.randn(500, generator=gen) * (qmax - qmin)])  # ties, levels, free
        x = (v * scale).float()  # (1500,) float32
        got = lsq_quantize(x, torch.tensor(scale), qmin, qmax)
        want = torch.fake_quantize_per_tensor_affine(x, scale, 0, qmin, qmax)
        assert got.dtype == torch.float32 and torch.equal(got, want)
        qp = QParams(torch.tensor(scale), torch.tensor(0, dtype=torch.int32), qmin, qmax)
        assert torch.equal(got, qkit.fake_quantize(x, qp))


def test_lsq_forward_per_channel_bit_exact_with_torch():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(6, 3, 3, 3, generator=gen)  # (C, Cin, kH, kW)
    scale = torch.rand(6, generator=gen) * 0.3 + 0.01  # (C,)
    got = lsq_quantize(w, scale.view(6, 1, 1, 1), -8, 7)
    want = torch.fake_quantize_per_channel_affine(w, scale, torch.zeros(6, dtype=torch.int32), 0, -8, 7)
    assert torch.equal(got, want)
    lin = torch.randn(5, 7, generator=gen)  # (C, in)
    s2 = torch.rand(5, generator=gen) + 0.1
    want = torch.fake_quantize_per_channel_affine(lin, s2, torch.zeros(5, dtype=torch.int32), 0, -2, 1)
    assert torch.equal(lsq_quantize(lin, s2.view(5, 1), -2, 1), want)


@settings(max_examples=examples(100), deadline=None)
@given(bits=st.integers(2, 8), signed=st.booleans(), scale=st.floats(2.0**-10, 2.0**7, width=32),
       seed=st.integers(0, 2**16))
def test_lsq_forward_property(bits, signed, scale, seed):
    qmin, qmax = qkit.qrange(bits, signed)
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(64, generator=gen) * (qmax - qmin) * scale).float()
    got = lsq_quantize(x, torch.tensor(scale), qmin, qmax)
    assert torch.equal(got, torch.fake_quantize_per_tensor_affine(x, scale, 0, qmin, qmax))


# --- LSQ backward -----------------------------------------------------------------------


@pytest.mark.parametrize("qmin,qmax", [(-8, 7), (-2, 1), (0, 15)])
@pytest.mark.parametrize("grad_scale", [1.0, 0.03])
def test_lsq_backward_matches_formula_and_detach_trick(qmin, qmax, grad_scale):
    gen = torch.Generator().manual_seed(7)
    s0 = 0.3
    x = _x_away(qmin - 3, qmax + 3, 400, s0, gen).requires_grad_()  # float64, every region
    s = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    g = torch.randn(400, generator=gen, dtype=torch.float64)
    lsq_quantize(x, s, qmin, qmax, grad_scale).backward(g)
    dx, ds = _lsq_grads_formula(x.detach(), s.detach(), qmin, qmax, g, grad_scale)
    assert torch.equal(x.grad, dx)
    assert s.grad.item() == pytest.approx(ds.item(), rel=1e-9, abs=1e-9)
    x2, s2 = x.detach().clone().requires_grad_(), s.detach().clone().requires_grad_()
    _lsq_detach(x2, s2, qmin, qmax).backward(g)
    assert torch.allclose(x.grad, x2.grad, rtol=1e-12, atol=0)  # there d/dx = s * (1/s), 1 up to an ulp
    assert s.grad.item() == pytest.approx(s2.grad.item() * grad_scale, rel=1e-9, abs=1e-9)


def test_lsq_backward_grid_edges_are_inside():
    """v == qmin and v == qmax exactly count as inside (power-of-2 scale: x/s is exact)."""
    s = torch.tensor(0.25, requires_grad=True)
    x = torch.tensor([-8.0, 7.0, -8.25, 7.25, -8.5, 7.5, -8.75, 7.75]) * 0.25
    x.requires_grad_()
    lsq_quantize(x, s, -8, 7).sum().backward()
    assert x.grad.tolist() == [1, 1, 0, 0, 0, 0, 0, 0]  # half a step outside is outside (the paper)
    assert s.grad.item() == pytest.approx(0 + 0 + (-8 + 7) * 3)  # round(v) - v = 0 on a level


def test_lsq_matches_torch_learnable_op_off_the_half_step_bands():
    """torch._fake_quantize_learnable_per_tensor_affine is LSQ with a mask on round(v);
    away from v in (qmax, qmax + 1/2] and [qmin - 1/2, qmin) both agree."""
    gen = torch.Generator().manual_seed(3)
    qmin, qmax, s0 = -8, 7, 0.37
    v = torch.randn(2000, generator=gen, dtype=torch.float64) * 8
    v = v[~(((v > qmax) & (v <= qmax + 0.5)) | ((v < qmin) & (v >= qmin - 0.5)))]
    x = (v * s0).float().requires_grad_()
    g = torch.randn(x.shape, generator=gen)
    for gf in (1.0, 0.05):
        s = torch.tensor([s0], requires_grad=True)
        y = torch._fake_quantize_learnable_per_tensor_affine(x, s, torch.tensor([0.0]), qmin, qmax, gf)
        y.backward(g)
        gx, gs = x.grad.clone(), s.grad.clone()
        x.grad = None
        s_ours = torch.tensor(s0, requires_grad=True)
        y_ours = lsq_quantize(x, s_ours, qmin, qmax, gf)
        y_ours.backward(g)
        assert torch.equal(y_ours, y) and torch.equal(x.grad, gx)
        assert s_ours.grad.item() == pytest.approx(gs.item(), rel=1e-4)
        x.grad = None


def test_lsq_scale_gradcheck_outside_the_grid():
    """Outside the grid the forward pass is exactly qmin*s or qmax*s: smooth in s and flat in x.
    gradcheck (finite differences, float64) proves d/ds = qmin / qmax and d/dx = 0 there, for a
    per-channel scale too (which also checks the reduction over the broadcast dims)."""
    gen = torch.Generator().manual_seed(5)
    below = _x_away(-20, -9, 30, 0.5, gen)
    above = _x_away(8, 20, 30, 0.5, gen)
    x = torch.cat([below, above]).reshape(6, 10).requires_grad_()
    s = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, s: lsq_quantize(x, s, -8, 7, 1.0), (x, s))
    sc = torch.tensor([[0.5], [0.45], [0.55], [0.5], [0.48], [0.52]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, s: lsq_quantize(x, s, -8, 7, 1.0), (x, sc))


def test_lsq_scale_gradient_is_true_derivative_minus_v_inside():
    """Inside the grid, round(x/s) is locally constant when no v sits near a tie: the sum loss
    L(s) = sum(clamp(round(x/s)) * s) then has the true derivative sum(round(v)) (+ qmin/qmax
    outside), measured by a central difference. LSQ's gradient must be exactly that minus
    sum(v inside): this proves the STE term -x/s of Esser et al., and nothing else, was added."""
    gen = torch.Generator().manual_seed(11)
    qmin, qmax, s0 = -8, 7, 0.3
    x = _x_away(qmin - 4, qmax + 4, 300, s0, gen, margin=0.1)
    s = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    lsq_quantize(x, s, qmin, qmax).sum().backward()
    h = 1e-6
    with torch.no_grad():
        fd = (lsq_quantize(x, s + h, qmin, qmax).sum() - lsq_quantize(x, s - h, qmin, qmax).sum()) / (2 * h)
    v = x / s0
    inside = (v >= qmin) & (v <= qmax)
    assert s.grad.item() == pytest.approx(fd.item() - v[inside].sum().item(), abs=1e-6)


@pytest.mark.parametrize("x_shape,s_shape", [((6, 3, 3, 3), (6, 1, 1, 1)), ((5, 7), (5, 1)),
                                             ((4, 6), (1, 6)), ((2, 3, 4), ())])
def test_lsq_per_channel_scale_gradient_shape_and_reduction(x_shape, s_shape):
    """Each scale's gradient is the sum over its own elements: compare with per-element 0-d runs."""
    gen = torch.Generator().manual_seed(2)
    x = (torch.randn(x_shape, generator=gen, dtype=torch.float64) * 1.5).requires_grad_()
    s = (torch.rand(s_shape, generator=gen, dtype=torch.float64) * 0.4 + 0.2).requires_grad_()
    g = torch.randn(x_shape, generator=gen, dtype=torch.float64)
    lsq_quantize(x, s, -4, 3, 0.5).backward(g)
    assert s.grad.shape == s.shape and x.grad.shape == x.shape
    s_full = s.detach().expand(x_shape)
    want = torch.zeros(x_shape, dtype=torch.float64)
    for idx in np.ndindex(*x_shape):  # one scalar LSQ per element, brute force
        _, ds = _lsq_grads_formula(x.detach()[idx], s_full[idx], -4, 3, g[idx], 0.5)
        want[idx] = ds
    assert torch.allclose(s.grad, want.sum_to_size(s_shape), rtol=1e-9, atol=1e-12)


def test_lsq_grad_scale_and_init_scale():
    assert lsq_grad_scale(1000, 7) == pytest.approx(1 / math.sqrt(7000))
    assert lsq_grad_scale(1, 1) == 1.0
    gen = torch.Generator().manual_seed(4)
    w = torch.randn(8, 3, 3, 3, generator=gen)
    wn = w.numpy().astype(np.float64)
    s = lsq_init_scale(w, 7)
    assert s.shape == () and s.item() == pytest.approx(2 * np.abs(wn).mean() / math.sqrt(7), rel=1e-6)
    sc = lsq_init_scale(w, 127, axis=0)
    assert sc.shape == (8,)
    assert np.allclose(sc.numpy(), 2 * np.abs(wn).reshape(8, -1).mean(1) / math.sqrt(127), rtol=1e-6)
    sc1 = lsq_init_scale(w, 3, axis=1)
    assert np.allclose(sc1.numpy(), 2 * np.abs(wn).transpose(1, 0, 2, 3).reshape(3, -1).mean(1) / math.sqrt(3),
                       rtol=1e-6)
    assert lsq_init_scale(torch.zeros(4), 7).item() > 0  # an all-zero tensor still gets a usable scale
    assert not lsq_init_scale(w.requires_grad_(), 7).requires_grad


# --- PACT -------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 16])
def test_pact_forward_bit_exact_with_torch(bits):
    gen = torch.Generator().manual_seed(bits)
    n = 2**bits - 1
    for alpha in (1.0, 2.7, 6.0, 0.05):
        step = alpha / n
        k = torch.randint(-3, n + 4, (300,), generator=gen).double()
        x = torch.cat([(k + 0.5) * step, k * step, torch.randn(300, generator=gen) * alpha]).float()
        got = pact(x, torch.tensor(alpha), bits)
        want = torch.fake_quantize_per_tensor_affine(x, torch.tensor(alpha) / n, 0, 0, n)  # float32 step
        assert torch.equal(got, want)
        levels = torch.round(got.double() / (torch.tensor(alpha) / n).double())
        assert levels.min() >= 0 and levels.max() <= n  # only the levels k * step, k = 0..2^b-1
        exact = torch.clamp(x.double(), 0, alpha)
        assert (got.double() - exact).abs().max() <= step / 2 + 1e-6 * alpha  # half a step (+ float32 error)


def test_pact_backward_masks():
    gen = torch.Generator().manual_seed(8)
    alpha0 = 2.5
    x = torch.cat([torch.randn(300, generator=gen) * 3, torch.tensor([0.0, -0.0, alpha0, -1e-7])])
    x = x.double().requires_grad_()
    a = torch.tensor(alpha0, dtype=torch.float64, requires_grad=True)
    g = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    pact(x, a, 3).backward(g)
    xd = x.detach()
    assert torch.equal(x.grad, g * ((xd >= 0) & (xd < alpha0)))  # x == alpha: clipped, x == 0: inside
    assert a.grad.item() == pytest.approx((g * (xd >= alpha0)).sum().item(), rel=1e-12)
    a1 = torch.tensor([alpha0], requires_grad=True)  # a 1-element alpha keeps its shape
    pact(xd.float(), a1, 3).backward(g.float())
    assert a1.grad.shape == (1,) and a1.grad.item() == pytest.approx(a.grad.item(), rel=1e-5)


def test_pact_gradcheck_in_the_clipped_regions():
    """Where x >= alpha the output is (2^b-1) * (alpha/(2^b-1)) = alpha: smooth, d/dalpha = 1;
    where x < 0 it is 0: d/dalpha = d/dx = 0. gradcheck (float64) proves PACT's alpha gradient is
    the true derivative in both clipped regions, and that d/dx = 0 there. (Inside [0, alpha) the
    paper's d/dalpha = 0 drops the quantization term round(x/step)/(2^b-1): not a derivative.)"""
    gen = torch.Generator().manual_seed(9)
    x = torch.cat([torch.rand(20, generator=gen) * 3 + 2.2, -torch.rand(20, generator=gen) - 0.1]).double()
    x.requires_grad_()
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    for bits in (1, 4, 8):
        assert torch.autograd.gradcheck(lambda x, a: pact(x, a, bits), (x, a))


def test_pact_penalty():
    a = torch.tensor(1.5, requires_grad=True)
    p = pact_penalty(a, 0.01)
    p.backward()
    assert p.item() == pytest.approx(0.0225) and a.grad.item() == pytest.approx(0.03)
    assert pact_penalty(torch.tensor([2.0]), 0.5).item() == pytest.approx(2.0)


# --- sign STE ---------------------------------------------------------------------------


def test_sign_ste_forward_matches_binarize():
    gen = torch.Generator().manual_seed(12)
    w = torch.cat([torch.randn(200, generator=gen), torch.tensor([0.0, -0.0])])
    q, qp = qkit.binarize(w)
    assert torch.equal(sign_ste(w, qp.scale), qkit.dequantize(q, qp))
    w2 = torch.randn(4, 3, 2, 2, generator=gen)
    q2, qp2 = qkit.binarize(w2, axis=0)
    assert torch.equal(sign_ste(w2, qp2.scale.view(4, 1, 1, 1)), qkit.dequantize(q2, qp2))


@pytest.mark.parametrize("x_shape,s_shape", [((7,), ()), ((4, 3, 2, 2), (4, 1, 1, 1)), ((5, 6), (5, 1))])
def test_sign_ste_backward(x_shape, s_shape):
    gen = torch.Generator().manual_seed(13)
    x = torch.randn(x_shape, generator=gen, dtype=torch.float64)
    x.view(-1)[0] = 0.0  # sign(0) = +1 in the gradient too
    x.requires_grad_()
    s = (torch.rand(s_shape, generator=gen, dtype=torch.float64) + 0.1).requires_grad_()
    g = torch.randn(x_shape, generator=gen, dtype=torch.float64)
    sign_ste(x, s).backward(g)
    assert torch.equal(x.grad, g)  # identity STE: upstream passes through unchanged
    sign = torch.where(x.detach() >= 0, 1.0, -1.0).double()
    assert s.grad.shape == s.shape
    assert torch.allclose(s.grad, (g * sign).sum_to_size(s_shape), rtol=1e-12)
    assert torch.autograd.gradcheck(lambda s: sign_ste(x.detach(), s), (s,))  # linear in s: exact


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(0.1), 7, 7), ValueError, "qmin must be < qmax"),
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(0.1), 8, -8), ValueError, "qmin must be < qmax"),
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(0.0), -8, 7), ValueError, "positive"),
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(-1.0), -8, 7), ValueError, "positive"),
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(float("nan")), -8, 7), ValueError, "NaN"),
    (lambda: lsq_quantize(torch.ones(2, 3), torch.tensor([0.1, 0.2]).view(2, 1) * torch.tensor([1, -1.0]).view(2, 1),
                          -8, 7), ValueError, "positive"),
    (lambda: lsq_quantize(torch.ones(4, 3), torch.ones(4) * 0.1, -8, 7), ValueError, r"\(C, 1\)"),
    (lambda: lsq_quantize(torch.ones(4, 3), torch.ones(3, 1) * 0.1, -8, 7), ValueError, "broadcast"),
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(0.1), -8.0, 7), TypeError, "qmin must be an int"),
    (lambda: lsq_quantize([1.0, 2.0], torch.tensor(0.1), -8, 7), TypeError, "x must be"),
    (lambda: lsq_quantize(torch.ones(3), "0.1", -8, 7), TypeError, "scale must be"),
    (lambda: lsq_quantize(torch.ones(3, dtype=torch.int32), torch.tensor(0.1), -8, 7), TypeError, "floating"),
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(0.1), -8, 7, grad_scale=0.0), ValueError, "grad_scale"),
    (lambda: lsq_quantize(torch.ones(3), torch.tensor(0.1), -8, 7, grad_scale="1"), ValueError, "grad_scale"),
    (lambda: lsq_grad_scale(0, 7), ValueError, "numel_per_scale"),
    (lambda: lsq_grad_scale(10, 0), ValueError, "qmax"),
    (lambda: lsq_init_scale(torch.ones(3), 0), ValueError, "qmax"),
    (lambda: lsq_init_scale(torch.ones(0), 7), ValueError, "empty"),
    (lambda: lsq_init_scale(torch.ones(3, 2), 7, axis=2), ValueError, "axis"),
    (lambda: pact(torch.ones(3), torch.tensor(1.0), 0), ValueError, "bits"),
    (lambda: pact(torch.ones(3), torch.tensor(1.0), 17), ValueError, "bits"),
    (lambda: pact(torch.ones(3), torch.tensor(1.0), 4.0), TypeError, "bits must be an int"),
    (lambda: pact(torch.ones(3), torch.tensor([1.0, 2.0]), 4), ValueError, "one number"),
    (lambda: pact(torch.ones(3), torch.tensor(0.0), 4), ValueError, "positive"),
    (lambda: pact(torch.ones(3), torch.tensor(float("nan")), 4), ValueError, "NaN"),
    (lambda: pact(None, torch.tensor(1.0), 4), TypeError, "x must be"),
    (lambda: pact(torch.ones(3), torch.tensor(1), 4), TypeError, "floating"),
    (lambda: pact_penalty(torch.tensor(1.0), -1.0), ValueError, "weight"),
    (lambda: sign_ste(torch.ones(3), torch.tensor(-0.5)), ValueError, "non-negative"),
    (lambda: sign_ste(torch.ones(4, 3), torch.ones(4)), ValueError, "broadcast"),
    (lambda: sign_ste("w", torch.tensor(1.0)), TypeError, "x must be"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_numbers_and_numpy_are_accepted():
    """DESIGN.md: a numpy array is accepted and converted (it keeps its float dtype)."""
    x = np.array([0.1, 0.6, -2.0])
    y = lsq_quantize(x, 0.5, -2, 1)
    assert y.dtype == torch.float64 and y.tolist() == [0.0, 0.5, -1.0]
    assert pact(np.float32(3.0), 2.0, 1).item() == pytest.approx(2.0)
