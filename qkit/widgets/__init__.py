"""Slider panels for the notebooks (ipywidgets 8). The math stays in qkit's core.

A panel = controls + a picture (an ``ipywidgets.Image`` that receives a fresh
PNG on every change, drawn by a ``qkit.viz`` plot) + a one-paragraph readout.
Every control change runs ``update()``; an invalid combination (say A1 > A2)
shows the library's error message in the readout instead of a traceback.

In a test, drive a panel exactly as a learner does: ``panel.controls["bits"].value = 4``.
What the page shows (DOM classes, the ``<style>`` element) is described in ``qkit.widgets.base``.

Where a lesson's UI lives: one module name per lesson, the same in all three
UI packages (``figures`` = static figures, ``viz`` = the plots a panel moves,
``widgets`` = the panels with their controls)::

    lesson                          figures/     viz/         widgets/
    01 affine and scale maps        maps.py      maps.py      maps.py
    02 quantizing tensors           tensors.py   tensors.py   tensors.py
    03 int8 kernels                 kernels.py   kernels.py   kernels.py
    04 post-training quantization   —            ptq.py       ptq.py
    05 quantization-aware training  —            qat.py       qat.py
    06 learned quant. parameters    learned.py   learned.py   learned.py
    07 partial quantization         partial.py   partial.py   partial.py
    08 pruning                      prune.py     prune.py     prune.py
                                    channels.py  —            —
    09 knowledge distillation       distill.py   distill.py   distill.py
    10 neural architecture search   nas.py       nas.py       nas.py
    11 putting it together          capstone.py  capstone.py  capstone.py
    (shared)                        —            base.py      base.py

A new lesson adds ``<topic>.py`` to the packages it needs and re-exports its
names here; notebooks use only the package-level names (``qkit.widgets.NumberLinePanel``).
"""

from qkit.widgets.base import Panel
from qkit.widgets.capstone import StagePanel
from qkit.widgets.distill import DistillPanel
from qkit.widgets.kernels import AccumulatorPanel
from qkit.widgets.learned import InitPanel
from qkit.widgets.maps import NumberLinePanel, WeightBitsPanel
from qkit.widgets.nas import SearchPanel
from qkit.widgets.partial import BudgetPanel
from qkit.widgets.prune import SparsityPanel
from qkit.widgets.ptq import BitsCliffPanel, CalibrationSizePanel
from qkit.widgets.qat import QATGridPanel, STEPanel
from qkit.widgets.tensors import CalibrationPanel, GranularityPanel

__all__ = ["AccumulatorPanel", "BitsCliffPanel", "BudgetPanel", "CalibrationPanel", "CalibrationSizePanel", "DistillPanel",
           "GranularityPanel", "InitPanel", "NumberLinePanel", "Panel", "QATGridPanel", "STEPanel", "SearchPanel", "SparsityPanel",
           "StagePanel", "WeightBitsPanel"]
