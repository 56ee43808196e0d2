"""Lesson 07's panel plot: the size–accuracy plane of mixed precision, and the chosen per-layer bits.

Drawn once: every precomputed point (uniform widths, random allocations at every
budget, both greedy curves) and their Pareto front. A budget move only shifts the
budget line, rings the allocations found at that budget, and sets the heights of
the per-layer bar chart on the right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qkit.viz.base import GRID, Blitter, new_figure

COLOURS = {"greedy": "#d62728", "plain": "#ff7f0e", "random": "#7f7f7f", "uniform": "#1f77b4", "front": "#2ca02c"}
LABELS = {"greedy": "greedy, measured moves", "plain": "greedy, added single-layer drops",
          "random": "random allocations", "uniform": "uniform widths", "front": "Pareto front (all points)"}


class BudgetPlot:
    """Left: test accuracy against weight bytes; right: bits per layer of the allocation shown.

    Args:
        uniform: ``{bits: (bytes, accuracy %)}``.
        curves: ``{"greedy" | "plain": (budgets, bytes, accuracies %)}`` — one value per budget.
        randoms: ``(bytes, accuracies %)`` of every random allocation.
        front: ``(bytes, accuracies %)`` of the Pareto front, by increasing size.
        layers: the layer names (bar labels); choices: the widths (32 = float).
        fp32_bytes: float32 weight bytes (the top axis shows budgets as a fraction of it).
    """

    def __init__(self, uniform: Mapping[int, tuple[float, float]], curves: Mapping[str, tuple], randoms: tuple,
                 front: tuple, layers: Sequence[str], choices: Sequence[int], fp32_bytes: int,
                 title: str = "") -> None:
        self.fig = new_figure(10.0, 4.0, layout=None)
        self.fig.subplots_adjust(left=0.07, right=0.985, top=0.8, bottom=0.27, wspace=0.28)
        grid = self.fig.add_gridspec(1, 2, width_ratios=(1.45, 1.0))
        ax = self.ax = self.fig.add_subplot(grid[0])
        bx = self.bx = self.fig.add_subplot(grid[1])
        self.choices = list(choices)
        ax.scatter(*randoms, s=9, color=COLOURS["random"], alpha=0.45, label=LABELS["random"], zorder=2)
        for key in ("plain", "greedy"):
            _, nbytes, acc = curves[key]
            ax.plot(nbytes, acc, "o-", ms=3, lw=1.2, color=COLOURS[key], label=LABELS[key], zorder=3)
        fx, fy = front
        ax.step(fx, fy, where="post", color=COLOURS["front"], lw=2.2, alpha=0.55, label=LABELS["front"], zorder=1)
        for b, (nbytes, acc) in uniform.items():
            ax.plot(nbytes, acc, "s", ms=7, color=COLOURS["uniform"], zorder=4,
                    label=LABELS["uniform"] if b == min(uniform) else None)
            ax.annotate("float" if b == 32 else f"{b}-bit", (nbytes, acc), textcoords="offset points",
                        xytext=(4, -11), fontsize=7.5, color=COLOURS["uniform"])
        ax.set_xscale("log")
        lo, hi = min(min(randoms[0]), min(b for b, _ in uniform.values())), max(b for b, _ in uniform.values())
        ax.set_xlim(lo / 1.08, hi * 1.35)
        ticks = [t for t in (10e3, 12e3, 15e3, 20e3, 30e3, 40e3, 60e3, 100e3, 150e3, 200e3) if lo / 1.08 <= t <= hi * 1.35]
        ax.set_xticks(ticks, [f"{t / 1000:g} k" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("weight bytes (packed weights + per-channel scales, log scale)")
        ax.set_ylabel("test accuracy (%, simulated)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3, which="both")
        top = ax.secondary_xaxis("top", functions=(lambda b: b / fp32_bytes, lambda f: f * fp32_bytes))
        fractions = [f for f in (0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0) if lo / 1.08 <= f * fp32_bytes <= hi * 1.35]
        top.set_xticks(fractions, [f"{100 * f:g} %" for f in fractions])
        top.minorticks_off()
        top.set_xlabel("fraction of the float32 weights", fontsize=8)
        top.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
        self.fig.suptitle(title, fontsize=10)
        self.budget_line = ax.axvline(np.nan, color="black", lw=1, ls="--")
        self.rings = ax.scatter([], [], s=90, facecolors="none", edgecolors="black", linewidths=1.4, zorder=6)
        self.chosen = ax.plot([], [], "*", ms=15, mec="black", mew=0.8, zorder=7)[0]

        x = np.arange(len(layers))
        self.bars = bx.bar(x, np.zeros(len(layers)), width=0.7, color=COLOURS["greedy"])
        bx.set_xticks(x, list(layers), rotation=60, ha="right", fontsize=7)
        bx.set_yticks(range(1, len(self.choices) + 1), ["float" if c == 32 else str(c) for c in self.choices])
        bx.set_ylim(0, len(self.choices) + 0.6)
        bx.set_ylabel("weight bits")
        bx.grid(alpha=0.3, axis="y", color=GRID)
        self.bar_title = bx.set_title("", fontsize=9)
        moving = [self.budget_line, self.rings, self.chosen, *self.bars, self.bar_title]
        self.blitter = Blitter(self.fig, moving)

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, budget: float, bits: Sequence[int], point: tuple[float, float], others: tuple,
               colour: str, caption: str) -> None:
        """Mark ``budget``; ``bits`` per layer on the right; ``point`` starred, ``others`` ringed."""
        self.budget_line.set_xdata([budget, budget])
        self.rings.set_offsets(np.column_stack(others) if len(others[0]) else np.empty((0, 2)))
        self.chosen.set_data([point[0]], [point[1]])
        self.chosen.set_color(colour)
        for bar, b in zip(self.bars, bits):
            bar.set_height(self.choices.index(b) + 1)
            bar.set_color(colour)
        self.bar_title.set_text(caption)
