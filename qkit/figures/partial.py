"""Lesson 07's static figures: per-layer sensitivity bars; accuracy against layers kept in float."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from qkit.viz.base import new_figure

KIND_COLOURS = {"conv": "#1f77b4", "depthwise": "#2ca02c", "pointwise": "#9467bd", "linear": "#ff7f0e"}


def sensitivity_bars(drops: Mapping[str, float], kinds: Mapping[str, str], bits: int, model: str = "") -> Figure:
    """One bar per layer (graph order): the accuracy drop when only that layer is at ``bits`` bits."""
    names = list(drops)
    fig = new_figure(9.0, 3.4)
    ax = fig.add_subplot()
    ax.bar(range(len(names)), [drops[n] for n in names], color=[KIND_COLOURS[kinds[n]] for n in names])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("accuracy drop (points)")
    ax.set_xlabel("layer (graph order: input → output)")
    ax.set_title(f"{model}: one layer at a time at {bits} bits (weights and its activation), "
                 "every other layer float", fontsize=10)
    ax.legend(handles=[Patch(color=c, label=k) for k, c in KIND_COLOURS.items() if k in set(kinds.values())],
              fontsize=8, title="layer kind", title_fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def float_layers_curve(counts: Sequence[int], curves: Mapping[str, Sequence[float]], float_acc: float,
                       bits: int, model: str = "") -> Figure:
    """Test accuracy (%) against how many layers stay float, one line per order of keeping them."""
    fig = new_figure(7.5, 3.4)
    ax = fig.add_subplot()
    for label, accs in curves.items():
        style = {"lw": 2.2, "zorder": 3} if "sensitive" in label else {"lw": 1.0, "alpha": 0.7, "ls": "--"}
        ax.plot(counts, [100 * a for a in accs], marker="o", ms=3.5, label=label, **style)
    ax.axhline(100 * float_acc, color="black", lw=0.8, ls=":", label=f"float model ({100 * float_acc:.1f} %)")
    ax.set_xticks(list(counts))
    ax.set_xlabel(f"layers kept in float (the others: weights at {bits} bits)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{model}: partial quantization, most sensitive layers first vs a random order", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig
