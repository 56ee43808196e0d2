"""Lesson 05's panels: the straight-through estimator on one weight; PTQ vs QAT over bits and epochs.

Both panels compute everything when they are built (the STE curves for every
bit width with autograd, in a fraction of a second; the accuracy grid is read
from ``qkit/results/qat.json``, made by ``python -m qkit.results.make qat``),
so a slider move only looks up and redraws.

The 1-D problem: one weight ``w``, one input ``x``, a target ``t``, and the
loss ``L(w) = (q(w)·x − t)²`` with ``q`` the symmetric ``b``-bit fake
quantizer of the range ``[−clip, clip]`` (narrow grid ``[−qmax, qmax]``). Its true derivative is
``dL/dq · dq/dw`` with ``dq/dw = 0`` between the jumps of the staircase
(undefined at them); the straight-through estimator replaces ``dq/dw`` by 1
inside the grid's range and 0 outside, which is what :func:`qkit.fake_quantize`
implements.
"""

from __future__ import annotations

import statistics

import ipywidgets as w
import numpy as np
import torch

from qkit.qparams import choose_qparams
from qkit.quant import fake_quantize
from qkit.viz.qat import AccuracyBitsPlot, STEPlot
from qkit.qat.describe import point_kinds  # noqa: F401  (the notebook's name for it)
from qkit.widgets.base import Panel, slider


def ste_curves(bits: int, x: float = 1.5, t: float = 0.8, clip: float = 1.0, n: int = 1201,
               span: float = 2.0) -> dict[str, np.ndarray]:
    """The STE panel's curves at ``bits``: ``w``, ``q``, ``loss``, ``ste``, ``true`` and the jumps ``steps``.

    ``ste`` is autograd through :func:`qkit.fake_quantize`, ``true`` autograd through ``torch.round``.

    Example:
        >>> c = ste_curves(2)        # narrow 2-bit grid of [-1, 1]: levels -1, 0, 1 (ternary)
        >>> float(c["true"].min()), float(c["true"].max())      # round's gradient: zero everywhere
        (0.0, 0.0)
        >>> i = int(np.argmin(abs(c["w"] - 0.7)))               # inside: STE = 2·(q·x − t)·x = 2·0.7·1.5
        >>> float(c["q"][i]), round(float(c["ste"][i]), 4), float(c["edge"])   # passes up to 1.5 steps
        (1.0, 2.1, 1.5)
    """
    qp = choose_qparams(-clip, clip, bits, scheme="scale", narrow=True)  # symmetric [-qmax, qmax], zero point 0
    w_ = torch.linspace(-span * clip, span * clip, n, dtype=torch.float32, requires_grad=True)  # (n,)
    q = fake_quantize(w_, qp)  # (n,) on the grid
    loss = (q * x - t) ** 2
    (ste,) = torch.autograd.grad(loss.sum(), w_)
    w_round = w_.detach().clone().requires_grad_(True)
    s = float(qp.scale)
    q_round = torch.clamp(torch.round(w_round / s), qp.qmin, qp.qmax) * s  # the same staircase, no STE
    (true,) = torch.autograd.grad(((q_round * x - t) ** 2).sum(), w_round)
    levels = np.arange(qp.qmin, qp.qmax) + 0.5  # a jump halfway between two levels
    steps = levels * s
    return {"w": w_.detach().numpy(), "q": q.detach().numpy(), "loss": loss.detach().numpy(),
            "ste": ste.numpy(), "true": true.numpy(), "steps": steps[np.abs(steps) <= span * clip],
            "edge": np.float64((qp.qmax + 0.5) * s)}  # |w| beyond this rounds past qmax: clipped, gradient 0


