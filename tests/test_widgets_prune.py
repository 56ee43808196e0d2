"""Lesson 08's panel and figures: a sparsity move looks stored rows up and redraws them, nothing else."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from qkit import results
from qkit.figures.prune import magnitude_histogram, schedule_plot, sensitivity_lines
from qkit.widgets.prune import SCOPES, SparsityPanel, sparsity_curves

pytestmark = pytest.mark.lesson08


@pytest.fixture(scope="module")
def grid():
    return results.load("prune")


@pytest.fixture(scope="module")
def panel(grid):
    return SparsityPanel(grid)


def _rows(grid, **point):
    return [r for r in grid["rows"] if all(r.get(k) == v for k, v in point.items())]


def test_every_sparsity_shows_its_own_rows(panel, grid):
    panel.controls["scope"].value = "global ranking"
    seen = set()
    for label, s in panel.controls["sparsity"].options:
        panel.controls["sparsity"].value = s
        assert panel.error is None
        finetuned = [r["acc"] for r in _rows(grid, kind="finetuned", sparsity=s)]
        assert len(finetuned) == len(grid["args"]["seeds"])
        assert panel.accuracy == pytest.approx(100 * statistics.mean(finetuned))
        oneshot = results.lookup(grid["rows"], kind="oneshot", sparsity=s, scope="global")
        assert f"<b>{100 * oneshot['acc']:.1f} %</b> right after pruning" in panel.readout.value
        assert f"float32 {oneshot['file_fp32']:,} B sparse" in panel.readout.value
        assert label == f"{100 * s:g} %"
        bars = [b.get_height() for b in panel.plot.bars]
        assert bars == pytest.approx([100 * oneshot["layers"][n] for n in panel.layers])
        i = panel.sparsities.index(s)
        assert list(panel.plot.marker.get_xdata()) == [i, i]
        assert ("gradually" in panel.readout.value) == bool(_rows(grid, kind="gradual", sparsity=s))
        seen.add(panel.image.value)
    assert len(seen) == len(panel.sparsities)  # every sparsity draws a picture of its own


def test_the_scope_toggle_changes_bars_and_readout(panel, grid):
    panel.controls["sparsity"].value = 0.7
    pictures, texts = set(), set()
    for label, scope in SCOPES.items():
        panel.controls["scope"].value = label
        row = results.lookup(grid["rows"], kind="oneshot", sparsity=0.7, scope=scope)
        assert f"one-shot ({label})" in panel.readout.value
        assert f"<b>{100 * row['acc']:.1f} %</b> right after pruning" in panel.readout.value
        bars = np.array([b.get_height() for b in panel.plot.bars])
        if scope == "layer":  # each layer alone: every layer at 70 %, to within one weight
            assert np.allclose(bars, 70, atol=100 / min(panel.sizes))
        else:  # one ranking: the layers differ
            assert bars.max() - bars.min() > 10
        pictures.add(panel.image.value)
        texts.add(panel.readout.value)
    assert len(pictures) == len(texts) == len(SCOPES)


def test_a_bad_value_is_a_readout_message(panel):
    panel.controls["scope"].value = "global ranking"
    assert "scope must be" in _update_error(panel, sparsity=0.9, scope="by channel")
    assert "sparsity must be" in _update_error(panel, sparsity=0.42, scope="global ranking")


def _update_error(panel, **values):
    with pytest.raises(ValueError) as e:
        panel.update(**values)
    return str(e.value)


def test_curves_hold_one_value_per_seed(grid):
    curves = sparsity_curves(grid["rows"])
    assert set(curves) == {"global", "layer", "finetuned", "gradual"}
    assert sorted(curves["gradual"]) == grid["args"]["gradual"]
    assert all(len(v) == 1 for v in curves["global"].values())
    assert all(len(v) == len(grid["args"]["seeds"]) for v in curves["finetuned"].values())


def test_static_figures_are_labelled(grid):
    rng = np.random.default_rng(0)
    fig = magnitude_histogram({"a": rng.normal(size=(50, 3)), "b": rng.normal(size=20)}, 0.5, 0.6, "m")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("|w|") and ax.get_ylabel() and ax.get_title() and ax.get_legend()
    sens = next(r for r in grid["rows"] if r["kind"] == "sensitivity")
    ax = sensitivity_lines(sens["layers"], sens["sparsities"], sens["dense"], sens["sizes"], "resnet").axes[0]
    assert len(ax.get_lines()) == len(sens["layers"]) + 1 and ax.get_ylabel().startswith("test accuracy")
    first = ax.get_lines()[0]
    assert list(first.get_ydata()) == pytest.approx([100 * a for a in next(iter(sens["layers"].values()))])
    g = results.lookup(grid["rows"], kind="gradual", sparsity=0.95, seed=0)
    ax = schedule_plot([tuple(p) for p in g["schedule"]], 200, 0.95).axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() == "sparsity (%)" and len(ax.get_legend().get_texts()) == 2
