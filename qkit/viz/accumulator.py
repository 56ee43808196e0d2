"""Lesson 03's accumulator plot: worst-case and typical |acc| against K, and one running sum."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import EngFormatter, LogLocator, NullLocator

from qkit.viz.base import CLIPPED, INSIDE, Blitter, new_figure

MAX_POINTS = 1500  # a running sum is drawn with at most this many points


class AccumulatorPlot:
    """Left: |acc| bounds vs K with the int16/int32 limits. Right: exact vs wrapped running sum."""

    def __init__(self, k_max: int) -> None:
        self.fig = new_figure(9.0, 3.6, layout=None)
        self.fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.15, wspace=0.28)
        self.ax_k, self.ax_sum = self.fig.subplots(1, 2)
        ax = self.ax_k
        self.ks = np.unique(np.logspace(0, np.log10(k_max), 200).astype(np.int64))
        self.worst = ax.loglog([], [], color=CLIPPED, label="worst case  K·max|x|·max|w|")[0]
        self.typical = ax.loglog([], [], color=INSIDE, label="random data (≈ 3σ·√K)")[0]
        # each limit's label where the curves are far from it: int16 at the right, int32 at the left
        for bits, style, x, ha in ((16, ":", k_max * 0.8, "right"), (32, "--", 1.3, "left")):
            ax.axhline(2 ** (bits - 1) - 1, color="black", ls=style, lw=1)
            ax.text(x, 2 ** (bits - 1) * 1.6, f"int{bits} limit", fontsize=8, ha=ha)
        self.marker = ax.axvline(1, color="#555555", lw=1)
        ax.set_xlim(1, k_max)
        ax.set_ylim(1, 2e13)
        ax.set_xlabel("K (products summed)")
        ax.set_ylabel("|acc|")
        ax.set_title("how big can the accumulator get?", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        ax.yaxis.set_major_locator(LogLocator(numticks=8))
        ax.xaxis.set_minor_locator(NullLocator())  # minor log ticks cost more than the plot itself
        ax.yaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3, which="major")
        ax = self.ax_sum
        self.exact = ax.plot([], [], color="black", lw=1.2, ms=4)[0]
        self.wrapped = ax.plot([], [], color=CLIPPED, lw=1.0, ms=4)[0]
        self.limits = [ax.axhline(0, color="black", ls="--", lw=0.8) for _ in range(2)]
        ax.set_xlabel("k (products added so far)")
        ax.set_ylabel("running sum: exact (black), register (red)")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        # the left plot's frame never changes: only its lines and the K marker move;
        # the right plot's limits follow the sum, so it is redrawn whole
        self.blitter = Blitter(self.fig, [self.worst, self.typical, self.marker], live_axes=[self.ax_sum])

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, k: int, worst_per_k: float, sigma: float, acc_bits: int,
               exact: np.ndarray, wrapped: np.ndarray) -> None:
        """Redraw for K, the per-product worst case and std, and one running sum."""
        self.worst.set_data(self.ks, self.ks * worst_per_k)
        self.typical.set_data(self.ks, 3 * sigma * np.sqrt(self.ks))
        self.marker.set_xdata([k, k])
        step = max(1, len(exact) // MAX_POINTS)
        idx = np.arange(0, len(exact), step)
        self.exact.set_data(idx + 1, exact[idx])
        self.wrapped.set_data(idx + 1, wrapped[idx])
        for line in (self.exact, self.wrapped):  # a handful of points: show them as dots
            line.set_marker("o" if len(exact) <= 32 else "")
        limit = 2 ** (acc_bits - 1)
        for line, y in zip(self.limits, (limit - 1, -limit)):
            line.set_ydata([y, y])
        near = abs(exact).max() > limit / 4  # show the register's limits when the sum gets close
        lo = min(exact.min(), 0, -limit * 1.1 if near else 0)
        hi = max(exact.max(), 0, limit * 1.1 if near else 0)
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        self.ax_sum.set_xlim(0.5, len(exact) + 0.5)
        self.ax_sum.set_ylim(lo - pad, hi + pad)
        self.ax_sum.set_title(f"one dot product: K = {k:,}, int{acc_bits} accumulator", fontsize=10)
