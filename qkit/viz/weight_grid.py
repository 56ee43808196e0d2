"""The weight-grid plot of lesson 01: a weight histogram under the grid's levels, SQNR vs bits."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.collections import LineCollection

from qkit.error import DB_PER_BIT
from qkit.qparams import QParams
from qkit.viz.base import grid_levels, new_figure, png_bytes


class WeightGridPlot:
    """A weight histogram with the grid's levels drawn over it, and SQNR against bits."""

    def __init__(self, weight: torch.Tensor, sqnr_by_bits: dict[str, dict[int, float]]) -> None:
        w = weight.detach().reshape(-1).double().numpy()
        self.fig = new_figure(9.0, 3.5, layout=None)
        self.fig.subplots_adjust(left=0.08, right=0.98, top=0.91, bottom=0.14, wspace=0.22)
        self.ax_hist, self.ax_sqnr = self.fig.subplots(1, 2, width_ratios=[1.5, 1.0])
        ax = self.ax_hist
        counts, edges = np.histogram(w, bins=160)
        ax.stairs(counts, edges, fill=True, color="#9ecae1")
        ranked = np.sort(counts)
        self.top = ranked[-3] * 1.25 if ranked[-1] > 2 * ranked[-3] else ranked[-1] * 1.08
        if ranked[-1] > self.top:  # a spike (e.g. weights of always-blank pixels): cap the axis
            i = int(counts.argmax())
            ax.annotate(f"{counts[i]} ↑", ((edges[i] + edges[i + 1]) / 2, self.top * 0.97),
                        ha="left", va="top", fontsize=8, xytext=(4, 0), textcoords="offset points")
        ax.set_ylim(0, self.top)
        self.view = (edges[0] - 0.05 * np.ptp(w), edges[-1] + 0.05 * np.ptp(w))
        ax.set_xlim(*self.view)
        self.levels = ax.add_collection(
            LineCollection([], colors="#08306b", lw=0.7, alpha=0.8, animated=True))
        self.outside = ax.text(0.01, 0.97, "", transform=ax.transAxes, ha="left", va="top",
                               fontsize=8, color="#08306b", animated=True)
        ax.set_xlabel("weight value")
        ax.set_ylabel("number of weights")
        ax.set_title("weights and the grid's levels", fontsize=10)
        ax.tick_params(labelsize=8)
        ax = self.ax_sqnr
        for name, curve in sqnr_by_bits.items():
            bits = sorted(curve)
            ax.plot(bits, [curve[b] for b in bits], "o-", ms=3.5, lw=1.2, label=name)
        bits = np.array(sorted(next(iter(sqnr_by_bits.values()))))
        first = next(iter(sqnr_by_bits.values()))
        ref = first[bits[-1]] + DB_PER_BIT * (bits - bits[-1])
        ax.plot(bits, ref, ":", color="black", lw=1, label="6.02 dB / bit")
        self.marker = ax.plot([], [], "o", ms=11, mfc="none", mec="black", mew=1.6, animated=True)[0]
        ax.set_xlabel("bits B")
        ax.set_ylabel("SQNR (dB)")
        ax.set_title("signal-to-quantization-noise ratio", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        self.fig.canvas.draw()  # the static part, drawn once ...
        self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)

    def render(self) -> bytes:
        """PNG of the current state: ... then only the moving artists are drawn over it."""
        self.fig.canvas.restore_region(self.background)
        self.ax_hist.draw_artist(self.levels)
        self.ax_hist.draw_artist(self.outside)
        self.ax_sqnr.draw_artist(self.marker)
        return png_bytes(self.fig, draw=False)

    def update(self, qp: QParams, bits: int, sqnr: float) -> None:
        """Show the levels of ``qp`` and mark the current (bits, SQNR) point."""
        levels = grid_levels(qp)
        self.levels.set_segments([[(v, 0), (v, self.top)] for v in levels])
        self.levels.set_alpha(min(0.8, 0.1 + 12 / len(levels)))  # 256 lines must not hide the data
        hidden = int(((levels < self.view[0]) | (levels > self.view[1])).sum())
        self.outside.set_text(f"{hidden} of {len(levels)} levels lie outside this view" if hidden else "")
        self.marker.set_data([bits], [sqnr])
