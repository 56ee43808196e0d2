"""Neural architecture search, part 5: the Pareto front of a search's trials.

A trial is **dominated** when another is no more costly (parameters, or measured latency) and
no less accurate, and strictly better in one of the two. The front keeps the rest: the
architectures worth considering, one for each trade-off. Repeated architectures count once
(their first trial). The points are handed to :func:`qkit.partial.pareto_front` (lesson 07).

>>> from qkit.nas.space import Arch
>>> from qkit.nas.search import Trial
>>> ts = [Trial(0, Arch("plain", 1, 8, 3), 770, 0.2, 0.90), Trial(1, Arch("plain", 2, 8, 3), 1362, 0.3, 0.85),
...       Trial(2, Arch("plain", 1, 16, 3), 2154, 0.3, 0.95)]
>>> [t.index for t in pareto(ts)]                      # trial 1 is larger and less accurate than trial 0
[0, 2]
>>> [t.index for t in pareto(ts, cost="latency_ms")]  # at 0.3 ms, trial 2 beats trial 1
[0, 2]
"""

from __future__ import annotations

from qkit.nas.search import Trial
from qkit.partial.pareto import pareto_front

COSTS = ("params", "latency_ms")


def pareto(trials: list[Trial], *, cost: str = "params") -> list[Trial]:
    """The trials no other trial dominates in (``cost`` low, ``estimate`` high), by increasing cost."""
    if cost not in COSTS:
        raise ValueError(f"cost must be one of {COSTS}; got {cost!r}")
    first: dict = {}
    for t in trials:
        if not isinstance(t, Trial):
            raise TypeError(f"trials must be qkit.nas.Trial objects; got {type(t).__name__}")
        first.setdefault(t.arch, t)
    unique = list(first.values())
    keep = pareto_front([getattr(t, cost) for t in unique], [t.estimate for t in unique])
    return [unique[i] for i in keep]
