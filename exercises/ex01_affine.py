"""Lesson 01 exercises: affine and scale maps, ``x ≈ scale * (q - zero_point)``.

In the notebook::

    from exercises.ex01_affine import q1, q2, q3, q4, q5

    def my_qrange(bits, signed):
        ...
    q1.check()        # or q1.check(my_qrange); q1.hint(); q1.solution()

The functions the learner writes (grids are signed two's complement unless
``signed=False``: ``qmin, qmax = -2**(bits-1), 2**(bits-1) - 1``)::

    q1  my_qrange(bits: int, signed: bool) -> tuple[int, int]              # (qmin, qmax)
    q2  my_affine_qparams(x_min: float, x_max: float, bits: int) -> tuple[float, int]
                                                                           # (scale, zero_point)
    q3  my_quantize(x: Tensor, scale: float, zero_point: int, bits: int) -> Tensor
                                                                           # int8 q, bits <= 8
    q4  my_dequantize(q: Tensor, scale: float, zero_point: int) -> Tensor  # float32; q is int8
    q5  my_ternarize(x: Tensor, delta: float) -> tuple[Tensor, float]      # (int8 q in {-1,0,1}, scale)

References: :func:`qkit.qrange`, :func:`qkit.choose_qparams`, :func:`qkit.quantize`,
:func:`qkit.dequantize`, :func:`qkit.ternarize`. Random cases avoid exact
rounding ties (a tie's result depends on float32 vs float64 arithmetic).
"""

from __future__ import annotations

import math

import torch

import qkit
from exercises.core import Mistake, Question

__all__ = ["q1", "q2", "q3", "q4", "q5"]


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _f32(v: float) -> float:
    """``v`` rounded to the nearest float32, so float32 and float64 code see one number."""
    return float(torch.tensor(v, dtype=torch.float32))


def _grid(scale: float, zero_point: int, bits: int) -> qkit.QParams:
    qmin, qmax = qkit.qrange(bits)
    return qkit.QParams(torch.tensor(scale, dtype=torch.float32),
                        torch.tensor(zero_point, dtype=torch.int32), qmin, qmax)


# ---- q1: the integer range of a B-bit grid -----------------------------------------

def qrange_solution(bits: int, signed: bool) -> tuple[int, int]:
    """(qmin, qmax) of a signed (two's complement) or unsigned ``bits``-bit grid."""
    if signed:  # 2**bits levels, half of them negative
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _q1_signed_two_pow_bits(bits, signed):
    return (-(2**bits), 2**bits - 1) if signed else (0, 2**bits - 1)


def _q1_qmax_off_by_one(bits, signed):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2**bits - 1)


def _q1_unsigned_two_pow_bits(bits, signed):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits)


q1 = Question(
    "q1", "my_qrange", reference=lambda bits, signed: qkit.qrange(bits, signed),
    solution_fn=qrange_solution, parts=("qmin", "qmax"),
    hint_text="A signed B-bit integer is two's complement: 2**B levels, half of them negative "
              "(int8: -128..127). An unsigned one starts at 0 (uint8: 0..255).",
    edge_cases=[(8, True), (8, False), (4, True), (3, False), (1, True), (16, True)],
    random_case=lambda g: (_randint(g, 1, 16), bool(_randint(g, 0, 1))),
    mistakes=[
        Mistake(_q1_signed_two_pow_bits, "a signed grid spends half of its 2**bits levels on negative "
                "numbers: qmin = -2**(bits-1), qmax = 2**(bits-1) - 1; you used 2**bits"),
        Mistake(_q1_qmax_off_by_one, "your qmax is one too big: 0 takes one of the non-negative levels, "
                "so a signed grid ends at 2**(bits-1) - 1 (127 for 8 bits)"),
        Mistake(_q1_unsigned_two_pow_bits, "an unsigned grid has the levels 0, 1, …, 2**bits - 1: "
                "its qmax is 2**bits - 1 (255 for 8 bits), not 2**bits"),
    ],
)


# ---- q2: scale and zero_point of a signed affine grid -------------------------------

