"""Lesson 11 exercises: the final file's bytes, when sparse storage pays, two runtimes' agreement.

In the notebook::

    from exercises.ex11_together import q1, q2, q3

    q1  my_sparse_packed_bytes(n, nnz, bits) -> int       # bitmask + packed non-zeros
    q2  my_break_even_density(bits) -> float              # below it, the sparse form is smaller
    q3  my_agreement(logits_a, logits_b) -> float         # fraction of images with the same class

References: :func:`qkit.compose.stored_bytes`, the break-even density of
:mod:`qkit.compose.storage` (measured on real layers in the tests), :func:`qkit.compose.agreement`.
The first fixed case of each question is built so that every known mistake fails there with an
output of its own.
"""

from __future__ import annotations

import math

import torch

from exercises.core import Mistake, Question
from qkit.compose.storage import stored_bytes

__all__ = ["q1", "q2", "q3"]


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


# ---- q1: bytes of a pruned, packed layer ---------------------------------------------------

def sparse_packed_bytes_solution(n: int, nnz: int, bits: int) -> int:
    """Bytes of ``n`` weights stored as a bitmask (1 bit each) plus the ``nnz`` non-zeros at ``bits`` bits."""
    bitmask = math.ceil(n / 8)                # one bit per weight: kept or not
    values = math.ceil(nnz * bits / 8)        # only the kept weights, packed
    return bitmask + values


def _q1_bytes(n, nnz, bits, *, mask=True, mask_bytes=False, ceil=True, all_values=False, int8=False):
    width = 8 if int8 else bits
    count = n if all_values else nnz
    up = (lambda b: -(-b // 8)) if ceil else (lambda b: b // 8)
    return (n if mask_bytes else up(n) if mask else 0) + up(count * width)


def _q1_case(g: torch.Generator) -> tuple:
    n = _randint(g, 1, 5000)
    return n, _randint(g, 0, n), _randint(g, 2, 8)


q1 = Question(
    "q1", "my_sparse_packed_bytes", reference=stored_bytes, solution_fn=sparse_packed_bytes_solution,
    hint_text="Two streams are saved: one bit for every weight (kept or pruned), and the kept weights "
              "alone at their bit width. Turn each stream's bits into whole bytes on its own (a part-used "
              "last byte still costs a byte), then add.",
    edge_cases=[(27, 9, 3), (100, 25, 4), (64, 64, 8)],  # 27 bits -> 4 bytes; 9·3 = 27 bits -> 4 bytes
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda *a: _q1_bytes(*a, mask=False),
                "you forgot the bitmask: without it nobody knows where the kept values go (n bits)"),
        Mistake(lambda *a: _q1_bytes(*a, mask_bytes=True),
                "the bitmask takes one bit per weight, not one byte: n/8 bytes, rounded up"),
        Mistake(lambda *a: _q1_bytes(*a, ceil=False),
                "round each stream up to whole bytes: 27 bits need 4 bytes, not 3"),
        Mistake(lambda *a: _q1_bytes(*a, all_values=True),
                "only the nnz kept weights are stored; the bitmask already says where the zeros are"),
        Mistake(lambda *a: _q1_bytes(*a, int8=True),
                "the kept values are packed at `bits` bits each, not stored as whole int8 bytes"),
    ],
)


# ---- q2: where the sparse form starts to pay -------------------------------------------------

def break_even_density_solution(bits: int) -> float:
    """The density nnz/n at which bitmask + packed non-zeros take as many bytes as the dense packing."""
    # n/8 + d·n·bits/8 = n·bits/8   ->   d = (bits - 1) / bits
    return 1 - 1 / bits


def _break_even(bits: int) -> float:
    """The density where :func:`qkit.compose.stored_bytes` meets the dense packing, found on a large layer."""
    n = 8 * 10**6 * bits  # large and a multiple of 8·bits: no rounding of either side
    dense = math.ceil(n * bits / 8)
    nnz = (dense - stored_bytes(n, 0, bits)) * 8 // bits  # the values' budget once the bitmask is paid
    return nnz / n


