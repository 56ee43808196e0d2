"""Lesson 02's panels, driven by setting .value as a learner does."""

from __future__ import annotations

import pytest
import torch

from qkit import data, models, widgets
from qkit.error import sqnr_db
from qkit.groups import fake_quantize_grouped

pytestmark = pytest.mark.lesson02


@pytest.fixture(scope="module")
def digits():
    return data.digits("train"), data.digits("test")


@pytest.fixture(scope="module")
def granularity(digits):
    _, (Xt, yt) = digits
    return widgets.GranularityPanel(models.load("mlp"), "fc1", Xt, yt, bits=4)


@pytest.fixture(scope="module")
def calibration(digits):
    (X, _), (Xt, yt) = digits
    return widgets.CalibrationPanel(models.load("mlp"), "relu", X[:256], Xt, yt, X_outlier=X[:1] * 20, bits=4)


def test_finer_granularity_never_loses_to_per_tensor(granularity):
    c = granularity.controls
    for bits in (3, 4, 6):
        c["bits"].value = bits
        c["granularity"].value = "tensor"
        tensor = granularity.sqnr
        c["granularity"].value = "channel"
        assert granularity.sqnr > tensor
        c["granularity"].value = "group"
        c["group_size"].value = 8
        w = models.load("mlp").fc1.weight.detach()
        assert granularity.sqnr == pytest.approx(sqnr_db(w, fake_quantize_grouped(w, bits, 8)))
    assert "bits per weight" in granularity.readout.value and granularity.error is None


def test_granularity_panel_restores_the_model(granularity):
    granularity.controls["bits"].value = 2
    assert torch.equal(granularity.model.fc1.weight, models.load("mlp").fc1.weight)
    assert 0 <= granularity.accuracy <= 1


def test_one_outlier_ruins_min_max_but_not_the_mse_observer(calibration):
    c = calibration.controls
    c["bits"].value = 3
    c["observer"].value = "minmax"
    c["outlier"].value = False
    clean = calibration.accuracy
    c["outlier"].value = True
    ruined = calibration.accuracy
    c["observer"].value = "mse"
    robust = calibration.accuracy
    assert ruined < clean - 0.3 and robust > ruined + 0.3
    assert float(calibration.qp.float_range[1]) < 43  # the MSE range clips the outlier


def test_percentile_slider_only_matters_for_the_percentile_observer(calibration):
    c = calibration.controls
    c["outlier"].value = True
    c["observer"].value = "percentile"
    assert not c["percentile"].disabled
    c["percentile"].value = 100.0
    wide = float(calibration.qp.scale)
    c["percentile"].value = 99.5
    assert float(calibration.qp.scale) < wide
    c["observer"].value = "entropy"
    assert c["percentile"].disabled
    assert calibration.error is None and "clipped" in calibration.readout.value


def test_panels_refuse_bad_layers(digits):
    (X, _), (Xt, yt) = digits
    with pytest.raises(ValueError, match="2-d weight"):
        widgets.GranularityPanel(models.load("mlp"), "relu")
    with pytest.raises(ValueError, match="one of"):
        widgets.CalibrationPanel(models.load("mlp"), "nope", X[:8], Xt, yt)
