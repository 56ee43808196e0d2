"""Lesson 07's panel and figures: a budget move looks a stored row up and redraws it, nothing else."""

from __future__ import annotations

import pytest

from qkit import partial, results
from qkit.figures.partial import float_layers_curve, sensitivity_bars
from qkit.widgets.partial import SHOWN, BudgetPanel, budget_points

pytestmark = pytest.mark.lesson07


@pytest.fixture(scope="module")
def grid():
    return results.load("partial")


@pytest.fixture(scope="module")
def panel(grid, zoo):
    model = zoo[grid["args"]["model"]]
    return BudgetPanel(grid, partial.layers(model), partial.weight_bytes(model, {}))


def test_every_budget_shows_its_own_row(panel, grid):
    rows = {r["budget"]: r for r in grid["rows"] if r["kind"] == "budget"}
    panel.controls["shown"].value = "greedy (measured)"
    seen = set()
    for label, budget in panel.controls["budget"].options:
        panel.controls["budget"].value = budget
        row = rows[budget]
        assert panel.error is None and panel.accuracy == row["greedy"]["accuracy"]
        assert f"{budget:,} bytes" in panel.readout.value and label.startswith(f"{budget:,} B")
        assert f"{100 * budget / 141_568:.1f} %" in label  # mobilenet_v1's float32 weights: 141,568 B
        bars = [round(b.get_height()) for b in panel.plot.bars]
        choices = grid["args"]["choices"]
        assert bars == [choices.index(row["greedy"]["bits_map"][n]) + 1 for n in panel.layers]
        seen.add(panel.image.value)
    assert len(seen) == len(rows)  # every budget draws a picture of its own


def test_the_allocation_toggle_changes_bars_and_readout(panel, grid):
    panel.controls["budget"].value = 14157 if 14157 in panel.rows else sorted(panel.rows)[2]
    pictures = set()
    for shown, key in SHOWN.items():
        panel.controls["shown"].value = shown
        row = panel.rows[panel.controls["budget"].value]
        assert panel.accuracy == row[key]["accuracy"]
        assert f"<b>{shown}</b>: {row[key]['bytes']:,} B" in panel.readout.value
        pictures.add(panel.image.value)
    assert len(pictures) == len(SHOWN)


def test_the_readout_compares_with_the_widest_uniform_width_that_fits(panel, grid):
    uniform = {r["bits"]: r for r in grid["rows"] if r["kind"] == "uniform"}
    panel.controls["budget"].value = uniform[4]["bytes"]
    assert f"4 bits, reaches {100 * uniform[4]['accuracy']:.1f} %" in panel.readout.value


def test_the_front_is_the_non_dominated_set_of_every_point(grid):
    pts = budget_points(grid["rows"])
    every = [(b, a) for b, a in pts["uniform"].values()] + list(zip(*pts["randoms"]))
    for key in ("greedy", "plain"):
        every += list(zip(*pts["curves"][key][1:]))
    front = list(zip(*pts["front"]))
    for p in every:  # nothing beats the front, and the front beats or equals every point
        assert not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in every) or p not in front
        assert any(q[0] <= p[0] and q[1] >= p[1] for q in front)
    assert [s for s, _ in front] == sorted(s for s, _ in front)


def test_static_figures_are_labelled():
    drops = {"stem.conv": 1.0, "blocks.0.conv1": 0.5, "fc": -0.2}
    kinds = {"stem.conv": "conv", "blocks.0.conv1": "depthwise", "fc": "linear"}
    ax = sensitivity_bars(drops, kinds, 3, "m").axes[0]
    assert ax.get_ylabel() and ax.get_xlabel() and ax.get_title() and ax.get_legend() is not None
    assert [round(p.get_height(), 6) for p in ax.patches[:3]] == [1.0, 0.5, -0.2]
    ax = float_layers_curve([0, 1, 2], {"most sensitive first": [0.5, 0.8, 0.9], "random": [0.5, 0.6, 0.9]},
                            0.95, 3, "m").axes[0]
    assert ax.get_ylabel().startswith("test accuracy") and len(ax.get_legend().get_texts()) == 3
    assert list(ax.lines[0].get_ydata()) == [50.0, 80.0, 90.0]
