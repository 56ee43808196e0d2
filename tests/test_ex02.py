"""Lesson 02 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations


import numpy as np
import pytest
import torch

import qkit
from exercises.ex02_tensors import q1, q2, q3, q4, q5
from exercise_suite import *  # noqa: F403  the tests every exercise module gets

pytestmark = pytest.mark.lesson02

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4, "q5": q5}
TENSOR_INPUT = ["q1", "q2", "q3"]

# A distinctive piece of each declared mistake's diagnostic, in declaration order.
DIAGNOSTICS = {
    "q1": ["one scale per column", "largest |w|, not the largest w", "affine step",
           "not 2**bits - 1 levels", "not 2**(bits-1)", "drop keepdim", "whole tensor (per-tensor)",
           "whole tensor (per-tensor)", "whole tensor (per-tensor)"],
    "q2": ["run down the columns", "mix weights from different groups", "not reshape(group_size, -1)",
           "not the number of groups per row", "one scale per row", "one scale for the whole tensor",
           "not floor or .int()", "not floor or .int()", "integer levels q", "integer levels q",
           "0 / 0 is NaN"],
    "q3": ["(-t, t) wastes half the grid", "converted percent to a fraction twice",
           "not at a low and a high percentile", "interpolate linearly", "interpolate linearly",
           "interpolate linearly", "percentile of |x|, not of x", "clip the bottom too"],
    "q4": ["last batch only", "first batch only", "averaged the batches'",
           "start the running min and max at 0", "start with lo = +inf"],
    "q5": ["integer division", "total number of bits", "one scale per row", "not the number of groups",
           "in bits"],
}


# ---- learner code written independently of the module (right and wrong) ----------

def scales_maximum(w, bits):
    return torch.maximum(w.max(dim=1).values, -w.min(dim=1).values) / (2 ** (bits - 1) - 1)


def scales_numpy(w, bits):
    return torch.from_numpy(np.abs(w.numpy()).max(axis=1) / np.float32(2 ** (bits - 1) - 1))


def scales_loop_floored(w, bits):  # floors the scale at float32 eps, as qkit does
    eps, qmax = torch.finfo(torch.float32).eps, 2 ** (bits - 1) - 1
    return torch.stack([(row.abs().max() / qmax).clamp(min=eps) for row in w])


def grouped_float64(w, bits, group_size):
    qmax = 2 ** (bits - 1) - 1
    g = w.double().reshape(-1, group_size)
    s = g.abs().max(dim=1, keepdim=True).values / qmax
    s = torch.where(s == 0, torch.ones_like(s), s)
    return (torch.round(g / s).clamp(-qmax - 1, qmax) * s).reshape(w.shape).float()


def grouped_loop(w, bits, group_size):  # group by group, x * (qmax / max|x|), no clamp
    out = torch.empty_like(w)
    qmax = 2 ** (bits - 1) - 1
    for i in range(w.shape[0]):
        for j in range(0, w.shape[1], group_size):
            g = w[i, j:j + group_size]
            m = g.abs().max()
            out[i, j:j + group_size] = 0.0 if m == 0 else torch.round(g * (qmax / m)) * (m / qmax)
    return out


def percentile_numpy(x, percentile):
    a = x.numpy().astype(np.float64)
    t = np.percentile(np.abs(a), percentile)
    return float(max(a.min(), -t)), float(min(a.max(), t))


def percentile_by_sorting(x, percentile):
    s = x.abs().flatten().sort().values.tolist()
    pos = percentile / 100 * (len(s) - 1)
    i = min(int(pos), len(s) - 2)
    t = s[i] + (pos - i) * (s[i + 1] - s[i])
    return max(min(x.flatten().tolist()), -t), min(max(x.flatten().tolist()), t)


def minmax_cat(batches):
    flat = torch.cat([b.flatten() for b in batches])
    return flat.min().item(), flat.max().item()


def minmax_pop(batches):  # consumes the list and edits the batches in place
    first = batches.pop(0)
    lo, hi = first.min().item(), first.max().item()
    while batches:
        b = batches.pop()
        lo, hi = min(lo, b.min().item()), max(hi, b.max().item())
        b.zero_()
    return lo, hi


def overhead_fraction(shape, group_size, scale_bits):
    m, k = shape
    return (m * k / group_size) * scale_bits / (m * k)


RIGHT = {"q1": [scales_maximum, scales_numpy, scales_loop_floored],
         "q2": [grouped_float64, grouped_loop],
         "q3": [percentile_numpy, percentile_by_sorting],
         "q4": [minmax_cat, minmax_pop],
         "q5": [overhead_fraction, lambda shape, gs, sb: sb / gs]}


def _scales64(w, bits, dim):
    return w.double().abs().amax(dim=dim) / (2 ** (bits - 1) - 1)


def _q2_rows_divide(w, bits, gs):
    s = w.abs().amax(dim=1, keepdim=True) / (2 ** (bits - 1) - 1)
    return torch.round(w / s).clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) * s


def _q2_floor64(w, bits, gs):
    g = w.double().reshape(w.shape[0], -1, gs)
    s = (g.abs().amax(-1, keepdim=True) / (2 ** (bits - 1) - 1)).clamp(min=1e-12)
    return (torch.floor(g / s) * s).reshape(w.shape).float()


def _q2_columns(w, bits, gs):
    return grouped_float64(w.T.contiguous(), bits, gs).T


def _q2_no_eps(w, bits, gs):
    g = w.reshape(w.shape[0], -1, gs)
    s = g.abs().amax(-1, keepdim=True) / (2 ** (bits - 1) - 1)
    return (torch.round(g / s) * s).reshape(w.shape)


WRONG = {  # (learner code, piece of the expected diagnostic)
    "q1": [(lambda w, b: _scales64(w, b, 0).float(), "one scale per column"),
           (lambda w, b: w.max(dim=1).values / (2 ** (b - 1) - 1), "largest |w|"),
           (lambda w, b: _scales64(w, b, 1).float() * (2 ** (b - 1) - 1) / (2**b - 1), "2**bits - 1 levels"),
           (lambda w, b: w.abs().max(dim=1, keepdim=True).values / (2 ** (b - 1) - 1), "drop keepdim"),
           (lambda w, b: torch.max(torch.abs(w)) / (2 ** (b - 1) - 1), "per-tensor"),
           (lambda w, b: _scales64(w, b, 1), "dtype torch.float64"),
           (lambda w, b: w.abs().amax(dim=1) / 127,
            "for w of shape (4, 3), bits=4: element [0]")],
    "q2": [(_q2_columns, "run down the columns"),
           (_q2_rows_divide, "one scale per row"),
           (_q2_floor64, "not floor or .int()"),
           (lambda w, b, gs: grouped_float64(w, b, gs).round(), "for w of shape (4, 8), bits=4, group_size=2:"),
           (lambda w, b, gs: torch.round(grouped_float64(w, b, gs) / grouped_float64(w, b, gs).abs().max()),
            "for w of shape ("),
           (_q2_no_eps, "0 / 0 is NaN"),
           (lambda w, b, gs: grouped_float64(w, b, gs).double(), "dtype torch.float64")],
    "q3": [(lambda x, p: (-percentile_numpy(x, p)[1], percentile_numpy(x, p)[1]), "(-t, t)"),
           (lambda x, p: percentile_numpy(x, p / 100), "a fraction twice"),
           (lambda x, p: (float(np.percentile(x.numpy(), 100 - p)), float(np.percentile(x.numpy(), p))),
            "not at a low and a high percentile"),
           (lambda x, p: (x.min().item(), min(x.max().item(), torch.quantile(x.abs(), p / 100).item())),
            "clip the bottom too"),
           (lambda x, p: (-torch.quantile(x.abs(), p / 100).item(), torch.quantile(x.abs(), p / 100).item()),
            "(-t, t)"),
           (lambda x, p: tuple(float(v) for v in
                               torch.quantile(x.flatten(), torch.tensor([1 - p / 100, p / 100]))),
            "not at a low and a high percentile"),
           (lambda x, p: percentile_by_sorting(x.clamp(min=0), p), "for x of shape (44,), percentile=95.0:"),
           (lambda x, p: torch.quantile(x.abs(), p), "your function raised RuntimeError"),
           (lambda x, p: torch.tensor(percentile_numpy(x, p)), "expected a tuple of 2 (x_min, x_max)"),
           (lambda x, p: tuple(torch.tensor(v) for v in percentile_numpy(x, p)), "return a Python float")],
    "q4": [(lambda bs: (bs[-1].min().item(), bs[-1].max().item()), "last batch only"),
           (lambda bs: (float(np.mean([b.min() for b in bs])), float(np.mean([b.max() for b in bs]))),
            "averaged"),
           (lambda bs: (min(0.0, *[b.min().item() for b in bs]), max(0.0, *[b.max().item() for b in bs])),
            "at 0"),
           (lambda bs: (min(b.min() for b in bs), max(b.max() for b in bs)), "return a Python float")],
    "q5": [(lambda s, gs, sb: sb // gs, "integer division"),
           (lambda s, gs, sb: sb / (8 * gs), "in bits"),
           (lambda s, gs, sb: sb / s[1], "one scale per row"),
           (lambda s, gs, sb: (sb + 8) / gs, "for shape=(4096, 4096), group_size=128, scale_bits=16")],
}


def test_q1_accepts_scale_zero_or_eps_for_an_all_zero_row():
    w, bits = q1.edge_cases[1]
    assert (w == 0).all(dim=1).any()
    assert q1.reference(w, bits).min().item() == pytest.approx(torch.finfo(torch.float32).eps)
    assert q1.grade(scales_maximum).ok and q1.grade(lambda w, b: q1.reference(w, b)).ok


def test_q2_edge_weights_are_exact_and_hold_an_all_zero_group():
    w, bits, gs = q2.edge_cases[0]
    assert torch.equal(w.double().float(), w) and w.shape[1] % gs == 0 and w.shape[0] % gs == 0
    w, bits, gs = q2.edge_cases[-1]
    assert (w.reshape(-1, gs) == 0).all(dim=1).any()


def test_q2_random_cases_stay_away_from_rounding_ties():
    for w, bits, gs in q2.cases()[len(q2.edge_cases):]:
        qmax = 2 ** (bits - 1) - 1
        g = w.double().reshape(-1, gs)
        lo, hi = qkit.tensor_range(w.reshape(-1, gs), axis=0)
        scale = qkit.choose_qparams(lo, hi, bits, scheme="scale", axis=0).scale.double()[:, None]
        t = g / scale
        assert ((t - t.floor() - 0.5).abs() > 0.04).all()
        assert torch.allclose(t.abs().amax(dim=1), torch.full_like(t[:, 0], float(qmax)))


def test_q3_fixed_cases_are_one_sided_two_sided_and_negative():
    (relu, _), (both, _), (neg, _) = q3.edge_cases
    assert relu.min() == 0 and both.min() < 0 < both.max() and neg.max() < 0


def test_q4_edge_cases_survive_code_that_edits_them():
    assert q4.grade(minmax_pop).ok is True
    assert q4.grade(minmax_pop).ok is True  # fresh lists and tensors each time
    assert q4.grade(q4.solution_fn).ok is True
    batches = q4.edge_cases[0][0]
    batches.clear()
    assert len(q4.edge_cases[0][0]) == 3
