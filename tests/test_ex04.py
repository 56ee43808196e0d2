"""Lesson 04 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import inspect
import re

import pytest
import torch

from exercise_robustness import (assert_catches_in_place_changes, assert_each_mistake_diagnosed,
                                 assert_friendly_on_bad_code, assert_stops_slow_code)

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


@pytest.mark.parametrize("name", QUESTIONS)
def test_solution_passes(name):
    q = QUESTIONS[name]
    fb = q.grade(q.solution_fn)
    assert fb.ok is True, fb.message


@pytest.mark.parametrize("name,fn", [("q1", fold_float64_einsum), ("q2", dynamic_by_hand),
                                     ("q3", ratio_in_bits), ("q4", grid_from_cat)])
def test_independent_correct_answers_pass(name, fn):
    for _ in range(3):  # fresh random cases each time
        fb = QUESTIONS[name].grade(fn)
        assert fb.ok is True, fb.message


@pytest.mark.parametrize("name", QUESTIONS)
def test_every_known_mistake_gets_its_own_diagnostic(name):
    assert_each_mistake_diagnosed(QUESTIONS[name], DIAGNOSTICS[name])


@pytest.mark.parametrize("name", QUESTIONS)
def test_robustness(name, monkeypatch):
    assert_friendly_on_bad_code(QUESTIONS[name], monkeypatch)
    assert "you passed None" in QUESTIONS[name].grade(None).message


@pytest.mark.parametrize("name", QUESTIONS)
def test_too_slow(name):
    assert_stops_slow_code(QUESTIONS[name])


@pytest.mark.parametrize("name", ["q1", "q2"])
def test_mutating_the_input(name):
    assert_catches_in_place_changes(QUESTIONS[name])


def test_the_reference_is_the_project_layer():
    """q2's reference is qkit's DynamicQuantLinear, so the lesson teaches what the library runs."""
    from qkit.nn import DynamicQuantLinear

    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 4)
    dyn = DynamicQuantLinear.from_float(layer)
    x = torch.randn(3, 16)
    assert torch.equal(q2.reference(x, dyn.q_w, dyn.w_scale, dyn.bias), dyn(x))


def test_a_wrong_answer_without_a_known_mistake_names_the_case():
    fb = q3.grade(lambda n, bits, s, sb, o: 4.0)
    assert fb.ok is False and "for n_params=" in fb.message
    fb = q1.grade(lambda w, b, gamma, beta, mean, var, eps: (w, b))
    assert fb.ok is False and "`w_folded`" in fb.message


def _code_ngrams(text: str, n: int = 4) -> set:
    tokens = re.findall(r"\w+|[^\w\s]", text)
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


@pytest.mark.parametrize("name", QUESTIONS)
def test_the_hint_points_the_way_without_giving_the_code(name):
    """No run of four code tokens of the solution's body (comments left out) appears in the hint."""
    q = QUESTIONS[name]
    body = inspect.getsource(q.solution_fn).split('"""')[-1]
    code = "\n".join(line.split("#")[0] for line in body.splitlines())
    shared = _code_ngrams(q.hint_text) & _code_ngrams(code)
    assert q.hint_text and not shared, f"{name}'s hint repeats the solution's code: {sorted(shared)[:3]}"
