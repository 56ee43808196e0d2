"""Lesson 10 exercises: architecture search (a network's size, the proxy's faithfulness, one evolution step).

In the notebook::

    from exercises.ex10_nas import q1, q2, q3

    q1  my_count_params(block, depth, width, kernel) -> int          # parameters of a searched CNN
    q2  my_spearman(a, b) -> float                                   # rank correlation, ties averaged
    q3  my_aging_step(population, picks, child) -> (int, list)       # regularized evolution, one step

References: :func:`qkit.nas.count_params`, :func:`qkit.nas.spearman`, and one step of
:func:`qkit.nas.search` with ``strategy="evolution"`` (Real et al. 2019). The first fixed case
of each question is built so that every known mistake fails there with an output of its own.
"""

from __future__ import annotations

import numpy as np
import torch

from exercises.core import Mistake, Question
from qkit import nas

__all__ = ["q1", "q2", "q3"]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


# ---- q1: parameters of an architecture ------------------------------------------------------

def count_params_solution(block: str, depth: int, width: int, kernel: int) -> int:
    """Parameters of stem → ``depth`` blocks → pool → fc, every conv without bias and followed by a BN."""
    w, k = width, kernel
    conv = w * w * k * k + 2 * w                 # a k×k conv w -> w, and its BN's gamma and beta
    if block == "plain":
        one = conv
    elif block == "separable":
        one = (w * k * k + 2 * w) + (w * w + 2 * w)   # depthwise k×k (one filter a channel) + pointwise 1×1
    else:
        one = 2 * conv                           # residual: two k×k convs (the shortcut has no weights)
    stem = w * k * k + 2 * w                     # 1 input channel -> w
    fc = 10 * w + 10                             # w -> 10 classes, with a bias
    return stem + depth * one + fc


def _q1_count(block, depth, w, k, *, bn=2, stem=True, bias=True, dw_full=False, res_convs=2):
    conv = w * w * k * k + bn * w
    one = {"plain": conv, "residual": res_convs * conv,
           "separable": ((w * w if dw_full else w) * k * k + bn * w) + (w * w + bn * w)}[block]
    return (w * k * k + bn * w if stem else 0) + depth * one + 10 * w + (10 if bias else 0)


def _q1_case(g: torch.Generator) -> tuple:
    return (nas.BLOCKS[_randint(g, 0, 2)], _randint(g, 1, 6), 4 * _randint(g, 1, 12), 2 * _randint(g, 0, 3) + 1)


q1 = Question(
    "q1", "my_count_params", reference=lambda b, d, w, k: nas.count_params(nas.Arch(b, d, w, k)),
    solution_fn=count_params_solution,
    hint_text="Add up the stem (one input channel to width channels), depth blocks and the classifier. "
              "A convolution has no bias here, but the BatchNorm after it has two parameters a channel. "
              "A depthwise filter sees one channel only; a residual block holds two convolutions; the "
              "final linear layer has a bias.",
    edge_cases=[("plain", 1, 8, 3), ("separable", 2, 16, 3), ("residual", 2, 16, 5)],
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda *a: _q1_count(*a, bn=0),
                "you forgot the BatchNorms: each has a gamma and a beta per channel (2·width a layer)"),
        Mistake(lambda *a: _q1_count(*a, stem=False),
                "you forgot the stem: a k×k conv from the 1 input channel to width channels, and its BN"),
        Mistake(lambda *a: _q1_count(*a, bias=False),
                "the classifier (width -> 10) has a bias: 10 more parameters"),
        Mistake(lambda *a: _q1_count(*a, dw_full=True),
                "a depthwise conv has one k×k filter per channel (width·k² weights), not width·width·k²"),
        Mistake(lambda *a: _q1_count(*a, res_convs=1),
                "a residual block holds two k×k convs (each with its BN); the shortcut adds no parameters"),
    ],
)


# ---- q2: Spearman's rank correlation --------------------------------------------------------

def spearman_solution(a: list, b: list) -> float:
    """Pearson's correlation of the ranks of ``a`` and of ``b``; tied values share their average rank."""
    def ranks(v):
        v = np.asarray(v, dtype=np.float64)
        r = np.empty(len(v))
        r[np.argsort(v, kind="stable")] = np.arange(1, len(v) + 1)   # 1 = smallest
        for value in np.unique(v):
            r[v == value] = r[v == value].mean()                      # ties: their average rank
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra**2).sum() * (rb**2).sum()))


def _ordinal(v):
    r = np.empty(len(v))
    r[np.argsort(np.asarray(v, dtype=np.float64), kind="stable")] = np.arange(1, len(v) + 1)
    return r


