"""Lesson 08's grid (qkit/results/prune.py): sampled points recomputed, the stored rows checked against the kit.

On another float path than the grid was made on (``grid_check``), float paths can move a few
borderline test images: there a recomputed accuracy must agree within 1 point.
"""

from __future__ import annotations

import pytest

from qkit import prune, results
from qkit.results.make import compute_point
from qkit.train import evaluate
from grid_check import same_or_close

pytestmark = pytest.mark.lesson08


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("prune")


@pytest.mark.parametrize("point", [{"kind": "oneshot", "sparsity": 0.9, "scope": "global"},
                                   {"kind": "finetuned", "sparsity": 0.9, "seed": 1}])
def test_sampled_points_are_reproduced(grid, point):
    stored = results.lookup(grid["rows"], **point)
    fresh = compute_point("prune", point)
    same_or_close(stored["acc"], fresh["acc"], stored["cpu"])
    assert fresh["measured_sparsity"] == stored["measured_sparsity"]


def test_a_sampled_zoo_point_is_reproduced(grid):
    """The zoo comparison (lesson 08's last table of section 4): the mlp, one seed, both ways."""
    point = {"kind": "zoo", "model": "mlp", "seed": 1}
    stored = results.lookup(grid["rows"], **point)
    fresh = compute_point("prune", point)
    for key in ("dense", "oneshot", "gradual"):
        same_or_close(stored[key], fresh[key], stored["cpu"])
    assert fresh["measured_sparsity"] == stored["measured_sparsity"]
    assert abs(stored["measured_sparsity"] - grid["args"]["zoo_sparsity"]) < 1e-3


def test_every_point_of_the_definition_is_stored_once(grid):
    from qkit.results import prune as definition

    want = definition.points(grid["args"])
    assert len(grid["rows"]) == len(want)
    for p in want:
        results.lookup(grid["rows"], **p)  # exactly one row each


def test_stored_sparsities_are_what_was_asked(grid, zoo):
    """Global pruning removes round(s·n) of the n weights; gradual pruning ends on the same count."""
    sizes = [m.weight.numel() for m in prune.prunable(zoo[grid["args"]["model"]]).values()]
    n = sum(sizes)
    for r in grid["rows"]:
        if r.get("scope") == "layer":  # each layer rounds its own count
            assert r["measured_sparsity"] == sum(round(r["sparsity"] * k) for k in sizes) / n, r
        elif r["kind"] in ("oneshot", "finetuned", "gradual"):
            assert r["measured_sparsity"] == round(r["sparsity"] * n) / n, r


def test_dense_oneshot_is_the_zoo_model(grid, zoo, digits_test):
    Xt, yt = digits_test
    row = results.lookup(grid["rows"], kind="oneshot", sparsity=0.0, scope="global")
    same_or_close(row["acc"], evaluate(zoo[grid["args"]["model"]], Xt, yt), row["cpu"])


def test_the_kit_recipe_is_the_held_out_choice(grid):
    """qkit.prune.FINETUNE is the best (lr, epochs) on the held-out slice; ties go to fewer epochs, then smaller lr."""
    chosen = [r for r in grid["rows"] if r["kind"] == "choose"]
    best = max(chosen, key=lambda r: (r["holdout_acc"], -r["epochs"], -r["lr"]))
    assert (best["lr"], best["epochs"]) == (prune.FINETUNE["lr"], prune.FINETUNE["epochs"])
    assert (grid["args"]["lr"], grid["args"]["epochs"]) == (best["lr"], best["epochs"])


def test_schedules_follow_the_polynomial(grid):
    for r in grid["rows"]:
        if r["kind"] == "gradual":
            steps = [t for t, _ in r["schedule"]]
            s = [v for _, v in r["schedule"]]
            assert s == sorted(s) and s[-1] == pytest.approx(r["sparsity"])
            n, dt = len(steps), steps[0]
            for t, v in r["schedule"]:
                assert v == pytest.approx(prune.polynomial(t, s_f=r["sparsity"], n=n, dt=dt), abs=1e-6)


def test_the_gradual_schedule_is_the_held_out_choice(grid):
    chosen = [r for r in grid["rows"] if r["kind"] == "choose_gradual"]
    best = max(chosen, key=lambda r: r["holdout_acc"])  # max keeps the first of equals: ARGS order
    assert (best["prune_fraction"], best["dt"]) == (grid["args"]["prune_fraction"], grid["args"]["dt"])
    for r in chosen:
        assert r["holdout_acc"] == pytest.approx(sum(r["holdout_accs"]) / len(r["holdout_accs"]))


def test_stored_files_shrink_as_the_formula_says(grid, zoo):
    """The sparse float32 file holds ceil(n/8) + 4·nnz bytes per converted layer instead of 4n: check the saving."""
    from qkit.prune.sparse import stored_bytes

    model = zoo[grid["args"]["model"]]
    layers = prune.prunable(model)
    for r in grid["rows"]:
        if r["kind"] != "oneshot" or r["scope"] != "global":
            continue
        saved = 0
        for name, frac in r["layers"].items():
            n = layers[name].weight.numel()
            nnz = n - round(frac * n)
            saved += max(0, 4 * n - stored_bytes(n, nnz, 4))
        # the rest of the difference is the container: two tensors (bitmask, values) instead of one per layer
        overhead = r["file_fp32"] - (r["file_fp32_dense"] - saved)
        assert 0 <= overhead <= 1200 * len(layers), (r["sparsity"], overhead)
        assert r["file_int8"] <= r["file_int8_dense"] and r["file_fp32"] <= r["file_fp32_dense"] + 1200 * len(layers)
