"""Lesson 08 exercises: pruning (the magnitude mask, the gradual schedule, sparse storage, global ranking).

In the notebook::

    from exercises.ex08_prune import q1, q2, q3, q4

    q1  my_magnitude_mask(w, sparsity) -> Tensor (bool, w's shape)   # True = the weight stays
    q2  my_schedule(t, s_f, n, dt) -> float                           # Zhu & Gupta's s_t (s_i = 0, t0 = 0)
    q3  my_sparse_bytes(n, nnz, element_bytes) -> int                 # bitmask + non-zero values
    q4  my_layer_pruned(weights, sparsity) -> list[int]               # weights pruned per layer, one ranking

References: :func:`qkit.prune.magnitude_masks`, :func:`qkit.prune.polynomial`,
:func:`qkit.prune.sparse.stored_bytes`. The first fixed case of each question is built so
that every known mistake fails there with an output of its own.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from exercises.core import Mistake, Question
from qkit.prune import magnitude_masks, polynomial
from qkit.prune.magnitude import keep_largest
from qkit.prune.sparse import stored_bytes

__all__ = ["q1", "q2", "q3", "q4"]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


def _sparsity_near(g: torch.Generator, n: int) -> float:
    """A sparsity whose s·n is at least 0.1 away from any x.5 (so rounding is never a coin toss)."""
    k = _randint(g, 0, n)
    u = 0.4 * (2 * torch.rand((), generator=g).item() - 1)  # in (-0.4, 0.4)
    return min(max((k + u) / n, 0.0), 1.0)


# ---- q1: the magnitude mask ----------------------------------------------------------------

def magnitude_mask_solution(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask of ``w``'s shape: False at the round(sparsity · n) smallest |w| (ties: earlier first)."""
    k = round(sparsity * w.numel())                          # how many weights go
    order = torch.sort(w.abs().flatten(), stable=True).indices  # smallest |w| first, ties in flat order
    keep = torch.ones(w.numel(), dtype=torch.bool)
    keep[order[:k]] = False                                  # the k smallest are pruned
    return keep.view(w.shape)


def _ref_mask(w, sparsity):
    layer = nn.Linear(w.numel(), 1, bias=False)   # the kit's pruning, on a layer holding w
    with torch.no_grad():
        layer.weight.copy_(w.reshape(1, -1))
    return magnitude_masks(layer, sparsity)[""].view(w.shape)


def _q1_mask(w, sparsity, *, signed=False, floor=False, invert=False, density=False, ties=False):
    n = w.numel()
    k = round((1 - sparsity) * n) if density else (int(sparsity * n) if floor else round(sparsity * n))
    score = w if signed else w.abs()
    if ties:
        if k == 0:
            return torch.ones_like(w, dtype=torch.bool)
        cut = torch.sort(score.flatten()).values[k - 1]
        return score > cut                                   # every weight equal to the cut goes too
    keep = keep_largest(score, k)
    return ~keep if invert else keep


def _q1_case(g: torch.Generator) -> tuple:
    shape = (_randint(g, 1, 12),) if _randint(g, 0, 1) else (_randint(g, 1, 6), _randint(g, 1, 9))
    w = torch.randn(shape, generator=g)
    return w, _sparsity_near(g, w.numel())


# 10 weights, k = round(3.7) = 4 (int() gives 3, the density 1 - s gives 6); two equal |w| = 0.5 at the cut
_Q1_EDGE = (torch.tensor([0.5, -3.0, 0.1, 0.5, -0.2, 2.0, -0.6, -1.0, 0.7, -0.05]), 0.37)

q1 = Question(
    "q1", "my_magnitude_mask", reference=_ref_mask, solution_fn=magnitude_mask_solution,
    hint_text="Decide how many weights go: the sparsity times the number of weights, rounded to the nearest "
              "integer. Rank the weights by magnitude, smallest first, with a stable sort so that equal "
              "magnitudes keep their flat order; the first ones in that ranking are set False, all others True.",
    edge_cases=[_Q1_EDGE],
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda *a: _q1_mask(*a, signed=True),
                "rank by magnitude |w|: a large negative weight matters as much as a large positive one"),
        Mistake(lambda *a: _q1_mask(*a, floor=True),
                "round sparsity · n to the nearest integer: int() truncates (3.7 weights to prune means 4)"),
        Mistake(lambda *a: _q1_mask(*a, invert=True),
                "your mask is inverted: True marks the weights that stay, False the pruned ones"),
        Mistake(lambda *a: _q1_mask(*a, density=True),
                "sparsity is the fraction set to 0; you pruned the fraction 1 − sparsity"),
        Mistake(lambda *a: _q1_mask(*a, ties=True),
                "exactly round(sparsity · n) weights go: a threshold on |w| also prunes every weight equal "
                "to it; rank them and cut the ranking instead"),
    ],
)


