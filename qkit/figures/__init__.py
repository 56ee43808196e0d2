"""Static figures of the lessons (each returns a matplotlib ``Figure``; no widgets).

The notebooks compute the numbers with qkit's core and hand them here, so a
figure never hides a computation.
"""

from qkit.figures.maps import clip_tradeoff, grids, sqnr_lines, value_hist

__all__ = ["clip_tradeoff", "grids", "sqnr_lines", "value_hist"]
