"""Lesson 10's panel (qkit.widgets.nas.SearchPanel): every control changes the picture and the readout,
the readout's numbers are the searches' own (re-run here), and impossible limits are a message."""

from __future__ import annotations

import re

import numpy as np
import pytest

from qkit import nas, results
from qkit.widgets.nas import LATENCY_LIMITS, NO_LIMIT, SearchPanel

pytestmark = pytest.mark.lesson10


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("nas")


@pytest.fixture(scope="module")
def panel(grid):
    p = SearchPanel(grid, seeds=5)
    yield p
    p.close()


def _percent(text: str, label: str) -> float:
    return float(re.search(rf"{label} <b>([\d.]+) %</b>", text).group(1))


def test_every_control_changes_the_picture_and_the_readout(panel):
    moves = {"max_params": 3000, "max_latency_ms": 5.0, "seed": 3, "shown": "random"}
    for name, value in moves.items():
        before_png, before_text = panel.image.value, panel.readout.value
        panel.controls[name].value = value
        assert panel.error is None and not panel.stale, panel.error
        assert panel.image.value != before_png, name
        assert panel.readout.value != before_text, name


def test_a_limit_that_excludes_nothing_more_still_says_so(panel):
    """At 9,000 params every architecture is faster than the slowest latency limit: the picture cannot
    change, so the readout must name the limit and how many architectures it alone admits."""
    panel.controls["max_params"].value = 9000
    panel.controls["max_latency_ms"].value = NO_LIMIT
    before = panel.readout.value
    loosest = max(v for v in LATENCY_LIMITS if v != NO_LIMIT)
    panel.controls["max_latency_ms"].value = loosest
    after = panel.readout.value
    assert after != before
    admitted = int((panel.latency <= loosest).sum())
    assert f"≤ {loosest:g} ms: {admitted}" in after and f"≤ {loosest:g} ms" not in before


def test_the_readout_is_what_the_searches_find(panel, grid):
    """The mean best at the budget, re-computed here from the stored table with qkit.nas.search."""
    panel.controls["max_latency_ms"].value = NO_LIMIT
    panel.controls["max_params"].value = 4000
    panel.controls["seed"].value = 2
    panel.controls["shown"].value = "evolution"
    rows = {r["arch"]: r for r in grid["rows"] if r["kind"] == "arch"}
    best = {}
    for s in nas.STRATEGIES:
        found = [max(t.estimate for t in nas.search(nas.SPACE, strategy=s, trials=grid["args"]["trials"],
                                                     max_params=4000, seed=seed,
                                                     estimate=lambda a: rows[a.key]["estimate"],
                                                     latency=lambda a: rows[a.key]["latency_ms"]))
                 for seed in range(5)]
        best[s] = 100 * np.mean(found)
    text = panel.readout.value
    assert _percent(text, "random") == pytest.approx(best["random"], abs=0.05)
    assert _percent(text, "evolution") == pytest.approx(best["evolution"], abs=0.05)
    feasible = sum(r["params"] <= 4000 for r in rows.values())
    assert f"<b>{feasible} of {len(rows)}</b>" in text


def test_limits_no_architecture_meets_are_a_message_not_a_traceback(grid):
    """On a table measured on a machine 10× slower, the tightest latency limits leave nothing to search."""
    slow = {**grid, "rows": [{**r, "latency_ms": 10 * r["latency_ms"]} if r["kind"] == "arch" else r
                             for r in grid["rows"]]}
    fastest = 10 * min(r["latency_ms"] for r in grid["rows"] if r["kind"] == "arch")
    tight = [v for v in LATENCY_LIMITS if v != NO_LIMIT and v < fastest]
    assert tight, "the slider's smallest latency limit should be below the 10× slower table's fastest"
    panel = SearchPanel(slow, seeds=2)
    try:
        panel.controls["max_latency_ms"].value = tight[0]
        assert panel.stale and "no architecture meets" in panel.error
        assert "⚠" in panel.readout.value
        panel.controls["max_latency_ms"].value = NO_LIMIT
        assert not panel.stale and panel.error is None
    finally:
        panel.close()


def test_bad_arguments_are_refused(grid):
    with pytest.raises(ValueError, match="seeds must be an int >= 1"):
        SearchPanel(grid, seeds=0)
    with pytest.raises(ValueError, match="no 'arch' rows"):
        SearchPanel({"args": {"trials": 5}, "rows": []})


def test_static_figures_draw_every_point_with_labelled_axes():
    from qkit.figures.nas import pareto_with_zoo, proxy_fidelity

    fig = proxy_fidelity([0.5, 0.7, 0.9], [0.9, 0.95, 0.97], ["plain", "separable", "separable"], 1.0)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3
    assert "proxy" in ax.get_xlabel() and "full" in ax.get_ylabel() and "ρ = 1.00" in ax.get_title()
    zoo = {"a": (9000, 0.97), "b": (14000, 0.99), "c": (30000, 0.98)}
    fig = pareto_with_zoo(zoo, {"evo": (5000, [0.98, 0.99], "evolution"), "rnd": (5000, [0.98], "random")},
                          budget=8000)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("evo: mean of 2 retrains" in t for t in labels) and any("8,000 params" in t for t in labels)
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert sorted(x for s in stars for x in s.get_xdata()) == [5000, 5000 * 1.08]  # side by side
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
