"""Lesson 03's static figures: integer vs float error, and throughput of the linear backends."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from qkit.viz.base import INSIDE, new_figure


def level_differences(diff: torch.Tensor) -> Figure:
    """Bar chart of integer-minus-float output differences, in output levels (LSB)."""
    d = diff.reshape(-1).to(torch.int64)
    values, counts = torch.unique(d, return_counts=True)
    fig = new_figure(6.0, 2.8)
    ax = fig.add_subplot()
    ax.bar(values.numpy(), counts.numpy(), width=0.6, color=INSIDE)
    for v, c in zip(values.tolist(), counts.tolist()):
        ax.text(v, c, f"{c:,}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(values.tolist())
    ax.set_xlabel("integer output − float output (levels)")
    ax.set_ylabel("number of outputs")
    ax.set_yscale("log")
    ax.set_title("integer-only vs float computation on the same grids", fontsize=10)
    return fig


def throughput(rows: Sequence[dict], backends: Sequence[str]) -> Figure:
    """GOPS against problem size for each backend (rows from ``time_linear_backends``)."""
    sizes = sorted({(r["N"], r["K"], r["M"]) for r in rows}, key=lambda s: s[0] * s[1] * s[2])
    labels = [f"{n}×{k}×{m}" for n, k, m in sizes]
    fig = new_figure(8.0, 3.6)
    ax = fig.add_subplot()
    for b in backends:
        y = [next((r["gops"] for r in rows if (r["N"], r["K"], r["M"]) == s and r["backend"] == b), np.nan)
             for s in sizes]
        ax.plot(range(len(sizes)), y, "o-", ms=4, label=b)
    ax.set_xticks(range(len(sizes)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("N × K × M (batch × inputs × outputs)")
    ax.set_ylabel("throughput (GOPS, 2·N·K·M per call)")
    ax.set_title("throughput of each path on this machine (higher is faster)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig
