"""Lesson 08's structured-pruning grid (qkit/results/channels.py), its summary, table and figure.

Sampled points are recomputed and must equal the stored ones on the float path the grid was
made on (``grid_check``) (elsewhere float paths may move a few borderline test images: within 1 point).
"""

from __future__ import annotations

import math

import pytest
import torch

from qkit import measure, models, prune, results
from qkit.figures.channels import structured_figure, structured_table
from qkit.results import channels as grid_module
from qkit.results.channels import best_recipe, summary
from qkit.results.make import compute_point
from grid_check import same_or_close

pytestmark = [pytest.mark.lesson08, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("channels")


@pytest.mark.parametrize("point", [
    {"kind": "oneshot", "model": "mobilenet_v1", "amount": 0.75, "criterion": "bn"},
    {"kind": "structured", "model": "resnet", "amount": 0.75, "seed": 1},
])
def test_sampled_points_are_reproduced(grid, point):
    stored = results.lookup(grid["rows"], **point)
    fresh = compute_point("channels", point)
    same_or_close(stored["acc"], fresh["acc"], stored["cpu"])
    assert (fresh["params"], fresh["bytes"], fresh["weights"]) == (stored["params"], stored["bytes"], stored["weights"])


def test_the_stored_args_are_the_module_args(grid):
    assert grid["args"] == grid_module.ARGS
    assert len(grid["rows"]) == len(grid_module.points(grid_module.ARGS))


def test_recipe_is_the_best_on_the_held_out_images(grid):
    for name in grid["args"]["models"]:
        assert grid["args"]["recipe"][name] == best_recipe(grid["rows"], name)
        chosen = [r for r in grid["rows"] if r["kind"] == "choose" and r["model"] == name]
        assert len(chosen) == (len(grid["args"]["criteria"]) * len(grid["args"]["choose_lr"])
                               * len(grid["args"]["choose_epochs"]) * len(grid["args"]["choose_distill"]))


def test_best_recipe_breaks_ties_towards_less_training():
    rows = [{"kind": "choose", "model": "m", "criterion": c, "lr": lr, "epochs": e, "distill": d, "holdout_acc": acc}
            for c, lr, e, d, acc in [("l1", 0.01, 16, False, 0.95), ("bn", 0.003, 8, False, 0.95),
                                     ("l1", 0.003, 8, True, 0.95), ("l1", 0.003, 8, False, 0.95),
                                     ("l1", 0.001, 32, True, 0.94)]]
    assert best_recipe(rows, "m") == {"criterion": "l1", "lr": 0.003, "epochs": 8, "distill": False}
    rows[-1]["holdout_acc"] = 0.96
    assert best_recipe(rows, "m") == {"criterion": "l1", "lr": 0.001, "epochs": 32, "distill": True}
    with pytest.raises(ValueError, match="no 'choose' rows"):
        best_recipe(rows, "other")


def test_stored_sizes_agree_with_a_count_by_hand(grid):
    rows = grid["rows"]
    # resnet at half the channels: 19,810 parameters (counted layer by layer in test_prune_channels.py)
    assert results.lookup(rows, kind="structured", model="resnet", amount=0.5, seed=0)["params"] == 19810
    dense = results.lookup(rows, kind="dense", model="resnet")
    assert dense["params"] == sum(p.numel() for p in models.load("resnet").parameters())
    assert dense["bytes"] == measure.model_size(models.load("resnet"))


def test_unstructured_rows_match_the_structured_sparsity_and_keep_their_shapes(grid):
    rows = grid["rows"]
    for name in grid["args"]["models"]:
        dense = results.lookup(rows, kind="dense", model=name)
        for amount in grid["args"]["amounts"]:
            s = results.lookup(rows, kind="structured", model=name, amount=amount, seed=0)
            u = results.lookup(rows, kind="unstructured", model=name, amount=amount, seed=0)
            assert math.isclose(u["sparsity"], 1 - s["weights"] / dense["weights"], rel_tol=1e-12)
            assert u["weights"] == dense["weights"] and u["bytes"] == dense["bytes"]  # zeros still stored
            assert u["sparse_bytes"] < u["bytes"]
            assert s["bytes"] < dense["bytes"] and s["params"] < dense["params"]
            # same number of weights gone (the magnitude cut rounds to whole weights), BN and biases untouched
            zeroed_weights = dense["weights"] - s["weights"]
            assert abs((dense["params"] - u["params"]) - zeroed_weights) <= 2


def test_summary_means_and_spreads(grid):
    rows = grid["rows"]
    table = summary(rows, "mobilenet_v1")
    assert [r["method"] for r in table] == ["dense"] + ["unstructured", "structured"] * len(grid["args"]["amounts"])
    s = next(r for r in table if r["method"] == "structured" and r["amount"] == 0.5)
    accs = [results.lookup(rows, kind="structured", model="mobilenet_v1", amount=0.5, seed=k)["acc"]
            for k in grid["args"]["seeds"]]
    mean = sum(accs) / len(accs)
    assert math.isclose(s["acc"], mean)
    assert math.isclose(s["acc_std"], math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)), abs_tol=1e-12)
    t = results.lookup(rows, kind="latency", model="mobilenet_v1", amount=0.5)
    assert math.isclose(s["speedup"], t["dense_ms"] / t["structured_ms"])
    live = summary(rows, "mobilenet_v1", {0.5: {"dense_ms": 4.0, "structured_ms": 2.0, "unstructured_ms": 4.4}})
    assert next(r for r in live if r["method"] == "structured" and r["amount"] == 0.5)["speedup"] == 2.0
    assert next(r for r in live if r["method"] == "structured" and r["amount"] == 0.25)["speedup"] is None
    with pytest.raises(ValueError, match="no model 'vgg'"):
        summary(rows, "vgg")


