"""Lesson 10's static figures: how faithful the proxy is; the found models against the zoo's size–accuracy front."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from qkit.partial.pareto import pareto_front
from qkit.viz.base import new_figure
from qkit.viz.nas import BLOCK_COLOURS, STRATEGY_COLOURS


def proxy_fidelity(proxy: Sequence[float], full: Sequence[float], blocks: Sequence[str], rho: float) -> Figure:
    """Scatter of proxy accuracy against full-training accuracy (both on the held-out slice), by block type."""
    fig = new_figure(6.4, 3.8)
    ax = fig.add_subplot()
    p, f, b = 100 * np.asarray(proxy), 100 * np.asarray(full), np.asarray(blocks)
    for block, colour in BLOCK_COLOURS.items():
        m = b == block
        if m.any():
            ax.scatter(p[m], f[m], s=28, color=colour, label=block, zorder=2)
    ax.set_xlabel("proxy accuracy (%, 3 epochs on 1079 images)")
    ax.set_ylabel("full training accuracy (%, 30 epochs)")
    ax.set_title(f"{len(p)} sampled architectures, held-out slice of 359 images: Spearman ρ = {rho:.2f}",
                 fontsize=9.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="block", title_fontsize=8, loc="lower right")
    return fig


def pareto_with_zoo(zoo: Mapping[str, tuple[int, float]], found: Mapping[str, tuple[int, Sequence[float], str]],
                    budget: int | None = None) -> Figure:
    """Test accuracy against parameters: the zoo's models and its front; each found model's retrain seeds.

    Args:
        zoo: ``{name: (params, test accuracy)}``.
        found: ``{label: (params, [test accuracy of each retrain seed], strategy)}``.
        budget: the search's parameter limit (a dashed line), or None.
    """
    fig = new_figure(8.0, 4.0)
    ax = fig.add_subplot()
    names = sorted(zoo, key=lambda n: zoo[n][0])
    zp, za = [zoo[n][0] for n in names], [100 * zoo[n][1] for n in names]
    ax.scatter(zp, za, marker="s", s=45, color="#1f77b4", label="zoo models (pretrained)", zorder=3)
    for i, (n, x, y) in enumerate(zip(names, zp, za)):  # neighbours by size: labels below, then above
        ax.annotate(n, (x, y), textcoords="offset points", xytext=(5, -11 if i % 2 == 0 else 6), fontsize=8,
                    color="#1f77b4")
    keep = pareto_front(zp, za)
    fx, fy = [zp[i] for i in keep], [za[i] for i in keep]
    ax.step(fx + [max(zp) * 2], fy + [fy[-1]], where="post", color="#1f77b4", lw=1.5, alpha=0.5,
            label="the zoo's front (no smaller model is as accurate)")
    seen: list[int] = []
    for label, (params, accs, strategy) in found.items():
        a = 100 * np.asarray(accs, dtype=np.float64)
        colour = STRATEGY_COLOURS[strategy]
        x = params * 1.08 ** seen.count(params)  # the same architecture found twice: side by side
        seen.append(params)
        ax.errorbar([x], [a.mean()], yerr=[[a.mean() - a.min()], [a.max() - a.mean()]], fmt="*", ms=14,
                    color=colour, mec="black", mew=0.7, capsize=4, zorder=4,
                    label=f"{label}: mean of {len(a)} retrains (bar: min–max)")
    if budget is not None:
        ax.axvline(budget, color="black", lw=1, ls="--", label=f"the search's limit ({budget:,} params)")
    ax.set_xscale("log")
    ax.margins(y=0.12)  # room for the labels above the top points
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("found architectures against the zoo, on the digits test split", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7.5, loc="lower right")
    return fig
