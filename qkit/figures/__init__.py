"""Static figures of the lessons (each returns a matplotlib ``Figure``; no widgets).

The notebooks compute the numbers with qkit's core and hand them here, so a
figure never hides a computation.
"""

from qkit.figures.kernels import level_differences, throughput
from qkit.figures.learned import evolution, learned_vs_observed, lsq_gradient, pact_gradient
from qkit.figures.maps import clip_tradeoff, grids, sqnr_lines, value_hist
from qkit.figures.partial import float_layers_curve, sensitivity_bars
from qkit.figures.tensors import channel_ranges, observer_ranges

__all__ = ["channel_ranges", "clip_tradeoff", "evolution", "float_layers_curve", "grids", "learned_vs_observed",
           "level_differences", "lsq_gradient", "observer_ranges", "pact_gradient", "sensitivity_bars", "sqnr_lines",
           "throughput", "value_hist"]
