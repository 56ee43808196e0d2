"""Plots for the lessons: matplotlib only, no widgets (those live in ``qkit.widgets``).

Interactive panels redraw many times a second, so each panel plot is a class
that builds its artists once and then only moves them (``update``) and renders
a PNG (``render``). Figures are made with ``matplotlib.figure.Figure`` (not
pyplot), so they never pop up on their own and never leak between cells.

Where a lesson's UI lives: one module name per lesson, the same in all three
UI packages (``figures`` = static figures, ``viz`` = the plots a panel moves,
``widgets`` = the panels with their controls)::

    lesson                          figures/     viz/         widgets/
    01 affine and scale maps        maps.py      maps.py      maps.py
    02 quantizing tensors           tensors.py   tensors.py   tensors.py
    03 int8 kernels                 kernels.py   kernels.py   kernels.py
    04 post-training quantization   —            ptq.py       ptq.py
    (shared)                        —            base.py      base.py

A new lesson adds ``<topic>.py`` to the packages it needs and re-exports its
names here; notebooks use only the package-level names (``qkit.widgets.NumberLinePanel``).
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
