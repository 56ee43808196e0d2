"""Lesson 07 exercises: partial quantization and mixed precision (sizes, the greedy step, Pareto, budgets).

In the notebook::

    from exercises.ex07_partial import q1, q2, q3, q4

    q1  my_layer_bytes(numel, out_channels, bits) -> int            # packed weights + float32 scales
    q2  my_greedy_step(sizes, drops, current) -> str                # the layer to lower next
    q3  my_pareto(sizes, accuracies) -> list[int]                   # indices of the front, by size
    q4  my_fits(bits, shapes, budget_bytes) -> tuple[int, bool]     # (total bytes, does it fit?)

References: :func:`qkit.partial.sizes.layer_bytes`, one step of :func:`qkit.partial.greedy`,
:func:`qkit.partial.pareto_front`. The first fixed case of each question is built so that
every known mistake fails there with an output of its own.
"""

from __future__ import annotations

import math

import torch

from exercises.core import Mistake, Question
from qkit.partial.pareto import pareto_front
from qkit.partial.sizes import layer_bytes

__all__ = ["q1", "q2", "q3", "q4"]

CHOICES = (2, 3, 4, 8, 32)


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


# ---- q1: bytes of one layer's weights at b bits -------------------------------------------

def layer_bytes_solution(numel: int, out_channels: int, bits: int) -> int:
    """Packed bytes of a weight tensor at ``bits`` (32 = float32), one float32 scale per output channel."""
    if bits == 32:
        return 4 * numel                      # float32: 4 bytes a weight, no scales
    packed = math.ceil(numel * bits / 8)      # bits -> bytes, the last byte partly used
    return packed + 4 * out_channels          # one float32 scale per output channel


