"""LSQ+ (learned zero point): forward = qkit.fake_quantize on the rounded zero point; gradients = the formulas."""

from __future__ import annotations

import pytest
import torch

from qkit import QParams, fake_quantize, qat
from qkit.qat.lsq_plus import lsq_plus_quantize
from qkit.train import outputs

pytestmark = pytest.mark.lesson06


def test_forward_is_fake_quantize_on_the_rounded_zero_point():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, generator=g) * 2 + 0.5
    for z_float in (-1.4, -0.6, 0.49, 2.0):
        s, z = torch.tensor(0.3), torch.tensor(z_float)
        z_int = min(max(round(z_float), -2), 1)  # no ties in this list; 2.0 is off the grid: clamped to 1
        qp = QParams(s, torch.tensor(z_int, dtype=torch.int32), -2, 1)
        torch.testing.assert_close(lsq_plus_quantize(x, s, z, -2, 1), fake_quantize(x, qp), rtol=0, atol=0)


def test_gradients_follow_the_formulas():
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(500, generator=g) * 1.5).requires_grad_()
    s = torch.tensor(0.4, requires_grad=True)
    z = torch.tensor(-0.8, requires_grad=True)  # used as -1
    up = torch.randn(500, generator=g)
    (lsq_plus_quantize(x, s, z, -4, 3, grad_scale=0.5) * up).sum().backward()
    v = x.detach() / 0.4
    level = torch.round(v) - 1
    below, above = level < -4, level > 3
    inside = ~(below | above)
    torch.testing.assert_close(x.grad, up * inside)
    d_s = torch.where(below, torch.tensor(-4.0 + 1), torch.where(above, torch.tensor(3.0 + 1), torch.round(v) - v))
    torch.testing.assert_close(s.grad, (up * d_s).sum() * 0.5)
    torch.testing.assert_close(z.grad, (up * torch.where(inside, 0.0, -0.4)).sum() * 0.5)


def test_scale_gradient_outside_the_grid_is_the_true_derivative():
    """Clipped values are (qmin - z)·s: smooth in s, so finite differences apply there."""
    x = torch.tensor([-9.0, -7.5, 8.0, 11.0], dtype=torch.float64)
    s = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    z = torch.tensor(1.0, dtype=torch.float64)
    lsq_plus_quantize(x, s, z, -4, 3).sum().backward()
    eps = 1e-6
    num = (lsq_plus_quantize(x, s.detach() + eps, z, -4, 3).sum()
           - lsq_plus_quantize(x, s.detach() - eps, z, -4, 3).sum()) / (2 * eps)
    torch.testing.assert_close(s.grad, num)


def test_prepare_learns_zero_points_where_values_can_be_negative(zoo, calibration, digits_test):
    qm = qat.prepare(zoo["mobilenet_v2"], w_bits=4, a_bits=3, method="lsq", learn_zero_point=True,
                     calibration=calibration)
    quantizers = list(qm.act_quantizers().values())
    assert any(q.affine for q in quantizers) and any(not q.affine for q in quantizers)
    assert all(q.affine == (not q.unsigned) for q in quantizers)  # after a ReLU the zero point is the ReLU's 0
    qm(calibration).sum().backward()
    assert all(q.zero_point.grad is not None for q in quantizers if q.affine)
    int_model = qat.convert(qm)
    agree = (outputs(qm.eval(), digits_test[0]).argmax(1) == outputs(int_model, digits_test[0]).argmax(1))
    assert agree.float().mean() >= 0.995
    with pytest.raises(TypeError, match="learn_zero_point"):
        qat.prepare(zoo["mlp"], learn_zero_point="yes", calibration=calibration)


def test_errors():
    with pytest.raises(ValueError, match="0-d"):
        lsq_plus_quantize(torch.zeros(3), torch.ones(3), torch.tensor(0.0), -2, 1)
    with pytest.raises(ValueError, match="positive"):
        lsq_plus_quantize(torch.zeros(3), torch.tensor(0.0), torch.tensor(0.0), -2, 1)
    with pytest.raises(ValueError, match="qmin must be < qmax"):
        lsq_plus_quantize(torch.zeros(3), torch.tensor(1.0), torch.tensor(0.0), 1, 1)