# ---- q2: Zhu & Gupta's gradual schedule ----------------------------------------------------

def schedule_solution(t: int, s_f: float, n: int, dt: int) -> float:
    """s_t = s_f · (1 − (1 − t/(n·dt))³), from 0 at t = 0 to s_f at t = n·dt and after."""
    progress = min(t / (n * dt), 1.0)                    # the share of the pruning phase done, at most 1
    return s_f * (1.0 - (1.0 - progress) ** 3)           # fast at first, slow near the end


def _q2_schedule(t, s_f, n, dt, *, clamp=True, power=3, left=False):
    frac = t / (n * dt)
    frac = min(frac, 1.0) if clamp else frac
    if power == 1:
        return s_f * frac
    return s_f * (1 - frac) ** power if left else s_f * (1 - (1 - frac) ** power)


def _q2_case(g: torch.Generator) -> tuple:
    n, dt = _randint(g, 1, 20), _randint(g, 1, 50)
    return _randint(g, 0, int(1.5 * n * dt)), round(_randint(g, 10, 99) / 100, 2), n, dt


q2 = Question(
    "q2", "my_schedule", reference=lambda t, s_f, n, dt: polynomial(t, s_f=s_f, n=n, dt=dt),
    solution_fn=schedule_solution,
    hint_text="The pruning phase lasts n·dt steps. Take the share of it done at step t (never more than all of "
              "it), subtract that from one, raise to the third power: that is the share of s_f still to "
              "prune. The sparsity is s_f minus what is still to prune.",
    edge_cases=[(5, 0.8, 1, 10), (60, 0.9, 4, 10)],   # halfway: 0.8 − 0.8·0.5³ = 0.7; after the end: 0.9
    random_case=_q2_case,
    mistakes=[
        Mistake(lambda *a: _q2_schedule(*a, power=2),
                "Zhu & Gupta's schedule uses the cube, (1 − t/(n·dt))³, not the square"),
        Mistake(lambda *a: _q2_schedule(*a, power=1),
                "the schedule is not linear: it prunes fast at first and slowly near the end (a cube)"),
        Mistake(lambda *a: _q2_schedule(*a, left=True),
                "s_f·(1 − t/(n·dt))³ is what is still to prune; the sparsity is s_f minus that"),
        Mistake(lambda *a: _q2_schedule(*a, clamp=False),
                "after n·dt steps the sparsity stays at s_f: cap the share of the phase done at 1"),
    ],
)


# ---- q3: bytes of a sparse weight ----------------------------------------------------------

def sparse_bytes_solution(n: int, nnz: int, element_bytes: int) -> int:
    """Bytes of a weight of n entries stored as a packed bitmask and its nnz non-zero values."""
    bitmask = math.ceil(n / 8)             # one bit per entry, 8 to a byte, the last byte partly used
    values = nnz * element_bytes           # only the kept values, each element_bytes long
    return bitmask + values


def _q3_bytes(n, nnz, e, *, bool_mask=False, floor=False, all_values=False, value_bytes=True):
    mask = n if bool_mask else (n // 8 if floor else -(-n // 8))
    return mask + (n if all_values else nnz) * (e if value_bytes else 1)


def _q3_case(g: torch.Generator) -> tuple:
    n = _randint(g, 1, 5000)
    return n, _randint(g, 0, n), (1, 2, 4)[_randint(g, 0, 2)]


q3 = Question(
    "q3", "my_sparse_bytes", reference=lambda n, nnz, e: stored_bytes(n, nnz, e), solution_fn=sparse_bytes_solution,
    hint_text="Two parts: the bitmask has one bit per entry, packed eight to a byte (a part-used last byte "
              "still costs a byte); the values are only the non-zero entries, each as many bytes as its dtype.",
    edge_cases=[(20, 3, 4)],   # 3 bytes of bitmask + 12 of values
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda *a: _q3_bytes(*a, bool_mask=True),
                "the bitmask is packed, one bit per entry: n entries take ceil(n/8) bytes, not n"),
        Mistake(lambda *a: _q3_bytes(*a, floor=True),
                "round the bitmask up to whole bytes: 20 bits need 3 bytes, not 2"),
        Mistake(lambda *a: _q3_bytes(*a, all_values=True),
                "only the nnz non-zero values are stored: the bitmask says where they go"),
        Mistake(lambda *a: _q3_bytes(*a, value_bytes=False),
                "each stored value takes element_bytes bytes (4 for float32), not 1"),
    ],
)


