"""Static figures of the lessons (each returns a matplotlib ``Figure``; no widgets).

The notebooks compute the numbers with qkit's core and hand them here, so a
figure never hides a computation.
"""

from qkit.figures.capstone import compression_vs_accuracy
from qkit.figures.channels import structured_figure, structured_table
from qkit.figures.distill import seeds_and_sizes, t_squared
from qkit.figures.kernels import level_differences, throughput
from qkit.figures.learned import evolution, learned_vs_observed, lsq_gradient, pact_gradient
from qkit.figures.maps import clip_tradeoff, grids, sqnr_lines, value_hist
from qkit.figures.nas import pareto_with_zoo, proxy_fidelity
from qkit.figures.partial import float_layers_curve, sensitivity_bars
from qkit.figures.prune import magnitude_histogram, schedule_plot, sensitivity_lines
from qkit.figures.tensors import channel_ranges, observer_ranges

__all__ = ["channel_ranges", "clip_tradeoff", "compression_vs_accuracy", "evolution", "float_layers_curve", "grids",
           "learned_vs_observed", "level_differences", "lsq_gradient", "magnitude_histogram", "observer_ranges",
           "pact_gradient", "pareto_with_zoo", "proxy_fidelity", "schedule_plot", "seeds_and_sizes", "sensitivity_bars", "sensitivity_lines", "sqnr_lines",
           "structured_figure", "structured_table", "t_squared", "throughput", "value_hist"]
