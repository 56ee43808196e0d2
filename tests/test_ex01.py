"""Lesson 01 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exercises.ex01_affine import q1, q2, q3, q4, q5
from exercise_suite import *  # noqa: F403  the tests every exercise module gets

pytestmark = pytest.mark.lesson01

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4, "q5": q5}
TENSOR_INPUT = ["q3", "q4", "q5"]

# A distinctive piece of each declared mistake's diagnostic, in declaration order.
DIAGNOSTICS = {
    "q1": ["you used 2**bits", "qmax is one too big", "not 2**bits"],
    "q2": ["widen it first", "must be a Python int", "off by 2**(bits-1)", "2**bits - 1 steps",
           "off by one", "off by one", "off by one"],
    "q3": ["return integers", "truncate toward zero", "truncate toward zero", "wraps around",
           "clamp after adding zero_point"],
    "q4": ["float64", "wrapped around in int8", "you added zero_point", "you forgot zero_point"],
    "q5": ["must be an int8 tensor", "of the values you keep", "exactly equal to delta"],
}


# ---- learner code written independently of the module (right and wrong) ----------

def qrange_shift(bits, signed):
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def qparams_numpy(x_min, x_max, bits):
    lo, hi = np.float64(min(x_min, 0)), np.float64(max(x_max, 0))
    scale = (hi - lo) / (2.0**bits - 1)
    return float(scale), int(-(2 ** (bits - 1)) - np.round(lo / scale))


def qparams_torch32(x_min, x_max, bits):
    lo, hi = torch.tensor(min(x_min, 0.0)), torch.tensor(max(x_max, 0.0))
    scale = (hi - lo) / (2**bits - 1)
    return scale.item(), int(-(2 ** (bits - 1)) - torch.round(lo / scale))


def quantize_reciprocal(x, scale, zero_point, bits):
    q = torch.round(x * (1.0 / scale)) + zero_point
    return q.clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1).to(torch.int8)


def quantize_numpy(x, scale, zero_point, bits):
    q = np.clip(np.round(x.numpy() / scale) + zero_point, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return torch.from_numpy(q.astype(np.int8))


def dequantize_float(q, scale, zero_point):
    return (q.float() - zero_point) * scale


def ternarize_where(x, delta):
    keep = x.abs() > delta
    q = torch.where(keep, torch.sign(x), torch.zeros_like(x)).to(torch.int8)
    return q, float((x.abs() * keep).sum() / keep.sum())


RIGHT = {"q1": [qrange_shift], "q2": [qparams_numpy, qparams_torch32],
         "q3": [quantize_reciprocal, quantize_numpy], "q4": [dequantize_float],
         "q5": [ternarize_where]}

WRONG = {  # (learner code, piece of the expected diagnostic)
    "q1": [(lambda b, s: (-(2**b), 2**b - 1) if s else (0, 2**b - 1), "2**bits"),
           (lambda b, s: (-(2 ** (b - 1)), 2 ** (b - 1)) if s else (0, 2**b - 1), "one too big"),
           (lambda b, s: (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if s else (0, 2**b), "not 2**bits"),
           (lambda b, s: (-(2 ** (b - 1)), 2 ** (b - 1) - 1), "for bits=8, signed=False")],
    "q2": [(lambda a, b, n: ((b - a) / 255, -128 - round(a / ((b - a) / 255))), "widen it first"),
           (lambda a, b, n: (qparams_numpy(a, b, n)[0] * 2, qparams_numpy(a, b, n)[1]), "you returned"),
           (lambda a, b, n: qparams_numpy(a, b, n)[0], "expected a tuple of 2"),
           (lambda a, b, n: (qparams_numpy(a, b, n)[0], float(qparams_numpy(a, b, n)[1])), "Python int"),
           (lambda a, b, n: (qparams_numpy(a, b, n)[0], qparams_numpy(a, b, n)[1] + 2 ** (n - 1)),
            "off by 2**(bits-1)"),
           (lambda a, b, n: (qparams_numpy(a, b, n)[0], qparams_numpy(a, b, n)[1] + 1),
            "for x_min=-1.0, x_max=2.0, bits=8: you returned")],
    "q3": [(lambda x, s, zp, b: (x / s + zp).clamp(-(2 ** (b - 1)), 2 ** (b - 1) - 1).int().to(torch.int8),
            "truncate"),
           (lambda x, s, zp, b: (torch.round(x / s) + zp).to(torch.int8), "wraps around"),
           (lambda x, s, zp, b: quantize_reciprocal(x, s, zp, b).float(), "return integers"),
           (lambda x, s, zp, b: quantize_reciprocal(x, s, zp, b).to(torch.int32), "dtype torch.int32")],
    "q4": [(lambda q, s, zp: (q - zp) * s, "wrapped around in int8"),
           (lambda q, s, zp: (q.float() + zp) * s, "you added"),
           (lambda q, s, zp: q * s, "you forgot"),
           (lambda q, s, zp: (q.double() - zp) * s, "float64"),
           (lambda q, s, zp: (q.float() - zp) / s, "element [")],
    "q5": [(lambda x, d: (ternarize_where(x, d)[0], x.abs().mean().item()), "values you keep"),
           (lambda x, d: (torch.sign(x) * (x.abs() >= d), 1.0), "int8"),
           (lambda x, d: ternarize_where(x, d - 1e-7), "exactly equal to delta"),
           (lambda x, d: (ternarize_where(x, d)[0], torch.tensor(ternarize_where(x, d)[1])), ".item()")],
}


def test_q2_cases_include_ranges_above_and_below_zero_and_avoid_ties():
    cases = q2.cases()
    assert any(lo > 0 for lo, hi, bits in cases) and any(hi < 0 for lo, hi, bits in cases)
    for lo, hi, bits in cases:
        assert lo < hi
        a, b = min(lo, 0.0), max(hi, 0.0)
        t = a / ((b - a) / (2**bits - 1))
        assert abs(t - math.floor(t) - 0.5) > 1e-3, (lo, hi, bits)


def test_q3_cases_clip_on_both_sides():
    for x, scale, zp, bits in q3.cases():
        t = torch.round(x.double() / scale) + zp
        assert (t > 2 ** (bits - 1) - 1).any() and (t < -(2 ** (bits - 1))).any()


def test_q4_cases_overflow_int8_subtraction():
    for q, scale, zp in q4.cases()[:3]:
        centred = q.to(torch.int32) - zp
        assert ((centred < -128) | (centred > 127)).any()


def test_q5_edge_cases_hold_exact_ties():
    for x, delta in q5.edge_cases:
        assert (x.abs() == delta).any()
