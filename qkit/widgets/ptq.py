"""Lesson 04's panels: calibration-set size and observer vs int8 accuracy; the bit-width cliff.

Converting and evaluating a network takes a fraction of a second, too slow
for a slider, so both panels compute every setting once when they are built
(with a progress bar) and a slider move only looks the result up.

Test accuracy counts right answers, so it moves in steps of one test image;
two int8 models whose grids differ often change no answer at all and show the
same accuracy. The calibration panel therefore also measures how far each int8
model's outputs (logits) are from the float model's, as an SQNR in dB
(:func:`qkit.error.sqnr_db`, lesson 01):

    SQNR = 10·log10(Σ y_float² / Σ (y_int8 − y_float)²)
"""

from __future__ import annotations

import ipywidgets as w
import torch
from torch import nn

from qkit import viz
from qkit.error import sqnr_db
from qkit.simulate import simulate
from qkit.train import evaluate, one_thread, outputs
from qkit.widgets.base import Panel, slider, toggle

MEASURES = ("test accuracy", "output SQNR")


def _progress(total: int, what: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, leave=False)


class CalibrationSizePanel(Panel):
    """How many calibration images, and which observer, does full-integer PTQ need?

    For every (observer, size) it keeps ``acc`` (int8 test accuracy), ``sqnr``
    (dB of the int8 logits against the float logits on the test set) and
    ``pred`` (the int8 model's test predictions). The ``measure`` toggle shows
    either curve; the readout names the observers that tie on accuracy at the
    chosen size and tells them apart by SQNR.

    Example:
        >>> from qkit import data, models
        >>> (X, _), (Xt, yt) = data.digits("train"), data.digits("test")
        >>> panel = CalibrationSizePanel(models.load("mlp"), X, Xt, yt, sizes=(4, 16), observers=("minmax", "mse"))
        >>> panel.controls["measure"].value = "output SQNR"
        >>> panel.sqnr["minmax", 16] != panel.sqnr["mse", 16]
        True
    """

    def __init__(self, model: nn.Module, X_pool: torch.Tensor, X_test: torch.Tensor, y_test: torch.Tensor,
                 sizes=(1, 4, 16, 64, 256), observers=("minmax", "percentile", "mse", "entropy")) -> None:
        from qkit.ptq import convert  # the conversion machinery is only needed here

        sizes, observers = list(sizes), list(observers)
        if max(sizes) > len(X_pool):
            raise ValueError(f"the calibration pool has {len(X_pool)} images; sizes go up to {max(sizes)}")
        self.n_test = len(y_test)
        self.acc: dict[tuple[str, int], float] = {}
        self.sqnr: dict[tuple[str, int], float] = {}
        self.pred: dict[tuple[str, int], torch.Tensor] = {}
        bar = _progress(len(sizes) * len(observers), "calibrating and converting")
        with one_thread():
            float_out = outputs(model, X_test)  # (N, classes)
            self.float_acc = (float_out.argmax(1) == y_test).sum().item() / self.n_test
            for obs in observers:
                for n in sizes:
                    out = outputs(convert(model, "int8", X_pool[:n], observer=obs), X_test)  # (N, classes)
                    self.pred[obs, n] = out.argmax(1)  # (N,) int64
                    self.acc[obs, n] = (self.pred[obs, n] == y_test).sum().item() / self.n_test
                    self.sqnr[obs, n] = sqnr_db(float_out, out)
                    bar.update()
        bar.close()
        self.observers = observers
        title = f"full-integer PTQ (float: {100 * self.float_acc:.1f} %)"
        acc = {obs: (sizes, [100 * self.acc[obs, n] for n in sizes]) for obs in observers}
        lo = min(min(c[1]) for c in acc.values())
        db = {obs: (sizes, [self.sqnr[obs, n] for n in sizes]) for obs in observers}
        finite = [v for _, ys in db.values() for v in ys if abs(v) != float("inf")] or [0.0]
        self.plots = {
            "test accuracy": viz.CurvesPlot(acc, xlabel="calibration images", ylabel="int8 test accuracy (%)",
                                            title=title, logx=True,
                                            ylim=(min(lo, 100 * self.float_acc) - 2, 100.5)),
            "output SQNR": viz.CurvesPlot(db, xlabel="calibration images",
                                          ylabel="output SQNR (dB, higher = closer)",
                                          title="int8 logits vs float logits on the test set", logx=True,
                                          ylim=(min(finite) - 3, max(finite) + 3)),
        }
        controls = {
            "size": w.SelectionSlider(options=sizes, value=sizes[-1], description="calibration images",
                                      style={"description_width": "initial"}, layout=w.Layout(width="380px")),
            "observer": toggle("observer", observers, observers[0]),
            "measure": toggle("measure", list(MEASURES), MEASURES[0]),
        }
        super().__init__(controls, self.plots[MEASURES[0]], rows=[["size"], ["observer"], ["measure"]])

    def ties(self, observer: str, size: int) -> list[str]:
        """The other observers with exactly the same int8 test accuracy as ``observer`` at ``size``."""
        return [o for o in self.observers if o != observer and self.acc[o, size] == self.acc[observer, size]]

    def update(self, size, observer, measure) -> str:
        if measure not in self.plots:
            raise ValueError(f"measure must be one of {list(self.plots)}; got {measure!r}")
        self.plot = self.plots[measure]
        self.plot.update(size, observer)
        self.accuracy = self.acc[observer, size]
        drop = 100 * (self.float_acc - self.accuracy)
        db = self.sqnr[observer, size]
        text = (f"<b>{observer}</b> on {size} calibration image{'s' if size > 1 else ''}: int8 test accuracy "
                f"{100 * self.accuracy:.2f} % (float {100 * self.float_acc:.2f} %, drop {drop:+.2f} points); "
                f"outputs {db:.1f} dB from float's (SQNR)")
        return text + self._ties_text(observer, size)

    def _ties_text(self, observer: str, size: int) -> str:
        """The readout's second line: which observers tie on accuracy here, and what tells them apart."""
        tied = self.ties(observer, size)
        if not tied:
            return ""
        db = self.sqnr[observer, size]
        same = [o for o in tied if torch.equal(self.pred[o, size], self.pred[observer, size])]
        twins = [o for o in tied if self.sqnr[o, size] == db]
        others = [o for o in tied if o not in twins]
        text = f"<br>same test accuracy here: {', '.join(tied)}"
        if same:
            who = "" if same == tied else f"{', '.join(same)}: "
            text += f" ({who}the very same predictions on all {self.n_test} test images)"
        if others:
            d = next((d for d in (1, 2, 3) if all(f"{self.sqnr[o, size]:.{d}f}" != f"{db:.{d}f}" for o in others)), 4)
            values = ", ".join(f"{o} {self.sqnr[o, size]:.{d}f}" for o in others)
            text += (f". Yet the outputs differ: SQNR {values} dB against {db:.{d}f} dB here: accuracy cannot "
                     "tell these grids apart, the output SQNR can")
        if twins:
            text += f". {', '.join(twins)}: the very same outputs as {observer}"
        return text


