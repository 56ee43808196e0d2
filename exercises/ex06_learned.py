"""Lesson 06 exercises: learned quantization parameters (LSQ's step gradient, its gradient scale and
initial step; PACT's forward pass).

In the notebook::

    from exercises.ex06_learned import q1, q2, q3, q4

    q1  my_lsq_step_grad(x, s, qmin, qmax) -> Tensor      # d/ds of lsq(x) per element, x's shape, float32
    q2  my_grad_scale(numel_per_scale, bits, signed) -> float   # Esser et al.'s g = 1/sqrt(N·Qp)
    q3  my_pact(x, alpha, bits) -> Tensor                 # clip to [0, alpha], 2**bits - 1 steps
    q4  my_lsq_init(x, bits, signed) -> Tensor            # 0-d: 2·mean|x| / sqrt(Qp)

References: autograd through :func:`qkit.qat.lsq_quantize` (one scale per element, so the
gradient is not summed), :func:`qkit.qat.functions.lsq_grad_scale`, :func:`qkit.qat.pact` and
:func:`qkit.qat.functions.lsq_init_scale`, with ``Qp = qkit.qrange(bits, signed)[1]``.
The first fixed case of each question is built so that every known mistake fails there.
"""

from __future__ import annotations

import math

import torch

import qkit
from exercises.core import Mistake, Question
from qkit.qat import lsq_quantize, pact
from qkit.qat.functions import lsq_grad_scale, lsq_init_scale

__all__ = ["q1", "q2", "q3", "q4"]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def _away_from_ties(g: torch.Generator, n: int, lo: int, hi: int) -> torch.Tensor:
    """n levels ``k + u`` with k in [lo, hi] and u in ±(0.05 .. 0.45): no rounding tie, no grid edge."""
    k = torch.randint(lo, hi + 1, (n,), generator=g).double()
    u = (torch.rand(n, generator=g, dtype=torch.float64) * 0.4 + 0.05) * torch.where(
        torch.rand(n, generator=g) < 0.5, -1.0, 1.0).double()
    return k + u


# ---- q1: LSQ's gradient with respect to the step ---------------------------------------------

def lsq_step_grad_solution(x: torch.Tensor, s: float, qmin: int, qmax: int) -> torch.Tensor:
    """d/ds of ``clamp(round(x/s), qmin, qmax)·s`` for every element (Esser et al. 2019)."""
    v = x / s                                           # the unrounded level, x's shape
    inside = torch.round(v) - v                         # product rule with d round(u)/du := 1
    return torch.where(v < qmin, float(qmin), torch.where(v > qmax, float(qmax), inside))


def _ref_lsq_step_grad(x, s, qmin, qmax):
    scale = torch.full_like(x, s).requires_grad_(True)  # one step per element: its gradient is not summed
    lsq_quantize(x, scale, qmin, qmax).sum().backward()
    return scale.grad.detach()


def _q1_grad(x, s, qmin, qmax, *, test_round=False, outside=None, flip=False, no_v=False):
    """The solution with one step swapped out: each known mistake is one keyword."""
    v = x / s
    inside = (torch.round(v) if no_v else torch.round(v) - v) * (-1 if flip else 1)
    t = torch.round(v) if test_round else v
    lo, hi = (float(qmin), float(qmax)) if outside is None else outside(qmin, qmax)
    return torch.where(t < qmin, lo, torch.where(t > qmax, hi, inside))


def _q1_case(g: torch.Generator) -> tuple:
    bits = _randint(g, 2, 6)
    qmin, qmax = qkit.qrange(bits, signed=bool(_randint(g, 0, 1)))
    s = _uniform(g, 0.01, 2.0)
    v = _away_from_ties(g, _randint(g, 4, 40), qmin - 3, qmax + 3)
    return (v * s).float(), s, qmin, qmax


# v = -3.3 (below), -1.2, 0.4, 1.3, 1.36 (within half a step above qmax = 1), 2.7 (above); s = 0.5
_Q1_EDGE = (torch.tensor([-1.65, -0.6, 0.2, 0.65, 0.68, 1.35]), 0.5, -2, 1)

