"""Lesson 02's static figures: how channel ranges differ, and where observers clip."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.figure import Figure

from qkit.viz.base import CLIPPED, INSIDE, new_figure


def channel_ranges(weight: torch.Tensor) -> Figure:
    """max |w| of every output channel (row), sorted, against the whole tensor's max."""
    r = np.sort(weight.detach().abs().amax(dim=1).numpy())
    fig = new_figure(7.5, 3.2)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(r)), r, width=1.0, color=INSIDE)
    ax.axhline(r.max(), color=CLIPPED, ls="--", lw=1, label="per-tensor range (the widest channel)")
    ax.set_xlabel("output channel (sorted by range)")
    ax.set_ylabel("max |w| of the channel")
    ax.set_title("one grid for all channels must fit the widest one", fontsize=10)
    ax.set_xlim(-0.5, len(r) - 0.5)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, axis="y")
    return fig


def observer_ranges(acts: torch.Tensor, ends: Mapping[str, float], bins: int = 200) -> Figure:
    """Histogram of activations (log count) with each observer's range end marked."""
    x = acts.detach().reshape(-1).numpy()
    fig = new_figure(7.5, 3.2)
    ax = fig.add_subplot()
    ax.hist(x, bins=bins, color="#9ecae1", log=True)
    colors = [CLIPPED, "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]  # none is the histogram's blue
    for i, (name, end) in enumerate(ends.items()):
        ax.axvline(end, color=colors[i % len(colors)], ls="-" if i < len(colors) else "--", lw=1.6,
                   label=f"{name}: range ends at {end:.2f}")
    ax.set_xlabel("activation value")
    ax.set_ylabel("count (log scale)")
    ax.set_title("where each observer ends the range", fontsize=10)
    ax.legend(fontsize=8, title="observer", title_fontsize=8, framealpha=0.95)
    return fig