def affine_qparams_solution(x_min: float, x_max: float, bits: int) -> tuple[float, int]:
    """(scale, zero_point) mapping [x_min, x_max] (widened to hold 0) onto a signed grid."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)  # 0.0 must be exactly representable
    scale = (x_max - x_min) / (qmax - qmin)          # float step between two levels
    zero_point = qmin - round(x_min / scale)         # x_min lands on qmin
    return scale, int(zero_point)


def _q2_affine(x_min, x_max, bits, *, widen=True, levels=None, to_int=round, offset=True):
    """The solution with one step swapped out: each known mistake is one keyword."""
    qmin, qmax = qkit.qrange(bits)
    if widen:
        x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)
    scale = (x_max - x_min) / (levels(bits) if levels else qmax - qmin)
    return scale, (qmin if offset else 0) - to_int(x_min / scale)


def _q2_case(g: torch.Generator) -> tuple[float, float, int]:
    while True:
        bits, kind = _randint(g, 2, 16), _randint(g, 0, 2)
        a, b = round(_uniform(g, 0.01, 4.0), 3), round(_uniform(g, 0.01, 4.0), 3)
        x_min, x_max = [(-a, b), (a, round(a + b, 3)), (-round(a + b, 3), -a)][kind]  # spans / >0 / <0
        lo, hi = min(x_min, 0.0), max(x_max, 0.0)
        t = lo / ((hi - lo) / (2**bits - 1))
        if abs(t - math.floor(t) - 0.5) > 1e-3:  # not near a rounding tie
            return x_min, x_max, bits


def _ref_affine_qparams(x_min: float, x_max: float, bits: int) -> tuple[float, int]:
    qp = qkit.choose_qparams(x_min, x_max, bits)
    return qp.scale.item(), int(qp.zero_point)


_OFF_BY_ONE = ("your zero_point is off by one: round x_min / scale to the nearest integer "
               "with round(), not floor, ceil or int()")
q2 = Question(
    "q2", "my_affine_qparams", reference=_ref_affine_qparams, solution_fn=affine_qparams_solution,
    parts=("scale", "zero_point"), rtol=1e-6,
    hint_text="First widen the range so that it holds 0.0 (0 must be exact on the grid). The "
              "step spreads that range over the gaps between levels (one fewer than the levels), "
              "and the zero point is the integer that makes x_min land on qmin: round it to the "
              "nearest integer and return a Python int.",
    edge_cases=[(-1.0, 2.0, 8), (-0.45, 1.0, 8), (-0.3, 1.0, 8), (0.5, 2.0, 8), (-3.0, -0.25, 4),
                (-0.8, 5.0, 3)],
    random_case=_q2_case,
    alternatives=[affine_qparams_solution],  # float64 arithmetic; the reference is float32
    mistakes=[
        Mistake(lambda a, b, bits: _q2_affine(a, b, bits, widen=False),
                "the range must contain 0 so that 0.0 is exact: widen it first with "
                "x_min = min(x_min, 0) and x_max = max(x_max, 0)"),
        Mistake(lambda a, b, bits: _q2_affine(a, b, bits, to_int=float),
                "`zero_point` must be a Python int (a level of the grid): round x_min / scale "
                "and convert with int(...)"),
        Mistake(lambda a, b, bits: _q2_affine(a, b, bits, offset=False),
                "your zero_point is off by 2**(bits-1) (128 for 8 bits): x_min must land on qmin, "
                "so zero_point = qmin - round(x_min / scale)"),
        Mistake(lambda a, b, bits: _q2_affine(a, b, bits, levels=lambda n: 2**n),
                "a B-bit grid has qmax - qmin = 2**bits - 1 steps, not 2**bits: "
                "scale = (x_max - x_min) / (qmax - qmin)"),
        *[Mistake(lambda a, b, bits, f=f: _q2_affine(a, b, bits, to_int=f), _OFF_BY_ONE)
          for f in (math.floor, math.ceil, math.trunc)],
    ],
)


# ---- q3: quantize a tensor -----------------------------------------------------------

def quantize_solution(x: torch.Tensor, scale: float, zero_point: int, bits: int) -> torch.Tensor:
    """int8 levels of ``x`` on the signed ``bits``-bit grid (bits <= 8)."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    q = torch.round(x / scale) + zero_point  # nearest level; 0.0 -> zero_point
    q = torch.clamp(q, qmin, qmax)           # clip what falls off the grid
    return q.to(torch.int8)


