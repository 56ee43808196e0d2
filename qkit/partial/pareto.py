"""Partial quantization, part 5: the Pareto front of (size, accuracy) points.

A point ``(s, a)`` is **dominated** when another point is no larger and no less
accurate, and strictly better in one of the two (``s' <= s`` and ``a' >= a``, one
of them strict). The front is what is left: going along it from small to large,
accuracy only rises. Sorting by size and keeping each point more accurate than
every smaller one finds it in ``O(n log n)``.
"""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(sizes: Sequence[float], accuracies: Sequence[float]) -> list[int]:
    """Indices of the points no other point dominates, by increasing size (equal points: the first one).

    Example:
        >>> pareto_front([10, 20, 15, 30, 20], [0.5, 0.9, 0.4, 0.9, 0.95])   # (15, 0.4) and (30, 0.9) lose
        [0, 4]
        >>> pareto_front([1, 1], [0.7, 0.7])
        [0]
    """
    if len(sizes) != len(accuracies):
        raise ValueError(f"sizes and accuracies must be as long; got {len(sizes)} and {len(accuracies)}")
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], -accuracies[i], i))
    front: list[int] = []
    for i in order:
        if not front or accuracies[i] > accuracies[front[-1]]:
            front.append(i)
    return front
