"""Lesson 02's panels, driven by setting .value as a learner does."""

from __future__ import annotations

import gc
import weakref

import ipywidgets as w
import numpy as np
import pytest
import torch
from matplotlib.colors import to_hex

from qkit import data, figures, models, widgets
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


def test_a_closed_panel_is_garbage_collected(digits):
    (X, _), (Xt, yt) = digits  # no per-class cache (lru_cache) may keep a panel, its model and figure alive
    for make in (lambda: widgets.GranularityPanel(models.load("mlp"), "fc1", Xt[:64], yt[:64]),
                 lambda: widgets.CalibrationPanel(models.load("mlp"), "relu", X[:32], Xt[:64], yt[:64])):
        panel = make()
        panel.controls["bits"].value = 3  # fills the panel's caches
        ref = weakref.ref(panel)
        panel.close()
        del panel
        gc.collect()
        assert ref() is None


def test_lesson02_controls_are_labelled_units(granularity, calibration):
    for panel in (granularity, calibration):
        for name, unit in panel.units.items():
            assert "qkit-control" in unit._dom_classes and unit.layout.flex_flow == "row nowrap"
            assert panel.controls[name] in unit.children
    assert [c.value for c in calibration.units["observer"].children if isinstance(c, w.Label)] == ["observer"]
    assert [c.value for c in granularity.units["group_size"].children if isinstance(c, w.Label)] == ["group size"]


def test_observer_names_never_sit_on_the_mse_curve(calibration):
    c = calibration.controls
    c["outlier"].value, c["bits"].value = True, 4
    plot = calibration.plot
    for observer in ("minmax", "percentile", "mse", "entropy"):
        c["observer"].value = observer
        plot.render()
        renderer = plot.fig.canvas.get_renderer()
        x, y = plot.curve.get_data()
        u, knots = np.linspace(0, 1, 2000), np.linspace(0, 1, len(x))
        dense = np.c_[np.interp(u, knots, x), np.exp(np.interp(u, knots, np.log(y)))]  # (2000, 2)
        points = plot.ax_mse.transData.transform(dense)  # the curve in pixels
        names = [t for t in plot.names if t.get_text()]
        assert len(names) == 4
        for text in names:
            box = text.get_window_extent(renderer)
            inside = ((points[:, 0] >= box.x0) & (points[:, 0] <= box.x1)
                      & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1))
            assert not inside.any(), f"{text.get_text()!r} is drawn over the curve"


def test_observer_figure_tells_lines_apart_by_colour():
    acts = torch.rand(1000) * 4
    ends = {"minmax": 4.0, "moving_average": 3.9, "percentile": 3.5, "mse": 3.0, "entropy": 2.5}
    fig = figures.observer_ranges(acts, ends)
    ax = fig.axes[0]
    colours = [to_hex(line.get_color()) for line in ax.get_lines()]
    assert len(colours) == len(ends) and len(set(colours)) == len(ends)
    assert [t.get_text().split(":")[0] for t in ax.get_legend().get_texts()] == list(ends)


def test_scale_cost_labels_spell_out_their_unit(granularity):
    plot = granularity.plot
    texts = [t.get_text() for t in plot.costs] + [t.get_text() for t in plot.ax_cost.texts]
    assert not any("b/w" in t for t in texts)
    assert any("bits per weight" in t for t in texts)
