"""Lesson 01's static figures: grids, the clipping trade-off, SQNR lines, value histograms.

The notebooks compute the numbers with qkit's core and hand them here, so a
figure never hides a computation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from qkit.error import DB_PER_BIT, ErrorSplit
from qkit.qparams import QParams
from qkit.viz.base import CLIPPED, INSIDE, ZERO, grid_levels, new_figure


def grids(rows: Mapping[str, tuple[QParams, tuple[float, float]]]) -> Figure:
    """One number line per grid: its levels as ticks, the range it was chosen for in amber.

    Args:
        rows: label -> (per-tensor grid, (A1, A2) it was chosen for).
    """
    fig = new_figure(9.0, 0.55 * len(rows) + 0.9)
    ax = fig.add_subplot()
    for i, (label, (qp, (a1, a2))) in enumerate(reversed(list(rows.items()))):
        levels = grid_levels(qp)
        ax.broken_barh([(a1, a2 - a1)], (i - 0.3, 0.6), color="#ffbf00", alpha=0.35)
        ax.vlines(levels, i - 0.22, i + 0.22, color="#333333", lw=0.9)
        ax.plot([0.0], [i], "o", color=ZERO, ms=5, zorder=3)
        used = int(((levels >= a1 - 1e-9) & (levels <= a2 + 1e-9)).sum())
        ax.text(1.01, i, f"{used}/{qp.levels} levels in range", transform=ax.get_yaxis_transform(),
                va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), list(reversed(list(rows))), fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("x (float value); ticks = grid levels, green dot = 0.0, amber = [A1, A2]")
    ax.grid(axis="x", alpha=0.3)
    return fig


def clip_tradeoff(ratios: Sequence[float], splits: Sequence[ErrorSplit], bits: int,
                  unit: str = "σ") -> Figure:
    """Rounding, clipping and total MSE against the clipping threshold."""
    fig = new_figure(7.5, 3.6)
    ax = fig.add_subplot()
    r = np.asarray(ratios)
    rounding = np.array([s.rounding for s in splits])
    clipping = np.array([s.clipping for s in splits])
    total = rounding + clipping
    ax.semilogy(r, rounding, color=INSIDE, label="rounding error")
    ax.semilogy(r, np.maximum(clipping, 1e-12), color=CLIPPED, label="clipping error")
    ax.semilogy(r, total, color="black", lw=2, label="total")
    best = int(total.argmin())
    ax.plot(r[best], total[best], "o", color="black")
    ax.annotate(f"best clip ≈ {r[best]:.2f}{unit}", (r[best], total[best]), xytext=(8, 14),
                textcoords="offset points", fontsize=9)
    lo = max(min(total.min(), rounding.min()) / 5, 1e-8)
    ax.set_ylim(lo, total.max() * 2)
    ax.set_xlabel(f"clipping threshold (range = ±threshold, in units of {unit})")
    ax.set_ylabel("mean squared error")
    ax.set_title(f"{bits}-bit grid: widening the range trades clipping for rounding", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def sqnr_lines(bits: Sequence[int], curves: Mapping[str, Sequence[float]]) -> Figure:
    """SQNR (dB) against bits for several signals, with a 6.02 dB/bit reference line."""
    fig = new_figure(7.5, 3.8)
    ax = fig.add_subplot()
    b = np.asarray(bits)
    for name, values in curves.items():
        ax.plot(b, values, "o-", ms=4, label=name)
    first = np.asarray(next(iter(curves.values())))
    ax.plot(b, first[-1] + DB_PER_BIT * (b - b[-1]), ":", color="black", label="slope 6.02 dB / bit")
    ax.set_xlabel("bits B")
    ax.set_ylabel("SQNR (dB)")
    ax.set_title("every extra bit halves the step: +6.02 dB", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def value_hist(x: np.ndarray, approximations: Mapping[str, np.ndarray], bins: int = 120) -> Figure:
    """Histogram of ``x`` above one row per approximation showing which values it keeps."""
    n = len(approximations)
    fig = new_figure(9.0, 1.2 + 1.0 * n)
    axes = fig.subplots(n + 1, 1, sharex=True, height_ratios=[1.6] + [1.0] * n)
    axes[0].hist(x, bins=bins, color="#9ecae1")
    axes[0].set_ylabel("count", fontsize=8)
    axes[0].set_title("the weights (top) and what each quantizer turns them into", fontsize=10)
    for ax, (name, x_hat) in zip(axes[1:], approximations.items()):
        values, counts = np.unique(np.round(x_hat, 6), return_counts=True)
        ax.vlines(values, 0, counts / counts.max(), color=INSIDE, lw=2)
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    axes[-1].set_xlabel("weight value")
    return fig
