"""Lesson 03 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import pytest

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex03_kernels import q1, q2, q3, q4

pytestmark = pytest.mark.lesson03

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["half away from zero", "truncating", "no longer fits int32", "TFLite's sign"],
    "q2": ["computed in int8", "wraps around (-128 - 100", "forgot the zero-point term",
           "forgot to add bias_q", "wrong sign"],
    "q3": ["clamp the result", "add the output zero_point", "float rounding"],
    "q4": ["pair of roundings", "ties to even", "you truncate", "half of the divisor", "TFLite's sign"],
}


# ---- learner answers written independently of the module ------------------------------

def multiplier_by_loop(real):  # finds the shift by doubling, not with frexp
    shift = 0
    while real < 0.5:
        real, shift = real * 2, shift - 1
    m = int(real * 2**31 + 0.5)
    return (m // 2, shift + 1) if m == 2**31 else (m, shift)


def folded_int64(q_x, z, q_w, b):
    return ((q_x.long() - z) @ q_w.long().T + b).int()


def requantize_pure_python(acc, multiplier, shift, zero_point):
    """TFLite's integer pipeline with Python ints (C's truncating division written out)."""
    prod = acc * 2 ** max(shift, 0) * multiplier
    nudge = 2**30 if prod >= 0 else 1 - 2**30
    high = abs(prod + nudge) // 2**31 * (1 if prod + nudge >= 0 else -1)  # truncate toward 0
    right = max(-shift, 0)
    mask = (1 << right) - 1
    rem, threshold = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    out = (high >> right) + (1 if rem > threshold else 0)
    return max(-128, min(127, out + zero_point))


def single_rounding_divmod(acc, multiplier, shift):
    """Quotient and remainder: round up when the remainder is at least half the divisor."""
    divisor = 2 ** (31 - shift)
    q, r = divmod(acc * multiplier, divisor)  # Python's divmod floors: 0 <= r < divisor
    return q + (1 if 2 * r >= divisor else 0)


RIGHT = {"q1": [multiplier_by_loop], "q2": [folded_int64], "q3": [requantize_pure_python],
         "q4": [single_rounding_divmod]}
WRONG = {"q3": [(lambda acc, m, s, z: 0, "for acc=")]}  # no declared mistake: the message names the case
TENSOR_INPUT = ["q2"]