def test_table_and_figure(grid):
    rows = summary(grid["rows"], "resnet")
    text = structured_table(rows)
    lines = text.splitlines()
    assert len(lines) == 1 + len(rows)
    assert lines[1].startswith("dense") and "1.00×" in lines[1]
    assert sum(line.startswith("structured") for line in lines) == len(grid["args"]["amounts"])
    assert f"{rows[-1]['params']:,}" in lines[-1]
    fig = structured_figure(rows, model="resnet")
    left, right = fig.axes
    assert "parameters" in left.get_xlabel() and "ms" in right.get_xlabel()
    assert "accuracy" in left.get_ylabel() and "%" in left.get_ylabel()
    assert {t.get_text() for t in left.get_legend().get_texts()} >= {"structured: channels removed",
                                                                    "unstructured: magnitude, same sparsity"}
    with pytest.raises(TypeError, match="summary"):
        structured_table("resnet")
    with pytest.raises(ValueError, match="lack"):
        structured_figure([{"method": "dense"}])


def test_figure_without_latencies():
    rows = [dict(method="dense", amount=0.0, sparsity=0.0, acc=0.99, acc_std=0.0, seeds=0, params=1000, bytes=5000,
                 sparse_bytes=None, ms=None, speedup=None),
            dict(method="structured", amount=0.5, sparsity=0.7, acc=0.98, acc_std=0.01, seeds=3, params=300,
                 bytes=1500, sparse_bytes=None, ms=None, speedup=None)]
    fig = structured_figure(rows)
    assert "no latencies" in fig.axes[1].texts[0].get_text()
    assert "—" in structured_table(rows).splitlines()[2]


def test_teacher_loss_is_the_distillation_loss_against_the_dense_logits(zoo, digits_test):
    from qkit import distill

    X, y = digits_test[0][:32], digits_test[1][:32]
    student = prune.channels(zoo["resnet"], 0.5)
    logits = student(X)
    T, alpha = grid_module.ARGS["teacher"]["T"], grid_module.ARGS["teacher"]["alpha"]
    expected = distill.loss(logits, zoo["resnet"](X), y, T=T, alpha=alpha)
    assert torch.equal(grid_module.teacher_loss(zoo["resnet"])(logits, y, X), expected)
    assert not torch.equal(expected, torch.nn.functional.cross_entropy(logits, y))


def test_unstructured_pruning_keeps_the_dense_kernels_latency_structure(zoo):
    """What the latency rows compare: the unstructured model has the dense shapes, the structured one does not."""
    dense = zoo["resnet"]
    small = prune.channels(dense, 0.5)
    zeros = prune.magnitude(dense, grid_module.structured_sparsity("resnet", 0.5, "l1"))
    assert [p.shape for p in zeros.parameters()] == [p.shape for p in dense.parameters()]
    assert grid_module.weight_count(small) < grid_module.weight_count(dense) == grid_module.weight_count(zeros)
