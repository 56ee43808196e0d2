"""Lesson 09 exercises: knowledge distillation (soft targets, Hinton et al.'s loss, its gradient, the paired gain).

In the notebook::

    from exercises.ex09_distill import q1, q2, q3, q4

    q1  my_soft_targets(logits, T) -> Tensor                        # softmax(logits / T), each row
    q2  my_distill_loss(s, t, labels, T, alpha) -> Tensor           # 0-d: alpha·T²·KL(p_t‖p_s) + (1−alpha)·CE
    q3  my_soft_gradient(s, t, T) -> Tensor                         # d(T²·KL)/ds, the closed form
    q4  my_paired_gain(distilled, scratch) -> tuple[float, float]   # (mean, standard error) of the differences

References: :func:`qkit.distill.soft_targets`, :func:`qkit.distill.loss`, autograd through
:func:`qkit.distill.loss` with ``alpha = 1``, :func:`qkit.distill.paired_gain`.
The first fixed case of each question is built so that every known mistake fails there.
"""

from __future__ import annotations

import math

import torch

from exercises.core import Mistake, Question
from qkit.distill import loss, paired_gain, soft_targets

__all__ = ["q1", "q2", "q3", "q4"]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def _logits(g: torch.Generator, n: int, k: int) -> torch.Tensor:
    return torch.randn(n, k, generator=g) * 3  # (n, k) float32


# fixed logits: 3 digits, 4 classes (not square, so a softmax along the wrong axis shows)
_S = torch.tensor([[2.0, -1.0, 0.5, 0.0], [0.0, 1.5, -0.5, 1.0], [-2.0, 0.0, 3.0, 1.0]])
_T = torch.tensor([[4.0, 0.0, 1.0, -1.0], [-1.0, 3.0, 0.0, 2.0], [0.0, -2.0, 5.0, 1.0]])
_Y = torch.tensor([0, 3, 2])


# ---- q1: soft targets ------------------------------------------------------------------

def soft_targets_solution(logits: torch.Tensor, T: float) -> torch.Tensor:
    """The teacher's soft targets: softmax of each row of ``logits / T``."""
    z = logits / T                                    # (N, K): divide by the temperature first
    z = z - z.max(dim=1, keepdim=True).values         # subtract each row's largest: exp never overflows
    e = torch.exp(z)                                  # (N, K)
    return e / e.sum(dim=1, keepdim=True)             # each row sums to 1


def _q1_case(g: torch.Generator) -> tuple:
    return _logits(g, _randint(g, 1, 6), _randint(g, 2, 10)), round(_uniform(g, 1.5, 12.0), 2)


q1 = Question(
    "q1", "my_soft_targets", reference=lambda x, T: soft_targets(x, T), solution_fn=soft_targets_solution,
    hint_text="Divide every logit by the temperature, then take the softmax of each row (over the classes, "
              "dim=1), so that each row is a probability distribution that sums to 1.",
    edge_cases=[(_T, 4.0), (_T, 1.0)],
    random_case=_q1_case, rtol=1e-5, atol=1e-7,
    mistakes=[
        Mistake(lambda x, T: torch.softmax(x, dim=1), "you forgot the temperature: divide the logits by T "
                                                       "before the softmax"),
        Mistake(lambda x, T: torch.softmax(x * T, dim=1), "divide the logits by T, don't multiply: a larger "
                                                           "T must make the targets softer"),
        Mistake(lambda x, T: torch.softmax(x / T, dim=0), "the softmax runs over the classes of each row "
                                                           "(dim=1), not over the batch (dim=0)"),
        Mistake(lambda x, T: torch.log_softmax(x / T, dim=1), "return probabilities, not their logarithms "
                                                               "(softmax, not log_softmax)"),
    ],
)


# ---- q2: the distillation loss ------------------------------------------------------------

def distill_loss_solution(s: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, T: float,
                          alpha: float) -> torch.Tensor:
    """Hinton et al. 2015: alpha·T²·KL(p_t ‖ p_s) + (1 − alpha)·CE(s, labels), both means over the batch."""
    log_ps = torch.log_softmax(s / T, dim=1)                       # (N, K) student at temperature T
    log_pt = torch.log_softmax(t / T, dim=1)                       # (N, K) teacher at temperature T
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1).mean()      # KL(p_t ‖ p_s), mean over the batch
    ce = torch.nn.functional.cross_entropy(s, labels)              # the labels, at T = 1
    return alpha * T * T * kl + (1 - alpha) * ce


