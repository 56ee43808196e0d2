"""Lesson 03 exercises: integer-only arithmetic of an int8 linear layer.

In the notebook::

    from exercises.ex03_kernels import q1, q2, q3, q4

    q1  my_quantize_multiplier(real: float) -> tuple[int, int]      # (multiplier, shift), 0 < real < 1
    q2  my_folded_acc(q_x, x_zero_point, q_w, bias_q) -> Tensor     # int32 (N, M)
    q3  my_requantize(acc: int, multiplier: int, shift: int, zero_point: int) -> int   # one int8 value
    q4  my_single_rounding(acc: int, multiplier: int, shift: int) -> int   # acc · M rounded once

References: :func:`qkit.fixedpoint.quantize_multiplier`,
:func:`qkit.fixedpoint.multiply_by_quantized_multiplier` (q3: its default pair of roundings;
q4: ``rounding="single"``) and the folded sum ``Σ_k (q_x - z_x) q_w + bias_q`` computed in int64.
"""

from __future__ import annotations

import math

import torch

from exercises.core import Mistake, Question
from qkit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

__all__ = ["q1", "q2", "q3", "q4"]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


# ---- q1: a real multiplier as (Q0.31 integer, power-of-two shift) -------------------

def quantize_multiplier_solution(real: float) -> tuple[int, int]:
    """(multiplier, shift) with real ≈ multiplier · 2**(shift - 31), multiplier in [2**30, 2**31)."""
    mantissa, shift = math.frexp(real)               # real = mantissa · 2**shift, mantissa in [0.5, 1)
    multiplier = math.floor(mantissa * 2**31 + 0.5)  # round half away from zero (mantissa > 0)
    if multiplier == 2**31:                          # rounding reached 1.0: halve it, shift one more
        multiplier, shift = multiplier // 2, shift + 1
    return multiplier, shift


def _q1_variant(real, *, rounding=lambda v: math.floor(v + 0.5), fix_top=True, flip=False):
    mantissa, shift = math.frexp(real)
    multiplier = int(rounding(mantissa * 2**31))
    if fix_top and multiplier == 2**31:
        multiplier, shift = multiplier // 2, shift + 1
    return multiplier, -shift if flip else shift


def _q1_case(g: torch.Generator) -> tuple[float]:
    return (math.ldexp(0.5 + 0.5 * torch.rand((), generator=g, dtype=torch.float64).item(),
                       -_randint(g, 0, 20)),)


q1 = Question(
    "q1", "my_quantize_multiplier", reference=lambda real: quantize_multiplier(real),
    solution_fn=quantize_multiplier_solution, parts=("multiplier", "shift"),
    hint_text="math.frexp splits a float into a mantissa in [0.5, 1) and a power of two: one "
              "becomes the 31-bit multiplier, the other the shift. Pitfalls: TFLite rounds halves "
              "away from zero, and a mantissa that rounds all the way up to 1.0 no longer fits a Q0.31 int32.",
    edge_cases=[(0.25,), (0.3,), (0.5 + 2**-32,), (1 - 2**-33,), (0.0078125,)],
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda r: _q1_variant(r, rounding=round), "ties must round half away from zero "
                "(TFLite's TfLiteRound), not half to even as Python's round() does"),
        Mistake(lambda r: _q1_variant(r, rounding=math.floor), "truncating mantissa · 2**31 loses "
                "up to one unit: round it to the nearest integer"),
        Mistake(lambda r: _q1_variant(r, fix_top=False), "when the rounding gives 2**31 the multiplier "
                "no longer fits int32: halve it and add 1 to the shift"),
        Mistake(lambda r: _q1_variant(r, flip=True), "the shift has TFLite's sign: negative means "
                "shift right (0.25 has shift -1), so return frexp's exponent unchanged"),
    ],
)


# ---- q2: the int32 accumulator with the input zero_point folded in ---------------------

