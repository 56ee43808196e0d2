"""Lesson 05's panels: the STE curves are autograd's, the grid panel only looks the stored grid up."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.fx as fx

from qkit import qat
from qkit.widgets.qat import QATGridPanel, STEPanel, grid_stats, point_kinds, ste_curves

pytestmark = pytest.mark.lesson05


@pytest.mark.parametrize("bits", [2, 3, 5, 8])
def test_ste_curves_match_the_formulas(bits):
    """Written from the definitions in float64: levels k·s with s = 1/qmax, the STE gradient
    2·(q·x − t)·x where |round(w/s)| <= qmax, 0 elsewhere; rounding's own gradient 0 everywhere."""
    x, t = 1.5, 0.8
    c = ste_curves(bits, x, t, n=301)
    qmax = 2 ** (bits - 1) - 1
    s = 1.0 / qmax
    w = c["w"].astype(np.float64)
    k = np.clip(np.round(w / s), -qmax, qmax)
    clear = np.abs(np.abs(w / s - np.floor(w / s)) - 0.5) > 1e-4  # float32 and float64 may round ties apart
    assert clear.sum() > 250
    assert np.allclose(c["q"][clear], (k * s)[clear], atol=1e-6)
    inside = np.abs(np.round(w / s)) <= qmax
    want = np.where(inside, 2 * (k * s * x - t) * x, 0.0)
    assert np.allclose(c["ste"][clear], want[clear], atol=1e-5)
    assert not np.any(c["true"])
    assert c["edge"] == pytest.approx((qmax + 0.5) * s)
    assert len(c["steps"]) == 2 * qmax  # the jumps between the 2·qmax + 1 levels, all inside the plotted span


def test_ste_panel_redraws_on_every_bit_width():
    panel = STEPanel(bits=range(2, 6))
    seen = {panel.image.value}
    for b in (2, 4, 5):
        panel.controls["bits"].value = b
        assert panel.error is None and f"{b} bits" in panel.readout.value
        assert np.array_equal(panel.plot.q_line.get_ydata(), panel.curves[b]["q"])
        seen.add(panel.image.value)
    assert len(seen) == 4
    with pytest.raises(ValueError, match="bits must be one of"):
        panel.update(9)
    panel.close()


def _rows():
    """A hand-made grid: accuracy = (bits + epochs + seed) / 20 per point (two models)."""
    return [{"model": m, "w_bits": b, "seed": s, "epochs": [0, 1, 3],
             "int_accuracy": [(b + e + s + i) / 20 for e in (0, 1, 3)], "float_accuracy": 0.9 + i / 100}
            for i, m in enumerate(("a", "b")) for b in (8, 2, 1) for s in (0, 1, 2)]


def test_grid_stats_are_means_and_ranges_over_seeds():
    stats = grid_stats(_rows())
    for i, m in enumerate(("a", "b")):
        for b in (8, 2, 1):
            for e in (0, 1, 3):
                vals = [100 * (b + e + s + i) / 20 for s in (0, 1, 2)]
                assert stats[m, b, e] == pytest.approx((sum(vals) / 3, min(vals), max(vals)))


def test_grid_panel_looks_up_and_redraws():
    panel = QATGridPanel({"rows": _rows()})
    assert panel.bits == [8, 2, 1] and panel.epochs == [0, 1, 3] and panel.float_acc["b"] == pytest.approx(91.0)
    first = panel.image.value
    panel.controls["epochs"].value = 1
    ptq, qat_ = 100 * (2 + 0 + 1) / 20, 100 * (2 + 1 + 1) / 20  # model a at 2 bits, mean over seeds (seed 1)
    panel.controls["bits"].value = 2
    assert f"a: PTQ {ptq:.1f} % → QAT {qat_:.1f} % ({qat_ - ptq:+.1f})" in panel.readout.value
    assert panel.image.value != first and panel.error is None
    x, y = panel.plot.qat_lines["b"].get_data()
    assert np.allclose(y, [100 * (b + 1 + 1 + 1) / 20 for b in (8, 2, 1)])
    before = panel.image.value
    panel.controls["bits"].value = 1
    assert panel.image.value != before
    panel.close()


def test_point_kinds_name_the_adds_and_concatenations(zoo, calibration):
    """Counted independently on the float graph: a residual add per ResNet block (fused with its ReLU),
    one concatenation per inception block, one input, one logits layer."""
    for name, op, kind in (("resnet", "add", "residual add + ReLU (fused)"), ("inception", "cat", "concatenation")):
        model = zoo[name]
        graph_ops = [n for n in fx.symbolic_trace(model).graph.nodes
                     if n.op == "call_function" and getattr(n.target, "__name__", "") == op]
        kinds = [k for _, k in point_kinds(qat.prepare(model, calibration=calibration))]
        assert kinds.count(kind) == len(graph_ops) > 0
        assert kinds[0] == "model input" and kinds[-1] == "linear (logits)"
        assert math.isclose(kinds.count("global average pool"), 1)
