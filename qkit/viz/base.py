"""Shared plotting helpers: Agg figures, PNG encoding, grid levels, the kit's colours."""

from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from qkit.qparams import QParams
from qkit.quant import fake_quantize

INSIDE, CLIPPED, GRID, ZERO = "#1f77b4", "#d62728", "#7f7f7f", "#2ca02c"


def new_figure(width: float, height: float, dpi: int = 100, layout: str | None = "constrained") -> Figure:
    """A figure with an Agg canvas of its own (not registered with pyplot).

    Panels pass ``layout=None`` and fixed margins: a layout engine re-measures
    every label on every redraw, which costs more than the drawing itself.
    """
    fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, draw: bool = True) -> bytes:
    """Render ``fig`` with Agg (unless ``draw=False``: already rendered) and encode a PNG."""
    if draw:
        fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())  # (H, W, 4) uint8
    buf = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def grid_levels(qp: QParams) -> np.ndarray:
    """Float value of every level of a per-tensor grid: ``scale * (q - zero_point)``."""
    q = np.arange(qp.qmin, qp.qmax + 1, dtype=np.float64)
    return float(qp.scale) * (q - int(qp.zero_point))


def fake_quantize_np(x: np.ndarray, qp: QParams) -> np.ndarray:
    """Quantize-dequantize a numpy array with the kit's own ``fake_quantize``."""
    return fake_quantize(torch.from_numpy(x.astype(np.float32)), qp).double().numpy()


class Blitter:
    """Draw a figure's static part once (per ``key``), then only what moves.

    A panel's slider move changes a few artists (``moving``) and perhaps whole
    axes whose limits follow the data (``live_axes``); axes frames, ticks,
    labels and static data are drawn once into a background bitmap, which is
    what makes a redraw take milliseconds instead of tens of them.
    """

    def __init__(self, fig: Figure, moving, live_axes=(), keep: int = 4) -> None:
        self.fig, self.moving, self.live_axes = fig, list(moving), list(live_axes)
        for artist in self.moving:
            artist.set_animated(True)
        self.backgrounds: dict = {}  # key -> bitmap of the static part
        self.keep = keep

    def forget(self) -> None:
        """Drop every stored background (after changing what the static part shows)."""
        self.backgrounds.clear()

    def render(self, key=0) -> bytes:
        """PNG of the figure; the static part is drawn once per ``key`` and kept."""
        canvas = self.fig.canvas
        if key not in self.backgrounds:
            for ax in self.live_axes:
                ax.set_visible(False)
            canvas.draw()
            if len(self.backgrounds) >= self.keep:
                self.backgrounds.pop(next(iter(self.backgrounds)))
            self.backgrounds[key] = canvas.copy_from_bbox(self.fig.bbox)
            for ax in self.live_axes:
                ax.set_visible(True)
        canvas.restore_region(self.backgrounds[key])
        renderer = canvas.get_renderer()
        for ax in self.live_axes:
            ax.draw(renderer)
        for artist in self.moving:
            if artist.get_visible():
                artist.draw(renderer)
        return png_bytes(self.fig, draw=False)
