"""Lesson 02's panel plots: error per channel by granularity, and an activation's calibration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.collections import LineCollection

from qkit.viz.base import CLIPPED, GRID, INSIDE, new_figure, png_bytes


class GranularityPlot:
    """Left: SQNR of every output channel (sorted by range). Right: SQNR vs bits spent on scales."""

    def __init__(self, n_channels: int) -> None:
        self.fig = new_figure(9.0, 3.5, layout=None)
        self.fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.15, wspace=0.25)
        self.ax_ch, self.ax_cost = self.fig.subplots(1, 2, width_ratios=[1.4, 1.0])
        ax = self.ax_ch
        x = np.arange(n_channels)
        self.base = ax.plot(x, np.zeros(n_channels), color=GRID, lw=1, label="per-tensor")[0]
        self.current = ax.plot(x, np.zeros(n_channels), color=INSIDE, lw=1.4, label="chosen")[0]
        ax.set_xlim(0, n_channels - 1)
        ax.set_xlabel("output channel (sorted: narrowest range left)")
        ax.set_ylabel("SQNR of the channel (dB)")
        ax.set_title("error channel by channel", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
        ax = self.ax_cost
        self.points = ax.plot([], [], "o", color=GRID, ms=5)[0]
        self.labels = [ax.text(0, 0, "", fontsize=7, ha="left", va="bottom") for _ in range(8)]
        self.mark = ax.plot([], [], "o", ms=11, mfc="none", mec="black", mew=1.6)[0]
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlabel("extra bits per weight for scales")
        ax.set_ylabel("SQNR of the whole tensor (dB)")
        ax.set_title("what finer grids cost", fontsize=10)
        ax.grid(alpha=0.3)

    def render(self) -> bytes:
        """PNG of the current state."""
        return png_bytes(self.fig)

    def update(self, per_tensor: np.ndarray, current: np.ndarray,
               options: Mapping[str, tuple[float, float]], chosen: str) -> None:
        """Per-channel SQNRs (already sorted) and, per option name, (overhead bits, SQNR)."""
        self.base.set_ydata(per_tensor)
        self.current.set_ydata(current)
        both = np.concatenate([per_tensor, current])
        both = both[np.isfinite(both)]
        self.ax_ch.set_ylim(both.min() - 2, both.max() + 2)
        xs, ys = zip(*options.values())
        self.points.set_data(xs, ys)
        for text, (name, (ox, oy)) in zip(self.labels, options.items()):
            text.set_position((ox, oy))
            text.set_text(" " + name)
        self.mark.set_data([options[chosen][0]], [options[chosen][1]])
        self.ax_cost.set_xlim(-0.002, max(xs) * 3)
        self.ax_cost.set_ylim(min(ys) - 2, max(ys) + 3)


class CalibrationPlot:
    """Left: the activation histogram, the grid and the clipped part. Right: MSE vs clip threshold."""

    def __init__(self, counts: np.ndarray, edges: np.ndarray) -> None:
        self.fig = new_figure(9.0, 3.6, layout=None)
        self.fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.15, wspace=0.25)
        self.ax_h, self.ax_mse = self.fig.subplots(1, 2, width_ratios=[1.3, 1.0])
        ax = self.ax_h
        self.hist = ax.stairs(counts, edges, fill=True, color="#9ecae1")
        self.levels = ax.add_collection(LineCollection([], colors="#08306b", lw=0.7))
        self.clipped = ax.axvspan(0, 1, color=CLIPPED, alpha=0.15, lw=0)
        self.note = ax.text(0.98, 0.96, "", transform=ax.transAxes, ha="right", va="top", fontsize=8)
        ax.set_yscale("log")
        ax.set_xlabel("activation value")
        ax.set_ylabel("count (log scale)")
        ax.set_title("calibration activations, the grid, the clipped part", fontsize=10)
        ax = self.ax_mse
        self.curve = ax.semilogy([], [], color="black", lw=1.2)[0]
        self.others = ax.vlines([], 0, 1, colors=GRID, linestyles=":", lw=1)
        self.chosen = ax.axvline(0, color=CLIPPED, lw=1.5)
        self.names = [ax.text(0, 0, "", fontsize=7, rotation=90, va="bottom", ha="right") for _ in range(5)]
        ax.set_xlabel("clipping threshold t (range [0, t])")
        ax.set_ylabel("quantization MSE")
        ax.set_title("error against threshold", fontsize=10)
        ax.grid(alpha=0.3)

    def render(self) -> bytes:
        """PNG of the current state."""
        return png_bytes(self.fig)

    def set_histogram(self, counts: np.ndarray, edges: np.ndarray) -> None:
        """Swap in another calibration histogram (same number of bins)."""
        self.hist.set_data(counts, edges)
        self.ax_h.set_ylim(0.8, counts.max() * 2)

    def update(self, levels: np.ndarray, hi: float, view: float, beyond: str,
               thresholds: np.ndarray, mse: np.ndarray, marks: Mapping[str, float],
               chosen: str) -> None:
        """Grid ``levels`` (float values), range end ``hi``, x-view end, and the MSE curve."""
        top = self.ax_h.get_ylim()[1]
        self.levels.set_segments([[(v, 0.8), (v, top)] for v in levels if v <= view])
        self.levels.set_alpha(min(0.8, 0.1 + 12 / len(levels)))
        self.clipped.set_x(hi)
        self.clipped.set_width(max(view - hi, 0))
        self.ax_h.set_xlim(0, view)
        self.note.set_text(beyond)
        self.curve.set_data(thresholds, mse)
        lo_mse, hi_mse = np.nanmin(mse), np.nanmax(mse)
        self.ax_mse.set_xlim(thresholds[0], thresholds[-1])
        self.ax_mse.set_ylim(lo_mse / 2, hi_mse * 2)
        self.others.set_segments([[(t, lo_mse / 2), (t, hi_mse * 2)] for t in marks.values()])
        self.chosen.set_xdata([marks[chosen]] * 2)
        for text, (name, t) in zip(self.names, marks.items()):
            text.set_position((t, lo_mse / 1.8))
            text.set_text(name)
        for text in self.names[len(marks):]:
            text.set_text("")


def sorted_by(values: np.ndarray, key: Sequence[float]) -> np.ndarray:
    """``values`` reordered by ascending ``key`` (e.g. per-channel SQNR by channel range)."""
    return np.asarray(values)[np.argsort(np.asarray(key), kind="stable")]