class STEPanel(Panel):
    """Slider: bits. The staircase ``q(w)``, the loss it makes, and its gradients (true vs STE)."""

    def __init__(self, bits=range(2, 9), x: float = 1.5, t: float = 0.8, clip: float = 1.0) -> None:
        self.bits = list(bits)
        self.x, self.t = x, t
        self.curves = {b: ste_curves(b, x, t, clip, n=601) for b in self.bits}
        wv = self.curves[self.bits[0]]["w"]
        plot = STEPlot(wv, self.curves, (wv * x - t) ** 2, 2 * (wv * x - t) * x, clip)
        controls = {"bits": slider(w.IntSlider, "bits", 3 if 3 in self.bits else self.bits[0], self.bits[0],
                                   self.bits[-1], 1)}
        super().__init__(controls, plot)

    def update(self, bits) -> str:
        if bits not in self.curves:
            raise ValueError(f"bits must be one of {self.bits}; got {bits!r}")
        self.plot.update(bits)
        c = self.curves[bits]
        inside = np.abs(c["ste"]) > 0
        return (f"{bits} bits: the true gradient is 0 at all {len(c['w'])} sampled weights "
                f"(max |grad| {np.abs(c['true']).max():g}); the STE gradient is non-zero at {int(inside.sum())} "
                f"of them (inside the grid's range) and 0 where the weight is clipped. "
                f"STE passes |w| ≤ {float(c['edge']):.3f} (the last level plus half a step). "
                f"The float loss is 0 at w = t/x = {self.t / self.x:.3f}; the best grid value is "
                f"q = {c['q'][np.argmin(c['loss'])]:.3f}.")


def grid_stats(rows: list[dict], value: str = "int_accuracy") -> dict[tuple[str, int, int], tuple[float, float, float]]:
    """``{(model, w_bits, epochs): (mean, min, max)}`` of ``value`` over seeds, in %, from the stored grid rows.

    Example:
        >>> rows = [{"model": "m", "w_bits": 4, "seed": s, "epochs": [0], "int_accuracy": [a]}
        ...         for s, a in enumerate([0.5, 0.75, 1.0])]
        >>> grid_stats(rows)
        {('m', 4, 0): (75.0, 50.0, 100.0)}
    """
    groups: dict[tuple[str, int, int], list[float]] = {}
    for r in rows:
        for e, v in zip(r["epochs"], r[value]):
            groups.setdefault((r["model"], r["w_bits"], e), []).append(100 * v)
    return {k: (statistics.fmean(v), min(v), max(v)) for k, v in groups.items()}


class QATGridPanel(Panel):
    """Sliders: weight bits and fine-tuning epochs over the precomputed ``qat`` grid (no training here)."""

    def __init__(self, grid: dict) -> None:
        rows = grid["rows"]
        self.models = list(dict.fromkeys(r["model"] for r in rows))
        self.bits = sorted({r["w_bits"] for r in rows}, reverse=True)
        self.epochs = sorted(set(rows[0]["epochs"]))
        self.stats = grid_stats(rows)
        self.float_acc = {m: 100 * next(r["float_accuracy"] for r in rows if r["model"] == m) for m in self.models}
        plot = AccuracyBitsPlot(self.stats, self.float_acc, self.models, self.bits)
        controls = {
            "bits": w.SelectionSlider(options=self.bits, value=self.bits[0], description="weight bits",
                                      style={"description_width": "initial"}, layout=w.Layout(width="320px")),
            "epochs": w.SelectionSlider(options=self.epochs, value=self.epochs[-1], description="QAT epochs",
                                        style={"description_width": "initial"}, layout=w.Layout(width="320px")),
        }
        super().__init__(controls, plot, rows=[["bits", "epochs"]])

    def update(self, bits, epochs) -> str:
        if (self.models[0], bits, epochs) not in self.stats:
            raise ValueError(f"no grid point at {bits} bits and {epochs} epochs")
        self.plot.update(bits, epochs)
        cells = []
        for m in self.models:
            ptq, qat = self.stats[m, bits, 0][0], self.stats[m, bits, epochs][0]
            cells.append(f"{m}: PTQ {ptq:.1f} % → QAT {qat:.1f} % ({qat - ptq:+.1f})")
        return (f"<b>W{bits}A8, {epochs} epoch{'s' if epochs != 1 else ''}</b> (means over the random seeds): "
                + " &nbsp;·&nbsp; ".join(cells))
