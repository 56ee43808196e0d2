"""Slider panels for the notebooks (ipywidgets 8). The math stays in qkit's core.

A panel = controls + a picture (an ``ipywidgets.Image`` that receives a fresh
PNG on every change, drawn by a ``qkit.viz`` plot) + a one-paragraph readout.
Every control change runs ``update()``; an invalid combination (say A1 > A2)
shows the library's error message in the readout instead of a traceback.

In a test, drive a panel exactly as a learner does: ``panel.controls["bits"].value = 4``.
"""

from __future__ import annotations

import html
import math

import ipywidgets as w
import torch

from qkit import viz
from qkit.error import error_split, sqnr_db
from qkit.qparams import choose_qparams, tensor_range
from qkit.quant import fake_quantize
from qkit.train import evaluate


class Panel:
    """Base class: lays out ``controls``, the picture and the readout; calls ``update`` on change."""

    title = ""

    def __init__(self, controls: dict[str, w.ValueWidget], plot, rows: list[list[str]] | None = None) -> None:
        self.controls = controls
        self.plot = plot
        self.image = w.Image(format="png", layout=w.Layout(width="100%", max_width="900px"))
        self.readout = w.HTML()
        for c in controls.values():
            c.observe(self._on_change, names="value")
        rows = rows or [list(controls)]
        boxes = [w.HBox([controls[k] for k in row], layout=w.Layout(flex_flow="row wrap")) for row in rows]
        self.widget = w.VBox([*boxes, self.image, self.readout])
        self.error: str | None = None
        self.refresh()

    def _on_change(self, _change=None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute and redraw; a bad combination of values becomes a readout message."""
        try:
            values = {k: c.value for k, c in self.controls.items()}
            text = self.update(**values)
        except (ValueError, TypeError) as e:
            self.error = str(e)
            self.readout.value = f"<span style='color:#b00'>⚠ {html.escape(str(e))}</span>"
            self.image.layout.opacity = "0.3"  # the picture no longer matches the controls
            return
        self.error = None
        self.image.value = self.plot.render()
        self.image.layout.opacity = "1"
        self.readout.value = text

    def update(self, **values) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"{type(self).__name__}({', '.join(self.controls)}): "
                                "run this cell to get the interactive panel")
        return bundle


def _slider(kind, description: str, value, lo, hi, step, **kw):
    return kind(
        value=value, min=lo, max=hi, step=step, description=description,
        continuous_update=True, style={"description_width": "initial"},
        layout=w.Layout(width="230px"), **kw,
    )


def _toggle(description: str, options, value):
    return w.ToggleButtons(
        options=options, value=value, description=description,
        style={"description_width": "initial", "button_width": "84px"},
    )


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class NumberLinePanel(Panel):
    """Map [A1, A2] onto a B-bit grid: sliders for A1, A2, B; toggles for scheme, sign, narrow."""

    def __init__(self, a1: float = -1.0, a2: float = 2.0, bits: int = 3,
                 scheme: str = "affine", signed: bool = True) -> None:
        self.plot = viz.NumberLinePlot()
        controls = {
            "a1": _slider(w.FloatSlider, "A1", a1, -4.0, 4.0, 0.05),
            "a2": _slider(w.FloatSlider, "A2", a2, -4.0, 4.0, 0.05),
            "bits": _slider(w.IntSlider, "B (bits)", bits, 1, 8, 1),
            "scheme": _toggle("scheme", ["affine", "scale"], scheme),
            "signed": _toggle("", [("signed", True), ("unsigned", False)], signed),
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
            f"<b>scale</b> = {_fmt(float(qp.scale))} &nbsp; <b>zero_point</b> = {int(qp.zero_point)}"
            f" &nbsp; <b>q</b> ∈ [{qp.qmin}, {qp.qmax}] ({qp.levels} levels)"
            f" &nbsp; grid covers [{_fmt(m['lo'])}, {_fmt(m['hi'])}]<br>"
            f"0.0 ↦ q = {int(qp.zero_point)} exactly &nbsp;·&nbsp; rounding error ≤ scale/2 = "
            f"{_fmt(float(qp.scale) / 2)} &nbsp;·&nbsp; worst error inside [A1, A2] = "
            f"{_fmt(m['worst_in_range'])} &nbsp;·&nbsp; levels inside [A1, A2]: "
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
            "bits": _slider(w.IntSlider, "B (bits)", bits, 2, 8, 1),
            "scheme": _toggle("scheme", ["affine", "scale"], scheme),
        }
        super().__init__(controls, self.plot)

    def _qparams(self, bits: int, scheme: str):
        return choose_qparams(*tensor_range(self.weight), bits, scheme=scheme)

    def _sqnr(self, bits: int, scheme: str) -> float:
        return sqnr_db(self.weight, fake_quantize(self.weight, self._qparams(bits, scheme)))

    @torch.no_grad()
    def _accuracy(self, weight: torch.Tensor) -> float:
        original = self.layer.weight.data
        try:
            self.layer.weight.data = weight
            return evaluate(self.model, *self.data)
        finally:
            self.layer.weight.data = original

    def update(self, bits, scheme) -> str:
        qp = self._qparams(bits, scheme)
        w_hat = fake_quantize(self.weight, qp)
        e = error_split(self.weight, qp)
        sqnr = sqnr_db(self.weight, w_hat)
        self.plot.update(qp, bits, sqnr)
        size = self.weight.numel() * bits / 8
        text = (
            f"<b>{self.layer_name}.weight</b> {tuple(self.weight.shape)}: {qp.levels} levels, "
            f"scale = {_fmt(float(qp.scale))}, zero_point = {int(qp.zero_point)} &nbsp;·&nbsp; "
            f"MSE = {e.total:.3e}, max error = {_fmt(e.max_abs)}, SQNR = {sqnr:.1f} dB"
            f"<br>storage: {size:,.0f} bytes at {bits} bits vs {self.weight.numel() * 4:,} at fp32"
            f" ({32 / bits:.1f}× smaller)"
        )
        if self.data:
            acc = self._accuracy(w_hat)
            text += (f" &nbsp;·&nbsp; test accuracy {100 * acc:.1f} % "
                     f"(float {100 * self.float_acc:.1f} %)")
        self.sqnr, self.accuracy = sqnr, (acc if self.data else math.nan)
        return text
