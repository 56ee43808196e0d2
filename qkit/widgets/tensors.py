"""Lesson 02's panels: weight granularity (tensor / channel / group) and activation calibration."""

from __future__ import annotations

import ipywidgets as w
import numpy as np
import torch

from qkit import viz
from qkit.activations import capture, quantized_output
from qkit.error import error_split, sqnr_db
from qkit.graph import swapped_weight
from qkit.groups import fake_quantize_grouped, scale_overhead_bits
from qkit.observers import OBSERVERS, MSEObserver, PercentileObserver
from qkit.qparams import choose_qparams, weight_qparams
from qkit.quant import fake_quantize
from qkit.train import evaluate
from qkit.viz.tensors import sorted_by
from qkit.widgets.base import Panel, fmt, slider, toggle

SCALE_BITS = 16  # scales stored as float16 when counting what granularity costs


def _channel_sqnr(w_: torch.Tensor, w_hat: torch.Tensor) -> np.ndarray:
    """SQNR (dB) of every row: 10·log10(Σ w² / Σ (w_hat - w)²)."""
    signal = (w_.double() ** 2).sum(dim=1)
    noise = ((w_hat - w_).double() ** 2).sum(dim=1).clamp(min=1e-30)
    return (10 * torch.log10(signal / noise)).numpy()


class GranularityPanel(Panel):
    """Bits, granularity and group size over a real weight; error per channel and the cost of scales."""

    def __init__(self, model: torch.nn.Module, layer: str, X=None, y=None, bits: int = 4) -> None:
        self.model, self.layer = model, getattr(model, layer, None)
        if not isinstance(getattr(self.layer, "weight", None), torch.Tensor) or self.layer.weight.dim() != 2:
            raise ValueError(f"layer must name a child with a 2-d weight (a Linear); got {layer!r}")
        self.weight = self.layer.weight.detach().clone()  # (M, K) float32
        self.data = (X, y) if X is not None and y is not None else None
        k = self.weight.shape[1]
        self.group_sizes = [g for g in (8, 16, 32, 64, 128) if g < k and k % g == 0]
        self.order_key = self.weight.abs().amax(dim=1).numpy()  # channel ranges, to sort by
        self.layer_name = layer
        self._fakes: dict[tuple, torch.Tensor] = {}  # per panel, so the panel can be freed
        self.plot = viz.GranularityPlot(self.weight.shape[0])
        finest = ("group", self.group_sizes[0]) if self.group_sizes else ("channel", None)
        channel_db = np.concatenate([_channel_sqnr(self.weight, self._fake(2, "tensor", None)),
                                     _channel_sqnr(self.weight, self._fake(8, *finest))])
        channel_db = channel_db[np.isfinite(channel_db)]
        tensor_db = [v for b in range(2, 9) for _, v in self._options(b).values()]
        names, costs = list(self._options(8)), [c for c, _ in self._options(8).values()]
        self.plot.set_limits((channel_db.min(), channel_db.max()), names, costs,
                             (min(tensor_db), max(tensor_db)))
        controls = {
            "bits": slider(w.IntSlider, "B (bits)", bits, 2, 8, 1),
            "granularity": toggle("", [("per-tensor", "tensor"), ("per-channel", "channel"),
                                       ("per-group", "group")], "channel"),
            "group_size": toggle("group size", self.group_sizes, self.group_sizes[-1]),
        }
        super().__init__(controls, self.plot, rows=[["bits", "granularity"], ["group_size"]])

    def _fake(self, bits: int, granularity: str, group_size: int | None) -> torch.Tensor:
        """The weight after quantize-dequantize at this setting (cached on the panel)."""
        key = (bits, granularity, group_size)
        if key not in self._fakes:
            w_ = self.weight  # (M, K) float32
            if granularity == "group":
                self._fakes[key] = fake_quantize_grouped(w_, bits, group_size)
            else:
                qp = weight_qparams(w_, bits, per_channel=granularity == "channel")
                self._fakes[key] = fake_quantize(w_, qp)  # (M, K) float32
        return self._fakes[key]

    def _options(self, bits: int) -> dict[str, tuple[float, float]]:
        shape, out = tuple(self.weight.shape), {}
        for name, gran, g in [("per-tensor", "tensor", None), ("per-channel", "channel", None)] + [
                (f"g={g}", "group", g) for g in reversed(self.group_sizes)]:
            cost = scale_overhead_bits(shape, gran, g, scale_bits=SCALE_BITS)
            out[name] = (cost, sqnr_db(self.weight, self._fake(bits, gran, g)))
        return out

    def update(self, bits, granularity, group_size) -> str:
        self.controls["group_size"].disabled = granularity != "group"
        g = group_size if granularity == "group" else None
        w_hat = self._fake(bits, granularity, g)
        base = sorted_by(_channel_sqnr(self.weight, self._fake(bits, "tensor", None)), self.order_key)
        mine = sorted_by(_channel_sqnr(self.weight, w_hat), self.order_key)
        options = self._options(bits)
        chosen = {"tensor": "per-tensor", "channel": "per-channel"}.get(granularity, f"g={group_size}")
        self.plot.update(base, mine, options, chosen)
        cost, self.sqnr = options[chosen]
        versus = "" if chosen == "per-tensor" else f" (per-tensor {options['per-tensor'][1]:.1f} dB)"
        text = (f"<b>{chosen}</b> at {bits} bits: SQNR {self.sqnr:.1f} dB{versus}; worst channel "
                f"{mine.min():.1f} dB &nbsp;·&nbsp; "
                f"scales cost {cost:.3f} extra bits per weight (float16 scales) → "
                f"{bits + cost:.3f} bits per weight")
        if self.data:
            with swapped_weight(self.model, self.layer_name, w_hat):
                self.accuracy = evaluate(self.model, *self.data)
            text += f" &nbsp;·&nbsp; test accuracy {100 * self.accuracy:.1f} %"
        return text


