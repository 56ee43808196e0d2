"""Lesson 09's grid (qkit/results/distill.py): sampled points recomputed, the chosen pair is the validation best.

On the float path the grid was made on (``grid_check``), a recomputed point must equal the stored one; on
another CPU float summation order can move a few borderline images, so there within 1 point.
"""

from __future__ import annotations

import statistics

import pytest

from qkit import results
from qkit.results import distill as grid_module
from qkit.results.make import compute_point
from grid_check import same_or_close

pytestmark = pytest.mark.lesson09


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("distill")


def test_the_stored_grid_is_the_modules_grid(grid):
    assert grid["args"] == grid_module.ARGS
    stored = [{k: r[k] for k in ("per_class", "T", "alpha", "seed")} for r in grid["rows"]]
    assert stored == grid_module.points(grid_module.ARGS)


@pytest.mark.parametrize("point", [
    {"per_class": 5, "T": 1.0, "alpha": 0.0, "seed": 0},  # a scratch run on 50 images
    {"per_class": 10, "T": 8.0, "alpha": 1.0, "seed": 1},  # a distilled run of the chosen pair
])
def test_sampled_points_are_reproduced(grid, point):
    stored = results.lookup(grid["rows"], **point)
    fresh = compute_point("distill", point)
    assert fresh["images"] == stored["images"] == 10 * point["per_class"]
    for key in ("val", "test"):
        same_or_close(stored[key], fresh[key], stored["capability"])


def test_the_chosen_pair_has_the_best_mean_validation_accuracy(grid):
    """Computed here from the rows, by hand: every (T, alpha) of the sweep against the chosen one."""
    k = grid["args"]["sweep_per_class"]
    means = {}
    for r in grid["rows"]:
        if r["per_class"] == k and r["alpha"] > 0:
            means.setdefault((r["T"], r["alpha"]), []).append(r["val"])
    assert len(means) == len(grid["args"]["Ts"]) * len(grid["args"]["alphas"])
    chosen = (grid["args"]["chosen"]["T"], grid["args"]["chosen"]["alpha"])
    assert all(len(v) == len(grid["args"]["seeds"]) for v in means.values())
    assert statistics.fmean(means[chosen]) == max(statistics.fmean(v) for v in means.values())
    assert grid_module.best(grid["rows"]) == chosen


def test_scratch_and_distilled_share_the_images_and_the_steps(grid):
    """Same labelled set for both at every size; the runs of a size have the same number of images."""
    by_size = {}
    for r in grid["rows"]:
        by_size.setdefault(r["per_class"], set()).add(r["images"])
    assert by_size[0] == {1079} and all(v == {10 * k} for k, v in by_size.items() if k)
