"""Lesson 04's panels: every setting precomputed, slider moves look results up."""

from __future__ import annotations

import pytest

from qkit import data, models, ptq, widgets
from qkit.simulate import simulate
from qkit.train import evaluate

pytestmark = pytest.mark.lesson04


@pytest.fixture(scope="module")
def digits():
    return data.digits("train"), data.digits("test")


def test_calibration_size_panel_shows_the_accuracy_of_each_setting(digits):
    (X, _), (Xt, yt) = digits
    mlp = models.load("mlp")
    panel = widgets.CalibrationSizePanel(mlp, X, Xt, yt, sizes=(1, 16), observers=("minmax", "mse"))
    panel.controls["size"].value = 16
    panel.controls["observer"].value = "mse"
    expected = evaluate(ptq.convert(mlp, "int8", X[:16], observer="mse"), Xt, yt)
    assert panel.accuracy == expected
    assert f"{100 * expected:.2f} %" in panel.readout.value and panel.error is None
    before = panel.image.value
    panel.controls["size"].value = 1
    assert panel.image.value != before
    with pytest.raises(ValueError, match="calibration pool has 4 images"):
        widgets.CalibrationSizePanel(mlp, X[:4], Xt, yt, sizes=(1, 16))


def test_bits_cliff_panel_matches_the_simulation(digits):
    (X, _), (Xt, yt) = digits
    mlp = models.load("mlp")
    panel = widgets.BitsCliffPanel({"mlp": mlp}, X[:64], Xt, yt, bits=range(2, 5))
    panel.controls["bits"].value = 2
    assert panel.acc["mlp", 2] == evaluate(simulate(mlp, 2, X[:64]), Xt, yt)
    assert "at 2 bits" in panel.readout.value and panel.error is None
    assert panel.acc["mlp", 2] < panel.acc["mlp", 4]
