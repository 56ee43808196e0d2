"""Lesson 02 exercises: quantizing tensors — per-tensor, per-channel, per-group; calibration.

In the notebook::

    from exercises.ex02_tensors import q1, q2, q3, q4, q5

    def my_per_channel_scales(w, bits):
        ...
    q1.check()        # or q1.check(my_per_channel_scales); q1.hint(); q1.solution()

The functions the learner writes (scale scheme: ``zero_point = 0`` and
``qmax = 2**(bits-1) - 1``; a weight ``w`` is (M, K): M output channels (rows), K inputs)::

    q1  my_per_channel_scales(w: Tensor, bits: int) -> Tensor              # float32 (M,)
    q2  my_fake_quantize_grouped(w: Tensor, bits: int, group_size: int) -> Tensor
                                                                           # float32 (M, K)
    q3  my_percentile_range(x: Tensor, percentile: float) -> tuple[float, float]
                                                                           # (x_min, x_max)
    q4  my_running_minmax(batches: list[Tensor]) -> tuple[float, float]    # (x_min, x_max)
    q5  my_overhead_bits(shape: tuple[int, int], group_size: int, scale_bits: int = 16) -> float

References: ``qkit.weight_qparams(w, bits).scale`` (q1), :func:`qkit.fake_quantize_grouped` (q2),
:class:`qkit.MinMaxObserver` (q4), :func:`qkit.scale_overhead_bits` (q5).

q3's reference is defined here, exactly: ``t = torch.quantile(|x|, percentile / 100)``
(linear interpolation between the two nearest ranks, as ``numpy.percentile``) and the
range ``(max(x.min(), -t), min(x.max(), t))``, so one-sided data keeps ``x_min = 0``.
It is computed in float64; the same formula with torch.quantile in float32 is accepted
too (it rounds the rank ``q·(n-1)`` to float32, which moves ``t`` by up to ~n·1e-7 of
the gap between two neighbouring values: more than ``rtol`` next to an outlier).
:class:`qkit.PercentileObserver` only approximates this threshold (read from a histogram,
to about one bin, with count-based ranks that differ visibly on small samples), so it is
not the reference.

Notes: q1 accepts 0 or qkit's floor (float32 eps) as the scale of an all-zero row;
q2 wants a finite result for an all-zero group (no 0 / 0). In q2 forgetting the clamp
cannot be detected: with the group's own max|w| no level passes ±qmax. q2's random
weights keep ``w / scale`` 0.05 away from rounding ties, so ``w / scale`` and the
reference's ``w * (1 / scale)`` round alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable

import torch

import qkit
from exercises.core import Mistake, Question

__all__ = ["q1", "q2", "q3", "q4", "q5"]

_EPS = torch.finfo(torch.float32).eps  # qkit's smallest scale (qkit.qparams.MIN_SCALE)


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


class _Fresh(Sequence):
    """Edge cases rebuilt on every access, so learner code that edits them cannot spoil them."""

    def __init__(self, make: Callable[[], list[tuple]]) -> None:
        self._make = make

    def __len__(self) -> int:
        return len(self._make())

    def __getitem__(self, i):
        return self._make()[i]


# ---- q1: one scale per output channel ------------------------------------------------

def per_channel_scales_solution(w: torch.Tensor, bits: int) -> torch.Tensor:
    """float32 (M,) scale-scheme scales, one per row (output channel) of w (M, K)."""
    qmax = 2 ** (bits - 1) - 1        # 127 for 8 bits; the scale scheme has zero_point 0
    return w.abs().amax(dim=1) / qmax  # the largest |w| of each row lands on ±qmax


def _ref_per_channel_scales(w: torch.Tensor, bits: int) -> torch.Tensor:
    return qkit.weight_qparams(w, bits).scale


def _q1_case(g: torch.Generator) -> tuple[torch.Tensor, int]:
    m, k = _randint(g, 2, 8), _randint(g, 2, 16)
    spread = 10 ** (torch.rand(m, 1, generator=g) * 3 - 2)  # rows differ by up to 1000x
    return torch.randn(m, k, generator=g) * spread, _randint(g, 2, 8)


_Q1_PER_TENSOR = ("that is one scale for the whole tensor (per-tensor); per-channel means one "
                  "scale per output channel: reduce each row with amax(dim=1) to get M scales")
_W1 = torch.tensor([[0.5, -2.54, 1.0, 0.0, 0.3],        # max |w| is a negative weight
                    [1.27, -0.2, 0.6, -1.0, 0.1],
                    [-0.05, 0.0254, 0.01, -0.03, 0.04]])  # a small channel
q1 = Question(
    "q1", "my_per_channel_scales", reference=_ref_per_channel_scales,
    solution_fn=per_channel_scales_solution,
    hint_text="Per-channel means one scale per output channel, i.e. per row of w (M, K). In the "
              "scale scheme each row's largest magnitude (mind negative weights) lands on "
              "qmax, the largest signed B-bit integer. Reduce along the dimension that leaves M numbers.",
    edge_cases=[(_W1, 8),
                (torch.tensor([[0.7, -0.35, 0.1], [0.0, 0.0, 0.0],    # a pruned (all-zero) row
                               [-1.4, 2.1, 0.0], [0.07, -0.7, 0.35]]), 4),
                (torch.tensor([[3.0, -1.0, 0.5, 2.0], [-0.1, 0.2, 0.0, 0.15]]), 16),
                (torch.tensor([[0.25, -0.5], [-4.0, 1.0]]), 2)],
    random_case=_q1_case,
    alternatives=[per_channel_scales_solution],  # an all-zero row: scale 0 or qkit's eps
    mistakes=[
        Mistake(lambda w, b: w.abs().amax(dim=0) / _qmax(b),
                "you reduced over dim 0 and got one scale per column (input); the output "
                "channels are the rows of w (M, K): reduce over dim=1"),
        Mistake(lambda w, b: w.amax(dim=1) / _qmax(b),
                "take the largest |w|, not the largest w: w.abs().amax(dim=1) (a row's biggest "
                "weight may be negative, and the grid must reach it)"),
        Mistake(lambda w, b: (w.amax(dim=1) - w.amin(dim=1)) / (2**b - 1),
                "that is the affine step (max - min) / (2**bits - 1); the scale scheme is "
                "symmetric: max(|row|) / qmax with qmax = 2**(bits-1) - 1"),
        Mistake(lambda w, b: w.abs().amax(dim=1) / (2**b - 1),
                "divide by qmax = 2**(bits-1) - 1 (127 for 8 bits): the scale scheme uses half "
                "of the grid for each sign, not 2**bits - 1 levels"),
        Mistake(lambda w, b: w.abs().amax(dim=1) / 2 ** (b - 1),
                "divide by qmax = 2**(bits-1) - 1 (127 for 8 bits), not 2**(bits-1): the "
                "positive side of the grid ends at 127"),
        Mistake(lambda w, b: w.abs().amax(dim=1, keepdim=True) / _qmax(b),
                "return a 1-d tensor of shape (M,): drop keepdim=True (or .squeeze(1))"),
        Mistake(lambda w, b: w.abs().max() / _qmax(b), _Q1_PER_TENSOR),
        Mistake(lambda w, b: (w.abs().max() / _qmax(b)).reshape(1), _Q1_PER_TENSOR),
        Mistake(lambda w, b: (w.abs().max() / _qmax(b)).expand(w.shape[0]), _Q1_PER_TENSOR),
    ],
)


# ---- q2: fake-quantize with one grid per group ----------------------------------------

def fake_quantize_grouped_solution(w: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Quantize-dequantize w (M, K) with one scale per run of group_size weights of a row."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    m, k = w.shape
    groups = w.reshape(m, k // group_size, group_size)          # consecutive weights of a row
    scale = groups.abs().amax(dim=-1, keepdim=True) / qmax      # (M, K // group_size, 1)
    scale = scale.clamp(min=torch.finfo(torch.float32).eps)      # an all-zero group: no 0 / 0
    q = torch.clamp(torch.round(groups / scale), qmin, qmax)     # levels on each group's grid
    return (q * scale).reshape(m, k)                             # back to floats, shape (M, K)


def _q2_variant(w, bits, group_size, *, layout="groups", rounding=torch.round, floor_scale=True,
                dequantize=True):
    """The solution with one step swapped out: each known mistake is one keyword."""
    m, k = w.shape
    qmin, qmax = -(2 ** (bits - 1)), _qmax(bits)
    if layout == "groups":      # right: (M * K / gs, gs), consecutive weights of a row
        view, back = w.reshape(-1, group_size), lambda v: v.reshape(m, k)
    elif layout == "rows":      # per-channel
        view, back = w, lambda v: v
    elif layout == "tensor":    # per-tensor
        view, back = w.reshape(1, -1), lambda v: v.reshape(m, k)
    elif layout == "columns":   # groups down the columns: w.T.reshape(-1, gs)
        view, back = w.T.reshape(-1, group_size), lambda v: v.reshape(k, m).T
    elif layout == "swapped":   # w.reshape(group_size, -1)
        view, back = w.reshape(group_size, -1), lambda v: v.reshape(m, k)
    elif layout == "count":     # group_size taken as the number of groups per row
        view, back = w.reshape(-1, k // group_size), lambda v: v.reshape(m, k)
    else:                       # "strided": (M, K // gs, gs) reduced over dim 1
        view = w.reshape(m, k // group_size, group_size).transpose(1, 2).reshape(-1, k // group_size)
        back = lambda v: v.reshape(m, group_size, k // group_size).transpose(1, 2).reshape(m, k)
    scale = view.abs().amax(dim=1, keepdim=True) / qmax
    if floor_scale:
        scale = scale.clamp(min=_EPS)
    q = torch.clamp(rounding(view * (1.0 / scale)), qmin, qmax)
    return back(q * scale if dequantize else q)


def _q2_case(g: torch.Generator) -> tuple[torch.Tensor, int, int]:
    """Groups of very different magnitude; w / scale stays 0.05 away from rounding ties."""
    bits, gs = _randint(g, 2, 8), 2 ** _randint(g, 1, 5)
    m, n = _randint(g, 1, 5), _randint(g, 1, 4)  # n groups per row, K = n * gs
    qmax = _qmax(bits)
    step = 10 ** (torch.rand(m, n, 1, generator=g) * 4 - 3)  # (M, n, 1) per-group step
    t = torch.randint(-qmax, qmax + 1, (m, n, gs), generator=g).float()
    t = t + torch.rand(m, n, gs, generator=g) * 0.9 - 0.45  # 0.05 away from every tie
    t = torch.where(t > qmax, 2 * qmax - t, t)  # reflect into [-qmax, qmax]: ties stay away
    t = torch.where(t < -qmax, -2 * qmax - t, t)
    top = torch.randint(0, gs, (m, n, 1), generator=g)  # each group reaches ±qmax exactly once
    sign = torch.randint(0, 2, (m, n, 1), generator=g) * 2 - 1
    t = t.scatter(2, top, (sign * qmax).to(t.dtype))
    return (t * step).reshape(m, n * gs).to(torch.float32), bits, gs


_ROWS = 2.0 ** torch.tensor([[-6.0, 0.0, -3.0, 2.0], [1.0, -4.0, -1.0, -7.0],
                             [-2.0, 3.0, -5.0, 0.0], [0.0, -8.0, 1.0, -3.0]])  # group steps (4, 4)
_T2 = torch.tensor([[7.0, 2.25], [-5.75, -7.0], [-7.0, 3.25], [1.75, 7.0],
                    [-7.0, 0.75], [6.25, -7.0], [7.0, -4.25], [-2.75, 7.0],
                    [-3.25, 7.0], [7.0, -6.25], [5.25, -7.0], [-7.0, 0.25],
                    [7.0, -1.25], [4.75, 7.0], [-7.0, 2.75], [-7.0, -6.75]])  # levels, |t| <= 7
_W2 = (_T2.reshape(4, 4, 2) * _ROWS[..., None]).reshape(4, 8)  # exact in float32
_Q2_AXIS = ("your groups run down the columns; a group is group_size consecutive weights of one "
            "row (along K): w.reshape(M, K // group_size, group_size), no transpose")
_Q2_ROUND = ("round w / scale to the nearest level with torch.round, not floor or .int() "
             "(those truncate and bias every weight)")
_Q2_LEVELS = ("you returned the integer levels q; fake quantization returns floats on the grid: "
              "multiply q back by its group's scale")
q2 = Question(
    "q2", "my_fake_quantize_grouped", reference=lambda w, b, gs: qkit.fake_quantize_grouped(w, b, gs),
    solution_fn=fake_quantize_grouped_solution, rtol=1e-5,
    hint_text="Look at w through a view in which every group (group_size consecutive weights of "
              "one row, along K) is its own slice; then it is q1's per-channel grid on those "
              "slices, and lesson 01's round trip to the grid and back. Pitfalls: an all-zero "
              "group must not divide 0 by 0, and the result has w's shape.",
    edge_cases=[(_W2, 4, 2),
                (_W2.reshape(2, 16), 4, 8),
                (torch.tensor([[0.5, -1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.2]]), 3, 2)],  # an all-zero group
    random_case=_q2_case,
    alternatives=[fake_quantize_grouped_solution],  # w / scale; the reference does w * (1 / scale)
    mistakes=[
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, layout="columns"), _Q2_AXIS),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, layout="strided"),
                "reduce over the last axis of the (M, K // group_size, group_size) view: "
                "amax(dim=-1, keepdim=True); your scales mix weights from different groups"),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, layout="swapped"),
                "reshape(-1, group_size), not reshape(group_size, -1): you made group_size "
                "groups of M * K // group_size weights each"),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, layout="count"),
                "group_size is the number of weights in a group, not the number of groups per "
                "row: view w as (M, K // group_size, group_size)"),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, layout="rows"),
                "that is one scale per row (per-channel): give every group of group_size weights "
                "its own scale, so small groups are not rounded to 0 by a big neighbour"),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, layout="tensor"),
                "that is one scale for the whole tensor: give every group of group_size "
                "weights its own scale"),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, rounding=torch.floor), _Q2_ROUND),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, rounding=torch.trunc), _Q2_ROUND),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, dequantize=False), _Q2_LEVELS),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, dequantize=False).to(torch.int8), _Q2_LEVELS),
        Mistake(lambda w, b, gs: _q2_variant(w, b, gs, floor_scale=False),
                "an all-zero group has scale 0 and 0 / 0 is NaN: keep the scale above 0, e.g. "
                "scale.clamp(min=torch.finfo(torch.float32).eps)"),
    ],
)


# ---- q3: a percentile clipping range for activations ----------------------------------

def percentile_range_solution(x: torch.Tensor, percentile: float) -> tuple[float, float]:
    """(x_min, x_max) clipped at t = the percentile-th percentile of |x|."""
    t = torch.quantile(x.abs().flatten(), percentile / 100).item()  # quantile wants a fraction
    return max(x.min().item(), -t), min(x.max().item(), t)          # one-sided data keeps 0


def _q3_range(x, t):
    t = float(t)
    return max(x.min().item(), -t), min(x.max().item(), t)


def _q3_at(x, percentile, **kw):
    """The range at the percentile of |x|, in float64 (float32 quantile ranks are off by ~n·1e-7)."""
    return _q3_range(x, torch.quantile(x.double().abs().flatten(), percentile / 100, **kw))


def _q3_case(g: torch.Generator) -> tuple[torch.Tensor, float]:
    n = _randint(g, 50, 400)
    x = torch.randn(n, generator=g) * _uniform(g, 0.1, 5.0) + _uniform(g, -0.5, 0.5)
    k = _randint(g, 1, 4)  # a few outliers, 5 to 30 times the spread
    x[:k] = x[:k] * torch.empty(k).uniform_(5, 30, generator=g)
    kind = _randint(g, 0, 2)
    if kind == 1:  # ReLU output
        x = x.clamp(min=0.0)
    elif kind == 2:  # a 2-d activation (N, C)
        x = x[: n - n % 4].reshape(-1, 4)
    percentile = [90.0, 95.0, 99.0, 99.5, 99.9, 99.99][_randint(g, 0, 5)]
    return x, percentile


_X3_RELU = torch.tensor([0.0, 0.1, 0.3, 0.2, 0.5, 0.4, 0.9, 0.7, 0.6, 0.8, 25.0])
_X3_BOTH = torch.cat([torch.linspace(-1.0, 1.3, 41), torch.tensor([-20.0, 35.0, 8.0])])
_X3_NEG = -torch.tensor([0.4, 1.2, 0.3, 2.5, 0.9, 1.7, 0.6, 40.0, 0.2])
_Q3_INTERPOLATE = ("interpolate linearly between the two nearest ranks, as torch.quantile and "
                   "np.percentile do by default; one sorted element is not the percentile")
q3 = Question(
    "q3", "my_percentile_range", reference=_q3_at, solution_fn=percentile_range_solution,
    parts=("x_min", "x_max"), rtol=1e-5, atol=1e-7,
    alternatives=[percentile_range_solution],  # torch.quantile in float32: its rank q·(n-1) is
    # rounded to float32, which moves t by up to ~n·1e-7 of the gap between two neighbours
    hint_text="One threshold t, a percentile of the magnitudes |x|, clips both tails: "
              "torch.quantile or numpy's percentile finds it (one takes a fraction, the other a "
              "percent). Then shrink the observed range to within ±t; never widen one-sided data. "
              "Return Python floats.",
    edge_cases=[(_X3_RELU, 93.0), (_X3_BOTH, 95.0), (_X3_NEG, 80.0)],
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda x, p: (-_q3_at(x, p)[1], _q3_at(x, p)[1]),
                "keep the observed range inside ±t: (max(x.min(), -t), min(x.max(), t)); (-t, t) "
                "wastes half the grid on one-sided data (ReLU outputs need x_min = 0)"),
        Mistake(lambda x, p: _q3_at(x, p / 100),
                "your threshold is far too small: you converted percent to a fraction twice "
                "(np.percentile takes 99.9, torch.quantile takes 0.999)"),
        Mistake(lambda x, p: (torch.quantile(x.double(), 1 - p / 100).item(),
                              torch.quantile(x.double(), p / 100).item()),
                "this lesson clips both tails at one threshold t, a percentile of |x|, not at a "
                "low and a high percentile of x"),
        *[Mistake(lambda x, p, how=how: _q3_at(x, p, interpolation=how), _Q3_INTERPOLATE)
          for how in ("lower", "higher", "nearest")],
        Mistake(lambda x, p: _q3_range(x, torch.quantile(x.double().flatten(), p / 100)),
                "take the percentile of |x|, not of x: one threshold t clips both tails"),
        Mistake(lambda x, p: (x.min().item(), _q3_at(x, p)[1]),
                "clip the bottom too: x_min = max(x.min(), -t); a negative outlier widens the "
                "grid as much as a positive one"),
    ],
)


# ---- q4: min-max calibration over a stream of batches -----------------------------------

def running_minmax_solution(batches: list[torch.Tensor]) -> tuple[float, float]:
    """Smallest and largest value over all batches, seen one batch at a time."""
    lo, hi = float("inf"), float("-inf")
    for x in batches:  # one pass, two numbers of memory
        lo, hi = min(lo, x.min().item()), max(hi, x.max().item())
    return lo, hi


def _ref_running_minmax(batches: list[torch.Tensor]) -> tuple[float, float]:
    obs = qkit.MinMaxObserver()
    for x in batches:
        obs.update(x)
    lo, hi = obs.range()
    return lo.item(), hi.item()


def _q4_case(g: torch.Generator) -> tuple[list[torch.Tensor]]:
    relu, shift, spread = _randint(g, 0, 1), _uniform(g, -1.0, 1.0), _uniform(g, 0.1, 4.0)
    batches = []
    for _ in range(_randint(g, 2, 4)):
        shape = (_randint(g, 2, 6),) if _randint(g, 0, 1) else (_randint(g, 1, 3), 4)
        x = torch.randn(shape, generator=g) * spread + shift
        batches.append(x.clamp(min=0.01) if relu else x)
    return (batches,)


def _q4_edge() -> list[tuple]:
    return [([torch.tensor([0.5, 1.0, 2.0]), torch.tensor([0.25, 3.0]), torch.tensor([0.6, 2.5])],),
            ([torch.tensor([[-1.0, 4.0], [0.5, 0.0]]), torch.tensor([[-6.0, 1.0]]),
              torch.tensor([[2.0, -0.5], [1.5, 0.25]])],),
            ([torch.tensor([-2.0, -0.5, -3.0])],)]


def _q4_each(batches, lo_of=min, hi_of=max):
    return (float(lo_of([x.min().item() for x in batches])),
            float(hi_of([x.max().item() for x in batches])))


q4 = Question(
    "q4", "my_running_minmax", reference=_ref_running_minmax, solution_fn=running_minmax_solution,
    parts=("x_min", "x_max"),
    hint_text="Keep two running numbers and update them with every batch. Think about what they "
              "start at, so that the first batch always replaces them. Return Python floats.",
    edge_cases=_Fresh(_q4_edge),  # fresh lists: code that pops batches cannot spoil them
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda bs: _q4_each(bs[-1:]),
                "that is the range of the last batch only: the running min and max must take "
                "every batch into account"),
        Mistake(lambda bs: _q4_each(bs[:1]),
                "that is the range of the first batch only: update the running min and max "
                "with every batch"),
        Mistake(lambda bs: _q4_each(bs, lambda v: sum(v) / len(v), lambda v: sum(v) / len(v)),
                "you averaged the batches' mins and maxes: min-max calibration keeps the "
                "smallest min and the largest max ever seen, so no value is clipped"),
        Mistake(lambda bs: _q4_each(bs, lambda v: min(v + [0.0]), lambda v: max(v + [0.0])),
                "don't start the running min and max at 0: start from the first batch (or at "
                "+inf / -inf), else all-positive data gets x_min = 0"),
        Mistake(lambda bs: (-math.inf, math.inf),
                "start with lo = +inf and hi = -inf (so the first batch replaces them); starting "
                "at -inf / +inf leaves nothing for min and max to improve"),
    ],
)


# ---- q5: the storage cost of per-group scales --------------------------------------------

def overhead_bits_solution(shape: tuple[int, int], group_size: int, scale_bits: int = 16) -> float:
    """Extra bits per weight for one scale_bits-wide scale per group of group_size weights."""
    m, k = shape
    n_scales = m * k // group_size          # one scale per group
    return n_scales * scale_bits / (m * k)  # = scale_bits / group_size, whatever the shape


def _q5_case(g: torch.Generator) -> tuple[tuple[int, int], int, int]:
    gs = 2 ** _randint(g, 2, 8)
    shape = (_randint(g, 1, 64) * 16, _randint(g, 1, 32) * 256)
    return shape, gs, [8, 16, 32][_randint(g, 0, 2)]


q5 = Question(
    "q5", "my_overhead_bits",
    reference=lambda shape, gs, sb: qkit.scale_overhead_bits(shape, "group", gs, scale_bits=sb),
    solution_fn=overhead_bits_solution,
    hint_text="Count the scales (one per group) and the bits they take, then share those bits "
              "out over all the weights. Does the shape change the answer?",
    edge_cases=[((4096, 4096), 128, 16), ((768, 3072), 64, 16), ((8, 12), 4, 32)],
    random_case=_q5_case,
    mistakes=[
        Mistake(lambda s, gs, sb: sb // gs,
                "`//` is integer division (16 // 128 is 0): divide with /"),
        Mistake(lambda s, gs, sb: math.prod(s) // gs * sb,
                "that is the total number of bits of all scales; divide it by the number of "
                "weights M * K to get bits per weight"),
        Mistake(lambda s, gs, sb: s[0] * sb / math.prod(s),
                "that counts one scale per row (per-channel); per-group has one scale per "
                "group_size weights, M * K // group_size of them"),
        Mistake(lambda s, gs, sb: gs * sb / math.prod(s),
                "group_size is the number of weights per group, not the number of groups: there "
                "are M * K // group_size scales"),
        Mistake(lambda s, gs, sb: sb / 8 / gs,
                "the answer is in bits: a scale_bits-wide scale costs scale_bits bits, no "
                "division by 8"),
    ],
)
