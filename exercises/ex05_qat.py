"""Lesson 05 exercises: quantization-aware training (the STE backward, binary and ternary weights, packing).

In the notebook::

    from exercises.ex05_qat import q1, q2, q3, q4

    q1  my_fake_quant_grad(x, scale, zero_point, qmin, qmax, grad_out) -> Tensor   # float32, x's shape
    q2  my_binary_weight(w) -> Tensor                                             # float32, w's shape
    q3  my_ternary_weight(w) -> Tensor                                            # float32, w's shape
    q4  my_packed_bytes(shape: tuple[int, ...], bits: int) -> int

References: autograd through :func:`qkit.fake_quantize`; :class:`qkit.qat.quantizers.WeightQuant`
at 1 and 2 bits (what ``qat.prepare(w_bits=1 or 2)`` trains with); :func:`qkit.pack.packed_bytes`.
The first fixed case of each question is built so that every known mistake fails
there with an output of its own.
"""

from __future__ import annotations

import math

import torch

from exercises.core import Mistake, Question
from qkit.pack import packed_bytes
from qkit.qat.quantizers import WeightQuant
from qkit.qparams import QParams, qrange
from qkit.quant import fake_quantize

__all__ = ["q1", "q2", "q3", "q4"]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


# ---- q1: the straight-through estimator's backward ---------------------------------------

def fake_quant_grad_solution(x: torch.Tensor, scale: float, zero_point: int, qmin: int, qmax: int,
                             grad_out: torch.Tensor) -> torch.Tensor:
    """d loss / d x of ``fake_quantize``: the upstream gradient where x's level lies in the grid, else 0."""
    q = torch.round(x * (1.0 / scale)) + zero_point  # (N,) the level before clamping
    inside = (q >= qmin) & (q <= qmax)                # clamped levels get no gradient
    return grad_out * inside                           # round itself counts as the identity (STE)


def _ref_fake_quant_grad(x, scale, zero_point, qmin, qmax, grad_out):
    qp = QParams(torch.tensor(scale, dtype=torch.float32), torch.tensor(zero_point, dtype=torch.int32), qmin, qmax)
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fake_quantize(x, qp), x, grad_out)
    return grad


def _q1_grad(x, scale, zero_point, qmin, qmax, grad_out, *, do_round=True, use_zp=True, strict=False,
             times_grad=True):
    """The solution with one step swapped out: each known mistake is one keyword."""
    level = x * (1.0 / scale)
    q = (torch.round(level) if do_round else level) + (zero_point if use_zp else 0)
    inside = ((q > qmin) & (q < qmax)) if strict else ((q >= qmin) & (q <= qmax))
    return grad_out * inside if times_grad else inside.float()


def _q1_edge() -> tuple:
    # 4-bit grid [-8, 7], zero point 3, scale 1/4: x/s = -11.4 rounds onto qmin (inside), 4.3 onto qmax
    # (inside), 5 and -12 fall outside; 6 and -10 tell the zero point apart; 3.8 + 3 = 6.8 rounds onto qmax
    levels = torch.tensor([-11.4, 4.3, 5.0, 0.2, -12.0, 6.0, -10.0, 3.8])
    return (levels * 0.25, 0.25, 3, -8, 7, torch.tensor([0.5, -1.5, 2.0, 0.25, -0.75, 3.0, 1.25, -2.0]))


def _q1_case(g: torch.Generator) -> tuple:
    bits, signed = _randint(g, 2, 8), bool(_randint(g, 0, 1))
    qmin, qmax = qrange(bits, signed)
    zp, scale, n = _randint(g, qmin, qmax), _uniform(g, 0.01, 0.5), _randint(g, 4, 40)
    k = torch.randint(qmin - zp - 3, qmax - zp + 4, (n,), generator=g).float()  # levels around the grid
    frac = torch.rand(n, generator=g) * 0.8 - 0.4  # never near a rounding tie
    return ((k + frac) * scale).float(), scale, zp, qmin, qmax, torch.randn(n, generator=g)


q1 = Question(
    "q1", "my_fake_quant_grad", reference=_ref_fake_quant_grad, solution_fn=fake_quant_grad_solution,
    rtol=0.0, atol=0.0,
    hint_text="The straight-through estimator treats round as the identity, so the upstream gradient passes "
              "unchanged, except where the clamp is active. Decide that per element from the integer level "
              "before clamping: x times 1/scale, rounded, plus the zero point. A level equal to qmin or qmax "
              "is still inside.",
    edge_cases=[_q1_edge()],
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda x, s, z, lo, hi, g: torch.zeros_like(g),
                "all zeros is the true gradient of round (0 almost everywhere): the STE passes grad_out "
                "through round as if it were the identity"),
        Mistake(lambda x, s, z, lo, hi, g: g.clone(),
                "you passed the gradient everywhere: where the clamp is active (the level is outside "
                "[qmin, qmax]) the gradient is 0"),
        Mistake(lambda *a: _q1_grad(*a, times_grad=False),
                "you returned the mask only: multiply it by grad_out (the chain rule)"),
        Mistake(lambda *a: _q1_grad(*a, do_round=False),
                "decide inside/outside on the rounded level: x/scale + zero_point = 7.3 rounds to 7, which "
                "is inside a grid whose qmax is 7"),
        Mistake(lambda *a: _q1_grad(*a, use_zp=False),
                "you forgot the zero point: the level is round(x/scale) + zero_point before you compare it "
                "with qmin and qmax"),
        Mistake(lambda *a: _q1_grad(*a, strict=True),
                "a level equal to qmin or qmax is on the grid: use >= and <=, not strict inequalities"),
    ],
)


