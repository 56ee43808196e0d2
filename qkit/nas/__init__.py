"""Neural architecture search (lesson 10): search a space of tiny CNNs under a size or latency budget.

Zoph & Le (2017) and Real et al. (2019) let a search, not a person, pick the network. The
pieces, one module each:

* :mod:`qkit.nas.space` — :class:`Arch` (block type, depth, width, kernel), :class:`Space` and the
  lesson's :data:`SPACE` (120 architectures), sampling and one-choice mutations;
* :mod:`qkit.nas.build` — :func:`build` (an ``nn.Module`` of an architecture), :func:`count_params`;
* :mod:`qkit.nas.estimate` — the cheap accuracy proxy :func:`quick_accuracy` (3 epochs, scored on a
  held-out slice of the training split), :func:`full_accuracy`, :func:`spearman` (how faithful the
  proxy's ranking is), :func:`measure_latency` and :class:`LatencyTable` (measured once, cached);
* :mod:`qkit.nas.search` — :func:`search` (random or regularized evolution under one trial budget
  and the constraints), :class:`Trial`, :func:`best_so_far`;
* :mod:`qkit.nas.pareto` — :func:`pareto`: the trials no other beats on cost and accuracy;
* :mod:`qkit.nas.compare` — :func:`race` (both strategies over many seeds, best-so-far curves),
  :func:`summarize`, and :class:`StoredTable` (estimates and latencies looked up from the stored grid).

>>> from qkit.nas import SPACE, Arch, count_params
>>> SPACE.size, count_params(Arch("separable", 2, 16, 3))   # stem 176, 2 · (176 + 288), fc 170
(120, 1274)
"""

from qkit.nas.build import SearchedCNN, build
from qkit.nas.compare import StoredTable, race, summarize
from qkit.nas.estimate import (ESTIMATE, FULL, LatencyTable, fastest_ms, full_accuracy, measure_latency,
                               quick_accuracy, ranks, spearman, split, train_arch)
from qkit.nas.pareto import pareto
from qkit.nas.search import STRATEGIES, Trial, best_so_far, count_params, search
from qkit.nas.space import BLOCKS, SPACE, Arch, Space

__all__ = ["BLOCKS", "ESTIMATE", "FULL", "SPACE", "STRATEGIES", "Arch", "LatencyTable", "SearchedCNN", "Space",
           "StoredTable", "Trial", "best_so_far", "build", "count_params", "fastest_ms", "full_accuracy",
           "measure_latency", "pareto", "quick_accuracy", "race", "ranks", "search", "spearman", "split",
           "summarize", "train_arch"]
