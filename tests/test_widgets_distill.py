"""Lesson 09's panel and figures: every control move redraws; the readout's numbers are the grid's."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from qkit import results
from qkit.figures.distill import seeds_and_sizes, t_squared
from qkit.widgets.distill import DistillPanel, sweep_gain

pytestmark = pytest.mark.lesson09


@pytest.fixture(scope="module")
def grid():
    return results.load("distill")


@pytest.fixture(scope="module")
def panel(grid, zoo, digits_test):
    X, y = digits_test
    idx = [0, 7, 20]
    with torch.no_grad():
        logits = zoo[grid["args"]["teacher"]].eval()(X[idx])
    p = DistillPanel(grid, X[idx], y[idx], logits)
    yield p
    p.close()


def _vals(grid, T, alpha):
    k = grid["args"]["sweep_per_class"]
    T = 1.0 if alpha == 0 else T
    rows = sorted((r for r in grid["rows"] if (r["per_class"], r["T"], r["alpha"]) == (k, T, alpha)),
                  key=lambda r: r["seed"])
    return [r["val"] for r in rows]


def test_every_T_and_alpha_shows_its_own_row(panel, grid):
    scratch = _vals(grid, 1.0, 0.0)
    pictures, readouts = set(), set()
    for T in grid["args"]["Ts"]:
        panel.controls["T"].value = T
        for alpha in grid["args"]["alphas"]:
            panel.controls["alpha"].value = alpha
            v = _vals(grid, T, alpha)
            d = [a - b for a, b in zip(v, scratch)]
            se = statistics.stdev(d) / math.sqrt(len(d))
            assert panel.error is None and panel.accuracy == pytest.approx(statistics.fmean(v))
            assert f"gain <b>{100 * statistics.fmean(d):+.1f} ± {100 * se:.1f}</b>" in panel.readout.value
            assert f"T = {T:g}, alpha = {alpha:g}" in panel.readout.value
            pictures.add(panel.image.value)
            readouts.add(panel.readout.value)
    n = len(grid["args"]["Ts"]) * len(grid["args"]["alphas"])
    assert len(pictures) == n and len(readouts) == n


def test_the_bars_are_the_teachers_softmax_at_T(panel, zoo, digits_test):
    X, _ = digits_test
    with torch.no_grad():
        logits = zoo["resnet"].eval()(X[[0, 7, 20]]).double()
    for T in (1.0, 16.0):
        panel.controls["T"].value = T
        want = torch.softmax(logits / T, 1).numpy()
        got = np.array([[b.get_height() for b in bars] for bars in panel.plot.bars])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got.max() < 0.9  # at T = 16 no digit keeps most of its probability on one class


def test_the_heatmap_is_the_mean_validation_gain(grid):
    a = grid["args"]
    gain = sweep_gain(grid["rows"], a["sweep_per_class"], a["Ts"], a["alphas"])
    base = statistics.fmean(_vals(grid, 1.0, 0.0))
    assert gain[-1, -1] == pytest.approx(100 * (statistics.fmean(_vals(grid, a["Ts"][-1], a["alphas"][-1])) - base))


def test_a_value_off_the_grid_is_a_readout_message(panel):
    panel.controls["T"].value = 4.0
    with pytest.raises(ValueError, match="T must be one of"):
        panel.update(T=3.0, alpha=0.5)
    with pytest.raises(ValueError, match="same D digits"):
        DistillPanel(results.load("distill"), torch.zeros(2, 8, 8), [1, 2, 3], torch.zeros(3, 10))


def test_figures_draw(grid):
    fig = seeds_and_sizes([0.7, 0.72, 0.71], [0.75, 0.78, 0.74], 0.99,
                          {"5": (50, [0.6, 0.62, 0.61], {"a": [0.66, 0.65, 0.7], "b": [0.6] * 3}),
                           "10": (100, [0.7, 0.72, 0.71], {"a": [0.75, 0.78, 0.74]}),
                           "all": (1079, [0.9] * 3, {"a": [0.9] * 3, "b": [0.91] * 3})})
    assert len(fig.axes) == 2 and fig.axes[1].get_xscale() == "log"
    assert [(c.get_label(), len(c.lines[0].get_xdata())) for c in fig.axes[1].containers] == [("a", 3), ("b", 2)]
    fig = t_squared([1, 2, 4], [1.0, 0.25, 0.06], [1.0, 1.0, 1.0])
    assert fig.axes[0].get_yscale() == "log"