# ---- q2: binary weights -------------------------------------------------------------------

def binary_weight_solution(w: torch.Tensor) -> torch.Tensor:
    """``sign(w) · mean|w|`` per output channel (dim 0), with sign(0) = +1."""
    flat = w.reshape(w.shape[0], -1)                       # (C, everything else)
    scale = flat.abs().mean(dim=1)                         # (C,) one scale per output channel
    sign = torch.where(w >= 0, 1.0, -1.0)                  # 0 counts as +1: two levels, never three
    return sign * scale.view(-1, *[1] * (w.dim() - 1))     # broadcast over the channel's weights


def _ref_binary(w):
    with torch.no_grad():
        return WeightQuant(1, "minmax", w)(w)


def _q2_bin(w, *, stat="mean_abs", per_channel=True, sign0=True, dims="all"):
    """The solution with one step swapped out: each known mistake is one keyword."""
    flat = w.reshape(w.shape[0], -1) if dims == "all" else w
    stats = {"mean_abs": lambda t, d: t.abs().mean(d, keepdim=True),
             "max_abs": lambda t, d: t.abs().amax(d, keepdim=True),
             "mean": lambda t, d: t.mean(d, keepdim=True)}
    if not per_channel:
        scale = stats[stat](w.reshape(-1), 0)
    elif dims == "all":
        scale = stats[stat](flat, 1).view(-1, *[1] * (w.dim() - 1))
    else:
        scale = stats[stat](w, 1)  # only over dim 1
    sign = torch.where(w >= 0, 1.0, -1.0) if sign0 else torch.sign(w)
    return sign * scale


def _q2_edge() -> tuple:
    w = torch.tensor([[[[0.5, -0.25], [0.0, 1.0]], [[-0.75, 0.125], [0.25, -1.5]]],
                      [[[0.1, 0.3], [-0.2, 0.05]], [[0.4, -0.6], [0.15, 0.2]]],
                      [[[-2.0, 1.0], [0.5, -0.5]], [[3.0, -1.0], [-0.25, 0.75]]]])  # (3, 2, 2, 2), one exact 0
    return (w,)


def _q2_case(g: torch.Generator) -> tuple:
    c = _randint(g, 1, 6)
    if _randint(g, 0, 1):
        shape = (c, _randint(g, 1, 12))                                          # a linear weight
    else:
        shape = (c, _randint(g, 1, 4), _randint(g, 1, 3), _randint(g, 1, 3))     # a conv filter bank
    spread = torch.rand(c, *[1] * (len(shape) - 1), generator=g) * 2 + 0.1
    return (torch.randn(*shape, generator=g) * spread,)


q2 = Question(
    "q2", "my_binary_weight", reference=_ref_binary, solution_fn=binary_weight_solution, rtol=1e-6,
    atol=1e-7,
    hint_text="Two levels per output channel, plus and minus one scale. XNOR-Net's scale is the one that "
              "minimises the squared error: the average magnitude of that channel's weights (every axis "
              "but the first). Zero must land on one of the two levels, the positive one.",
    edge_cases=[_q2_edge()],
    random_case=_q2_case,
    mistakes=[
        Mistake(lambda w: _q2_bin(w, per_channel=False),
                "one scale per output channel (dim 0), not one for the whole tensor"),
        Mistake(lambda w: _q2_bin(w, stat="max_abs"),
                "the binary scale is the mean of |w| per channel (the least-squares choice), not the max"),
        Mistake(lambda w: _q2_bin(w, stat="mean"),
                "take the mean of |w|, not of w: positive and negative weights must not cancel"),
        Mistake(lambda w: _q2_bin(w, sign0=False),
                "torch.sign(0) is 0, a third level: a binary weight is ±scale, so count 0 as +1"),
        Mistake(lambda w: _q2_bin(w, dims="dim1"),
                "average over every axis of the channel (in-channels and the kernel), not only dim 1"),
    ],
)


# ---- q3: ternary weights ------------------------------------------------------------------

def ternary_weight_solution(w: torch.Tensor) -> torch.Tensor:
    """The narrow 2-bit grid {-1, 0, +1} · scale per output channel, scale = max|w| of the channel."""
    flat = w.reshape(w.shape[0], -1)                            # (C, everything else)
    scale = flat.abs().amax(dim=1).clamp_min(1e-8)               # (C,) qmax = 1: max|w| / 1
    scale = scale.view(-1, *[1] * (w.dim() - 1))
    return torch.clamp(torch.round(w * (1.0 / scale)), -1, 1) * scale  # levels -1, 0, +1


