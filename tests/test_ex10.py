"""Lesson 10 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import itertools
import math

import pytest

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex10_nas import q1, q2, q3

pytestmark = pytest.mark.lesson10

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["forgot the BatchNorms", "forgot the stem", "has a bias", "one k×k filter per channel", "two k×k convs"],
    "q2": ["Pearson's correlation of the values", "average rank", "exact only without ties"],
    "q3": ["best of the sample", "not the worst", "keeps its size", "goes at the end", "the parent stays"],
}


# ---- learner answers written independently of the module ------------------------------

def params_by_layers(block, depth, width, kernel):
    """Walk the layers and add each one's weight count."""
    layers = [(1, width, kernel * kernel)]                       # (in, out, taps) of the stem
    for _ in range(depth):
        if block == "separable":
            layers += [(1, width, kernel * kernel), (width, width, 1)]   # depthwise: 1 input a filter
        else:
            layers += [(width, width, kernel * kernel)] * (2 if block == "residual" else 1)
    weights = sum(cin * cout * taps for cin, cout, taps in layers)
    bn = sum(2 * cout for _, cout, _ in layers)
    return weights + bn + width * 10 + 10


def spearman_by_sorting(a, b):
    """Average ranks by grouping equal values, then the textbook Pearson formula."""
    def ranks(v):
        s = sorted(v)
        return [(s.index(x) + 1 + len(s) - s[::-1].index(x)) / 2 for x in v]
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def aging_by_slicing(population, picks, child):
    best = picks[0]
    for i in picks[1:]:
        if population[i] > population[best]:
            best = i
    return best, population[1:] + [child]


RIGHT = {"q1": [params_by_layers], "q2": [spearman_by_sorting], "q3": [aging_by_slicing]}
WRONG = {  # no declared mistake: the message names the case
    "q1": [(lambda b, d, w, k: d * w * w * k * k, "for block=")],
    "q2": [(lambda a, b: "0.75", "expected a Python float"), (lambda a, b: 0.5, "expected 0.")],
    "q3": [(lambda p, picks, c: picks[0], "expected a tuple of 2 (parent, population)"),
           (lambda p, picks, c: (0, p), "you returned")],
}
TENSOR_INPUT: list[str] = []


def test_q1_reference_counts_the_built_networks_parameters():
    """q1's reference is the number of parameters of the real nn.Module, on every architecture of a grid."""
    from qkit import nas

    for b, d, w, k in itertools.product(nas.BLOCKS, (1, 3), (4, 12), (1, 3, 5)):
        model = nas.build(nas.Arch(b, d, w, k))
        assert q1.reference(b, d, w, k) == sum(p.numel() for p in model.parameters())


def test_q3_solution_is_what_the_search_does():
    """A stub estimate makes qkit's evolution deterministic; its population after each step is q3's."""
    from collections import deque

    from qkit import nas

    scores = {a: (i * 37 % 101) / 101 for i, a in enumerate(nas.SPACE.archs())}  # distinct, unordered
    trials = nas.search(nas.SPACE, strategy="evolution", trials=30, seed=3, estimate=scores.get,
                        latency=lambda a: 1.0, population=6, sample=3)
    alive = deque(t.estimate for t in trials[:6])
    for t in trials[6:]:
        parent_est = trials[t.parent].estimate
        assert parent_est in alive  # the parent was alive: a sampled member
        _, new = q3.solution_fn(list(alive), [list(alive).index(parent_est)], t.estimate)
        alive.append(t.estimate)
        alive.popleft()
        assert new == list(alive)
