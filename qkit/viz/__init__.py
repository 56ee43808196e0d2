"""Plots for the lessons: matplotlib only, no widgets (those live in ``qkit.widgets``).

Interactive panels redraw many times a second, so each panel plot is a class
that builds its artists once and then only moves them (``update``) and renders
a PNG (``render``). Figures are made with ``matplotlib.figure.Figure`` (not
pyplot), so they never pop up on their own and never leak between cells.
"""

from qkit.viz.base import (CLIPPED, GRID, INSIDE, ZERO, fake_quantize_np, grid_levels, new_figure,
                           png_bytes)
from qkit.viz.accumulator import AccumulatorPlot
from qkit.viz.curves import CurvesPlot
from qkit.viz.number_line import NumberLinePlot
from qkit.viz.tensors import CalibrationPlot, GranularityPlot
from qkit.viz.weight_grid import WeightGridPlot

__all__ = ["AccumulatorPlot", "CLIPPED", "CurvesPlot", "CalibrationPlot", "GranularityPlot", "GRID", "INSIDE", "ZERO", "NumberLinePlot", "WeightGridPlot", "fake_quantize_np",
           "grid_levels", "new_figure", "png_bytes"]