def _ref_ternary(w):
    with torch.no_grad():
        return WeightQuant(2, "minmax", w)(w)


def _q3_tern(w, *, stat="max", per_channel=True, rounding=torch.round, qmin=-1):
    flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    s = flat.abs().amax(1) if stat == "max" else flat.abs().mean(1)
    s = s.view(-1, *[1] * (w.dim() - 1)) if per_channel else s.reshape(())
    return torch.clamp(rounding(w / s), qmin, 1) * s


def _q3_twn(w):
    """Ternary weight networks (Li et al. 2016): threshold 0.7·mean|w|, scale = mean |w| above it."""
    flat = w.reshape(w.shape[0], -1)
    delta = 0.7 * flat.abs().mean(1, keepdim=True)
    keep = flat.abs() > delta
    scale = (flat.abs() * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp_min(1)
    return (torch.sign(flat) * keep * scale).reshape(w.shape)


def _q3_edge() -> tuple:
    return (torch.tensor([[0.9, -0.2, 0.3, -0.45, 1.2, -0.1],
                          [0.05, 0.3, -0.7, -0.2, 0.14, 0.45],
                          [-2.0, 1.1, 0.6, -0.95, 0.3, 1.6]]),)  # (3, 6): max|w| 1.2, 0.7, 2.0


def _q3_case(g: torch.Generator) -> tuple:
    c, k = _randint(g, 1, 6), _randint(g, 2, 16)
    spread = torch.rand(c, 1, generator=g) * 2 + 0.1
    w = torch.randn(c, k, generator=g) * spread
    ratio = w / w.abs().amax(1, keepdim=True)
    w = torch.where((ratio.abs() - 0.5).abs() < 0.02, w * 0.9, w)  # keep |w| away from half the max: no ties
    return (w if _randint(g, 0, 1) else w.reshape(c, k, 1, 1),)


q3 = Question(
    "q3", "my_ternary_weight", reference=_ref_ternary, solution_fn=ternary_weight_solution, rtol=1e-6,
    atol=1e-7,
    hint_text="The ternary grid is the 2-bit narrow grid: the integers -1, 0 and +1 only (qmax = 1), so a "
              "channel's step is its largest magnitude. Divide by the step, round to the nearest integer, "
              "clamp into the three levels and multiply back; one step per output channel (dim 0).",
    edge_cases=[_q3_edge()],
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda w: _q3_tern(w, per_channel=False),
                "one scale per output channel (dim 0), not one for the whole tensor"),
        Mistake(lambda w: _q3_tern(w, stat="mean"),
                "the narrow 2-bit grid's step is max|w| per channel (qmax = 1), not the mean of |w|"),
        Mistake(lambda w: torch.where(w >= 0, 1.0, -1.0) * w.reshape(w.shape[0], -1).abs().amax(1).view(
                    -1, *[1] * (w.dim() - 1)),
                "that is binary: ternary keeps a zero level, the small weights round to 0"),
        Mistake(lambda w: _q3_tern(w, rounding=torch.trunc),
                "round to the nearest level; truncation sends every weight below the max to 0"),
        Mistake(_q3_twn, "that is the threshold rule of ternary weight networks (Li et al. 2016, 0.7·mean|w|): "
                         "here the grid is qkit's narrow 2-bit grid, step max|w| and round to nearest"),
    ],
)


# ---- q4: packed bytes ---------------------------------------------------------------------

def packed_bytes_solution(shape: tuple[int, ...], bits: int) -> int:
    """Bytes of a weight of ``shape`` stored ``bits`` bits per value, packed end to end."""
    n = math.prod(shape)                 # every weight of the layer
    return (n * bits + 7) // 8           # whole bytes: round the bit count up


def _ref_packed_bytes(shape, bits):
    return packed_bytes(math.prod(shape), bits)


def _q4_case(g: torch.Generator) -> tuple:
    shape = tuple(_randint(g, 1, 9) for _ in range(_randint(g, 1, 4)))
    return shape, _randint(g, 1, 8)


q4 = Question(
    "q4", "my_packed_bytes", reference=_ref_packed_bytes, solution_fn=packed_bytes_solution,
    hint_text="Count the weights (the product of the shape), then the bits they take together; a file holds "
              "whole bytes, so a partly filled last byte still counts. The values are packed across rows, "
              "one stream for the whole tensor.",
    edge_cases=[((5, 3, 1, 1), 3), ((7, 2), 1), ((4, 4, 3, 3), 8)],
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda shape, bits: math.prod(shape) * bits // 8,
                "round the byte count up: a last byte that is only partly filled is still stored"),
        Mistake(lambda shape, bits: math.prod(shape) * bits,
                "that is the number of bits: divide by 8 (rounding up) for bytes"),
        Mistake(lambda shape, bits: math.prod(shape),
                "one byte per weight is int8 storage: packed, a weight takes `bits` bits"),
        Mistake(lambda shape, bits: shape[0] * ((math.prod(shape[1:]) * bits + 7) // 8),
                "you padded every output channel to whole bytes: qkit packs the whole tensor as one stream"),
    ],
)
