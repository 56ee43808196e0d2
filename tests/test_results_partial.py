"""Lesson 07's grid (qkit/results/partial.py) and the measured greedy it stores.

The sampled points are recomputed and must equal the stored ones when this CPU has the
capability the grid was made on; on another CPU, float paths (vectorised kernels, summation
order) can move a few borderline test images, so there they must agree within 1 point.
"""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch import nn

from qkit import partial, results
from qkit.graph import fold_batchnorm, get_module
from qkit.qparams import weight_qparams
from qkit.quant import fake_quantize
from qkit.results.make import compute_point
from qkit.train import evaluate, fit

pytestmark = pytest.mark.lesson07


@pytest.fixture(scope="module")
def grid() -> dict:
    return results.load("partial")


def _same_or_close(stored: float, fresh: float, capability: str) -> None:
    if capability == torch.backends.cpu.get_cpu_capability():
        assert fresh == stored
    else:
        assert abs(fresh - stored) <= 0.01


def _hand_bytes(model: nn.Module, bits: dict) -> int:
    """ceil(numel·b/8) + 4·out per quantized layer, 4·numel per float one, from the folded weights."""
    folded = fold_batchnorm(model)
    total = 0
    for name, b in bits.items():
        w = get_module(folded, name).weight
        total += 4 * w.numel() if b == 32 else math.ceil(w.numel() * b / 8) + 4 * w.shape[0]
    return total


def test_sampled_points_are_reproduced(grid):
    rows = grid["rows"]
    u4 = results.lookup(rows, kind="uniform", bits=4)["bytes"]  # the issue's budget: uniform 4-bit weights
    for point in ({"kind": "uniform", "bits": 4}, {"kind": "budget", "budget": u4}):
        stored = results.lookup(rows, **point)
        fresh = compute_point("partial", point)
        if point["kind"] == "uniform":
            _same_or_close(stored["accuracy"], fresh["accuracy"], stored["capability"])
            assert fresh["bytes"] == stored["bytes"]
        else:
            for key in ("greedy", "plain", "random0", "random1"):
                _same_or_close(stored[key]["accuracy"], fresh[key]["accuracy"], stored["capability"])
                assert fresh[key]["bits_map"] == stored[key]["bits_map"]


def test_every_stored_allocation_fits_its_budget_and_its_bytes_are_right(grid, zoo):
    model = zoo[grid["args"]["model"]]
    for r in grid["rows"]:
        if r["kind"] == "budget":
            for key, found in r.items():
                if isinstance(found, dict):
                    assert found["bytes"] == _hand_bytes(model, found["bits_map"]) <= r["budget"], key
        elif r["kind"] == "uniform":
            assert r["bytes"] == _hand_bytes(model, r["bits_map"])


def test_the_issue_budget_holds_in_the_stored_integer_models(grid):
    """Mixed precision at the size of uniform 4-bit weights is at least as accurate, PTQ and QAT."""
    rows = {r["allocation"]: r for r in grid["rows"] if r["kind"] == "deploy"}
    u4 = rows["uniform4"]
    for key in ("greedy", "greedy_no_float"):
        assert rows[key]["bytes"] <= u4["bytes"]
        assert rows[key]["ptq_accuracy"] >= u4["ptq_accuracy"]
        assert rows[key]["qat_accuracy"] >= u4["qat_accuracy"]
    assert rows["greedy_no_float"]["ptq_file"] <= u4["ptq_file"]


# ---- the measured greedy against brute force ----------------------------------------------

@pytest.fixture(scope="module")
def toy(digits_train) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    fit(model, *digits_train, epochs=15, lr=1e-2, progress=False)
    return model


