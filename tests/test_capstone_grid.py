"""Lesson 11's grid (qkit/results/capstone.py): a recomputed point equals the stored one; the stored model is the one
the table describes.

Timing (``latency_ms``) differs from run to run and is not compared. On another float path than
the grid's (``grid_check``), float paths can move a borderline test image, so there accuracies must agree within
1 point and the bytes exactly.
"""

from __future__ import annotations

import pytest

from qkit import compose, data, measure, results
from qkit.results.capstone import final_state
from qkit.results.make import compute_point
from qkit.train import evaluate
from grid_check import same_path

pytestmark = pytest.mark.lesson11


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("capstone")


def _stages(row: dict) -> dict:
    return {s["stage"]: s for s in row["stages"]}


def test_a_sampled_point_is_reproduced(grid):
    sparsity, w_bits = grid["args"]["recipes"][0]
    point = {"seed": 0, "sparsity": sparsity, "w_bits": w_bits}
    stored, fresh = results.lookup(grid["rows"], **point), compute_point("capstone", point)
    same_cpu = same_path(stored["capability"])
    assert fresh["recipe"] == stored["recipe"]
    for name, s in _stages(stored).items():
        f = _stages(fresh)[name]
        if same_cpu:
            assert f["size"] == s["size"], name
        else:  # QAT may round a few more weights to 0 elsewhere: a few bytes of packed values move
            assert abs(f["size"] - s["size"]) <= 0.02 * s["size"], name
        if same_cpu:
            assert (f["accuracy"], f["sparsity"], f["agreement"]) == (s["accuracy"], s["sparsity"], s["agreement"]), name
        else:
            assert abs(f["accuracy"] - s["accuracy"]) <= 0.01, name
    if same_cpu:
        assert fresh["final_state"] == stored["final_state"]


def test_the_stored_final_model_is_the_one_in_the_table(grid):
    X, _ = data.digits("train")
    Xt, yt = data.digits("test")
    model = compose.load_final(final_state(grid), compose.RECIPE, X)
    row = _stages(results.lookup(grid["rows"], seed=0, sparsity=compose.RECIPE["sparsity"],
                                 w_bits=compose.RECIPE["w_bits"]))
    assert measure.model_size(model) == row["packed"]["size"]  # the very bytes: no training involved
    same_cpu = same_path(grid["rows"][0]["capability"])
    assert abs(evaluate(model, Xt, yt) - row["packed"]["accuracy"]) <= (0 if same_cpu else 0.01)
    assert row["original"]["size"] / row["packed"]["size"] >= 20  # the lesson's budget holds for it


def test_stored_rows_are_consistent(grid):
    for row in grid["rows"]:
        st = _stages(row)
        assert tuple(st) == compose.STAGES
        base = st["original"]["size"]
        for s in st.values():
            assert s["size_ratio"] == pytest.approx(base / s["size"])
            assert s["accuracy_drop"] == pytest.approx(100 * (st["original"]["accuracy"] - s["accuracy"]))
        assert st["packed"]["size"] < st["quantized"]["size"] < st["distilled"]["size"] < base
        assert st["pruned"]["sparsity"] == pytest.approx(row["sparsity"], abs=1e-3)
        assert st["packed"]["sparsity"] >= st["pruned"]["sparsity"] - 1e-9  # QAT kept every pruned zero
        assert row["recipe"]["w_bits"] == row["w_bits"] and row["recipe"]["sparsity"] == row["sparsity"]


def test_summary_and_figure(grid):
    from qkit.figures.capstone import compression_vs_accuracy
    from qkit.results.capstone import summary

    table = summary(grid)
    assert len(table) == len(grid["args"]["recipes"])
    main = tuple(grid["args"]["recipes"][0])
    accs = [_stages(r)["packed"]["accuracy"] for r in grid["rows"] if (r["sparsity"], r["w_bits"]) == main]
    assert table[main]["packed"]["accuracy"] == pytest.approx(sum(accs) / len(accs))
    assert table[main]["packed"]["low"] == min(accs) and table[main]["packed"]["high"] == max(accs)
    fig = compression_vs_accuracy(table, main)
    left, right = fig.axes
    assert left.get_xscale() == "log" and "accuracy" in left.get_ylabel() and "ratio" in right.get_xlabel()
    with pytest.raises(ValueError, match="one of the recipes"):
        compression_vs_accuracy(table, (0.33, 3))


def test_stage_panel_moves_with_every_control(grid):
    from qkit.widgets.capstone import StagePanel

    panel = StagePanel(grid)
    try:
        first_picture, first_text = panel.image.value, panel.readout.value
        assert "met" in first_text and not panel.stale
        panel.controls["sparsity"].value = 0.9  # 90 %, 4-bit: in the grid
        assert panel.image.value != first_picture and panel.readout.value != first_text
        sizes = [_stages(r)["packed"]["size"] for r in grid["rows"] if (r["sparsity"], r["w_bits"]) == (0.9, 4)]
        assert f"{max(sizes):,} bytes" in panel.readout.value
        panel.controls["w_bits"].value = 8  # 90 % at 8 bits was not run: said so, picture greyed
        assert panel.stale and "no run at 90 % sparsity with 8-bit" in panel.readout.value
        assert "qkit-stale" in panel.image._dom_classes
        panel.controls["sparsity"].value = 0.75  # 75 %, 8-bit: in the grid again
        assert not panel.stale and "qkit-stale" not in panel.image._dom_classes
        assert panel.final["size"] == max(_stages(r)["packed"]["size"] for r in grid["rows"]
                                          if (r["sparsity"], r["w_bits"]) == (0.75, 8))
    finally:
        panel.close()