def _ref_layer_bytes(numel, out_channels, bits):
    return layer_bytes(torch.empty(out_channels, numel // out_channels), bits)


def _q1_bytes(numel, out, bits, *, scales=True, ceil=True, per_byte=8, scale_bytes=4, float_scales=False):
    if bits == 32:
        return 4 * numel + (scale_bytes * out if float_scales else 0)
    packed = -(-numel * bits // per_byte) if ceil else numel * bits // per_byte
    return packed + (scale_bytes * out if scales else 0)


def _q1_case(g: torch.Generator) -> tuple:
    out = _randint(g, 1, 256)
    return out * _randint(g, 1, 300), out, CHOICES[_randint(g, 0, len(CHOICES) - 1)]


q1 = Question(
    "q1", "my_layer_bytes", reference=_ref_layer_bytes, solution_fn=layer_bytes_solution,
    hint_text="Count bits first, then turn them into whole bytes (a part-used last byte still costs a byte). "
              "A quantized layer also stores one float32 scale per output channel; a float layer stores "
              "its float32 weights and nothing else.",
    edge_cases=[(27, 3, 3), (27, 3, 32), (100, 10, 4)],  # 81 bits: 10.125 bytes -> 11
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda *a: _q1_bytes(*a, scales=False),
                "you forgot the scales: each output channel stores one float32 scale (4 bytes) too"),
        Mistake(lambda *a: _q1_bytes(*a, ceil=False),
                "round the packed bits up to whole bytes: 81 bits need 11 bytes, not 10"),
        Mistake(lambda *a: _q1_bytes(*a, per_byte=1),
                "mind bits vs bytes: numel·bits is a number of bits; divide by 8 for bytes"),
        Mistake(lambda *a: _q1_bytes(*a, scale_bytes=1),
                "a float32 scale takes 4 bytes, not 1"),
        Mistake(lambda *a: _q1_bytes(*a, float_scales=True),
                "a layer kept in float (bits = 32) stores its float32 weights only: no scales"),
    ],
)


# ---- q2: the greedy step -----------------------------------------------------------------

def greedy_step_solution(sizes: dict, drops: dict, current: dict) -> str:
    """The layer whose move to its next lower width costs the least extra drop per byte saved."""
    best, best_cost = None, None
    for layer, b in current.items():
        lower = [c for c in sorted(sizes[layer]) if c < b]
        if not lower:
            continue                                        # already at its smallest width
        c = lower[-1]                                       # the next lower width
        saved = sizes[layer][b] - sizes[layer][c]           # bytes this move saves
        cost = (drops[layer][c] - drops[layer][b]) / saved  # extra points lost per byte saved
        if best_cost is None or cost < best_cost:
            best, best_cost = layer, cost
    return best


def _q2_step(sizes, drops, current, *, per_byte=True, increment=True, lowest=False, pick=min, saving=False):
    scored = {}
    for layer, b in current.items():
        lower = [c for c in sorted(sizes[layer]) if c < b]
        if not lower:
            continue
        c = lower[0] if lowest else lower[-1]
        saved = sizes[layer][b] - sizes[layer][c]
        extra = drops[layer][c] - (drops[layer][b] if increment else 0.0)
        scored[layer] = -saved if saving else (extra / saved if per_byte else extra)
    return pick(scored, key=scored.get)


def _q2_problem(numels: list[int], outs: list[int], drop_rows: list[dict], bits: list[int]) -> tuple:
    names = [f"layer{i}" for i in range(len(numels))]
    sizes = {n: {b: layer_bytes(torch.empty(o, k // o), b) for b in CHOICES} for n, k, o in zip(names, numels, outs)}
    drops = {n: dict(row) for n, row in zip(names, drop_rows)}
    return sizes, drops, dict(zip(names, bits))


def _q2_case(g: torch.Generator) -> tuple:
    count = _randint(g, 3, 6)
    outs = [_randint(g, 4, 64) for _ in range(count)]
    numels = [o * _randint(g, 9, 200) for o in outs]
    rows = []
    for _ in range(count):  # drops grow as the width falls; float costs nothing
        steps = (torch.rand(4, generator=g) * torch.tensor([30.0, 8.0, 2.0, 0.3])).tolist()  # 2<-3<-4<-8<-32
        rows.append({32: 0.0, 8: steps[3], 4: steps[3] + steps[2], 3: sum(steps[1:]), 2: sum(steps)})
    bits = [CHOICES[_randint(g, 1, 4)] for _ in range(count)]  # every layer can still go lower
    return _q2_problem(numels, outs, rows, bits)


# two fixed problems (found by a seeded search) on which each known mistake picks a layer of its own
_Q2_EDGES = [
    _q2_problem([8366, 1820, 9460, 2162, 576, 1036], [47, 14, 55, 46, 9, 7],
                [{32: 0.0, 8: 0.06, 4: 0.08, 3: 5.59, 2: 31.34}, {32: 0.0, 8: 0.07, 4: 0.3, 3: 5.15, 2: 27.65},
                 {32: 0.0, 8: 0.12, 4: 0.69, 3: 7.4, 2: 36.52}, {32: 0.0, 8: 0.04, 4: 0.3, 3: 4.24, 2: 4.96},
                 {32: 0.0, 8: 0.25, 4: 0.85, 3: 5.46, 2: 19.64}, {32: 0.0, 8: 0.03, 4: 1.73, 3: 9.37, 2: 15.25}],
                [32, 3, 32, 8, 32, 32]),
    _q2_problem([60, 1134, 3477, 688, 8478, 3870], [5, 42, 19, 4, 54, 43],
                [{32: 0.0, 8: 0.02, 4: 1.39, 3: 9.01, 2: 17.9}, {32: 0.0, 8: 0.28, 4: 0.84, 3: 4.39, 2: 28.89},
                 {32: 0.0, 8: 0.27, 4: 1.07, 3: 5.51, 2: 8.4}, {32: 0.0, 8: 0.12, 4: 1.48, 3: 7.41, 2: 26.61},
                 {32: 0.0, 8: 0.28, 4: 1.83, 3: 2.54, 2: 14.4}, {32: 0.0, 8: 0.05, 4: 1.1, 3: 2.29, 2: 27.56}],
                [3, 3, 4, 8, 3, 4]),
]

q2 = Question(
    "q2", "my_greedy_step", reference=greedy_step_solution, solution_fn=greedy_step_solution,
    hint_text="For every layer that can still go lower, consider only its next lower width: how many bytes "
              "would that move save, and how many more points would that layer then lose than it loses "
              "now? Rank the moves by points per byte and return the cheapest layer's name.",
    edge_cases=_Q2_EDGES,
    random_case=_q2_case,
    mistakes=[
        Mistake(lambda *a: _q2_step(*a, per_byte=False),
                "you ranked the moves by their drop alone: divide by the bytes each move saves (points per byte)"),
        Mistake(lambda *a: _q2_step(*a, increment=False),
                "a move costs the extra drop, d(new width) − d(current width), not the new width's whole drop"),
        Mistake(lambda *a: _q2_step(*a, lowest=True),
                "one step at a time: move each layer to its next lower width, not straight to the lowest"),
        Mistake(lambda *a: _q2_step(*a, pick=max),
                "you took the most expensive move: greedy takes the least drop per byte saved"),
        Mistake(lambda *a: _q2_step(*a, saving=True),
                "the biggest saving is not the best move on its own: rank by drop per byte saved"),
    ],
)


# ---- q3: the Pareto front ----------------------------------------------------------------

def pareto_solution(sizes: list, accuracies: list) -> list[int]:
    """Indices of the points no other point beats (no larger and no less accurate), by increasing size."""
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], -accuracies[i], i))
    front = []
    for i in order:                                       # small to large, most accurate first at a size
        if not front or accuracies[i] > accuracies[front[-1]]:
            front.append(i)                               # more accurate than every smaller point
    return front


def _q3_front(sizes, accs, *, strict=True, by_acc_first=False, minimise=False, index_order=False):
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], accs[i] if minimise else -accs[i], i))
    front = []
    for i in order:
        a = -accs[i] if minimise else accs[i]
        last = None if not front else (-accs[front[-1]] if minimise else accs[front[-1]])
        if last is None or (a > last if strict else a >= last):
            front.append(i)
    if by_acc_first:
        front = sorted(front, key=lambda i: -accs[i])
    return sorted(front) if index_order else front