def _q3_case(g: torch.Generator) -> tuple[torch.Tensor, float, int, int]:
    bits = _randint(g, 2, 8)
    qmin, qmax = qkit.qrange(bits)
    scale, zero_point, n = _f32(_uniform(g, 0.01, 0.5)), _randint(g, qmin, qmax), _randint(g, 8, 40)
    margin = 2 ** (bits - 2) + 2  # some levels fall off the grid on both sides
    k = torch.randint(qmin - zero_point - margin, qmax - zero_point + margin + 1, (n,), generator=g)
    k[:2] = torch.tensor([qmin - zero_point - 1, qmax - zero_point + 1])  # always clip both ends
    u = torch.rand(n, generator=g) * 0.98 - 0.49  # keep 0.01 away from rounding ties
    return ((k + u) * scale).to(torch.float32), scale, zero_point, bits


def _q3_no_round(round_first):
    def trunc(x, scale, zp, bits):
        qmin, qmax = qkit.qrange(bits)
        if round_first:  # truncate x / scale, then shift and clamp
            return torch.clamp((x / scale).int() + zp, qmin, qmax).to(torch.int8)
        return torch.clamp(x / scale + zp, qmin, qmax).to(torch.int8)
    return trunc


def _q3_no_clamp(x, scale, zp, bits):
    return (torch.round(x / scale) + zp).to(torch.int8)


def _q3_clamp_before_zero_point(x, scale, zp, bits):
    return (torch.clamp(torch.round(x / scale), *qkit.qrange(bits)) + zp).to(torch.int8)


# Left out on purpose: clamping x to the grid's float range before rounding gave the same
# int8 result as the reference on 3000 checks (~39000 cases), so it is not a mistake here.
def _q3_float(x, scale, zp, bits):
    return torch.clamp(torch.round(x / scale) + zp, *qkit.qrange(bits))


_X3 = torch.tensor([-1.04, -0.03, 0.0, 0.02, 0.33, 5.0, 5.9, 6.4, 7.0, -6.0, -6.9, -7.2, 12.0, -12.0])
_TRUNC = ("`.to(torch.int8)` and `.int()` truncate toward zero: round to the nearest level "
          "with torch.round first")
q3 = Question(
    "q3", "my_quantize", reference=lambda x, s, zp, bits: qkit.quantize(x, _grid(s, zp, bits)),
    solution_fn=quantize_solution,
    hint_text="Measure x in steps, go to the nearest level (torch.round), move by the zero point, "
              "and clip to the signed grid before converting: int8 wraps a value that does not "
              "fit around instead of clipping it.",
    edge_cases=[(_X3, _f32(0.05), 10, 8),
                (torch.tensor([-3.0, -2.1, -0.3, 0.4, 1.0, 2.6, 5.0]), 0.25, -3, 4),
                (torch.tensor([-130.2, -0.7, 0.7, 126.6, 127.4, 300.0]), 1.0, 0, 8)],
    random_case=_q3_case,
    alternatives=[quantize_solution,  # x / scale; the reference computes x * (1 / scale)
                  lambda x, s, zp, bits: quantize_solution(x.double(), s, zp, bits)],
    mistakes=[
        Mistake(_q3_float, "return integers: convert the clamped result with .to(torch.int8)"),
        Mistake(_q3_no_round(False), _TRUNC),
        Mistake(_q3_no_round(True), _TRUNC),
        Mistake(_q3_no_clamp, "values beyond the grid must be clipped: clamp to [qmin, qmax] before "
                "converting (int8 wraps around: 200 would become -56)"),
        Mistake(_q3_clamp_before_zero_point, "clamp after adding zero_point: qmin and qmax limit "
                "q = round(x / scale) + zero_point, not round(x / scale)"),
    ],
)


# ---- q4: dequantize -----------------------------------------------------------------