def _q2_loss(s, t, y, T, alpha, *, power=2, reverse=False, ce_T=False, swap=False, kl_sum=False):
    a, b = (s, t) if not reverse else (t, s)
    log_ps, log_pt = torch.log_softmax(a / T, 1), torch.log_softmax(b / T, 1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(1)
    kl = kl.sum() if kl_sum else kl.mean()
    ce = torch.nn.functional.cross_entropy(s / T if ce_T else s, y)
    w = 1 - alpha if swap else alpha
    return w * T ** power * kl + (1 - w) * ce


def _q2_case(g: torch.Generator) -> tuple:
    n, k = _randint(g, 2, 8), _randint(g, 2, 10)
    return (_logits(g, n, k), _logits(g, n, k), torch.randint(0, k, (n,), generator=g),
            round(_uniform(g, 1.5, 10.0), 2), round(_uniform(g, 0.1, 0.9), 2))


q2 = Question(
    "q2", "my_distill_loss", reference=lambda s, t, y, T, a: loss(s, t, y, T=T, alpha=a),
    solution_fn=distill_loss_solution,
    hint_text="Two terms. The soft one compares the teacher's and the student's distributions at temperature "
              "T, with the teacher's as the first argument of the KL divergence, averaged over the batch and "
              "scaled up by the square of T; the hard one is the ordinary cross-entropy at temperature 1. "
              "alpha weighs the soft term, 1 − alpha the hard one.",
    edge_cases=[(_S, _T, _Y, 3.0, 0.7)],
    random_case=_q2_case, rtol=1e-4, atol=1e-6,
    mistakes=[
        Mistake(lambda *a: _q2_loss(*a, power=0), "you forgot the T² factor: without it the soft term's "
                                                  "gradient shrinks like 1/T²"),
        Mistake(lambda *a: _q2_loss(*a, power=1), "the factor is T², not T"),
        Mistake(lambda *a: _q2_loss(*a, reverse=True), "KL the other way round: the teacher's distribution "
                                                        "p_t comes first, KL(p_t ‖ p_s) = Σ p_t·log(p_t/p_s)"),
        Mistake(lambda *a: _q2_loss(*a, ce_T=True), "the cross-entropy with the labels uses the student's "
                                                     "logits at T = 1, not divided by T"),
        Mistake(lambda *a: _q2_loss(*a, swap=True), "alpha weighs the soft (teacher) term and 1 − alpha the "
                                                     "labels' cross-entropy, not the other way round"),
        Mistake(lambda *a: _q2_loss(*a, kl_sum=True), "average the KL divergence over the batch (mean over "
                                                       "rows), as the cross-entropy is"),
    ],
)


# ---- q3: the soft term's gradient ---------------------------------------------------------

def soft_gradient_solution(s: torch.Tensor, t: torch.Tensor, T: float) -> torch.Tensor:
    """d/ds of T²·KL(softmax(t/T) ‖ softmax(s/T)) (mean over the N rows) = T·(p_s − p_t)/N."""
    p_s = torch.softmax(s / T, dim=1)                 # (N, K)
    p_t = torch.softmax(t / T, dim=1)                 # (N, K)
    return T * (p_s - p_t) / len(s)                   # T² times the 1/T of the chain rule, 1/N of the mean


def _ref_soft_gradient(s, t, T):
    v = s.clone().requires_grad_(True)
    loss(v, t, torch.zeros(len(s), dtype=torch.int64), T=T, alpha=1.0).backward()
    return v.grad.detach()


def _q3_grad(s, t, T, *, factor=None, sign=1.0, per_row=False, at_one=False):
    scale = T if factor is None else factor(T)
    p_s, p_t = (torch.softmax(s, 1), torch.softmax(t, 1)) if at_one else (torch.softmax(s / T, 1),
                                                                           torch.softmax(t / T, 1))
    return sign * scale * (p_s - p_t) / (1 if per_row else len(s))


def _q3_case(g: torch.Generator) -> tuple:
    n, k = _randint(g, 1, 6), _randint(g, 2, 10)
    return _logits(g, n, k), _logits(g, n, k), round(_uniform(g, 1.5, 10.0), 2)


q3 = Question(
    "q3", "my_soft_gradient", reference=_ref_soft_gradient, solution_fn=soft_gradient_solution,
    hint_text="Differentiate the KL divergence of softened distributions with respect to the student's "
              "logits: the softmax and the logarithm combine into a difference of the two distributions; "
              "the chain rule through s/T brings a factor 1/T, the loss's own factor brings the square of "
              "T, and the mean over the batch brings 1/N.",
    edge_cases=[(_S, _T, 2.0)],  # N = 3, T = 2: T/N, T, 1/(T·N), T²/N and −T/N all differ
    random_case=_q3_case, rtol=1e-3, atol=1e-6,
    mistakes=[
        Mistake(lambda *a: _q3_grad(*a, per_row=True), "divide by N: the loss is a mean over the batch"),
        Mistake(lambda *a: _q3_grad(*a, factor=lambda T: 1 / T), "that is the gradient of KL alone "
                "(a factor 1/T); the loss multiplies KL by T², which leaves T"),
        Mistake(lambda *a: _q3_grad(*a, factor=lambda T: T * T), "the chain rule through s/T brings 1/T: "
                                                                 "T²·(1/T) = T, not T²"),
        Mistake(lambda *a: _q3_grad(*a, sign=-1.0), "mind the sign: the gradient is p_s − p_t (the student's "
                                                    "distribution minus the teacher's)"),
        Mistake(lambda *a: _q3_grad(*a, at_one=True), "both softmaxes run at temperature T: softmax(s/T) and "
                                                      "softmax(t/T)"),
    ],
)


# ---- q4: the paired gain over seeds -------------------------------------------------------

def paired_gain_solution(distilled: list, scratch: list) -> tuple[float, float]:
    """Mean and standard error of the differences distilled[i] − scratch[i], run i of each with the same seed."""
    d = [a - b for a, b in zip(distilled, scratch)]            # one difference per seed
    n = len(d)
    mean = sum(d) / n
    var = sum((v - mean) ** 2 for v in d) / (n - 1)            # sample variance (n − 1)
    return mean, math.sqrt(var / n)                            # standard error of the mean


def _q4_gain(a, b, *, unpaired=False, ddof=1, se=True, sign=1.0):
    n = len(a)
    d = [sign * (u - v) for u, v in zip(a, b)]
    mean = sum(d) / n

    def var(x):
        m = sum(x) / n
        return sum((v - m) ** 2 for v in x) / (n - ddof)

    if unpaired:
        return mean, math.sqrt(var(a) / n + var(b) / n)
    return mean, math.sqrt(var(d) / n) if se else math.sqrt(var(d))


def _q4_case(g: torch.Generator) -> tuple:
    n = _randint(g, 3, 10)
    base = [round(_uniform(g, 0.6, 0.9), 4) for _ in range(n)]
    return [round(b + _uniform(g, -0.02, 0.08), 4) for b in base], base


q4 = Question(
    "q4", "my_paired_gain", reference=lambda a, b: paired_gain(a, b), solution_fn=paired_gain_solution,
    parts=("mean", "se"),
    hint_text="Pair the runs by seed: take one difference per seed, then the mean of those differences and "
              "their standard error, the sample standard deviation (dividing by n − 1) over the square root "
              "of the number of seeds.",
    edge_cases=[([0.80, 0.85, 0.83, 0.86], [0.76, 0.78, 0.77, 0.83])],
    random_case=_q4_case, rtol=1e-6, atol=1e-9,
    mistakes=[
        Mistake(lambda *a: _q4_gain(*a, unpaired=True), "you treated the runs as unpaired (each side's spread "
                "added): pair them by seed and use the spread of the differences"),
        Mistake(lambda *a: _q4_gain(*a, ddof=0), "use the sample standard deviation: divide by n − 1, not n"),
        Mistake(lambda *a: _q4_gain(*a, se=False), "that is the standard deviation of the differences; the "
                                                   "standard error divides it by sqrt(n)"),
        Mistake(lambda *a: _q4_gain(*a, sign=-1.0), "the gain is distilled − scratch, not scratch − distilled"),
    ],
)