def _pearson(x, y):
    x, y = np.asarray(x, np.float64) - np.mean(x), np.asarray(y, np.float64) - np.mean(y)
    return float((x * y).sum() / np.sqrt((x**2).sum() * (y**2).sum()))


def _closed_form(a, b):
    d = nas.ranks(a) - nas.ranks(b)
    n = len(a)
    return float(1 - 6 * (d**2).sum() / (n * (n * n - 1)))


def _q2_case(g: torch.Generator) -> tuple:
    n = _randint(g, 5, 20)
    while True:  # accuracies on 359 images: ties happen, as in the lesson's table
        a = [_randint(g, 150, 340) / 359 for _ in range(n)]
        b = [min(x + _randint(g, -40, 40) / 359, 1.0) for x in a]
        if len(set(a)) > 1 and len(set(b)) > 1:
            return a, b


q2 = Question(
    "q2", "my_spearman", reference=nas.spearman, solution_fn=spearman_solution,
    hint_text="Replace each value by its rank (1 = smallest) in its own list; values that tie share the "
              "average of the ranks they span. Then take Pearson's correlation of the two rank lists. The "
              "shortcut with squared rank differences is exact only when nothing ties.",
    edge_cases=[([0.90, 0.80, 0.80, 0.60, 0.95, 0.70], [0.97, 0.91, 0.93, 0.90, 0.96, 0.94]),
                ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])],
    random_case=_q2_case,
    mistakes=[
        Mistake(lambda a, b: _pearson(a, b),
                "that is Pearson's correlation of the values: Spearman's correlates their ranks"),
        Mistake(lambda a, b: _pearson(_ordinal(a), _ordinal(b)),
                "tied values must share their average rank (two values tied for ranks 2 and 3 both get 2.5)"),
        Mistake(_closed_form,
                "1 − 6Σd²/(n(n²−1)) is exact only without ties: take Pearson's correlation of the ranks"),
    ],
)


# ---- q3: one step of regularized (aging) evolution ------------------------------------------

def aging_step_solution(population: list, picks: list, child: float) -> tuple[int, list]:
    """(position of the parent: the best of ``picks``; the population after the child joins and the oldest dies)."""
    parent = max(picks, key=lambda i: population[i])   # best estimate among the sampled members only
    new = list(population) + [child]                   # the child is the youngest: it goes last
    new.pop(0)                                         # aging: the oldest dies, whatever its estimate
    return parent, new


def _q3_step(population, picks, child, *, whole=False, kill="oldest", front=False):
    pool = range(len(population)) if whole else picks
    parent = max(pool, key=lambda i: population[i])
    new = list(population)
    if kill == "worst":
        new.pop(min(range(len(new)), key=lambda i: new[i]))
    elif kill == "parent":
        new.pop(parent)
    elif kill == "oldest" and not front:
        new.pop(0)
    if front:
        new = [child] + new[:-1]
    else:
        new.append(child)
    return parent, new


def _q3_case(g: torch.Generator) -> tuple:
    p = _randint(g, 4, 12)
    values = torch.randperm(359, generator=g)[: p + 1].add(1).div(359).tolist()  # distinct estimates
    picks = torch.randperm(p, generator=g)[: _randint(g, 2, p - 1)].tolist()
    return values[:p], picks, values[p]


q3 = Question(
    "q3", "my_aging_step", reference=aging_step_solution, solution_fn=aging_step_solution,
    parts=("parent", "population"),
    hint_text="The parent is the best of the sampled positions only, not of the whole population. The "
              "child joins as the youngest member (at the end of the list), and then the oldest member, "
              "the first of the list, leaves: not the worst one, and not the parent.",
    edge_cases=[([0.70, 0.92, 0.55, 0.81, 0.66, 0.88], [2, 3, 4], 0.90)],
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda *a: _q3_step(*a, whole=True),
                "the parent is the best of the sample (the positions in picks), not of the whole population"),
        Mistake(lambda *a: _q3_step(*a, kill="worst"),
                "aging evolution removes the oldest member, not the worst: that is what 'regularized' means"),
        Mistake(lambda *a: _q3_step(*a, kill="none"),
                "the population keeps its size: when the child joins, the oldest member leaves"),
        Mistake(lambda *a: _q3_step(*a, front=True),
                "the list is oldest first: the child is the youngest, so it goes at the end"),
        Mistake(lambda *a: _q3_step(*a, kill="parent"),
                "the parent stays (it may be picked again); the member that leaves is the oldest"),
    ],
)