def dequantize_solution(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """float32 values ``scale * (q - zero_point)`` of int8 levels ``q``."""
    centred = q.to(torch.int32) - zero_point  # int32: in int8 this could wrap around
    return centred.to(torch.float32) * scale


def _q4_case(g: torch.Generator) -> tuple[torch.Tensor, float, int]:
    q = torch.randint(-128, 128, (_randint(g, 8, 40),), generator=g).to(torch.int8)
    return q, _f32(_uniform(g, 0.001, 1.0)), _randint(g, -128, 127)


_Q4 = torch.tensor([-128, -127, -100, -1, 0, 1, 50, 126, 127], dtype=torch.int8)
q4 = Question(
    "q4", "my_dequantize", reference=lambda q, s, zp: qkit.dequantize(q, _grid(s, zp, 8)),
    solution_fn=dequantize_solution, rtol=1e-5, atol=1e-5,
    hint_text="Read the lesson's equation x ≈ scale * (q - zero_point) from right to left. "
              "Pitfall: q is int8 and int8 arithmetic wraps around, so widen q before subtracting.",
    edge_cases=[(_Q4, _f32(0.02), 100), (_Q4, _f32(0.5), -120), (_Q4.flip(0), _f32(0.003), 77)],
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda q, s, zp: (q.to(torch.float64) - zp) * s,
                "your result is float64; return float32 (.to(torch.float32) or .float())"),
        Mistake(lambda q, s, zp: (q - zp).to(torch.float32) * s,
                "`q - zero_point` wrapped around in int8 (-128 - 100 does not fit in int8): convert q "
                "to int32 or float before subtracting"),
        Mistake(lambda q, s, zp: (q.to(torch.int32) + zp).to(torch.float32) * s,
                "you added zero_point; subtract it: x = scale * (q - zero_point)"),
        Mistake(lambda q, s, zp: q.to(torch.float32) * s,
                "you forgot zero_point: x = scale * (q - zero_point)"),
    ],
)


# ---- q5: ternarize ----------------------------------------------------------------

def ternarize_solution(x: torch.Tensor, delta: float) -> tuple[torch.Tensor, float]:
    """int8 q in {-1, 0, +1} (0 where |x| <= delta) and the least-squares scale."""
    keep = x.abs() > delta                     # values that get a level ±1
    q = (torch.sign(x) * keep).to(torch.int8)  # -1, 0 or +1
    scale = x.abs()[keep].mean().item()        # mean |x| of the kept values
    return q, scale


def _q5_case(g: torch.Generator) -> tuple[torch.Tensor, float]:
    x = torch.randn(_randint(g, 6, 40), generator=g) * _uniform(g, 0.1, 3.0)
    delta = _f32(0.7 * x.abs().mean().item())
    if _randint(g, 0, 1):  # exact ties: |x| == delta must give 0
        x[:2] = torch.tensor([delta, -delta])
    if not (x.abs() > delta).any():
        x[-1] = 2 * delta
    return x, delta


def _ref_ternarize(x: torch.Tensor, delta: float) -> tuple[torch.Tensor, float]:
    q, qp = qkit.ternarize(x, delta=delta)
    return q, qp.scale.item()


def _q5_mask(x, delta, keep):
    return (torch.sign(x) * keep).to(torch.int8), x.abs()[keep].mean().item()


q5 = Question(
    "q5", "my_ternarize", reference=_ref_ternarize, solution_fn=ternarize_solution,
    parts=("q", "scale"), rtol=1e-5,
    hint_text="Decide which values are kept (magnitude strictly above delta); a kept value's "
              "level is its sign, the others get 0. The one scale that fits the kept values best "
              "is their average magnitude (the dropped ones do not count). int8 levels, float scale.",
    edge_cases=[(torch.tensor([0.5, -0.5, 0.2, -1.5, 2.0, 0.0, -0.1, 0.9]), 0.5),
                (torch.tensor([[0.25, -0.75, 0.0625], [1.25, -0.25, 0.0]]), 0.25)],
    random_case=_q5_case,
    mistakes=[
        Mistake(lambda x, d: ((torch.sign(x) * (x.abs() > d)), _q5_mask(x, d, x.abs() > d)[1]),
                "`q` must be an int8 tensor of -1, 0, +1: convert with .to(torch.int8)"),
        Mistake(lambda x, d: (_q5_mask(x, d, x.abs() > d)[0], x.abs().mean().item()),
                "`scale` is the mean |x| of the values you keep (|x| > delta), not of all values"),
        Mistake(lambda x, d: _q5_mask(x, d, x.abs() >= d),
                "values with |x| exactly equal to delta must become 0: keep |x| > delta, not |x| >= delta"),
    ],
)
