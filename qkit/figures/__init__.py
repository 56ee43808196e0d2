"""Static figures of the lessons (each returns a matplotlib ``Figure``; no widgets).

The notebooks compute the numbers with qkit's core and hand them here, so a
figure never hides a computation.
"""

from qkit.figures.kernels import level_differences, throughput
from qkit.figures.maps import clip_tradeoff, grids, sqnr_lines, value_hist
from qkit.figures.tensors import channel_ranges, observer_ranges

__all__ = ["channel_ranges", "clip_tradeoff", "grids", "level_differences", "observer_ranges", "sqnr_lines",
           "throughput", "value_hist"]