def _q3_case(g: torch.Generator) -> tuple:
    n = _randint(g, 5, 14)
    sizes = [1000 * _randint(g, 10, 40) for _ in range(n)]  # sizes repeat now and then
    accs = [round(_randint(g, 500, 990) / 1000, 3) for _ in range(n)]
    return sizes, accs


# equal points (index 1 and 4), a tie in accuracy at a larger size (index 5), a point worse at a
# smaller size: each mistake keeps or orders a different set
_Q3_EDGE = ([30_000, 12_000, 20_000, 15_000, 12_000, 25_000, 9_000], [0.97, 0.80, 0.95, 0.70, 0.80, 0.95, 0.40])

q3 = Question(
    "q3", "my_pareto", reference=lambda s, a: pareto_front(s, a), solution_fn=pareto_solution,
    hint_text="Walk the points from small to large (at equal size, the more accurate first). A point "
              "belongs to the front only if it is strictly more accurate than every point met so far; "
              "return the indices in that walking order.",
    edge_cases=[_Q3_EDGE],
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda *a: _q3_front(*a, strict=False),
                "a point only as accurate as a smaller one is dominated: keep strictly more accurate points"),
        Mistake(lambda *a: _q3_front(*a, by_acc_first=True),
                "list the front by increasing size (the right order is the walk from small to large)"),
        Mistake(lambda *a: _q3_front(*a, minimise=True),
                "you kept the least accurate points: the front keeps points that no smaller one beats"),
        Mistake(lambda *a: _q3_front(*a, index_order=True),
                "list the front by increasing size, not by index"),
    ],
)


# ---- q4: does an allocation fit the budget? ----------------------------------------------

def fits_solution(bits: dict, shapes: dict, budget_bytes: int) -> tuple[int, bool]:
    """(bytes of the weights, each layer at its width (32 = float32); whether they fit ``budget_bytes``)."""
    total = 0
    for layer, (numel, out_channels) in shapes.items():
        b = bits.get(layer, 32)                          # a layer left out stays float
        if b == 32:
            total += 4 * numel
        else:
            total += math.ceil(numel * b / 8) + 4 * out_channels
    return total, total <= budget_bytes


def _q4_fits(bits, shapes, budget, *, strict=False, missing=32, scales=True):
    total = 0
    for layer, (numel, out) in shapes.items():
        b = bits.get(layer, missing)
        total += 4 * numel if b == 32 else -(-numel * b // 8) + (4 * out if scales else 0)
    return total, (total < budget if strict else total <= budget)


def _q4_case(g: torch.Generator) -> tuple:
    count = _randint(g, 2, 6)
    shapes = {}
    for i in range(count):
        out = _randint(g, 4, 64)
        shapes[f"layer{i}"] = (out * _randint(g, 9, 300), out)
    bits = {n: CHOICES[_randint(g, 0, len(CHOICES) - 1)] for n in shapes if _randint(g, 0, 5)}
    total = sum(layer_bytes(torch.empty(o, k // o), bits.get(n, 32)) for n, (k, o) in shapes.items())
    return bits, shapes, total + _randint(g, -200, 200)


_Q4_SHAPES = {"stem": (144, 16), "fc": (1280, 10)}
q4 = Question(
    "q4", "my_fits", reference=fits_solution, solution_fn=fits_solution, parts=("total_bytes", "fits"),
    hint_text="Add up every layer's bytes at its width, as in q1; a layer the allocation does not name is "
              "kept in float. Return that total and whether it fits: a total exactly equal to the budget "
              "still fits.",
    edge_cases=[({"stem": 4, "fc": 4}, _Q4_SHAPES, 72 + 64 + 640 + 40),        # exactly at the budget
                ({"stem": 8}, _Q4_SHAPES, 144 + 64 + 1280 + 40),               # fc left out: float, too big
                ({"stem": 2, "fc": 2}, _Q4_SHAPES, 36 + 320 + 50)],            # fits only without scales
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda *a: _q4_fits(*a, strict=True), "a total equal to the budget fits: use <=, not <"),
        Mistake(lambda *a: _q4_fits(*a, missing=8),
                "a layer the allocation leaves out stays float (32 bits), not 8 bits"),
        Mistake(lambda *a: _q4_fits(*a, scales=False),
                "you forgot the scales: each quantized layer stores one float32 scale per output channel"),
    ],
)