def _hand_accuracy(model: nn.Module, bits: dict, X, y) -> float:
    """Each Linear's weight on its per-row symmetric narrow grid, by hand, on a deep copy."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for name, b in bits.items():
            w = copy_.get_submodule(name).weight
            if b != 32:
                w.copy_(fake_quantize(w, weight_qparams(w, b, narrow=True)))
    return evaluate(copy_, X, y)


def test_measured_greedy_is_within_a_third_of_a_point_of_the_optimum(toy, digits_test):
    X, y = digits_test
    names, choices = partial.layers(toy), (2, 4, 8)
    every = {combo: _hand_accuracy(toy, dict(zip(names, combo)), X, y)
             for combo in itertools.product(choices, repeat=len(names))}
    size = {combo: _hand_bytes(toy, dict(zip(names, combo))) for combo in every}
    lo, hi = min(size.values()), max(size.values())
    scorer = partial.Scorer(toy, X, y)
    for i in range(20):
        budget = lo + (hi - lo) * i // 19
        best = max(acc for combo, acc in every.items() if size[combo] <= budget)
        bits = partial.greedy_measured(toy, None, X, y, budget_bytes=budget, choices=choices, scorer=scorer)
        assert _hand_bytes(toy, bits) <= budget
        assert 100 * (best - every[tuple(bits[n] for n in names)]) <= 0.3, budget


def test_scorer_matches_a_hand_evaluation_and_remembers(toy, digits_test):
    X, y = digits_test
    names = partial.layers(toy)
    bits = dict(zip(names, (2, 8, 32, 4)))
    scorer = partial.Scorer(toy, X, y)
    acc, loss = scorer(bits)
    assert acc == _hand_accuracy(toy, bits, X, y)
    copy_ = copy.deepcopy(toy)
    with torch.no_grad():
        for name, b in bits.items():
            w = copy_.get_submodule(name).weight
            if b != 32:
                w.copy_(fake_quantize(w, weight_qparams(w, b, narrow=True)))
        logits = copy_(X).double()
    hand_loss = float(-(logits.log_softmax(1)[torch.arange(len(y)), y]).mean())
    assert loss == pytest.approx(hand_loss, rel=1e-5)
    assert scorer(dict(bits)) == (acc, loss) and scorer.evaluations == 1
    assert torch.equal(toy[1].weight, copy.deepcopy(toy)[1].weight)  # the model itself is untouched


def test_measured_greedy_refuses_a_budget_below_the_minimum(toy, digits_test):
    X, y = digits_test
    with pytest.raises(ValueError, match="too small"):
        partial.greedy_measured(toy, None, X, y, budget_bytes=10, choices=(2, 4, 8))
    with pytest.raises(ValueError, match="max_swaps"):
        partial.greedy_measured(toy, None, X, y, budget_bytes=10_000, max_swaps=-1)


def test_pareto_front_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = int(torch.randint(1, 9, (), generator=gen))
        sizes = torch.randint(1, 5, (n,), generator=gen).tolist()
        accs = (torch.randint(0, 4, (n,), generator=gen) / 4).tolist()
        keep = [i for i in range(n)
                if not any(sizes[j] <= sizes[i] and accs[j] >= accs[i] and (sizes[j], accs[j]) != (sizes[i], accs[i])
                           for j in range(n))
                and not any((sizes[j], accs[j]) == (sizes[i], accs[i]) for j in range(i))]
        assert partial.pareto_front(sizes, accs) == sorted(keep, key=lambda i: sizes[i])


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mlp"])
def test_layer_kinds(zoo, name):
    model = zoo[name]
    kinds = partial.layer_kinds(model)
    folded = fold_batchnorm(model)
    for layer, kind in kinds.items():
        m = get_module(folded, layer)
        w = m.weight
        if kind == "linear":
            assert w.dim() == 2
        elif kind == "depthwise":
            assert w.shape[1] == 1 and m.groups == w.shape[0] > 1
        elif kind == "pointwise":
            assert w.shape[2:] == (1, 1) and m.groups == 1
        else:
            assert kind == "conv" and w.shape[2:] != (1, 1)