# ---- q4: global ranking, per-layer result --------------------------------------------------

def layer_pruned_solution(weights: list, sparsity: float) -> list[int]:
    """How many weights of each layer go when one magnitude ranking runs over all layers together."""
    flat = torch.cat([w.abs().flatten() for w in weights])   # every |w| of every layer, layer order
    k = round(sparsity * flat.numel())                        # how many go, counted over all layers
    order = torch.sort(flat, stable=True).indices
    pruned = torch.zeros(flat.numel(), dtype=torch.bool)
    pruned[order[:k]] = True
    out, start = [], 0
    for w in weights:                                          # split the verdicts back per layer
        out.append(int(pruned[start:start + w.numel()].sum()))
        start += w.numel()
    return out


def _ref_layer_pruned(weights, sparsity):
    model = nn.Sequential(*[nn.Linear(w.numel(), 1, bias=False) for w in weights])
    with torch.no_grad():
        for layer, w in zip(model, weights):
            layer.weight.copy_(w.reshape(1, -1))
    kept = magnitude_masks(model, sparsity)                   # the kit's global ranking
    return [int((~kept[str(i)]).sum()) for i in range(len(weights))]


def _q4_pruned(weights, sparsity, *, per_layer=False, signed=False, kept=False, floor=False):
    if per_layer:
        return [round(sparsity * w.numel()) for w in weights]
    flat = torch.cat([(w if signed else w.abs()).flatten() for w in weights])
    keep = keep_largest(flat, int(sparsity * flat.numel()) if floor else round(sparsity * flat.numel()))
    out, start = [], 0
    for w in weights:
        part = keep[start:start + w.numel()]
        start += w.numel()
        out.append(int(part.sum()) if kept else int((~part).sum()))
    return out


def _q4_case(g: torch.Generator) -> tuple:
    weights = [torch.randn(_randint(g, 2, 40), generator=g) * 10 ** (torch.rand((), generator=g).item() - 0.5)
               for _ in range(_randint(g, 2, 4))]
    return weights, _sparsity_near(g, sum(w.numel() for w in weights))


# k = round(0.55 · 12) = 7: the small layer loses all 4, the other its 3 smallest (0.8, 0.9, -1.2): [4, 3]
_Q4_EDGE = ([torch.tensor([0.1, -0.05, 0.2, 0.01]), torch.tensor([-3.0, -2.0, -1.5, -1.2, 2.5, 4.0, 0.9, 0.8])], 0.55)

q4 = Question(
    "q4", "my_layer_pruned", reference=_ref_layer_pruned, solution_fn=layer_pruned_solution,
    hint_text="Put the magnitudes of every layer into one ranking, prune the smallest sparsity · N of all N "
              "weights (rounded to the nearest integer), then count, for each layer, how many of its own "
              "weights were pruned. A layer of small weights can lose all of them while another loses few.",
    edge_cases=[_Q4_EDGE],
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda *a: _q4_pruned(*a, per_layer=True),
                "that is every layer pruned alone at the same sparsity: rank all layers' weights together"),
        Mistake(lambda *a: _q4_pruned(*a, signed=True),
                "rank by magnitude |w|: a large negative weight matters as much as a large positive one"),
        Mistake(lambda *a: _q4_pruned(*a, kept=True),
                "you counted the weights kept: count the weights pruned (set to 0)"),
        Mistake(lambda *a: _q4_pruned(*a, floor=True),
                "round sparsity · N to the nearest integer: int() truncates (6.6 weights to prune means 7)"),
    ],
)