q2 = Question(
    "q2", "my_break_even_density", reference=_break_even, solution_fn=break_even_density_solution,
    hint_text="Write both sizes for n weights at density d (the kept fraction): the dense packing needs "
              "bits/8 bytes a weight; the sparse form one bit a weight plus d·bits bits. Set them equal "
              "and solve for d.",
    edge_cases=[(4,), (2,), (8,)],
    random_case=lambda g: (_randint(g, 2, 8),),
    rtol=1e-9,
    mistakes=[
        Mistake(lambda b: 1 / b,
                "that is where the bitmask alone equals the values; the break-even is where bitmask plus "
                "values equal the dense packing: 1 bit of mask against bits − d·bits bits saved"),
        Mistake(lambda b: 1 - 1 / (8 * b),
                "mixed units: the bitmask costs 1 bit a weight and a value `bits` bits, not bytes "
                "(1/(8·e) is the rule for values of e bytes, as float32 in qkit.prune.to_sparse)"),
        Mistake(lambda b: 7 / b,
                "compare with the densely packed layer at `bits` bits, not with int8: packing already "
                "saved that much"),
    ],
)


# ---- q3: do two runtimes agree? --------------------------------------------------------------

def agreement_solution(logits_a: torch.Tensor, logits_b: torch.Tensor) -> float:
    """Fraction of rows (images) on which both logits pick the same class."""
    same = logits_a.argmax(dim=1) == logits_b.argmax(dim=1)  # (N,) bool: the predicted classes
    return same.float().mean().item()


def _ref_agreement(logits_a, logits_b):
    from torch import nn

    from qkit.compose import agreement

    class Stored(nn.Module):  # hands back the given logits, whatever it is fed
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, x):
            return self.logits[x.long().flatten()]

    index = torch.arange(len(logits_a)).float().unsqueeze(1)  # (N, 1): row i -> logits[i]
    return agreement(Stored(logits_a), Stored(logits_b), index)


def _near_copy(g: torch.Generator, n: int, k: int, flips: int) -> tuple:
    a = torch.randn(n, k, generator=g)
    b = a + 1e-3 * torch.randn(n, k, generator=g)  # another runtime: nearly the same numbers
    rows = torch.randperm(n, generator=g)[:flips]
    b[rows] = torch.randn(len(rows), k, generator=g)  # some images answered differently
    return a, b


def _q3_edge() -> tuple:
    g = torch.Generator().manual_seed(11)
    return _near_copy(g, 10, 10, 3)


q3 = Question(
    "q3", "my_agreement", reference=_ref_agreement, solution_fn=agreement_solution,
    hint_text="Each row is one image and each column one class. Find each image's predicted class in "
              "both, compare the two class lists, and return the share of images where they match, as a "
              "Python float between 0 and 1.",
    edge_cases=[_q3_edge()],
    random_case=lambda g: _near_copy(g, _randint(g, 5, 60), 10, _randint(g, 0, 4)),
    mistakes=[
        Mistake(lambda a, b: (a.argmax(0) == b.argmax(0)).float().mean().item(),
                "take the class of each image: argmax along dim=1 (the classes), not dim=0 (the images)"),
        Mistake(lambda a, b: int((a.argmax(1) == b.argmax(1)).sum()),
                "return the fraction of images that agree, not their count"),
        Mistake(lambda a, b: (a == b).all(dim=1).float().mean().item(),
                "compare the predicted classes, not the logits: two runtimes round differently, so the "
                "numbers differ a little even when the answer is the same"),
        Mistake(lambda a, b: 100 * (a.argmax(1) == b.argmax(1)).float().mean().item(),
                "return a fraction between 0 and 1, not a percentage"),
    ],
)
