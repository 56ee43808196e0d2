"""Lesson 05 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import math

import pytest
import torch

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex05_qat import q1, q2, q3, q4

pytestmark = pytest.mark.lesson05

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["true gradient of round", "passed the gradient everywhere", "mask only", "rounded level",
           "forgot the zero point", "strict inequalities"],
    "q2": ["not one for the whole tensor", "not the max", "not of w", "torch.sign(0) is 0", "not only dim 1"],
    "q3": ["not one for the whole tensor", "not the mean", "that is binary", "truncation", "Li et al. 2016"],
    "q4": ["round the byte count up", "number of bits", "int8 storage", "padded every output channel"],
}


# ---- learner answers written independently of the module ------------------------------

def grad_by_clamp_test(x, scale, zero_point, qmin, qmax, grad_out):
    """Float64 levels, compared elementwise in Python."""
    out = torch.zeros_like(grad_out)
    for i, v in enumerate(x.tolist()):
        level = round(v * (1.0 / float(torch.tensor(scale, dtype=torch.float32)))) + zero_point
        if qmin <= level <= qmax:
            out[i] = grad_out[i]
    return out


def grad_by_autograd_of_clamp(x, scale, zero_point, qmin, qmax, grad_out):
    """STE spelled as x + (q - x).detach(), then autograd of the clamp on the level."""
    x = x.detach().clone().requires_grad_(True)
    level = x * (1.0 / scale) + (torch.round(x * (1.0 / scale)) - x * (1.0 / scale)).detach() + zero_point
    torch.clamp(level, qmin, qmax).backward(grad_out)
    return x.grad * scale


def binary_by_loop(w):
    out = torch.empty_like(w)
    for c in range(w.shape[0]):
        alpha = w[c].abs().sum() / w[c].numel()
        out[c] = torch.where(w[c] < 0, -alpha, alpha)
    return out


def ternary_by_loop(w):
    out = torch.empty_like(w)
    for c in range(w.shape[0]):
        s = float(w[c].abs().max())
        out[c] = torch.tensor([max(-1.0, min(1.0, float(round(v / s)))) * s for v in w[c].reshape(-1).tolist()]
                              ).reshape(w[c].shape)
    return out


def packed_by_ceil(shape, bits):
    n = 1
    for d in shape:
        n *= d
    return math.ceil(n * bits / 8)


RIGHT = {"q1": [grad_by_clamp_test], "q2": [binary_by_loop], "q3": [ternary_by_loop], "q4": [packed_by_ceil]}
WRONG = {  # no declared mistake: the message names the case
    "q2": [(lambda w: torch.sign(w), "for w of shape")],
    "q4": [(lambda shape, bits: float(packed_by_ceil(shape, bits)), "int")],
}
TENSOR_INPUT = ["q1", "q2", "q3"]


def test_the_references_are_the_library():
    """q2/q3 grade what qat.prepare trains with (1 and 2 bits); q1 what fake_quantize's backward gives."""
    from qkit import qat
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4))
    for bits, q in ((1, q2), (2, q3)):
        prepared = qat.prepare(model, w_bits=bits, calibration=torch.randn(16, 1, 8, 8))
        for name, wq in prepared.weight_quantizers().items():
            layer = prepared.graph_module.get_submodule(name)
            assert torch.equal(q.reference(layer.weight.detach()), wq(layer.weight).detach())


def test_the_autograd_ste_answer_agrees_where_the_scale_is_exact():
    """STE written as autograd of a clamp: right wherever 1/scale is exact (scale a power of two)."""
    x = torch.tensor([-3.1, -2.0, 0.3, 1.7, 1.9, 2.2])
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert torch.equal(grad_by_autograd_of_clamp(x, 0.5, 1, -4, 3, g), q1.reference(x, 0.5, 1, -4, 3, g))
    assert q1.grade(grad_by_autograd_of_clamp).ok is not None  # graded like any answer (no crash)
