"""Lesson 03's static figures: integer vs float error, two roundings, int16 saturation, throughput."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from qkit.viz.base import CLIPPED, GRID, INSIDE, ZERO, new_figure


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


KIND_COLOURS = {"conv": INSIDE, "depthwise": ZERO, "linear": "#ff7f0e"}


def rounding_disagreements(results: dict, rounding: str = "single") -> Figure:
    """Per layer: outputs (per 10 000) where ``rounding`` differs from "double", bars, with the prediction.

    Args:
        results: model name -> list of :class:`qkit.kernels.roundings.LayerDisagreement`.
        rounding: which rounding's counts to draw.
    """
    fig = new_figure(10.0, 3.4)
    ax = fig.add_subplot()
    x, edges = 0, []
    for model, rows in results.items():
        start = x
        for r in rows:
            ax.bar(x, 1e4 * r.differ[rounding] / r.outputs, width=0.8, color=KIND_COLOURS[r.kind])
            ax.plot(x, 1e4 * r.predicted / r.outputs, "_", color="black", ms=7, mew=1.5)
            x += 1
        ax.text((start + x - 1) / 2, 1.0, model, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=8)
        edges.append(x - 0.5)
        x += 1  # a gap between models
    for e in edges[:-1]:
        ax.axvline(e + 0.5, color=GRID, lw=0.6, ls=":")
    handles = [Patch(color=c, label=k) for k, c in KIND_COLOURS.items()]
    handles.append(Line2D([], [], ls="", marker="_", color="black", ms=7, mew=1.5,
                          label="predicted: Σ 2^-(rs+1)"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", ncol=4)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.2)  # room for the legend
    ax.set_xticks([])
    ax.set_xlim(-1, x - 1)
    ax.set_xlabel("conv / linear layers of each zoo model, in the order they run")
    ax.set_ylabel(f"outputs that differ\nper 10 000 ({rounding} vs double)")
    ax.set_title("two requantization roundings on real layers (digits test set)", fontsize=10, pad=14)
    ax.grid(alpha=0.3, axis="y")
    return fig


def saturation(bits: Sequence[int], wrong: dict, sqnr: Sequence[float]) -> Figure:
    """Left: outputs an AVX2 u8 × s8 sum gets wrong against weight bits. Right: the weights' SQNR.

    Args:
        bits: weight bit-widths, e.g. ``(8, 7, 6)``.
        wrong: label -> fraction of outputs wrong at each of ``bits``.
        sqnr: weight SQNR in dB at each of ``bits``.
    """
    fig = new_figure(9.0, 3.2)
    ax_w, ax_q = fig.subplots(1, 2)
    for (label, fractions), colour in zip(wrong.items(), (CLIPPED, INSIDE, ZERO)):
        ax_w.plot(bits, [100 * f for f in fractions], "o-", color=colour, label=label)
    ax_w.set_xlabel("weight bits (8 = full int8; 7 = reduce_range)")
    ax_w.set_ylabel("outputs wrong (%)")
    ax_w.set_title("u8 × s8 with int16 pair sums (AVX2)", fontsize=10)
    ax_w.legend(fontsize=8)
    ax_q.plot(bits, sqnr, "o-", color=INSIDE)
    for b, v in zip(bits, sqnr):
        ax_q.annotate(f"{v:.1f} dB", (b, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax_q.set_xlabel("weight bits")
    ax_q.set_ylabel("weight SQNR (dB)")
    ax_q.set_title("the price: each bit less costs about 6 dB", fontsize=10)
    ax_q.margins(x=0.15, y=0.2)
    for ax in (ax_w, ax_q):
        ax.set_xticks(list(bits))
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    return fig