def folded_acc_solution(q_x: torch.Tensor, x_zero_point: int, q_w: torch.Tensor,
                        bias_q: torch.Tensor) -> torch.Tensor:
    """acc = Σ_k (q_x - z_x) q_w + bias_q = q_x @ q_w.T - z_x · rowsum(q_w) + bias_q, in int32."""
    q_x32, q_w32 = q_x.to(torch.int32), q_w.to(torch.int32)  # never multiply in int8
    row_sums = q_w32.sum(dim=1, dtype=torch.int32)          # (M,) precomputed once per layer
    return q_x32 @ q_w32.T - x_zero_point * row_sums + bias_q  # (N, M) int32


def _q2_reference(q_x, x_zero_point, q_w, bias_q):
    acc = (q_x.long() - x_zero_point) @ q_w.long().T + bias_q.long()  # (N, M) int64, exact
    return acc.to(torch.int32)


def _q2_case(g: torch.Generator) -> tuple:
    n, k, m = _randint(g, 1, 5), _randint(g, 1, 40), _randint(g, 1, 6)
    q_x = torch.randint(-128, 128, (n, k), generator=g, dtype=torch.int8)
    q_w = torch.randint(-127, 128, (m, k), generator=g, dtype=torch.int8)
    bias_q = torch.randint(-5000, 5000, (m,), generator=g, dtype=torch.int32)
    return q_x, _randint(g, -128, 127), q_w, bias_q


def _q2_edge() -> tuple:
    q_x = torch.tensor([[127, -128, 127, 5]], dtype=torch.int8)
    q_w = torch.tensor([[127, 127, 127, 127], [-128, 3, 0, 1]], dtype=torch.int8)
    return q_x, -100, q_w, torch.tensor([1000, -7], dtype=torch.int32)


q2 = Question(
    "q2", "my_folded_acc", reference=_q2_reference, solution_fn=folded_acc_solution,
    hint_text="Follow section 1's derivation: the zero-point part of Σ (q_x - z_x) q_w depends "
              "on the weights only. Pitfall: int8 tensors multiply and subtract in int8 and wrap "
              "around, so widen first.",
    edge_cases=[_q2_edge()], random_case=_q2_case,
    mistakes=[
        Mistake(lambda q_x, z, q_w, b: (q_x @ q_w.T).to(torch.int32) - z * q_w.int().sum(1, dtype=torch.int32) + b,
                "`q_x @ q_w.T` on int8 tensors is computed in int8 and wraps around: convert both "
                "to int32 before multiplying"),
        Mistake(lambda q_x, z, q_w, b: ((q_x - z).int() @ q_w.int().T + b).to(torch.int32),
                "`q_x - x_zero_point` in int8 wraps around (-128 - 100 does not fit): widen to "
                "int32 before subtracting"),
        Mistake(lambda q_x, z, q_w, b: (q_x.int() @ q_w.int().T + b).to(torch.int32),
                "you forgot the zero-point term: subtract x_zero_point · (row sums of q_w)"),
        Mistake(lambda q_x, z, q_w, b: (q_x.int() @ q_w.int().T - z * q_w.int().sum(1, dtype=torch.int32)).to(torch.int32),
                "you forgot to add bias_q"),
        Mistake(lambda q_x, z, q_w, b: (q_x.int() @ q_w.int().T + z * q_w.int().sum(1, dtype=torch.int32) + b).to(torch.int32),
                "the zero-point term has the wrong sign: (q_x - z_x) q_w = q_x q_w - z_x q_w"),
    ],
)


# ---- q3: requantize one accumulator to int8 -------------------------------------------

def requantize_solution(acc: int, multiplier: int, shift: int, zero_point: int) -> int:
    """q_y = clamp(MultiplyByQuantizedMultiplier(acc) + zero_point, -128, 127), integers only."""
    scaled = multiply_by_quantized_multiplier(torch.tensor([acc], dtype=torch.int32), multiplier, shift)
    return max(-128, min(127, int(scaled) + zero_point))


def _q3_reference(acc, multiplier, shift, zero_point):
    return requantize_solution(acc, multiplier, shift, zero_point)


def _q3_float(acc, multiplier, shift, zero_point):
    return max(-128, min(127, round(acc * multiplier * 2.0 ** (shift - 31)) + zero_point))


