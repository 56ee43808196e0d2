"""Lesson 08's panel plot: accuracy against sparsity (before and after fine-tuning), and each layer's sparsity.

Drawn once: every precomputed curve (one-shot global and per-layer pruning without
training, one-shot + fine-tune with its spread over seeds, gradual pruning, the dense
model). A sparsity move only shifts the marker line and the dots on the curves, and sets
the heights of the per-layer bars on the right (:class:`qkit.viz.base.Blitter`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qkit.viz.base import GRID, Blitter, new_figure

COLOURS = {"global": "#7f7f7f", "layer": "#9467bd", "finetuned": "#d62728", "gradual": "#1f77b4",
           "dense": "#000000"}
LABELS = {"global": "one-shot, global ranking (no training)", "layer": "one-shot, each layer alone (no training)",
          "finetuned": "one-shot + fine-tune (mean; band: min–max over seeds)",
          "gradual": "gradual, Zhu & Gupta schedule (mean, same epochs)"}


class SparsityPlot:
    """Left: test accuracy (%) against sparsity; right: the sparsity of each layer at the chosen point.

    Args:
        sparsities: the x positions (fractions, increasing); shown evenly spaced, labelled in %.
        curves: ``{"global" | "layer" | "finetuned" | "gradual": {sparsity: [accuracies %]}}``; a list of
            several values (seeds) is drawn as its mean with a min–max band. A curve may miss sparsities.
        dense: the dense model's test accuracy (%), a dotted line.
        layers: layer names (bar labels), in model order; sizes: their weight counts (shown under the names).
        title: the figure's title.
    """

    def __init__(self, sparsities: Sequence[float], curves: Mapping[str, Mapping[float, Sequence[float]]],
                 dense: float, layers: Sequence[str], sizes: Sequence[int], title: str = "") -> None:
        self.sparsities = list(sparsities)
        self.fig = new_figure(10.0, 4.8, layout=None)
        self.fig.subplots_adjust(left=0.065, right=0.985, top=0.79, bottom=0.33, wspace=0.25)
        grid = self.fig.add_gridspec(1, 2, width_ratios=(1.35, 1.0))
        ax = self.ax = self.fig.add_subplot(grid[0])
        bx = self.bx = self.fig.add_subplot(grid[1])
        x = {s: i for i, s in enumerate(self.sparsities)}
        self.dots = {}
        for key in ("global", "layer", "finetuned", "gradual"):
            if key not in curves:
                continue
            pts = sorted(curves[key].items())
            xs = [x[s] for s, _ in pts]
            mean = [float(np.mean(v)) for _, v in pts]
            ax.plot(xs, mean, "o-", ms=3.5, lw=1.6, color=COLOURS[key], label=LABELS[key], zorder=3)
            if any(len(v) > 1 for _, v in pts):
                ax.fill_between(xs, [min(v) for _, v in pts], [max(v) for _, v in pts], color=COLOURS[key],
                                alpha=0.18, lw=0, zorder=2)
            self.dots[key] = ax.plot([], [], "o", ms=9, mfc="none", mec=COLOURS[key], mew=2, zorder=5)[0]
        ax.axhline(dense, color=COLOURS["dense"], lw=0.9, ls=":", label=f"dense model ({dense:.1f} %)")
        ax.set_xticks(range(len(self.sparsities)), [f"{100 * s:g}" for s in self.sparsities])
        ax.set_xlabel("sparsity (% of conv/linear weights set to 0; not to scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 104)
        ax.grid(alpha=0.3)
        self.fig.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(0.06, 0.935), ncol=3,
                        fontsize=7, frameon=False)
        self.marker = ax.axvline(np.nan, color="black", lw=1, ls="--")

        xb = np.arange(len(layers))
        self.bars = bx.bar(xb, np.zeros(len(layers)), width=0.7, color=COLOURS["global"])
        bx.set_xticks(xb, [f"{n} ({k:,})" for n, k in zip(layers, sizes)], rotation=60, ha="right", fontsize=7)
        bx.set_ylim(0, 105)
        bx.set_ylabel("weights of the layer set to 0 (%)")
        bx.grid(alpha=0.3, axis="y", color=GRID)
        self.overall = bx.axhline(np.nan, color="black", lw=1, ls="--")
        self.bar_title = bx.set_title("", fontsize=9)
        self.fig.suptitle(title, fontsize=10, y=0.99)
        self.blitter = Blitter(self.fig, [self.marker, *self.dots.values(), *self.bars, self.overall, self.bar_title])

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, sparsity: float, accuracies: Mapping[str, float], layer_sparsity: Sequence[float],
               colour: str, caption: str) -> None:
        """Mark ``sparsity``; ring each curve's ``accuracies[key]`` (%); bars = ``layer_sparsity`` (fractions)."""
        if sparsity not in self.sparsities:
            raise ValueError(f"sparsity must be one of {self.sparsities}; got {sparsity}")
        i = self.sparsities.index(sparsity)
        self.marker.set_xdata([i, i])
        for key, dot in self.dots.items():
            if key in accuracies:
                dot.set_data([i], [accuracies[key]])
            else:
                dot.set_data([], [])
        for bar, s in zip(self.bars, layer_sparsity):
            bar.set_height(100 * s)
            bar.set_color(colour)
        self.overall.set_ydata([100 * sparsity, 100 * sparsity])
        self.bar_title.set_text(caption)
