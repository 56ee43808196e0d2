"""Lesson 04's panels: calibration-set size and observer vs int8 accuracy; the bit-width cliff.

Converting and evaluating a network takes a fraction of a second, too slow
for a slider, so both panels compute every setting once when they are built
(with a progress bar) and a slider move only looks the result up.
"""

from __future__ import annotations

import ipywidgets as w
import torch
from torch import nn

from qkit import viz
from qkit.simulate import simulate
from qkit.train import evaluate
from qkit.widgets.base import Panel, slider, toggle


def _progress(total: int, what: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, leave=False)


class CalibrationSizePanel(Panel):
    """How many calibration images, and which observer, does full-integer PTQ need?"""

    def __init__(self, model: nn.Module, X_pool: torch.Tensor, X_test: torch.Tensor, y_test: torch.Tensor,
                 sizes=(1, 2, 4, 16, 64, 256), observers=("minmax", "percentile", "mse", "entropy")) -> None:
        from qkit.ptq import convert  # the conversion machinery is only needed here

        if max(sizes) > len(X_pool):
            raise ValueError(f"the calibration pool has {len(X_pool)} images; sizes go up to {max(sizes)}")
        self.float_acc = evaluate(model, X_test, y_test)
        self.acc: dict[tuple[str, int], float] = {}
        bar = _progress(len(sizes) * len(observers), "calibrating and converting")
        for obs in observers:
            for n in sizes:
                int8 = convert(model, "int8", X_pool[:n], observer=obs)
                self.acc[obs, n] = evaluate(int8, X_test, y_test)
                bar.update()
        bar.close()
        curves = {obs: (list(sizes), [100 * self.acc[obs, n] for n in sizes]) for obs in observers}
        lo = min(min(c[1]) for c in curves.values())
        self.plot = viz.CurvesPlot(curves, xlabel="calibration images", ylabel="int8 test accuracy (%)",
                                   title=f"full-integer PTQ (float: {100 * self.float_acc:.1f} %)", logx=True,
                                   ylim=(min(lo, 100 * self.float_acc) - 2, 100.5))
        controls = {
            "size": w.SelectionSlider(options=list(sizes), value=sizes[-1], description="calibration images",
                                      style={"description_width": "initial"}, layout=w.Layout(width="380px")),
            "observer": toggle("observer", list(observers), observers[0]),
        }
        super().__init__(controls, self.plot, rows=[["size"], ["observer"]])

    def update(self, size, observer) -> str:
        self.plot.update(size, observer)
        self.accuracy = self.acc[observer, size]
        drop = 100 * (self.float_acc - self.accuracy)
        return (f"<b>{observer}</b> on {size} calibration image{'s' if size > 1 else ''}: int8 test accuracy "
                f"{100 * self.accuracy:.2f} % (float {100 * self.float_acc:.2f} %, drop {drop:+.2f} points)")


class BitsCliffPanel(Panel):
    """Weights and activations at B bits (simulated) for several models: where is the cliff?"""

    def __init__(self, models: dict[str, nn.Module], X_calib: torch.Tensor, X_test: torch.Tensor,
                 y_test: torch.Tensor, bits=range(2, 9)) -> None:
        bits = list(bits)
        self.float_acc = {name: evaluate(m, X_test, y_test) for name, m in models.items()}
        self.acc: dict[tuple[str, int], float] = {}
        bar = _progress(len(bits) * len(models), "simulating bit-widths")
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
