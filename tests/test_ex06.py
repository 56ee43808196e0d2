"""Lesson 06 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import math

import pytest
import torch

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

import qkit
from exercises.ex06_learned import q1, q2, q3, q4

pytestmark = pytest.mark.lesson06

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["not 0; only d/dx", "sign is flipped", "kept only round(v)", "swapped", "tested round(v)",
           "forgot the clipping"],
    "q2": ["left out Qp", "left out N", "take the square root", "upside down", "top level", "top level",
           "top level", "top level"],
    "q3": ["2**b - 1 steps", "clip below at 0", "did not quantize", "not down (floor)", "not up (ceil)"],
    "q4": ["average |x|, not x", "not its max", "not by Qp itself", "factor 2", "2**(bits-1) - 1 for a signed",
           "2**bits - 1 for an unsigned"],
}


# ---- learner answers written independently of the module ------------------------------

def step_grad_loop(x, s, qmin, qmax):
    """Element by element in Python floats (Python's round is half to even, like torch's)."""
    out = []
    for xi in x.tolist():
        v = xi / s
        out.append(float(qmin) if v < qmin else float(qmax) if v > qmax else round(v) - v)
    return torch.tensor(out, dtype=torch.float32)


def step_grad_finite_differences(x, s, qmin, qmax):
    """Central differences of a function whose slope is the STE's: outside, the forward pass qmin·s or
    qmax·s; inside, round(v)·s with round(v) held fixed, minus x·ln s (whose slope is -x/s = -v)."""
    v = x.double() / s
    q = torch.clamp(torch.round(v), qmin, qmax)
    inside = (v >= qmin) & (v <= qmax)
    h = 1e-6
    y = lambda step: q * step - x.double() * math.log(step) * inside  # noqa: E731
    return ((y(s + h) - y(s - h)) / (2 * h)).float()


def grad_scale_shift(numel_per_scale, bits, signed):
    qp = (1 << (bits - int(signed))) - 1
    return (numel_per_scale * qp) ** -0.5


def pact_by_fake_quantize(x, alpha, bits):
    levels = 2**bits - 1
    qp = qkit.QParams(torch.tensor(alpha / levels), torch.tensor(0, dtype=torch.int32), 0, levels)
    return qkit.fake_quantize(torch.clamp(x, 0.0, alpha), qp)


def init_from_sum(x, bits, signed):
    qp = 2**bits - 1 if not signed else 2 ** (bits - 1) - 1
    return 2 * x.abs().sum() / x.numel() * qp**-0.5


RIGHT = {"q1": [step_grad_loop, step_grad_finite_differences], "q2": [grad_scale_shift],
         "q3": [pact_by_fake_quantize], "q4": [init_from_sum]}
WRONG = {  # no declared mistake: the message names the case
    "q1": [(lambda x, s, qmin, qmax: torch.zeros_like(x), "for x of shape")],
    "q2": [(lambda n, bits, signed: 0.5, "for numel_per_scale=")],
    "q3": [(lambda x, alpha, bits: torch.clamp(x, 0.0, alpha) * 0.5, "for x of shape")],
    "q4": [(lambda x, bits, signed: x.abs().mean(dim=0), "shape")],
}
TENSOR_INPUT = ["q1", "q3", "q4"]


def test_q1_reference_is_autograd_through_lsq_quantize():
    """The reference is qkit's LSQ op itself: summed over a shared step, it is lsq_quantize's gradient."""
    x, s, qmin, qmax = q1.edge_cases[0]
    per_element = q1.reference(x, s, qmin, qmax)
    scale = torch.tensor(s, requires_grad=True)
    qkit.qat.lsq_quantize(x, scale, qmin, qmax).sum().backward()
    assert per_element.sum().item() == pytest.approx(scale.grad.item(), abs=1e-6)
    # v = -3.3, -1.2, 0.4, 1.3, 1.36, 2.7 on [-2, 1]: qmin, round - v inside, qmax above
    want = [-2.0, 0.2, -0.4, 1.0, 1.0, 1.0]
    assert per_element.tolist() == pytest.approx(want, abs=1e-6)


def test_q2_q4_worked_numbers():
    assert q2.reference(1764, 4, True) == pytest.approx(1 / math.sqrt(1764 * 7))
    x, bits, signed = q4.edge_cases[0]
    assert q4.reference(x, bits, signed).item() == pytest.approx(2 * 1.0 / math.sqrt(7))
