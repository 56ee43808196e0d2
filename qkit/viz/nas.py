"""Lesson 10's panel plot: the stored search space under the constraints, one search's trials, and the race.

Left: every architecture of the space as (parameters, proxy accuracy), grey; the ones that meet
the constraints coloured by block type; one search's trials ringed and its best starred. Right:
best-so-far over the trials, the mean over seeds of random search and of evolution, the shown
seed's two curves thin, and the best feasible estimate of the whole table as the ceiling.
Drawn once; a move only changes offsets and line data (:class:`~qkit.viz.base.Blitter`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from qkit.viz.base import Blitter, new_figure

BLOCK_COLOURS = {"plain": "#1f77b4", "separable": "#2ca02c", "residual": "#9467bd"}
STRATEGY_COLOURS = {"random": "#7f7f7f", "evolution": "#d62728"}


class SearchPlot:
    """Both axes of the search panel.

    Args:
        params: parameters of every architecture; estimates: their proxy accuracies (fractions);
        blocks: their block types (``"plain"``, ``"separable"``, ``"residual"``).
        trials: the trial budget (x range of the right axes).
    """

    def __init__(self, params: Sequence[int], estimates: Sequence[float], blocks: Sequence[str], trials: int,
                 title: str = "") -> None:
        self.params = np.asarray(params, dtype=np.float64)  # (A,)
        self.acc = 100 * np.asarray(estimates, dtype=np.float64)  # (A,) %
        self.blocks = np.asarray(blocks)
        self.fig = new_figure(10.0, 4.0, layout=None)
        self.fig.subplots_adjust(left=0.07, right=0.985, top=0.86, bottom=0.14, wspace=0.22)
        ax, bx = self.ax, self.bx = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": (1.25, 1.0)})
        ax.scatter(self.params, self.acc, s=10, color="#cccccc", label="breaks a constraint", zorder=1)
        self.feasible = {b: ax.scatter([], [], s=14, color=c, label=f"{b} (meets the constraints)", zorder=2)
                         for b, c in BLOCK_COLOURS.items()}
        self.rings = ax.scatter([], [], s=70, facecolors="none", edgecolors="black", linewidths=1.0, zorder=3,
                                label="trials of the search shown")
        self.star = ax.plot([], [], "*", ms=15, color="#ffbf00", mec="black", mew=0.8, zorder=4,
                            label="its best trial")[0]
        self.limit = ax.axvline(np.nan, color="black", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_xlim(self.params.min() / 1.2, self.params.max() * 1.2)
        ax.set_ylim(max(0.0, self.acc.min() - 5), 100)
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel("proxy accuracy (%, 3 epochs, held-out slice)")
        ax.set_title("the search space (stored table)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")

        t = np.arange(1, trials + 1)
        self.t = t
        self.mean = {s: bx.plot(t, np.full(trials, np.nan), lw=2.2, color=c, label=f"{s}: mean over seeds")[0]
                     for s, c in STRATEGY_COLOURS.items()}
        self.one = {s: bx.plot(t, np.full(trials, np.nan), lw=0.9, ls="--", color=c, label=f"{s}: the random seed shown")[0]
                    for s, c in STRATEGY_COLOURS.items()}
        self.ceiling = bx.axhline(np.nan, color="black", lw=1, ls=":", label="best feasible in the table")
        bx.set_xlim(0.5, trials + 0.5)
        bx.xaxis.set_major_locator(MaxNLocator(integer=True))
        bx.set_ylim(max(0.0, self.acc.min() - 5), 100)
        bx.set_xlabel("trials spent (estimates evaluated)")
        bx.set_ylabel("best proxy accuracy so far (%)")
        bx.set_title("random search vs regularized evolution", fontsize=10)
        bx.grid(alpha=0.3)
        bx.legend(fontsize=7, loc="lower right")
        self.fig.suptitle(title, fontsize=10)
        moving = [*self.feasible.values(), self.rings, self.star, self.limit, *self.mean.values(),
                  *self.one.values(), self.ceiling]
        self.blitter = Blitter(self.fig, moving)

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, feasible: np.ndarray, trial_idx: Sequence[int], best_idx: int, max_params: float | None,
               means: dict, ones: dict, ceiling: float) -> None:
        """``feasible``: bool mask over the architectures; ``trial_idx``: the shown search's architectures
        (indices into the table); ``means``/``ones``: best-so-far curves (fractions) by strategy."""
        for b, art in self.feasible.items():
            m = feasible & (self.blocks == b)
            art.set_offsets(np.column_stack([self.params[m], self.acc[m]]) if m.any() else np.empty((0, 2)))
        idx = np.asarray(trial_idx, dtype=np.int64)
        self.rings.set_offsets(np.column_stack([self.params[idx], self.acc[idx]]))
        self.star.set_data([self.params[best_idx]], [self.acc[best_idx]])
        self.limit.set_xdata([np.nan if max_params is None else max_params] * 2)
        for s in self.mean:
            self.mean[s].set_ydata(100 * np.asarray(means[s]))
            self.one[s].set_ydata(100 * np.asarray(ones[s]))
        self.ceiling.set_ydata([100 * ceiling] * 2)
