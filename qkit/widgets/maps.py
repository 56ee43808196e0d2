"""Lesson 01's panels: a range onto a B-bit grid (number line) and bits over a real weight."""

from __future__ import annotations

import math

import ipywidgets as w
import torch

from qkit import viz
from qkit.error import error_split, sqnr_db
from qkit.graph import swapped_weight
from qkit.qparams import choose_qparams, tensor_range
from qkit.quant import fake_quantize
from qkit.train import evaluate
from qkit.widgets.base import Panel, fmt, slider, toggle


class NumberLinePanel(Panel):
    """Map [A1, A2] onto a B-bit grid: sliders for A1, A2, B; toggles for scheme, sign, narrow."""

    def __init__(self, a1: float = -1.0, a2: float = 2.0, bits: int = 3,
                 scheme: str = "affine", signed: bool = True) -> None:
        self.plot = viz.NumberLinePlot()
        controls = {
            "a1": slider(w.FloatSlider, "A1", a1, -4.0, 4.0, 0.05),
            "a2": slider(w.FloatSlider, "A2", a2, -4.0, 4.0, 0.05),
            "bits": slider(w.IntSlider, "B (bits)", bits, 1, 8, 1),
            "scheme": toggle("scheme", ["affine", "scale"], scheme),
            "signed": toggle("", [("signed", True), ("unsigned", False)], signed),
            "narrow": w.Checkbox(value=False, description="narrow", indent=False,
                                 layout=w.Layout(width="90px")),
        }
        super().__init__(controls, self.plot, rows=[["a1", "a2", "bits"], ["scheme", "signed", "narrow"]])

    def update(self, a1, a2, bits, scheme, signed, narrow) -> str:
        if a1 > a2:
            raise ValueError(f"A1 = {a1:g} is above A2 = {a2:g}: a range [A1, A2] needs A1 ≤ A2")
        qp = choose_qparams(a1, a2, bits, scheme=scheme, signed=signed, narrow=narrow)
        m = self.plot.update(qp, a1, a2)
        self.qp, self.measured = qp, m
        return (
            f"<b>scale</b> = {fmt(float(qp.scale))} &nbsp; <b>zero_point</b> = {int(qp.zero_point)}"
            f" &nbsp; <b>q</b> ∈ [{qp.qmin}, {qp.qmax}] ({qp.levels} levels)"
            f" &nbsp; grid covers [{fmt(m['lo'])}, {fmt(m['hi'])}]<br>"
            f"0.0 ↦ q = {int(qp.zero_point)} exactly &nbsp;·&nbsp; rounding error ≤ scale/2 = "
            f"{fmt(float(qp.scale) / 2)} &nbsp;·&nbsp; worst error inside [A1, A2] = "
            f"{fmt(m['worst_in_range'])} &nbsp;·&nbsp; levels inside [A1, A2]: "
            f"{m['levels_used']} of {qp.levels}"
        )


class WeightBitsPanel(Panel):
    """A bit-width slider over a real weight tensor: histogram + grid, error, accuracy."""

    def __init__(self, model: torch.nn.Module, layer: str, X=None, y=None,
                 bits: int = 4, scheme: str = "affine") -> None:
        layers = [n for n, m in model.named_children() if isinstance(getattr(m, "weight", None), torch.Tensor)]
        if layer not in layers:
            raise ValueError(f"layer must name a child of the model with a weight, one of {layers}; "
                             f"got {layer!r}")
        if (X is None) != (y is None):
            raise ValueError("pass both X and y (to measure accuracy) or neither")
        self.model, self.layer = model, getattr(model, layer)
        self.layer_name = layer
        self.weight = self.layer.weight.detach().clone()  # (out, in) float32
        self.data = (X, y) if X is not None else None
        self.float_acc = self._accuracy(self.weight) if self.data else None
        curves = {s: {b: self._sqnr(b, s) for b in range(2, 9)} for s in ("affine", "scale")}
        self.plot = viz.WeightGridPlot(self.weight, curves)
        controls = {
            "bits": slider(w.IntSlider, "B (bits)", bits, 2, 8, 1),
            "scheme": toggle("scheme", ["affine", "scale"], scheme),
        }
        super().__init__(controls, self.plot)

    def _qparams(self, bits: int, scheme: str):
        return choose_qparams(*tensor_range(self.weight), bits, scheme=scheme)

    def _sqnr(self, bits: int, scheme: str) -> float:
        return sqnr_db(self.weight, fake_quantize(self.weight, self._qparams(bits, scheme)))

    @torch.no_grad()
    def _accuracy(self, weight: torch.Tensor) -> float:
        with swapped_weight(self.model, self.layer_name, weight):
            return evaluate(self.model, *self.data)

    def update(self, bits, scheme) -> str:
        qp = self._qparams(bits, scheme)
        w_hat = fake_quantize(self.weight, qp)
        e = error_split(self.weight, qp)
        sqnr = sqnr_db(self.weight, w_hat)
        self.plot.update(qp, bits, sqnr)
        size = self.weight.numel() * bits / 8
        text = (
            f"<b>{self.layer_name}.weight</b> {tuple(self.weight.shape)}: {qp.levels} levels, "
            f"scale = {fmt(float(qp.scale))}, zero_point = {int(qp.zero_point)} &nbsp;·&nbsp; "
            f"MSE = {e.total:.3e}, max error = {fmt(e.max_abs)}, SQNR = {sqnr:.1f} dB"
            f"<br>storage: {size:,.0f} bytes at {bits} bits vs {self.weight.numel() * 4:,} at fp32"
            f" ({32 / bits:.1f}× smaller)"
        )
        if self.data:
            acc = self._accuracy(w_hat)
            text += (f" &nbsp;·&nbsp; test accuracy {100 * acc:.1f} % "
                     f"(float {100 * self.float_acc:.1f} %)")
        self.sqnr, self.accuracy = sqnr, (acc if self.data else math.nan)
        return text