q1 = Question(
    "q1", "my_lsq_step_grad", reference=_ref_lsq_step_grad, solution_fn=lsq_step_grad_solution,
    rtol=1e-5, atol=1e-5,
    hint_text="Write the forward pass as a product, round of v times s where v is x divided by s, and apply the "
              "product rule with the derivative of round taken as 1 (the straight-through estimator): "
              "the two terms nearly cancel. Outside the grid the output is the constant qmin·s or "
              "qmax·s, whose derivative is plain. Decide inside or outside on v itself.",
    edge_cases=[_Q1_EDGE],
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda *a: _q1_grad(*a, outside=lambda lo, hi: (0.0, 0.0)),
                "outside the grid the output is qmin·s (or qmax·s): its derivative with respect to s is "
                "qmin (or qmax), not 0; only d/dx is 0 there"),
        Mistake(lambda *a: _q1_grad(*a, flip=True),
                "the sign is flipped inside the grid: d/ds [round(x/s)·s] = round(v) − v, not v − round(v)"),
        Mistake(lambda *a: _q1_grad(*a, no_v=True),
                "inside the grid you kept only round(v): the product rule adds s · d(x/s)/ds = −v, "
                "so the gradient is round(v) − v"),
        Mistake(lambda *a: _q1_grad(*a, outside=lambda lo, hi: (float(hi), float(lo))),
                "qmin and qmax are swapped: below the grid the output is qmin·s, so d/ds = qmin there"),
        Mistake(lambda *a: _q1_grad(*a, test_round=True),
                "you tested round(v) against the grid (as torch's learnable fake-quantize op does); Esser "
                "et al. test v = x/s itself: v = qmax + 0.36 is already outside, d/ds = qmax"),
        Mistake(lambda x, s, qmin, qmax: torch.round(x / s) - x / s,
                "you forgot the clipping: outside [qmin, qmax] the gradient is qmin (below) or qmax (above)"),
    ],
)


# ---- q2: LSQ's gradient scale ------------------------------------------------------------------

def grad_scale_solution(numel_per_scale: int, bits: int, signed: bool) -> float:
    """Esser et al.'s ``g = 1 / sqrt(N · Qp)``, Qp the grid's top level."""
    qp = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1   # top level: 7 (signed 4-bit), 15 (unsigned)
    return 1.0 / math.sqrt(numel_per_scale * qp)


def _ref_grad_scale(n, bits, signed):
    return lsq_grad_scale(n, qkit.qrange(bits, signed)[1])


def _q2_case(g: torch.Generator) -> tuple:
    return _randint(g, 1, 100_000), _randint(g, 2, 8), bool(_randint(g, 0, 1))


_QP_WRONG = ("Qp is the grid's top level: 2**(bits-1) - 1 signed (7 at 4 bits), 2**bits - 1 unsigned "
             "(15 at 4 bits)")
q2 = Question(
    "q2", "my_grad_scale", reference=_ref_grad_scale, solution_fn=grad_scale_solution,
    rtol=1e-9,
    hint_text="Esser et al. scale the step's gradient by one over the square root of N times Qp: N values "
              "share the step, and Qp is the highest integer level of the grid, which depends on the bits "
              "and on whether the grid is signed.",
    edge_cases=[(1764, 4, True), (100, 3, False)],
    random_case=_q2_case,
    mistakes=[
        Mistake(lambda n, b, s: 1 / math.sqrt(n), "you left out Qp: g = 1/sqrt(N · Qp)"),
        Mistake(lambda n, b, s: 1 / math.sqrt(qkit.qrange(b, s)[1]), "you left out N: g = 1/sqrt(N · Qp)"),
        Mistake(lambda n, b, s: 1 / (n * qkit.qrange(b, s)[1]),
                "take the square root: g = 1/sqrt(N · Qp), not 1/(N · Qp)"),
        Mistake(lambda n, b, s: math.sqrt(n * qkit.qrange(b, s)[1]),
                "upside down: g = 1/sqrt(N · Qp) is small (it shrinks the step's gradient)"),
        Mistake(lambda n, b, s: 1 / math.sqrt(n * 2 ** (b - 1)), _QP_WRONG),
        Mistake(lambda n, b, s: 1 / math.sqrt(n * (2 ** b - 1)), _QP_WRONG),
        Mistake(lambda n, b, s: 1 / math.sqrt(n * 2 ** b), _QP_WRONG),
        Mistake(lambda n, b, s: 1 / math.sqrt(n * (2 ** (b - 1) - 1)), _QP_WRONG),
    ],
)


# ---- q3: PACT's forward pass -------------------------------------------------------------------

def pact_solution(x: torch.Tensor, alpha: float, bits: int) -> torch.Tensor:
    """Clip to [0, alpha], then round onto the 2**bits - 1 steps of alpha / (2**bits - 1)."""
    step = alpha / (2 ** bits - 1)                  # 2**bits levels: 0, step, ..., alpha
    clipped = torch.clamp(x, 0.0, alpha)            # PACT's learned clip; below 0 is ReLU's job
    return torch.round(clipped / step) * step       # round half to even, as torch.round


def _ref_pact(x, alpha, bits):
    return pact(x, torch.tensor(alpha, dtype=x.dtype), bits).detach()


def _q3_pact(x, alpha, bits, *, levels=None, low=0.0, rnd=torch.round, quantize=True):
    step = alpha / (levels(bits) if levels else 2 ** bits - 1)
    c = torch.clamp(x, low, alpha) if low is not None else torch.clamp(x, max=alpha)
    return rnd(c / step) * step if quantize else c


