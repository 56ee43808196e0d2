"""Lesson 08's static figures: where the magnitude cut falls, the sensitivity scan, the gradual schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from qkit.viz.base import new_figure


def magnitude_histogram(weights: Mapping[str, np.ndarray], sparsity: float, threshold: float,
                        model: str = "") -> Figure:
    """Histogram of ``|w|`` (log scale) of each layer, and the global cut that zeroes ``sparsity`` of them.

    Args:
        weights: ``{layer name: weights as a numpy array}``; the biggest layers are drawn, the rest summed.
        sparsity: the fraction pruned; threshold: the ``|w|`` below which weights go (global ranking).
    """
    fig = new_figure(8.5, 3.4)
    ax = fig.add_subplot()
    flat = {n: np.abs(np.asarray(w, dtype=np.float64)).ravel() for n, w in weights.items()}
    every = np.concatenate(list(flat.values()))
    lo = max(every[every > 0].min(), 1e-6)
    bins = np.logspace(np.log10(lo), np.log10(every.max()), 60)
    big = sorted(flat, key=lambda n: -flat[n].size)[:4]
    rest = [flat[n] for n in flat if n not in big]
    series = [(f"{n} ({flat[n].size:,})", flat[n]) for n in big]
    if rest:
        series.append((f"{len(rest)} other layers ({sum(r.size for r in rest):,})", np.concatenate(rest)))
    ax.hist([v for _, v in series], bins=bins, stacked=True, label=[k for k, _ in series])
    ax.axvline(threshold, color="black", lw=1.5, ls="--",
               label=f"global cut: |w| < {threshold:.3g} → 0 ({100 * sparsity:g} % of the weights)")
    ax.set_xscale("log")
    ax.set_xlabel("|w| (log scale)")
    ax.set_ylabel("number of weights")
    ax.set_title(f"{model}: weight magnitudes of every conv/linear layer (stacked) and where "
                 f"{100 * sparsity:g} % pruning cuts", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", title="layer (its number of weights)", title_fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def sensitivity_lines(scan: Mapping[str, Sequence[float]], sparsities: Sequence[float], dense: float,
                      sizes: Mapping[str, int], model: str = "") -> Figure:
    """Test accuracy (%) against sparsity, one line per layer pruned alone (``qkit.prune.sensitivity``)."""
    fig = new_figure(9.5, 3.6)
    ax = fig.add_subplot()
    xs = [100 * s for s in sparsities]
    cmap = colormaps["viridis"]
    for i, (name, accs) in enumerate(scan.items()):
        ax.plot(xs, [100 * a for a in accs], "o-", ms=3, lw=1.4, color=cmap(i / max(1, len(scan) - 1)),
                label=f"{name} ({sizes[name]:,})")
    ax.axhline(100 * dense, color="black", lw=0.8, ls=":", label=f"dense ({100 * dense:.1f} %)")
    ax.set_xlabel("sparsity of the one layer pruned (%; every other layer dense, no fine-tuning)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 104)
    ax.set_title(f"{model}: sensitivity scan, one layer pruned by magnitude at a time", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="layer (its number of weights)",
              title_fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def schedule_plot(schedule: Sequence[tuple[int, float]], steps: int, sparsity: float) -> Figure:
    """Sparsity against optimizer step: Zhu & Gupta's pruning steps (``(step, s_t)`` pairs) vs one-shot pruning."""
    fig = new_figure(7.0, 3.2)
    ax = fig.add_subplot()
    t = [0] + [a for a, _ in schedule] + [steps]
    s = [0.0] + [b for _, b in schedule] + [schedule[-1][1] if schedule else 0.0]
    ax.step(t, [100 * v for v in s], where="post", lw=2, color="#1f77b4", label="gradual (a pruning step every dt)")
    ax.plot([a for a, _ in schedule], [100 * b for _, b in schedule], "o", ms=3.5, color="#1f77b4")
    ax.plot([0, steps], [100 * sparsity] * 2, lw=2, color="#d62728", ls="--",
            label="one-shot: pruned before the first step")
    ax.set_xlabel("optimizer step of the fine-tune")
    ax.set_ylabel("sparsity (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Pruning to {100 * sparsity:g} %: the polynomial schedule vs all at once", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig
