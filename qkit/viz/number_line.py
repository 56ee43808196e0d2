"""The number-line plot of lesson 01: samples mapped onto a grid, and the error against x."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle

from qkit.qparams import QParams
from qkit.viz.base import CLIPPED, GRID, INSIDE, ZERO, fake_quantize_np, grid_levels, new_figure, png_bytes


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
        self.half_step = ax.add_patch(Rectangle((0, 0), 1, 1, color=INSIDE, alpha=0.12, lw=0))
        self.err_line = ax.plot([], [], color="black", lw=1.0)[0]
        self.ends = ax.vlines([0, 0], 0, 1, colors=CLIPPED, linestyles="--", lw=0.9)
        ax.axhline(0, color=GRID, lw=0.6)
        ax.set_xlabel("x (float value)")
        ax.set_ylabel("error  x̂ − x")
        ax.tick_params(labelsize=8)

    def render(self) -> bytes:
        """PNG of the current state."""
        return png_bytes(self.fig)

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
