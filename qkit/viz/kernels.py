"""Lesson 03's panel plot, the accumulator: worst-case and typical |acc| against K, and one running sum."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullLocator

from qkit.viz.base import CLIPPED, INSIDE, Blitter, new_figure

MAX_POINTS = 1500  # a running sum is drawn with at most this many points


class AccumulatorPlot:
    """Left: |acc| bounds vs K with the int16/int32 limits. Right: exact vs wrapped running sum."""

    def __init__(self, k_max: int) -> None:
        self.fig = new_figure(9.0, 3.6, layout=None)
        self.fig.subplots_adjust(left=0.08, right=0.98, top=0.89, bottom=0.15, wspace=0.38)
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
        self.limits = [ax.axhline(0, color=CLIPPED, ls="--", lw=0.8) for _ in range(2)]
        # its labels never change: figure text, drawn once with the static part (a live axis
        # redraws every label of its own on every move)
        box = ax.get_position()
        self.fig.text(box.x0 + box.width / 2, 0.015, "k (products added so far)", ha="center", va="bottom",
                      fontsize=10)
        self.fig.text(box.x0 - 0.085, box.y0 + box.height / 2,
                      "running sum: exact (black),\nregister (red, its ends dashed)",
                      rotation=90, ha="center", va="center", fontsize=9)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        self.log_y = None  # symlog when the exact sum runs far past the register's ends
        # the left plot's frame never changes: only its lines and the K marker move;
        # the right plot's limits follow the sum, so it is redrawn whole
        self.blitter = Blitter(self.fig, [self.worst, self.typical, self.marker], live_axes=[self.ax_sum])

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def _set_y_axis(self, log_y: bool, limit: int) -> None:
        """Linear axis, or linear inside the register's range and logarithmic beyond it."""
        if (log_y, limit) == self.log_y:
            return
        self.log_y = (log_y, limit)
        ax = self.ax_sum
        if log_y:  # the register's whole range gets the middle of the axis, so its wrap is visible
            ax.set_yscale("symlog", linthresh=limit, linscale=3.0)
        else:
            ax.set_yscale("linear")
            ax.yaxis.set_major_locator(MaxNLocator(7))
            ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        ax.yaxis.set_minor_locator(NullLocator())

    def update(self, k: int, worst_per_k: float, sigma: float, acc_bits: int,
               exact: np.ndarray, wrapped: np.ndarray) -> None:
        """Redraw for K, the per-product worst case and std, and one running sum."""
        self.worst.set_data(self.ks, self.ks * worst_per_k)
        self.typical.set_data(self.ks, 3 * sigma * np.sqrt(self.ks))
        self.marker.set_xdata([k, k])
        self.exact.set_data(*envelope(exact))
        self.wrapped.set_data(*envelope(wrapped))  # every wrap is kept, none aliased away
        for line in (self.exact, self.wrapped):  # a handful of points: show them as dots
            line.set_marker("o" if len(exact) <= 32 else "")
        limit = 2 ** (acc_bits - 1)
        for line, y in zip(self.limits, (limit - 1, -limit)):
            line.set_ydata([y, y])
        far = float(abs(exact).max())
        log_y = far > 8 * limit  # on a linear axis the register would be a flat line at 0
        self._set_y_axis(log_y, limit)
        near = far > limit / 4  # show the register's limits when the sum gets close
        lo = min(exact.min(), 0, -limit * 1.1 if near else 0)
        hi = max(exact.max(), 0, limit * 1.1 if near else 0)
        if log_y:
            lo, hi = (lo * 2 if lo < -limit else -limit * 1.5), (hi * 2 if hi > limit else limit * 1.5)
            decades = [10.0**e for e in range(len(str(limit)) + 1, 14)]  # a decade past the register's end
            ticks = ([-d for d in reversed(decades) if -d > lo] + [-limit, 0, limit - 1]
                     + [d for d in decades if d < hi])
            self.ax_sum.set_yticks(ticks, [_short(t) for t in ticks])  # only those in view: fewer to draw
        else:
            pad = 0.05 * (hi - lo) if hi > lo else 1.0
            lo, hi = lo - pad, hi + pad
        self.ax_sum.set_xlim(0.5, len(exact) + 0.5)
        self.ax_sum.set_ylim(lo, hi)
        scale = (f"\naxis: linear inside the int{acc_bits} range, logarithmic beyond" if log_y else "")
        self.ax_sum.set_title(f"one dot product: K = {k:,}, int{acc_bits} accumulator{scale}", fontsize=9)


def envelope(y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Points to draw ``y[0], y[1], ...`` (at k = 1, 2, ...) with at most ~``max_points`` points.

    Long sums are cut into bins and each bin drawn as its minimum then its
    maximum, so a register that wraps on every step still fills its whole range
    (plain decimation would show a slow, false saw-tooth).

    Example:
        >>> k, v = envelope(np.array([0, 5, -5, 0, 1, 2, 3, 4]), max_points=4)
        >>> k.tolist(), v.tolist()
        ([1.0, 1.0, 3.0, 3.0, 5.0, 5.0, 7.0, 7.0], [0, 5, -5, 0, 1, 2, 3, 4])
    """
    n = len(y)
    step = -(-n // max_points) if n > max_points else 1
    if step == 1:
        return np.arange(1, n + 1, dtype=float), y
    m = n // step * step
    bins = y[:m].reshape(-1, step)  # (n // step, step)
    lo, hi = bins.min(axis=1), bins.max(axis=1)
    first_low = bins.argmin(axis=1) <= bins.argmax(axis=1)  # keep each bin's order in time
    pairs = np.where(first_low[:, None], np.stack([lo, hi], 1), np.stack([hi, lo], 1)).reshape(-1)
    k = np.repeat(np.arange(m // step) * step + 1.0, 2)
    if m < n:
        k, pairs = np.append(k, np.arange(m + 1, n + 1)), np.append(pairs, y[m:])
    return k, pairs


def _short(v: float) -> str:
    """A tick label: 32,767 stays exact, powers of ten become 1M, 10M, ..."""
    if abs(v) < 1e6:
        return f"{v:,.0f}"
    return EngFormatter(sep="")(v)
