"""Lesson 01's panel plots: a range mapped onto a B-bit grid (number line), bits over a real weight.

``NumberLinePlot``: float samples mapped onto the grid (top), error vs x (bottom).
``WeightGridPlot``: a weight histogram under the grid's levels, SQNR vs bits.
Both follow the grid equation ``x ≈ scale * (q - zero_point)``.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle

from qkit.error import DB_PER_BIT
from qkit.qparams import QParams
from qkit.viz.base import (CLIPPED, GRID, INSIDE, ZERO, Blitter, fake_quantize_np, grid_levels, new_figure,
                          png_bytes)


class NumberLinePlot:
    """Two panels: float samples mapped onto the grid (top), error vs x (bottom)."""

    def __init__(self, n_samples: int = 13) -> None:
        self.n_samples = n_samples
        self.fig = new_figure(9.0, 4.4, layout=None)
        self.fig.subplots_adjust(left=0.1, right=0.98, top=0.93, bottom=0.11, hspace=0.28)
        self.ax_map, self.ax_err = self.fig.subplots(2, 1, height_ratios=[1.15, 1.0], sharex=True)
        ax = self.ax_map
        ax.set_ylim(-0.45, 1.35)
        ax.set_yticks([0, 1], ["grid  x̂", "float  x"])
        ax.axhline(1, color="black", lw=0.8)
        ax.axhline(0, color="black", lw=0.8)
        self.band = ax.add_patch(Rectangle((0, 0.9), 1, 0.2, color="#ffbf00", alpha=0.35, lw=0))
        self.levels = ax.add_collection(LineCollection([], colors=GRID, lw=0.8))
        self.maps = ax.add_collection(LineCollection([], lw=1.3))
        self.zero = ax.plot([0], [0], "o", color=ZERO, ms=7, zorder=5)[0]
        self.labels = [ax.text(0, -0.3, "", ha="center", va="center", fontsize=8) for _ in range(3)]
        ax.set_title("[A1, A2] in amber; each sample's path to the grid: blue = rounded, red = clipped",
                     fontsize=10)
        ax.tick_params(axis="x", labelbottom=False)  # the error plot below shares x
        ax = self.ax_err
        self.half_step = ax.add_patch(Rectangle((0, 0), 1, 1, color=INSIDE, alpha=0.12, lw=0,
                                                label="±scale/2: rounding error stays inside"))
        self.err_line = ax.plot([], [], color="black", lw=1.0, label="error of each x")[0]
        self.ends = ax.vlines([0, 0], 0, 1, colors=CLIPPED, linestyles="--", lw=0.9,
                              label="grid's ends: clipped beyond")
        # the legend sits in the gap above the error plot, outside both axes: drawn once, never redrawn
        top = ax.get_position().y1
        self.legend = self.fig.legend(handles=[self.err_line, self.half_step, self.ends], fontsize=7, ncol=3,
                                      loc="lower center", bbox_to_anchor=(0.54, top), frameon=False,
                                      borderaxespad=0.1)
        ax.axhline(0, color=GRID, lw=0.6)
        ax.set_xlabel("x (float value)")
        ax.set_ylabel("error  x̂ − x")
        ax.tick_params(labelsize=8)
        self.blitter = Blitter(self.fig, [], live_axes=[self.ax_map, self.ax_err])

    def render(self) -> bytes:
        """PNG of the current state (both axes follow the range, so they are redrawn whole)."""
        return self.blitter.render()

    def update(self, qp: QParams, a1: float, a2: float) -> dict[str, float]:
        """Redraw for grid ``qp`` chosen for the range ``[a1, a2]``; return the measured errors."""
        levels = grid_levels(qp)
        lo, hi = levels[0], levels[-1]
        span = max(a2, hi, 0.0) - min(a1, lo, 0.0) or 1.0
        view = (min(a1, lo, 0.0) - 0.22 * span, max(a2, hi, 0.0) + 0.22 * span)
        self.ax_err.set_xlim(*view)
        self.band.set_x(a1)
        self.band.set_width(max(a2 - a1, 1e-9))
        self.levels.set_segments([[(v, -0.09), (v, 0.09)] for v in levels])
        xs = np.linspace(view[0] + 0.04 * span, view[1] - 0.04 * span, self.n_samples)
        x_hat = fake_quantize_np(xs, qp)
        clipped = (xs < lo - 1e-9 * span) | (xs > hi + 1e-9 * span)
        self.maps.set_segments([[(x, 1.0), (h, 0.0)] for x, h in zip(xs, x_hat)])
        self.maps.set_colors([CLIPPED if c else INSIDE for c in clipped])
        self.zero.set_xdata([0.0])
        for text, q, v in zip(self.labels, (qp.qmin, int(qp.zero_point), qp.qmax), (lo, 0.0, hi)):
            text.set_position((v, -0.3))
            text.set_text(f"q={q}")
        if int(qp.zero_point) in (qp.qmin, qp.qmax):
            self.labels[1].set_text("")
        dense = np.linspace(view[0], view[1], 1201)
        err = fake_quantize_np(dense, qp) - dense
        self.err_line.set_data(dense, err)
        step = float(qp.scale)
        self.half_step.set_bounds(lo, -step / 2, hi - lo, step)
        top = max(np.abs(err).max(), step) * 1.1
        self.ax_err.set_ylim(-top, top)
        self.ends.set_segments([[(lo, -top), (lo, top)], [(hi, -top), (hi, top)]])
        inside = dense[(dense >= a1) & (dense <= a2)]
        worst = float(np.abs(fake_quantize_np(inside, qp) - inside).max()) if inside.size else 0.0
        tol = 1e-6 * span
        used = int(((levels >= a1 - tol) & (levels <= a2 + tol)).sum())
        return {"lo": lo, "hi": hi, "worst_in_range": worst, "levels_used": used}


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
