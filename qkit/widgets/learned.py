"""Lesson 06's panel: does LSQ's initial step matter? The step ``k · s0`` against accuracy.

Each setting costs a QAT fine-tune, far too slow for a slider, so the accuracies come from the
precomputed ``learned`` grid (``python -m qkit.results.make learned``): every bit-width and
every factor ``k``, before and after a short fine-tune. Building the panel only prepares one
LSQ model per bit-width (no training) to read the initial step ``s0 = 2·mean|x|/√Qp`` of one
activation point and the values that reach it; a slider move looks up and redraws.
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np
import torch
from torch import nn

from qkit.qparams import qrange
from qkit.train import one_thread
from qkit.viz.learned import InitPlot, ratio_label
from qkit.widgets.base import Panel, toggle


def point_values(qat_model, point: str, X: torch.Tensor) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The values that reach activation quantizer ``point`` on ``X`` (eval mode), its step and its levels.

    Example:
        >>> from qkit import data, models, qat
        >>> X, _ = data.digits("train")
        >>> m = qat.prepare(models.load("mlp"), w_bits=4, a_bits=4, method="lsq", calibration=X[:64])
        >>> v, s0, (qmin, qmax) = point_values(m, "relu", X[:64])
        >>> v.shape, float(v.min()) >= 0, (qmin, qmax)     # after a ReLU: the unsigned 4-bit grid
        ((8192,), True, (0, 15))
    """
    quants = qat_model.act_quantizers()
    if point not in quants:
        raise ValueError(f"no activation point {point!r}; the model's points are {list(quants)}")
    q = quants[point]
    if q.method != "lsq":
        raise ValueError(f"point {point!r} uses {q.method!r}; this panel studies LSQ's step")
    seen = []
    hook = q.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().reshape(-1)))
    was = qat_model.training
    try:
        qat_model.eval()
        with torch.no_grad():
            qat_model(X)
    finally:
        hook.remove()
        qat_model.train(was)
    levels = (0, 2 ** q.bits - 1) if q.unsigned else qrange(q.bits)
    return torch.cat(seen).numpy(), float(q.scale.detach().abs()), levels


class InitPanel(Panel):
    """LSQ's initial step times ``k``: accuracy before and after a short fine-tune (from the grid).

    Args:
        rows: the ``learned`` grid's ``init`` rows (``bits, k, before_acc, acc, float_acc, epochs``).
        model: the float model those rows were made from (to read ``s0`` and the values at ``point``).
        calibration: the calibration batch ``prepare`` got in the grid.
        point: the activation point drawn on the right.
    """

    def __init__(self, rows: list[dict], model: nn.Module, calibration: torch.Tensor, point: str) -> None:
        from qkit import qat  # noqa: PLC0415

        if not rows:
            raise ValueError("no init rows: pass the 'init' rows of qkit.results.load('learned')")
        self.factors = sorted({r["k"] for r in rows})
        self.bits = sorted({r["bits"] for r in rows})
        table = {(r["bits"], r["k"]): r for r in rows}
        missing = [(b, k) for b in self.bits for k in self.factors if (b, k) not in table]
        if missing:
            raise ValueError(f"the init rows miss (bits, k) = {missing[:3]}")
        self.before = {b: [100 * table[b, k]["before_acc"] for k in self.factors] for b in self.bits}
        self.after = {b: [100 * table[b, k]["acc"] for k in self.factors] for b in self.bits}
        self.float_acc = 100 * rows[0]["float_acc"]
        self.epochs = rows[0]["epochs"]
        values, steps, levels = {}, {}, {}
        with one_thread():
            for b in self.bits:
                qm = qat.prepare(model, w_bits=b, a_bits=b, method="lsq", calibration=calibration)
                values[b], steps[b], levels[b] = point_values(qm, point, calibration)
        self.s0 = steps
        self.plot = InitPlot(self.factors, self.before, self.after, values, steps, levels, point=point,
                             float_acc=self.float_acc, epochs=self.epochs)
        options = [(ratio_label(k), k) for k in self.factors]
        controls = {
            "k": w.SelectionSlider(options=options, value=1.0 if 1.0 in self.factors else self.factors[0],
                                   description="k (initial step × k)", continuous_update=True,
                                   style={"description_width": "initial"}, layout=w.Layout(width="420px")),
            "bits": toggle("bits (W = A)", [(f"W{b}A{b}", b) for b in self.bits], self.bits[0]),
        }
        super().__init__(controls, self.plot, rows=[["k"], ["bits"]])

    def update(self, k, bits) -> str:
        r = self.plot.update(k, bits)
        gain = r["after"] - r["before"]
        best = self.factors[int(np.argmax(self.after[bits]))]
        return (f"<b>W{bits}A{bits}</b>, initial step × <b>{ratio_label(k)}</b>: test accuracy "
                f"{r['before']:.1f} % before fine-tuning, {r['after']:.1f} % after {self.epochs} epochs "
                f"({gain:+.1f} points; float {self.float_acc:.1f} %). Best k here: {ratio_label(best)} "
                f"({max(self.after[bits]):.1f} %).")
