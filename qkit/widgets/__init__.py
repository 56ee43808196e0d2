"""Slider panels for the notebooks (ipywidgets 8). The math stays in qkit's core.

A panel = controls + a picture (an ``ipywidgets.Image`` that receives a fresh
PNG on every change, drawn by a ``qkit.viz`` plot) + a one-paragraph readout.
Every control change runs ``update()``; an invalid combination (say A1 > A2)
shows the library's error message in the readout instead of a traceback.

In a test, drive a panel exactly as a learner does: ``panel.controls["bits"].value = 4``.
"""

from qkit.widgets.base import Panel
from qkit.widgets.kernels import AccumulatorPanel
from qkit.widgets.maps import NumberLinePanel, WeightBitsPanel
from qkit.widgets.ptq import BitsCliffPanel, CalibrationSizePanel
from qkit.widgets.tensors import CalibrationPanel, GranularityPanel

__all__ = ["AccumulatorPanel", "BitsCliffPanel", "CalibrationPanel", "CalibrationSizePanel", "GranularityPanel", "NumberLinePanel", "Panel", "WeightBitsPanel"]