class CalibrationPanel(Panel):
    """Observer, percentile, bits and an optional outlier over a real activation; live accuracy."""

    def __init__(self, model: torch.nn.Module, layer: str, X_calib: torch.Tensor, X_test: torch.Tensor,
                 y_test: torch.Tensor, X_outlier: torch.Tensor | None = None, bits: int = 4) -> None:
        self.model, self.layer_name, self.test = model, layer, (X_test, y_test)
        clean = capture(model, layer, X_calib).reshape(-1)  # (n,) float32
        extra = capture(model, layer, X_outlier).reshape(-1) if X_outlier is not None else clean[:0]
        self.acts = {False: clean, True: torch.cat([clean, extra])}
        self.signed = bool(self.acts[True].min() < 0)
        self.clean_max = float(clean.abs().max())
        self.hists = {k: self._histogram(v) for k, v in self.acts.items()}
        self.float_acc = evaluate(model, *self.test)
        self.plot = viz.CalibrationPlot()
        self._ranges: dict = {}
        self._mse_curves: dict = {}  # per panel, so the panel can be freed
        for name in ("mse", "entropy"):  # the slow searches, done once now so sliders stay fast
            for outlier in (False, True):
                for b in range(2, 9):
                    self._range(name, b, outlier, 99.99)
        self.mse_range = {}
        for outlier in (False, True):  # one fixed MSE axis per calibration set, for every bit-width
            curves = [self._mse_curve(b, outlier)[1] for b in range(2, 9)]
            self.mse_range[outlier] = (min(np.nanmin(c) for c in curves), max(np.nanmax(c) for c in curves))
        controls = {
            "observer": toggle("observer", ["minmax", "percentile", "mse", "entropy"], "minmax"),
            "percentile": slider(w.FloatSlider, "percentile", 99.99, 99.0, 100.0, 0.01,
                                 readout_format=".2f"),
            "bits": slider(w.IntSlider, "B (bits)", bits, 2, 8, 1),
            "outlier": w.Checkbox(value=False, description="one outlier image in the calibration set",
                                  indent=False, layout=w.Layout(width="320px")),
        }
        if X_outlier is None:
            controls["outlier"].disabled = True
        super().__init__(controls, self.plot, rows=[["observer"], ["percentile", "bits", "outlier"]])

    def _histogram(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Counts and edges: linear bins over the bulk, logarithmic ones out to far outliers."""
        lo, top = min(float(x.min()), 0.0), float(x.max())
        self.linear_up_to = 1.1 * self.clean_max
        if top > 2 * self.linear_up_to:
            edges = np.concatenate([np.linspace(lo, self.linear_up_to, 200),
                                    np.geomspace(self.linear_up_to, top, 61)[1:]])
        else:
            edges = np.linspace(lo, top, 241)
        return np.histogram(x.numpy(), edges)[0], edges

    def _range(self, name: str, bits: int, outlier: bool, percentile: float) -> tuple:
        """The observer's range ``(lo, hi)`` (cached: entropy's search takes ~0.1 s)."""
        key = (name, bits, outlier, percentile if name == "percentile" else None)
        if key not in self._ranges:
            obs = PercentileObserver(percentile) if name == "percentile" else OBSERVERS[name]()
            obs.update(self.acts[outlier])
            self._ranges[key] = obs.range(bits, signed=self.signed)
        return self._ranges[key]

    def _mse_curve(self, bits: int, outlier: bool) -> tuple[np.ndarray, np.ndarray]:
        """Thresholds and the quantization MSE at each (cached on the panel)."""
        if (bits, outlier) not in self._mse_curves:
            obs = MSEObserver().update(self.acts[outlier])
            top = float(self.acts[outlier].abs().max())
            t = np.geomspace(top / 200, top, 160)
            self._mse_curves[bits, outlier] = t, obs.mse_curve(t, bits, signed=self.signed)
        return self._mse_curves[bits, outlier]

    def update(self, observer, percentile, bits, outlier) -> str:
        x = self.acts[outlier]
        self.controls["percentile"].disabled = observer != "percentile"
        lo, hi = self._range(observer, bits, outlier, percentile)
        qp = choose_qparams(lo, hi, bits, signed=self.signed)
        self.qp = qp
        marks = {n: float(self._range(n, bits, outlier, percentile)[1])
                 for n in ("minmax", "percentile", "mse", "entropy")}
        e = error_split(x, qp)
        thresholds, mse = self._mse_curve(bits, outlier)
        self.plot.set_data(outlier, *self.hists[outlier], self.linear_up_to, thresholds, self.mse_range[outlier])
        self.plot.update(viz.grid_levels(qp), float(hi), thresholds, mse, marks, observer)
        with quantized_output(self.model, self.layer_name, qp):
            self.accuracy = evaluate(self.model, *self.test)
        return (f"<b>{observer}</b>: range [{fmt(float(lo))}, {fmt(float(hi))}], scale = "
                f"{fmt(float(qp.scale))}, zero_point = {int(qp.zero_point)} &nbsp;·&nbsp; "
                f"{100 * e.clipped_fraction:.3f} % of calibration values clipped &nbsp;·&nbsp; MSE = "
                f"{e.total:.2e} (rounding {e.rounding:.2e} + clipping {e.clipping:.2e})<br>"
                f"test accuracy with <b>{self.layer_name}</b>'s output at {bits} bits: "
                f"{100 * self.accuracy:.1f} % (float {100 * self.float_acc:.1f} %)")
