"""Lesson 11's panel plot: one recipe's stages, file bytes on the left and test accuracy on the right.

Drawn once: axes, labels, the budget lines. A recipe change only sets the bar heights,
their byte labels, the accuracy points and their seed ranges (:class:`qkit.viz.base.Blitter`);
text is the slowest thing Agg draws, so the accuracies are in the panel's readout, not on the points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qkit.viz.base import GRID, Blitter, new_figure

COLOURS = {"original": "#7f7f7f", "distilled": "#2ca02c", "pruned": "#ff7f0e", "quantized": "#1f77b4",
           "packed": "#d62728", "onnx": "#9467bd"}
NAMES = {"original": "original", "distilled": "distilled", "pruned": "pruned", "quantized": "QAT int",
         "packed": "final", "onnx": "ONNX"}


class StagePlot:
    """Left: bytes of each stage's file (log); right: test accuracy per stage (mean; bar: worst–best seed).

    Args:
        stages: the stage names, in pipeline order.
        original_bytes: the float32 original's file (the 1× line, and the 20× budget line below it).
        original_accuracy: its test accuracy (the budget line 1.5 points below it).
        size_range: (low, high) bytes of the left axis; acc_range: (low, high) % of the right axis.
    """

    def __init__(self, stages: Sequence[str], original_bytes: int, original_accuracy: float,
                 size_range: tuple[float, float], acc_range: tuple[float, float], *, budget_ratio: float = 20.0,
                 budget_drop: float = 1.5) -> None:
        self.stages = list(stages)
        self.fig = new_figure(10.0, 3.8, layout=None)
        self.fig.subplots_adjust(left=0.08, right=0.985, top=0.86, bottom=0.14, wspace=0.25)
        ax, bx = self.ax, self.bx = self.fig.subplots(1, 2)
        x = np.arange(len(self.stages))
        labels = [NAMES.get(s, s) for s in self.stages]
        colours = [COLOURS.get(s, "#1f77b4") for s in self.stages]
        self.bars = ax.bar(x, np.ones(len(x)), width=0.65, color=colours)
        ax.set_yscale("log")
        ax.set_ylim(*size_range)
        ax.axhline(original_bytes / budget_ratio, color="black", lw=0.9, ls="--",
                   label=f"{budget_ratio:g}× smaller than the original")
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("file size (bytes, log scale)")
        ax.set_xlabel("stage")
        ax.legend(fontsize=7.5, loc="upper right")
        ax.grid(alpha=0.3, axis="y", color=GRID, which="both")
        self.size_texts = [ax.text(i, 1, "", ha="center", va="bottom", fontsize=7) for i in x]

        bx.axhline(100 * original_accuracy - budget_drop, color="black", lw=0.9, ls="--",
                   label=f"{budget_drop:g} points below the original")
        self.ranges = [bx.plot([i, i], [np.nan, np.nan], color=c, lw=2.5, alpha=0.5)[0] for i, c in zip(x, colours)]
        self.points = [bx.plot([i], [np.nan], "o", color=c, ms=7)[0] for i, c in zip(x, colours)]
        bx.set_xticks(x, labels, fontsize=8)
        bx.set_xlim(-0.5, len(x) - 0.2)
        bx.set_ylim(*acc_range)
        bx.set_ylabel("test accuracy (%)")
        bx.set_xlabel("stage")
        bx.legend(fontsize=7.5, loc="lower left")
        bx.grid(alpha=0.3, axis="y", color=GRID)
        self.title = self.fig.suptitle("", fontsize=10)
        moving = [*self.bars, *self.size_texts, *self.ranges, *self.points, self.title]
        self.blitter = Blitter(self.fig, moving)

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, sizes: Sequence[int], accuracies: Sequence[float], lows: Sequence[float],
               highs: Sequence[float], title: str) -> None:
        """Bar heights ``sizes`` (bytes); accuracy points and ranges (fractions), one per stage."""
        for bar, text, n in zip(self.bars, self.size_texts, sizes):
            bar.set_height(n)
            text.set_position((bar.get_x() + bar.get_width() / 2, n * 1.05))
            text.set_text(f"{n / 1000:.1f} kB")
        for line, point, a, lo, hi in zip(self.ranges, self.points, accuracies, lows, highs):
            line.set_ydata([100 * lo, 100 * hi])
            point.set_ydata([100 * a])
        self.title.set_text(title)
