"""Lesson 09 exercises: solutions pass, typical wrong answers get their diagnostic."""

from __future__ import annotations

import math

import pytest
import torch

from exercise_suite import *  # noqa: F403  the tests every exercise module gets

from exercises.ex09_distill import q1, q2, q3, q4

pytestmark = pytest.mark.lesson09

QUESTIONS = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
DIAGNOSTICS = {  # a distinctive piece of each declared mistake's message, in order
    "q1": ["forgot the temperature", "don't multiply", "not over the batch", "not their logarithms"],
    "q2": ["forgot the T² factor", "T², not T", "KL the other way round", "at T = 1, not divided by T",
           "not the other way round", "average the KL divergence"],
    "q3": ["divide by N", "gradient of KL alone", "T²·(1/T) = T", "mind the sign", "both softmaxes"],
    "q4": ["unpaired", "n − 1, not n", "divides it by sqrt(n)", "not scratch − distilled"],
}


# ---- learner answers written independently of the module ------------------------------

def soft_by_loops(logits, T):
    out = torch.empty_like(logits)
    for i, row in enumerate(logits.tolist()):
        e = [math.exp(v / T - max(row) / T) for v in row]
        out[i] = torch.tensor([v / sum(e) for v in e])
    return out


def loss_with_kl_div(s, t, labels, T, alpha):
    kl = torch.nn.functional.kl_div(torch.log_softmax(s / T, 1), torch.softmax(t / T, 1), reduction="batchmean")
    return alpha * T ** 2 * kl + (1 - alpha) * torch.nn.functional.cross_entropy(s, labels)


def gradient_by_autograd(s, t, T):
    v = s.detach().clone().requires_grad_(True)
    kl = (torch.softmax(t / T, 1) * (torch.log_softmax(t / T, 1) - torch.log_softmax(v / T, 1))).sum(1).mean()
    (T * T * kl).backward()
    return v.grad


def gain_by_statistics(distilled, scratch):
    import statistics

    d = [a - b for a, b in zip(distilled, scratch)]
    return statistics.mean(d), statistics.stdev(d) / len(d) ** 0.5


RIGHT = {"q1": [soft_by_loops], "q2": [loss_with_kl_div], "q3": [gradient_by_autograd], "q4": [gain_by_statistics]}
WRONG = {  # no declared mistake: the message names the case
    "q1": [(lambda x, T: torch.softmax(x / (2 * T), 1), "for logits of shape (3, 4), T=4.0")],
    "q2": [(lambda s, t, y, T, a: torch.nn.functional.cross_entropy(s, y), "for s of shape (3, 4)")],
    "q4": [(lambda a, b: sum(a) / len(a) - sum(b) / len(b), "expected a tuple of 2 (mean, se)")],
}
TENSOR_INPUT = ["q1", "q2", "q3"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Gradings call torch on tiny tensors hundreds of times: a second thread only waits (20x slower under load)."""
    from qkit.train import one_thread

    with one_thread():
        yield


def test_q3_closed_form_is_what_autograd_gives():
    """The solution's closed form T·(p_s − p_t)/N equals autograd through qkit.distill.loss (alpha = 1)."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 7, generator=g, dtype=torch.float64), torch.randn(5, 7, generator=g, dtype=torch.float64)
    for T in (1.0, 3.0, 9.0):
        torch.testing.assert_close(q3.reference(s, t, T), q3.solution_fn(s, t, T))
