"""Plots for the lessons: matplotlib only, no widgets (those live in ``qkit.widgets``).

Interactive panels redraw many times a second, so each panel plot is a class
that builds its artists once and then only moves them (``update``) and renders
a PNG (``render``). Figures are made with ``matplotlib.figure.Figure`` (not
pyplot), so they never pop up on their own and never leak between cells.

Where a lesson's UI lives: the same module name in ``figures``, ``viz`` and ``widgets``
(01 ``maps``, 02 ``tensors``, 03 ``kernels``, 04 ``ptq``); the map is in ``qkit.widgets``' docstring.
"""

from qkit.viz.base import (CLIPPED, GRID, INSIDE, ZERO, Blitter, fake_quantize_np, grid_levels, new_figure,
                           png_bytes)
from qkit.viz.kernels import AccumulatorPlot
from qkit.viz.maps import NumberLinePlot, WeightGridPlot
from qkit.viz.ptq import CurvesPlot
from qkit.viz.tensors import CalibrationPlot, GranularityPlot

__all__ = ["AccumulatorPlot", "Blitter", "CLIPPED", "CalibrationPlot", "CurvesPlot", "GRID", "GranularityPlot",
           "INSIDE", "NumberLinePlot", "WeightGridPlot", "ZERO", "fake_quantize_np", "grid_levels", "new_figure",
           "png_bytes"]
