"""Plots for the lessons: matplotlib only, no widgets (those live in ``qkit.widgets``).

Interactive panels redraw many times a second, so each panel plot is a class
that builds its artists once and then only moves them (``update``) and renders
a PNG (``render``). Figures are made with ``matplotlib.figure.Figure`` (not
pyplot), so they never pop up on their own and never leak between cells.

Where a lesson's UI lives: the same module name in ``figures``, ``viz`` and ``widgets``
(01 ``maps``, 02 ``tensors``, 03 ``kernels``, 04 ``ptq``, 05 ``qat``, 06 ``learned``, 07 ``partial``,
08 ``prune``, 09 ``distill``, 10 ``nas``, 11 ``capstone``); the map is in ``qkit.widgets``' docstring.
"""

from qkit.viz.base import (CLIPPED, GRID, INSIDE, ZERO, Blitter, fake_quantize_np, grid_levels, new_figure,
                           png_bytes)
from qkit.viz.capstone import StagePlot
from qkit.viz.distill import SoftTargetPlot
from qkit.viz.kernels import AccumulatorPlot
from qkit.viz.learned import InitPlot
from qkit.viz.maps import NumberLinePlot, WeightGridPlot
from qkit.viz.nas import SearchPlot
from qkit.viz.partial import BudgetPlot
from qkit.viz.prune import SparsityPlot
from qkit.viz.ptq import CurvesPlot
from qkit.viz.qat import AccuracyBitsPlot, STEPlot
from qkit.viz.tensors import CalibrationPlot, GranularityPlot

__all__ = ["AccumulatorPlot", "AccuracyBitsPlot", "Blitter", "BudgetPlot", "CLIPPED", "CalibrationPlot",
           "CurvesPlot", "GRID", "GranularityPlot", "INSIDE", "InitPlot", "NumberLinePlot", "STEPlot", "SearchPlot", "SoftTargetPlot", "SparsityPlot", "StagePlot",
           "WeightGridPlot", "ZERO", "fake_quantize_np", "grid_levels", "new_figure", "png_bytes"]