def _q3_case(g: torch.Generator) -> tuple:
    multiplier, shift = quantize_multiplier(0.0005 + 0.01 * torch.rand((), generator=g).item())
    return _randint(g, -30_000, 30_000), multiplier, shift, _randint(g, -128, 127)


q3 = Question(
    "q3", "my_requantize", reference=_q3_reference, solution_fn=requantize_solution,
    hint_text="qkit.fixedpoint has section 2's integer multiply-and-shift; what is left is the "
              "output's zero point and the int8 range. Return a Python int.",
    edge_cases=[(5, *quantize_multiplier(0.25), 0), (100_000, *quantize_multiplier(0.01), 100),
                (-100_000, *quantize_multiplier(0.01), -100), (1234, *quantize_multiplier(0.003), -3)],
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda a, m, s, z: int(multiply_by_quantized_multiplier(
            torch.tensor([a], dtype=torch.int32), m, s)) + z,
            "clamp the result to the int8 range [-128, 127]"),
        Mistake(lambda a, m, s, z: max(-128, min(127, int(multiply_by_quantized_multiplier(
            torch.tensor([a], dtype=torch.int32), m, s)))),
            "add the output zero_point before clamping"),
        Mistake(_q3_float, "that is float rounding of acc · M: the integer pipeline rounds twice "
                "(at the high multiply and at the shift), so ties can differ — use "
                "multiply_by_quantized_multiplier"),
    ],
)


# ---- q4: one rounding of the 64-bit product ----------------------------------------------

def single_rounding_solution(acc: int, multiplier: int, shift: int) -> int:
    """``round(acc · multiplier / 2**(31 - shift))``, ties toward +inf, with integers only."""
    total_shift = 31 - shift                      # shift < 0 shifts right: the divisor is 2**(31 - shift)
    half = 1 << (total_shift - 1)                 # half of the divisor: adding it turns the floor into a rounding
    return (acc * multiplier + half) >> total_shift   # Python's >> floors, also for negative products


def _q4_reference(acc, multiplier, shift):
    return int(multiply_by_quantized_multiplier(torch.tensor([acc], dtype=torch.int32), multiplier, shift,
                                                rounding="single"))


def _q4_case(g: torch.Generator) -> tuple:
    multiplier, shift = quantize_multiplier(0.0005 + 0.3 * torch.rand((), generator=g).item())
    return _randint(g, -2**24, 2**24), multiplier, shift


q4 = Question(
    "q4", "my_single_rounding", reference=_q4_reference, solution_fn=single_rounding_solution,
    hint_text="Section 4's single rounding: the whole 64-bit product acc · multiplier, divided by a power "
              "of two, rounded once. A right shift floors; adding half of the divisor first makes it round. "
              "Pitfalls: TFLite's shift sign (negative means shift right), and Python's built-in round, which "
              "breaks ties to even where this rule rounds them up.",
    edge_cases=[(100_000, *quantize_multiplier(0.01)), (7, 2**30, -1), (-2, 2**30, -1), (2, 2**30, -1),
                (5, 2**30, -1), (-6, 2**30, -1), (3, 2**30, 0), (-123_457, *quantize_multiplier(0.0042))],
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda a, m, s: int(multiply_by_quantized_multiplier(torch.tensor([a], dtype=torch.int32), m, s)),
                "that is section 2's pair of roundings (high multiply, then rounding shift): "
                "round the whole product once instead"),
        Mistake(lambda a, m, s: round(a * m / 2 ** (31 - s)), "Python's round sends ties to even "
                "(0.5 -> 0); this rule rounds ties up (toward +inf), as adding half and flooring does"),
        Mistake(lambda a, m, s: (a * m) >> (31 - s), "you truncate (a right shift floors): add half of the "
                "divisor, 2**(30 - shift), before shifting"),
        Mistake(lambda a, m, s: (a * m + (1 << (31 - s))) >> (31 - s), "the rounding constant is half of the "
                "divisor: 2**(30 - shift), not 2**(31 - shift)"),
        Mistake(lambda a, m, s: (a * m + (1 << (30 + s))) >> (31 + s) if s > -31 else 0,
                "the shift has TFLite's sign (negative = right): the product is divided by 2**(31 - shift)"),
    ],
)
