"""Lesson 04's panels: every setting precomputed, slider moves look results up."""

from __future__ import annotations

import math

import pytest
import torch

from qkit import ptq, widgets
from qkit.simulate import simulate
from qkit.train import evaluate

pytestmark = pytest.mark.lesson04


def _sqnr_by_hand(model_a, model_b, X) -> float:
    """10·log10 of signal over noise power of the logits, in float64 Python arithmetic."""
    with torch.no_grad():
        a, b = model_a.eval()(X).double(), model_b.eval()(X).double()
    return 10 * math.log10(float((a * a).sum()) / float(((a - b) ** 2).sum()))


def test_calibration_size_panel_shows_the_accuracy_of_each_setting(digits_train, digits_test, zoo):
    (X, _), (Xt, yt) = digits_train, digits_test
    mlp = zoo["mlp"]
    panel = widgets.CalibrationSizePanel(mlp, X, Xt, yt, sizes=(1, 16), observers=("minmax", "mse"))
    panel.controls["size"].value = 16
    panel.controls["observer"].value = "mse"
    int8 = ptq.convert(mlp, "int8", X[:16], observer="mse")
    expected = evaluate(int8, Xt, yt)
    assert panel.accuracy == expected
    assert panel.sqnr["mse", 16] == pytest.approx(_sqnr_by_hand(mlp, int8, Xt), abs=1e-6)
    assert f"{100 * expected:.2f} %" in panel.readout.value and panel.error is None
    before = panel.image.value
    panel.controls["size"].value = 1
    assert panel.image.value != before
    with pytest.raises(ValueError, match="calibration pool has 4 images"):
        widgets.CalibrationSizePanel(mlp, X[:4], Xt, yt, sizes=(1, 16))


def test_the_output_sqnr_tells_apart_observers_that_tie_on_accuracy(digits_train, digits_test, zoo):
    """Lesson 04's case: on mobilenet_v1 with 256 images, percentile and mse predict the same class for
    every test image (accuracy cannot tell them apart), but their grids, hence their logits, differ."""
    (X, _), (Xt, yt) = digits_train, digits_test
    net = zoo["mobilenet_v1"]
    panel = widgets.CalibrationSizePanel(net, X, Xt, yt, sizes=(256,), observers=("percentile", "mse"))
    assert panel.acc["percentile", 256] == panel.acc["mse", 256]
    assert torch.equal(panel.pred["percentile", 256], panel.pred["mse", 256])
    assert abs(panel.sqnr["percentile", 256] - panel.sqnr["mse", 256]) > 1.0  # dB

    panel.controls["observer"].value = "mse"
    assert "same test accuracy here: percentile (the very same predictions on all 359 test images)" \
        in panel.readout.value
    assert f"SQNR percentile {panel.sqnr['percentile', 256]:.1f} dB" in panel.readout.value
    assert "the output SQNR can" in panel.readout.value
    on_accuracy = panel.image.value
    panel.controls["measure"].value = "output SQNR"
    assert panel.plot is panel.plots["output SQNR"] and panel.image.value != on_accuracy
    mse_curve = panel.image.value
    panel.controls["observer"].value = "percentile"
    assert panel.image.value != mse_curve and panel.error is None
    heights = {name: line.get_ydata()[0] for name, line in panel.plot.lines.items()}
    assert heights == {"percentile": panel.sqnr["percentile", 256], "mse": panel.sqnr["mse", 256]}


def test_observers_that_tie_exactly_are_called_identical(digits_train, digits_test, zoo):
    """One image, min-max twice (as two names): same grids, so the readout must not claim a difference."""
    (X, _), (Xt, yt) = digits_train, digits_test
    from qkit.observers import OBSERVERS

    OBSERVERS["minmax_again"] = OBSERVERS["minmax"]
    try:
        panel = widgets.CalibrationSizePanel(zoo["mlp"], X, Xt, yt, sizes=(1,), observers=("minmax", "minmax_again"))
    finally:
        del OBSERVERS["minmax_again"]
    assert panel.sqnr["minmax", 1] == panel.sqnr["minmax_again", 1]
    assert "minmax_again: the very same outputs as minmax" in panel.readout.value
    assert "the output SQNR can" not in panel.readout.value


def test_bits_cliff_panel_matches_the_simulation(digits_train, digits_test, zoo):
    (X, _), (Xt, yt) = digits_train, digits_test
    mlp = zoo["mlp"]
    panel = widgets.BitsCliffPanel({"mlp": mlp}, X[:64], Xt, yt, bits=range(2, 5))
    panel.controls["bits"].value = 2
    assert panel.acc["mlp", 2] == evaluate(simulate(mlp, 2, X[:64]), Xt, yt)
    assert "at 2 bits" in panel.readout.value and panel.error is None
    assert panel.acc["mlp", 2] < panel.acc["mlp", 4]
