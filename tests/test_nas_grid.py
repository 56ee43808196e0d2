"""Lesson 10's grid (qkit/results/nas.py): complete, made by the current code, and consistent.

Two cheap points are recomputed (a proxy estimate: 3 epochs; a full training of a small
network: 30 epochs) and must equal the stored ones on the float path the grid was made on
(``grid_check``); elsewhere the estimate within 1 held-out image and the full training within 1
point of test accuracy. Latencies are timings, so only their sign is checked.
The ``found`` points' searches are re-run on the stored estimates (no training) and must pick
the stored architectures.
"""

from __future__ import annotations

import pytest

from qkit import nas, results
from qkit.results import nas as grid_def
from qkit.results.make import compute_point
from grid_check import same_or_close

pytestmark = pytest.mark.lesson10


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("nas")


def test_the_grid_holds_every_point_of_its_definition(grid):
    assert grid["args"] == grid_def.ARGS
    expected = grid_def.points(grid["args"])
    stored = [{k: r[k] for k in p} for r, p in zip(grid["rows"], expected)]
    assert len(grid["rows"]) == len(expected) and stored == expected
    assert {r["arch"] for r in grid["rows"] if r["kind"] == "arch"} == {a.key for a in nas.SPACE.archs()}


@pytest.mark.parametrize("point", [{"kind": "arch", "arch": "plain-d1-w8-k3"},
                                   {"kind": "full", "arch": "plain-d1-w12-k3"}])
def test_sampled_points_are_reproduced(grid, point):
    stored = results.lookup(grid["rows"], **point)
    fresh = compute_point("nas", point)
    if point["kind"] == "arch":
        assert fresh["params"] == stored["params"]
        same_or_close(stored["estimate"], fresh["estimate"], stored["capability"], tol=1 / nas.estimate.HELD_OUT + 1e-12)
        assert fresh["latency_ms"] > 0 and stored["latency_ms"] > 0
    else:
        same_or_close(stored["full"], fresh["full"], stored["capability"])


def test_stored_parameter_counts_are_the_layer_shapes(grid):
    from test_nas import params_by_hand

    for r in grid["rows"]:
        if r["kind"] in ("arch", "found"):
            assert r["params"] == params_by_hand(nas.Arch.parse(r["arch"]))


def test_found_points_are_the_searches_best_on_the_stored_estimates(grid):
    rows = grid["rows"]
    est = {r["arch"]: r["estimate"] for r in rows if r["kind"] == "arch"}
    searches = grid_def.found_search(grid["args"], estimate=lambda a: est[a.key])
    for r in rows:
        if r["kind"] != "found":
            continue
        trials = searches[r["strategy"]]
        assert len(trials) == grid["args"]["trials"]
        assert all(t.params <= grid["args"]["max_params"] for t in trials)
        best = max(trials, key=lambda t: (t.estimate, -t.index))
        assert r["arch"] == best.arch.key and r["estimate"] == est[r["arch"]]
        assert 0.1 < r["accuracy"] <= 1 and r["file_bytes"] > 4 * r["params"]  # float32 weights + the format
