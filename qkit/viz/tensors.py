"""Lesson 02's panel plots: error per channel by granularity, and an activation's calibration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.collections import LineCollection

from qkit.viz.base import CLIPPED, GRID, INSIDE, Blitter, new_figure


class GranularityPlot:
    """Left: SQNR of every output channel (sorted by range). Right: one bar per granularity,
    its SQNR, labelled with the extra bits per weight its scales cost."""

    def __init__(self, n_channels: int) -> None:
        self.fig = new_figure(9.0, 3.5, layout=None)
        self.fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.15, wspace=0.25)
        self.ax_ch, self.ax_cost = self.fig.subplots(1, 2, width_ratios=[1.4, 1.0])
        ax = self.ax_ch
        x = np.arange(n_channels)
        self.base = ax.plot(x, np.zeros(n_channels), color=GRID, lw=1)[0]
        self.current = ax.plot(x, np.zeros(n_channels), color=INSIDE, lw=1.4)[0]
        ax.set_xlim(0, n_channels - 1)
        ax.set_xlabel("output channel (sorted: narrowest range left)")
        ax.set_ylabel("SQNR of the channel (dB)")
        ax.set_title("error per channel: per-tensor (grey), your choice (blue)", fontsize=10)
        ax.grid(alpha=0.3)
        self.ax_cost.set_title("SQNR of the tensor, and the scales' cost", fontsize=10)
        self.ax_cost.text(0.03, 0.96, "above each bar: the extra bits per weight\nthat its float16 scales cost",
                          transform=self.ax_cost.transAxes, ha="left", va="top", fontsize=7.5)
        self.ax_cost.set_ylabel("SQNR of the whole tensor (dB)")
        self.ax_cost.grid(alpha=0.3, axis="y")
        self.bars, self.costs, self.names = [], [], []

    def set_limits(self, channel_db: tuple[float, float], names: list[str], costs: list[float],
                   tensor_db: tuple[float, float]) -> None:
        """Fix the axes once for every setting (so only the data moves): one bar per option."""
        self.ax_ch.set_ylim(channel_db[0] - 2, channel_db[1] + 2)
        ax = self.ax_cost
        ax.set_xticks(range(len(names)), names, fontsize=8, rotation=20)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylim(min(0.0, tensor_db[0] - 2), tensor_db[1] + 6)
        self.bars = list(ax.bar(range(len(names)), np.zeros(len(names)), color=GRID, width=0.7))
        self.costs = [ax.text(i, 0, f"+{c:.3g}", ha="center", va="bottom", fontsize=7)
                      for i, c in enumerate(costs)]
        self.names = list(names)
        self.blitter = Blitter(self.fig, [self.base, self.current, *self.bars, *self.costs])

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, per_tensor: np.ndarray, current: np.ndarray,
               options: Mapping[str, tuple[float, float]], chosen: str) -> None:
        """Per-channel SQNRs (already sorted) and, per option name, (overhead bits, SQNR)."""
        self.base.set_ydata(per_tensor)
        self.current.set_ydata(current)
        for bar, text, name in zip(self.bars, self.costs, self.names):
            sqnr = options[name][1]
            bar.set_height(sqnr)
            bar.set_color(INSIDE if name == chosen else GRID)
            text.set_y(sqnr + 0.3)


class CalibrationPlot:
    """Left: the activation histogram, the grid and the clipped part. Right: MSE vs clip threshold.

    Each calibration set (with or without the outlier) has its own fixed axes,
    drawn once; a slider move only redraws the grid, the clipped span and the
    threshold marks.
    """

    def __init__(self) -> None:
        self.fig = new_figure(9.0, 3.6, layout=None)
        self.fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.15, wspace=0.25)
        self.ax_h, self.ax_mse = self.fig.subplots(1, 2, width_ratios=[1.3, 1.0])
        ax = self.ax_h
        self.hist = ax.stairs([1.0], [0.0, 1.0], fill=True, color="#9ecae1")
        self.levels = ax.add_collection(LineCollection([], colors="#08306b", lw=0.7))
        self.clipped = ax.axvspan(0, 1, color=CLIPPED, alpha=0.15, lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("activation value")
        ax.set_ylabel("count (log scale)")
        ax.set_title("calibration activations, the grid, the clipped part", fontsize=10)
        ax = self.ax_mse
        self.curve = ax.semilogy([], [], color="black", lw=1.2)[0]
        self.others = ax.vlines([], 0, 1, colors=GRID, linestyles=":", lw=1)
        self.chosen = ax.axvline(0, color=CLIPPED, lw=1.5)
        self.names = [ax.text(0, 0, "", fontsize=7, rotation=90, va="bottom", ha="right",
                              transform=ax.get_xaxis_transform()) for _ in range(5)]
        ax.set_xlabel("clipping threshold t (range [0, t])")
        ax.set_ylabel("quantization MSE")
        ax.set_title("error against threshold", fontsize=10)
        ax.grid(alpha=0.3)
        self.blitter = Blitter(self.fig, [self.levels, self.clipped, self.curve, self.others, self.chosen,
                                          *self.names])
        self.state = None

    def set_data(self, state, counts: np.ndarray, edges: np.ndarray, linear_up_to: float,
                 thresholds: np.ndarray, mse_range: tuple[float, float]) -> None:
        """Show one calibration set: its histogram and fixed limits for both plots.

        The x axis is linear up to ``linear_up_to`` (the bulk of the data) and
        logarithmic beyond, so far outliers stay in view without squashing the bulk.
        """
        if state == self.state:
            return
        self.state = state
        self.hist.set_data(counts, edges)
        self.ax_h.set_ylim(0.8, counts.max() * 2)
        if edges[-1] > 2 * linear_up_to:
            self.ax_h.set_xscale("symlog", linthresh=linear_up_to, linscale=4)
            ticks = [t for t in (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500) if t <= edges[-1]]
            self.ax_h.set_xticks(ticks, [f"{t:g}" for t in ticks])
            self.ax_h.set_xlabel("activation value (linear up to the bulk's end, logarithmic beyond)")
        else:
            self.ax_h.set_xscale("linear")
            self.ax_h.set_xlabel("activation value")
        self.ax_h.set_xlim(min(edges[0], 0.0), edges[-1] * 1.05)
        self.ax_mse.set_xlim(thresholds[0], thresholds[-1] * 1.04)  # min-max's mark off the border
        self.ax_mse.set_ylim(mse_range[0] / 2, mse_range[1] * 2)

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render(self.state)

    def update(self, levels: np.ndarray, hi: float, thresholds: np.ndarray, mse: np.ndarray,
               marks: Mapping[str, float], chosen: str) -> None:
        """Grid ``levels`` (float values), range end ``hi``, the MSE curve and each observer's threshold."""
        top, right = self.ax_h.get_ylim()[1], self.ax_h.get_xlim()[1]
        self.levels.set_segments([[(v, 0.8), (v, top)] for v in levels])
        self.levels.set_alpha(min(0.8, 0.1 + 12 / len(levels)))
        self.clipped.set_x(hi)
        self.clipped.set_width(max(right - hi, 0))
        self.curve.set_data(thresholds, mse)
        lo_y, hi_y = self.ax_mse.get_ylim()
        self.others.set_segments([[(t, lo_y), (t, hi_y)] for t in marks.values()])
        self.chosen.set_xdata([marks[chosen]] * 2)
        for text, (name, t, y, ha, va) in zip(self.names, self.label_places(thresholds, mse, marks)):
            text.set_position((t, y))
            text.set_text(name)
            text.set_ha(ha)
            text.set_va(va)

    def label_places(self, thresholds: np.ndarray, mse: np.ndarray, marks: Mapping[str, float]):
        """Where each observer's name goes: beside its line, above or below the curve (never on it).

        The names are vertical; each one is put on the side of the curve (at its
        threshold) with more room, in axes-fraction heights, and two lines closer
        than a name's width get their names on opposite sides of the line.
        """
        ax = self.ax_mse
        lo_y, hi_y = (np.log10(v) for v in ax.get_ylim())
        ok = np.isfinite(mse) & (mse > 0)
        px_per_x = ax.transData.transform([[1, 1]])[0, 0] - ax.transData.transform([[0, 1]])[0, 0]
        height_px = ax.get_window_extent().height
        out, last_x, last_ha = [], -np.inf, "left"
        for name, t in sorted(marks.items(), key=lambda kv: kv[1]):
            on_curve = (np.interp(np.log10(t), np.log10(thresholds[ok]), np.log10(mse[ok])) - lo_y) / (hi_y - lo_y)
            need = (6 + 4.3 * len(name)) / height_px  # a 7-point vertical name, in axes fractions
            if 1 - on_curve - 0.04 >= need or on_curve < 1 - on_curve:
                y, va = min(on_curve + 0.04, 1 - need), "bottom"
            else:
                y, va = max(on_curve - 0.04, need), "top"
            x_px = (t - ax.get_xlim()[0]) * px_per_x
            ha = ("left" if last_ha == "right" else "right") if x_px - last_x < 12 else "right"
            ha = "left" if x_px < 12 else ha  # no room left of a line at the axis' left edge
            out.append((name, t, y, ha, va))
            last_x, last_ha = x_px, ha
        return out

def sorted_by(values: np.ndarray, key: Sequence[float]) -> np.ndarray:
    """``values`` reordered by ascending ``key`` (e.g. per-channel SQNR by channel range)."""
    return np.asarray(values)[np.argsort(np.asarray(key), kind="stable")]