def _q3_case(g: torch.Generator) -> tuple:
    bits = _randint(g, 2, 6)
    alpha = _uniform(g, 0.5, 8.0)
    levels = 2 ** bits - 1
    v = _away_from_ties(g, _randint(g, 4, 40), -3, levels + 3)
    return (v * alpha / levels).float(), alpha, bits


# alpha = 3, 2 bits: steps of 1.0; 2.2 / 1.4 / 0.7 avoid ties; -0.8 and 4.1 are clipped
_Q3_EDGE = (torch.tensor([-0.8, 0.3, 0.7, 1.4, 2.2, 2.8, 4.1]), 3.0, 2)

q3 = Question(
    "q3", "my_pact", reference=_ref_pact, solution_fn=pact_solution,
    rtol=1e-5, atol=1e-6,
    hint_text="First clip every value into the interval from 0 to alpha, then put it on the grid: b bits "
              "give 2**b levels from 0 to alpha inclusive, so the interval is cut into 2**b - 1 equal "
              "steps. Round to the nearest level (torch's round, half to even).",
    edge_cases=[_Q3_EDGE],
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda *a: _q3_pact(*a, levels=lambda b: 2 ** b),
                "b bits give 2**b levels, so 2**b - 1 steps: step = alpha / (2**bits - 1); with 2**b "
                "steps the top level alpha is never reached"),
        Mistake(lambda *a: _q3_pact(*a, low=None),
                "clip below at 0 as well: PACT's output lies in [0, alpha] (negative values become 0)"),
        Mistake(lambda *a: _q3_pact(*a, quantize=False),
                "you clipped but did not quantize: round onto the grid of alpha / (2**bits - 1)"),
        Mistake(lambda *a: _q3_pact(*a, rnd=torch.floor),
                "round to the nearest level, not down (floor): torch.round"),
        Mistake(lambda *a: _q3_pact(*a, rnd=torch.ceil), "round to the nearest level, not up (ceil)"),
    ],
)


# ---- q4: LSQ's initial step --------------------------------------------------------------------

def lsq_init_solution(x: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    """Esser et al.'s initial step ``2 · mean|x| / sqrt(Qp)``, a 0-d float32 tensor."""
    qp = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1   # the grid's top level
    return 2 * x.abs().mean() / math.sqrt(qp)


def _ref_lsq_init(x, bits, signed):
    return lsq_init_scale(x, qkit.qrange(bits, signed)[1])


def _q4_init(x, bits, signed, *, stat=lambda t: t.abs().mean(), root=math.sqrt, qp=None, two=2.0):
    top = qp(bits) if qp else qkit.qrange(bits, signed)[1]
    return two * stat(x) / root(top)


def _q4_case(g: torch.Generator) -> tuple:
    signed = bool(_randint(g, 0, 1))
    shape = (_randint(g, 2, 8), _randint(g, 2, 20))
    x = torch.randn(shape, generator=g) * _uniform(g, 0.05, 3.0)
    return (x if signed else x.abs()), _randint(g, 2, 8), signed


_Q4_EDGE = (torch.tensor([[0.5, -1.5, 0.25], [-0.75, 2.0, -1.0]]), 4, True)  # mean|x| = 1.0, mean x = -0.083
_Q4_UNSIGNED = (torch.tensor([0.0, 0.4, 1.2, 3.0, 0.1]), 3, False)           # Qp = 7

q4 = Question(
    "q4", "my_lsq_init", reference=_ref_lsq_init, solution_fn=lsq_init_solution,
    rtol=1e-5,
    hint_text="Esser et al. start the step at twice the mean absolute value of x divided by the square root "
              "of Qp, the grid's top integer level (signed or unsigned grid: it differs). Take the absolute "
              "value before averaging, and return a 0-d tensor.",
    edge_cases=[_Q4_EDGE, _Q4_UNSIGNED],
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda *a: _q4_init(*a, stat=lambda t: t.mean()),
                "average |x|, not x: positive and negative values would cancel"),
        Mistake(lambda *a: _q4_init(*a, stat=lambda t: t.abs().max()),
                "LSQ starts from the mean of |x|, not its max (that would be min-max's range)"),
        Mistake(lambda *a: _q4_init(*a, root=lambda v: v),
                "divide by the square root of Qp, not by Qp itself"),
        Mistake(lambda *a: _q4_init(*a, two=1.0), "you forgot the factor 2: s0 = 2 · mean|x| / sqrt(Qp)"),
        Mistake(lambda *a: _q4_init(*a, qp=lambda b: 2 ** b - 1),
                "Qp is the grid's top level: 2**(bits-1) - 1 for a signed grid, 2**bits - 1 unsigned"),
        Mistake(lambda *a: _q4_init(*a, qp=lambda b: 2 ** (b - 1) - 1),
                "Qp is the grid's top level: 2**bits - 1 for an unsigned grid, 2**(bits-1) - 1 signed"),
    ],
)
