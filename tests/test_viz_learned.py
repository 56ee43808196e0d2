"""Lesson 06's UI: the init panel (looks up, redraws, reads LSQ's initial step right) and the figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qkit.figures import learned as figures
from qkit.widgets.learned import InitPanel, point_values

pytestmark = pytest.mark.lesson06

FACTORS = [0.25, 1.0, 4.0]


def _rows(bits=(2, 4)):
    """Synthetic grid rows: accuracy = a known function of (bits, k), so every readout can be predicted."""
    return [{"bits": b, "k": k, "before_acc": 0.1 * b + 0.01 * i, "acc": 0.2 * b + 0.02 * i, "float_acc": 0.99,
             "epochs": 3} for b in bits for i, k in enumerate(FACTORS)]


@pytest.fixture(scope="module")
def panel(zoo, calibration):
    p = InitPanel(_rows(), zoo["mlp"], calibration[:64], "relu")
    yield p
    p.close()


def test_moves_change_picture_and_readout(panel):
    seen = {panel.image.value}
    texts = {panel.readout.value}
    for b in (4, 2):
        panel.controls["bits"].value = b
        for k in FACTORS:
            panel.controls["k"].value = k
            seen.add(panel.image.value)
            texts.add(panel.readout.value)
    assert len(seen) == 6 and len(texts) == 6 and panel.error is None
    panel.controls["bits"].value = 4
    panel.controls["k"].value = 4.0
    # bits 4, k = 4 (i = 2): before 0.42, after 0.84
    assert "42.0 % before" in panel.readout.value and "84.0 % after 3 epochs" in panel.readout.value


def test_initial_step_is_esser_et_al(panel, zoo, calibration):
    """s0 = 2·mean|x|/√Qp over the values after the ReLU (Qp = 15: unsigned 4 bits), computed with fc1's
    weight on its initial 4-bit LSQ grid (per row: step 2·mean|w|/√7, levels -7..7), as prepare sees it."""
    from qkit import qat

    mlp = zoo["mlp"]
    with torch.no_grad():
        w = mlp.fc1.weight  # (128, 64)
        step = 2 * w.abs().mean(dim=1, keepdim=True) / math.sqrt(7)  # (128, 1)
        w_q = torch.clamp(torch.round(w / step), -7, 7) * step
        float_values = torch.relu(calibration[:64].flatten(1) @ w_q.T + mlp.fc1.bias)  # (64, 128)
    m = qat.prepare(mlp, w_bits=4, a_bits=4, method="lsq", calibration=calibration[:64])
    v, s0, levels = point_values(m, "relu", calibration[:64])
    assert levels == (0, 15) and v.shape == (64 * 128,) and v.min() >= 0
    assert s0 == pytest.approx(2 * float_values.abs().mean().item() / math.sqrt(15), rel=1e-5)
    assert panel.s0[4] == pytest.approx(s0, rel=1e-6)
    r = panel.plot.update(4.0, 4)
    assert r["top"] == pytest.approx(4.0 * s0 * 15, rel=1e-6)


def test_errors(zoo, calibration):
    from qkit import qat

    with pytest.raises(ValueError, match="init rows"):
        InitPanel([], zoo["mlp"], calibration[:64], "relu")
    with pytest.raises(ValueError, match="miss"):
        InitPanel(_rows()[:-1], zoo["mlp"], calibration[:64], "relu")
    m = qat.prepare(zoo["mlp"], w_bits=4, a_bits=4, method="lsq", calibration=calibration[:64])
    with pytest.raises(ValueError, match="points are"):
        point_values(m, "nowhere", calibration[:8])
    m = qat.prepare(zoo["mlp"], w_bits=4, a_bits=4, method="minmax", calibration=calibration[:64])
    with pytest.raises(ValueError, match="LSQ"):
        point_values(m, "relu", calibration[:8])


def _labelled(fig):
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_figures_have_labels():
    x = torch.linspace(-2, 2, 41)
    _labelled(figures.lsq_gradient(x, x, x, x, x, scale=0.5, qmin=-2, qmax=1))
    _labelled(figures.pact_gradient(x, x, x, x, alpha=1.0, bits=2))
    rows = [{"model": "m", "method": me, "bits": b, "seed": s, "acc": 0.5, "float_acc": 0.9}
            for me in ("minmax", "lsq") for b in (2, 4) for s in (0, 1)]
    _labelled(figures.learned_vs_observed(rows, ["m"], ["minmax", "lsq"]))
