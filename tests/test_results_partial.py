"""Lesson 07's grid (qkit/results/partial.py) and the measured greedy it stores.

The sampled points are recomputed and must equal the stored ones on the float path the grid
was made on (``grid_check``); on another CPU, float paths (vectorised kernels, summation
order) can move a few borderline test images, so there they must agree within 1 point.
"""

from __future__ import annotations

import copy
import itertools
import math

import pytest
from torch import nn

from qkit import partial, results
from qkit.graph import fold_batchnorm, get_module
from qkit.qparams import weight_qparams
from qkit.quant import fake_quantize
from qkit.results.make import compute_point
from qkit.train import evaluate, fit
from grid_check import same_or_close
from test_partial import packed_bytes  # the packing formula, written out once

pytestmark = pytest.mark.lesson07


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("partial")


def test_sampled_points_are_reproduced(grid):
    rows = grid["rows"]
    u4 = results.lookup(rows, kind="uniform", bits=4)["bytes"]  # the issue's budget: uniform 4-bit weights
    for point in ({"kind": "uniform", "bits": 4}, {"kind": "budget", "budget": u4}):
        stored = results.lookup(rows, **point)
        fresh = compute_point("partial", point)
        if point["kind"] == "uniform":
            same_or_close(stored["accuracy"], fresh["accuracy"], stored["capability"])
            assert fresh["bytes"] == stored["bytes"]
        else:
            for key in ("greedy", "plain", "random0", "random1"):
                same_or_close(stored[key]["accuracy"], fresh[key]["accuracy"], stored["capability"])
                assert fresh[key]["bits_map"] == stored[key]["bits_map"]


def test_every_stored_allocation_fits_its_budget_and_its_bytes_are_right(grid, zoo):
    model = zoo[grid["args"]["model"]]
    for r in grid["rows"]:
        if r["kind"] == "budget":
            for key, found in r.items():
                if isinstance(found, dict):
                    assert found["bytes"] == packed_bytes(model, found["bits_map"]) <= r["budget"], key
        elif r["kind"] == "uniform":
            assert r["bytes"] == packed_bytes(model, r["bits_map"])


def test_the_issue_budget_holds_in_the_stored_integer_models(grid):
    """Mixed precision at the size of uniform 4-bit weights is at least as accurate, PTQ and QAT."""
    rows = {r["allocation"]: r for r in grid["rows"] if r["kind"] == "deploy"}
    u4 = rows["uniform4"]
    for key in ("greedy", "greedy_no_float"):
        assert rows[key]["bytes"] <= u4["bytes"]
        assert rows[key]["ptq_accuracy"] >= u4["ptq_accuracy"]
        assert rows[key]["qat_accuracy"] >= u4["qat_accuracy"]
    assert rows["greedy_no_float"]["ptq_file"] <= u4["ptq_file"]
