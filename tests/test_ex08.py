"""Lesson 08 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import math

import pytest
import torch

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex08_prune import q1, q2, q3, q4

pytestmark = pytest.mark.lesson08

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["rank by magnitude", "int() truncates", "inverted", "1 − sparsity", "a threshold on |w|"],
    "q2": ["not the square", "not linear", "still to prune", "cap the share"],
    "q3": ["not n", "round the bitmask up", "only the nnz", "not 1"],
    "q4": ["pruned alone", "rank by magnitude", "counted the weights kept", "int() truncates"],
}


# ---- learner answers written independently of the module ------------------------------

def mask_by_python_sort(w, sparsity):
    values = [abs(v) for v in w.reshape(-1).tolist()]
    k = int(math.floor(sparsity * len(values) + 0.5))  # the cases never sit on x.5
    ranked = sorted(range(len(values)), key=lambda i: (values[i], i))
    keep = [True] * len(values)
    for i in ranked[:k]:
        keep[i] = False
    return torch.tensor(keep, dtype=torch.bool).view(w.shape)


def schedule_piecewise(t, s_f, n, dt):
    end = n * dt
    if t >= end:
        return s_f
    remaining = (end - t) / end
    return s_f - s_f * remaining * remaining * remaining


def sparse_bytes_by_bits(n, nnz, element_bytes):
    return (n + 7) // 8 + nnz * element_bytes


def layer_pruned_by_python(weights, sparsity):
    entries = [(abs(v), li, j) for li, w in enumerate(weights) for j, v in enumerate(w.reshape(-1).tolist())]
    k = int(math.floor(sparsity * len(entries) + 0.5))
    pruned = [0] * len(weights)
    for _, li, _ in sorted(entries)[:k]:
        pruned[li] += 1
    return pruned


RIGHT = {"q1": [mask_by_python_sort], "q2": [schedule_piecewise], "q3": [sparse_bytes_by_bits],
         "q4": [layer_pruned_by_python]}
WRONG = {  # no declared mistake: the message names the case
    "q1": [(lambda w, s: torch.ones_like(w, dtype=torch.bool), "expected False"),
           (lambda w, s: (w.abs() > 0.3).float(), "dtype")],
    "q2": [(lambda t, s_f, n, dt: 0.0, "for t=")],
    "q3": [(lambda n, nnz, e: n * e, "for n=")],
    "q4": [(lambda weights, s: [round(s * sum(w.numel() for w in weights))], "for weights=")],
}
TENSOR_INPUT = ["q1"]


def test_q1_edge_case_by_hand():
    """The fixed case: the 4 smallest |w| are 0.05, 0.1, 0.2 and the first of the two 0.5s (index 0)."""
    w, s = q1.edge_cases[0]
    want = torch.ones(10, dtype=torch.bool)
    want[[9, 2, 4, 0]] = False
    assert torch.equal(q1.reference(w, s), want)


def test_q4_edge_case_by_hand():
    weights, s = q4.edge_cases[0]
    assert q4.reference(weights, s) == [4, 3]


def test_q2_and_q3_references_by_hand():
    assert q2.reference(5, 0.8, 1, 10) == pytest.approx(0.7)
    assert q2.reference(60, 0.9, 4, 10) == pytest.approx(0.9)
    assert q2.reference(0, 0.9, 4, 10) == 0.0
    assert q3.reference(20, 3, 4) == 15
    assert q3.reference(16, 0, 1) == 2
