"""Lesson 07 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import itertools
import math

import pytest

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex07_partial import q1, q2, q3, q4

pytestmark = pytest.mark.lesson07

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["forgot the scales", "round the packed bits up", "bits vs bytes", "4 bytes, not 1", "no scales"],
    "q2": ["by their drop alone", "the extra drop", "one step at a time", "most expensive move", "biggest saving"],
    "q3": ["strictly more accurate", "increasing size (the right order", "least accurate", "not by index"],
    "q4": ["use <=, not <", "stays float", "forgot the scales"],
}


# ---- learner answers written independently of the module ------------------------------

def bytes_by_bits(numel, out_channels, bits):
    if bits == 32:
        return numel * 32 // 8
    total_bits = numel * bits
    return (total_bits + 7) // 8 + out_channels * 32 // 8


def greedy_by_sorting(sizes, drops, current):
    moves = []
    for name, b in current.items():
        widths = sorted(sizes[name], reverse=True)
        below = widths[widths.index(b) + 1:] if b in widths else []
        if below:
            c = below[0]
            moves.append(((drops[name][c] - drops[name][b]) / (sizes[name][b] - sizes[name][c]), name))
    return min(moves)[1]


def pareto_brute_force(sizes, accuracies):
    n = len(sizes)
    keep = []
    for i in range(n):
        dominated = any((sizes[j] <= sizes[i] and accuracies[j] >= accuracies[i]
                         and (sizes[j] < sizes[i] or accuracies[j] > accuracies[i])) for j in range(n))
        first_twin = all(not (sizes[j] == sizes[i] and accuracies[j] == accuracies[i]) for j in range(i))
        if not dominated and first_twin:
            keep.append(i)
    return sorted(keep, key=lambda i: sizes[i])


def fits_in_bits(bits, shapes, budget_bytes):
    total_bits = 0
    for name, (numel, out) in shapes.items():
        b = bits[name] if name in bits else 32
        total_bits += 32 * numel if b == 32 else 8 * math.ceil(numel * b / 8) + 32 * out
    return total_bits // 8, total_bits <= 8 * budget_bytes


RIGHT = {"q1": [bytes_by_bits], "q2": [greedy_by_sorting], "q3": [pareto_brute_force], "q4": [fits_in_bits]}
WRONG = {  # no declared mistake: the message names the case
    "q1": [(lambda numel, out, bits: numel * bits // 8, "for numel=")],
    "q3": [(lambda sizes, accs: list(range(len(sizes))), "for sizes=")],
    "q4": [(lambda bits, shapes, budget: True, "expected a tuple of 2 (total_bytes, fits)"),
           (lambda bits, shapes, budget: (0, True), "expected (816, True)")],
}
TENSOR_INPUT: list[str] = []


def test_q1_reference_is_the_kit_formula(zoo):
    """q1's reference counts what qkit.partial.weight_bytes counts, layer by layer."""
    from qkit import partial
    from qkit.graph import fold_batchnorm, get_module

    model = zoo["mobilenet_v1"]
    folded = fold_batchnorm(model)
    for b in (2, 3, 4, 8, 32):
        bits = {n: b for n in partial.layers(model)}
        total = 0
        for n in bits:
            w = get_module(folded, n).weight
            total += q1.reference(w.numel(), w.shape[0], b)
        assert total == partial.weight_bytes(model, bits)


def test_q3_on_every_small_point_set():
    """The module's Pareto front agrees with brute force on every 4-point set over a small grid."""
    values = [(s, a) for s, a in itertools.product((1, 2, 3), (0.5, 0.7))]
    for combo in itertools.product(values, repeat=4):
        sizes, accs = [c[0] for c in combo], [c[1] for c in combo]
        assert q3.reference(sizes, accs) == pareto_brute_force(sizes, accs)
