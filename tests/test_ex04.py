"""Lesson 04 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import pytest
import torch

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex04_ptq import q1, q2, q3, q4

pytestmark = pytest.mark.lesson04

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["forgot eps", "inside the square root", "divided by the variance", "not along the input",
           "broadcasts along the last axis", "forgot the running mean", "forgot β", "conv's own bias"],
    "q2": ["weight-only quantization", "forgot the input zero point", "computed in int8",
           "`q_x - z_x` in int8", "one scale per output channel", "forgot to add the (float) bias",
           "not symmetric", "not one per row"],
    "q3": ["upside down", "forgot the scales", "in both files", "in both files", "bits vs bytes",
           "bits vs bytes", "bits vs bytes", "bits vs bytes"],
    "q4": ["last batch only", "first batch only", "averaged", "unsigned", "must contain 0",
           "2**bits - 1 steps"],
}


# ---- learner answers written independently of the module ------------------------------

def fold_float64_einsum(w, b, gamma, beta, mean, var, eps):
    inv_sigma = torch.rsqrt(var.double() + eps)
    w2 = torch.einsum("oihw,o->oihw", w.double(), gamma.double() * inv_sigma)
    b2 = beta.double() + gamma.double() * inv_sigma * (b.double() - mean.double())
    return w2.float(), b2.float()


def dynamic_by_hand(x, q_w, w_scale, bias):
    """Grid in Python floats, sum in int64 with the zero point subtracted first."""
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    s_x = (hi - lo) / 255
    z_x = -128 - round(lo / s_x)
    q_x = torch.clamp(torch.round(x / s_x) + z_x, -128, 127).long()
    acc = (q_x - z_x) @ q_w.long().T
    return (acc.double() * s_x * w_scale.double()).float() + bias


def ratio_in_bits(n_params, bits, n_scales, scale_bits=32, overhead_bytes=0):
    return (32 * n_params + 8 * overhead_bytes) / (n_params * bits + n_scales * scale_bits
                                                    + 8 * overhead_bytes)


def grid_from_cat(activations, bits):
    lo, hi = torch.aminmax(torch.cat([a.reshape(-1) for a in activations]))
    lo, hi = min(lo.item(), 0.0), max(hi.item(), 0.0)
    scale = (hi - lo) / (2**bits - 1)
    return scale, int(torch.round(torch.tensor(-lo / scale)))


RIGHT = {"q1": [fold_float64_einsum], "q2": [dynamic_by_hand], "q3": [ratio_in_bits], "q4": [grid_from_cat]}
WRONG = {  # no declared mistake: the message names the case, or the element of the tuple
    "q1": [(lambda w, b, gamma, beta, mean, var, eps: (w, b), "`w_folded`")],
    "q3": [(lambda n, bits, s, sb, o: 4.0, "for n_params=")],
}
TENSOR_INPUT = ["q1", "q2"]


def test_the_reference_is_the_project_layer():
    """q2's reference is qkit's DynamicQuantLinear, so the lesson teaches what the library runs."""
    from qkit.nn import DynamicQuantLinear

    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 4)
    dyn = DynamicQuantLinear.from_float(layer)
    x = torch.randn(3, 16)
    assert torch.equal(q2.reference(x, dyn.q_w, dyn.w_scale, dyn.bias), dyn(x))
