"""Lesson 11 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import pytest
import torch

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex11_together import q1, q2, q3

pytestmark = pytest.mark.lesson11

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["forgot the bitmask", "one bit per weight, not one byte", "round each stream up",
           "only the nnz kept weights", "not stored as whole int8 bytes"],
    "q2": ["the bitmask alone equals the values", "mixed units", "not with int8"],
    "q3": ["not dim=0", "not their count", "not the logits", "not a percentage"],
}


# ---- learner answers written independently of the module ------------------------------

def bytes_by_counting_bits(n, nnz, bits):
    return (n + 7) // 8 + (nnz * bits + 7) // 8


def density_by_search(bits):
    n = 8 * bits * 1000  # dense packing: n·bits/8 bytes; find the largest nnz whose sparse form is not bigger
    dense = n * bits // 8
    lo, hi = 0, n  # bisect on nnz: the sparse form grows with it
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if n // 8 + (mid * bits + 7) // 8 <= dense else (lo, mid - 1)
    return lo / n


def agreement_by_loop(a, b):
    same = sum(int(torch.argmax(a[i]) == torch.argmax(b[i])) for i in range(len(a)))
    return same / len(a)


RIGHT = {"q1": [bytes_by_counting_bits], "q2": [density_by_search], "q3": [agreement_by_loop]}
WRONG = {  # no declared mistake: the message names the case
    "q1": [(lambda n, nnz, bits: n * bits // 8, "for n=")],
    "q2": [(lambda bits: 0.5, "for bits=")],
    "q3": [(lambda a, b: "same", "str")],
}
TENSOR_INPUT = ["q3"]


def test_q2_reference_is_where_real_layers_stop_shrinking():
    """At densities just below q2's answer to_sparse_packed converts a real integer layer; just above, it does not."""
    from torch import nn

    from qkit import choose_qparams, compose
    from qkit.nn import QuantLinear

    qp = choose_qparams(-4.0, 4.0)
    for bits in (4, 8):
        d = q2.reference(bits)
        for density, converted in ((d - 0.02, True), (d + 0.02, False)):
            layer = QuantLinear.from_float(nn.Linear(256, 16, bias=False), qp, qp, backend="ref")
            with torch.no_grad():  # (16, 256) int8: 3 where kept, 0 where pruned
                layer.q_w.copy_(torch.where(torch.rand(16, 256) < density, 3, 0).to(torch.int8))
            layer.w_bits = bits  # as qat.convert marks a layer packed at `bits`
            model = compose.to_sparse_packed(nn.Sequential(layer))
            assert (model.sparse_layers == ["0"]) == converted, (bits, density)
