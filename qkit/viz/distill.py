"""Lesson 09's panel plot: the teacher's soft targets at temperature T on real digits; the T × alpha sweep.

Left: a few test digits, each above the bars of ``softmax(teacher_logits / T)`` (the hard
``T = 1`` targets drawn as black ticks for comparison). Right: the precomputed grid's mean
gain of the distilled student over the scratch one (validation accuracy, points) for every
``T`` × ``alpha``, the current cell outlined. Drawn once; a move only sets bar heights, the
outline and a few texts (:class:`qkit.viz.base.Blitter`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qkit.viz.base import Blitter, new_figure

TEACHER, SCRATCH, DISTILLED = "#7f7f7f", "#1f77b4", "#d62728"


class SoftTargetPlot:
    """Digits with their soft targets, and a heatmap of the sweep.

    Args:
        images: (D, 8, 8) array of the digits shown.
        labels: their D true classes.
        hard: (D, K) the teacher's probabilities at T = 1 (drawn as ticks).
        Ts, alphas: the sweep's axes (rows, columns of ``gain``).
        gain: (len(Ts), len(alphas)) mean gain in points.
    """

    def __init__(self, images: np.ndarray, labels: Sequence[int], hard: np.ndarray, Ts: Sequence[float],
                 alphas: Sequence[float], gain: np.ndarray, title: str = "") -> None:
        d, k = hard.shape
        self.fig = new_figure(10.0, 4.2, layout=None)
        self.fig.subplots_adjust(left=0.06, right=0.93, top=0.86, bottom=0.13, wspace=0.35, hspace=0.25)
        grid = self.fig.add_gridspec(2, d + 2, height_ratios=(1.0, 1.5), width_ratios=[1.0] * d + [0.25, 1.7])
        self.bars = []
        for i in range(d):
            im = self.fig.add_subplot(grid[0, i])
            im.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
            im.set_xticks([])
            im.set_yticks([])
            im.set_title(f"label {labels[i]}", fontsize=8)
            bx = self.fig.add_subplot(grid[1, i])
            self.bars.append(bx.bar(np.arange(k), np.zeros(k), width=0.75, color=TEACHER))
            bx.scatter(np.arange(k), hard[i], marker="_", s=60, color="black", zorder=3)
            bx.set_ylim(0, 1.02)
            bx.set_xticks(range(k), [str(c) for c in range(k)], fontsize=6.5)
            bx.set_xlabel("class (ticks: at T = 1)" if i == 0 else "class", fontsize=8)
            if i == 0:
                bx.set_ylabel("teacher's probability", fontsize=8)
            else:
                bx.set_yticklabels([])
            bx.tick_params(labelsize=7)
        hx = self.hx = self.fig.add_subplot(grid[:, d + 1])
        lim = max(1.0, float(np.nanmax(np.abs(gain))))
        mesh = hx.imshow(gain, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", origin="lower")
        for r in range(len(Ts)):
            for c in range(len(alphas)):
                hx.text(c, r, f"{gain[r, c]:+.1f}", ha="center", va="center", fontsize=7.5,
                        color="white" if abs(gain[r, c]) > 0.6 * lim else "black")
        hx.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        hx.set_yticks(range(len(Ts)), [f"{t:g}" for t in Ts])
        hx.set_xlabel("alpha (weight of the soft term)")
        hx.set_ylabel("temperature T")
        hx.set_title("distilled − scratch student\n(validation accuracy, points)", fontsize=8.5)
        bar = self.fig.colorbar(mesh, ax=hx, fraction=0.08, pad=0.04)
        bar.set_label("gain (points)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        self.outline = hx.add_patch(_rect())
        self.fig.suptitle(title, fontsize=10)
        self.Ts, self.alphas = list(Ts), list(alphas)
        moving = [b for bars in self.bars for b in bars] + [self.outline]  # texts stay still: they cost most
        self.blitter = Blitter(self.fig, moving)

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, soft: np.ndarray, T: float, alpha: float) -> None:
        """Bars = ``soft`` (D, K), the teacher at ``T``; outline the sweep's (T, alpha) cell."""
        for bars, row in zip(self.bars, soft):
            top = int(np.argmax(row))
            for c, (b, v) in enumerate(zip(bars, row)):
                b.set_height(float(v))
                b.set_color(DISTILLED if c == top else TEACHER)
        self.outline.set_xy((self.alphas.index(alpha) - 0.5, self.Ts.index(T) - 0.5))


def _rect():
    from matplotlib.patches import Rectangle

    return Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor="black", lw=2.5, zorder=5)