class BitsCliffPanel(Panel):
    """Weights and activations at B bits (simulated) for several models: where is the cliff?"""

    def __init__(self, models: dict[str, nn.Module], X_calib: torch.Tensor, X_test: torch.Tensor,
                 y_test: torch.Tensor, bits=range(2, 9)) -> None:
        bits = list(bits)
        self.acc: dict[tuple[str, int], float] = {}
        bar = _progress(len(bits) * len(models), "simulating bit-widths")
        with one_thread():
            self.float_acc = {name: evaluate(m, X_test, y_test) for name, m in models.items()}
            for name, model in models.items():
                for b in bits:
                    self.acc[name, b] = evaluate(simulate(model, b, X_calib), X_test, y_test)
                    bar.update()
        bar.close()
        curves = {name: (bits, [100 * self.acc[name, b] for b in bits]) for name in models}
        self.plot = viz.CurvesPlot(curves, xlabel="bits B (weights and activations)",
                                   ylabel="test accuracy (%)", title="post-training quantization: the cliff",
                                   ylim=(0, 101))
        names = list(models)
        controls = {
            "bits": slider(w.IntSlider, "B (bits)", 8 if 8 in bits else bits[-1], bits[0], bits[-1], 1),
            "model": toggle("highlight", names, names[0]),
        }
        super().__init__(controls, self.plot, rows=[["bits"], ["model"]])

    def update(self, bits, model) -> str:
        self.plot.update(bits, model)
        cells = " &nbsp;·&nbsp; ".join(
            f"{'<b>' if n == model else ''}{n} {100 * self.acc[n, bits]:.1f} %{'</b>' if n == model else ''}"
            for n in self.float_acc)
        drop = 100 * (self.float_acc[model] - self.acc[model, bits])
        return (f"at {bits} bits: {cells}<br><b>{model}</b> loses {drop:.1f} points against float "
                f"({100 * self.float_acc[model]:.1f} %)")
