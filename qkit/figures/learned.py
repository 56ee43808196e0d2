"""Lesson 06's static figures: LSQ's and PACT's gradients, how learned grids move, learned vs observed.

The notebook computes every number with qkit's core (autograd through
:func:`qkit.qat.lsq_quantize` and :func:`qkit.qat.pact`, :mod:`qkit.qat.history`,
the ``learned`` results grid) and hands it here: a figure never hides a computation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from qkit.viz.base import CLIPPED, GRID, INSIDE, ZERO, new_figure

METHOD_COLOURS = {"minmax": GRID, "lsq": INSIDE, "pact": "#ff7f0e"}
METHOD_LABELS = {"minmax": "min-max (observed)", "lsq": "LSQ (learned step)", "pact": "PACT (learned clip)"}


def _shade_outside(ax, lo: float, hi: float) -> None:
    ax.axvspan(ax.get_xlim()[0], lo, color=CLIPPED, alpha=0.08, lw=0)
    ax.axvspan(hi, ax.get_xlim()[1], color=CLIPPED, alpha=0.08, lw=0, label="clipped")


def lsq_gradient(x, y, grad_s, grad_x, formula, *, scale: float, qmin: int, qmax: int) -> Figure:
    """Left: LSQ's forward pass. Right: d/ds by autograd (dots) over Esser et al.'s formula (line), and d/dx.

    Args:
        x: the inputs (1-d, sorted).
        y: ``lsq_quantize(x, s, qmin, qmax)``.
        grad_s, grad_x: per-element d/ds and d/dx from autograd.
        formula: ``round(v) - v`` inside, qmin / qmax outside, computed independently.
    """
    x, y, gs, gx, f = (np.asarray(a, float) for a in (x, y, grad_s, grad_x, formula))
    fig = new_figure(10.0, 3.4)
    ax_f, ax_g = fig.subplots(1, 2)
    lo, hi = qmin * scale, qmax * scale
    for ax in (ax_f, ax_g):
        ax.set_xlim(x.min(), x.max())
        _shade_outside(ax, lo, hi)
        ax.set_xlabel("input x")
        ax.grid(alpha=0.3)
    ax_f.plot(x, x, ":", color=GRID, lw=1, label="x (no quantization)")
    ax_f.plot(x, y, color=INSIDE, lw=1.5, label=f"clamp(round(x/s), {qmin}, {qmax})·s")
    ax_f.set_ylabel("output")
    ax_f.set_title(f"LSQ forward pass, step s = {scale:g}", fontsize=10)
    ax_f.legend(fontsize=7, loc="upper left")
    ax_g.plot(x, f, color=INSIDE, lw=1.2, label="formula: round(v) − v inside; qmin, qmax outside")
    step = max(1, len(x) // 120)
    ax_g.plot(x[::step], gs[::step], "o", ms=2.5, color="black", label="autograd d/ds (qkit.qat.lsq_quantize)")
    ax_g.plot(x, gx, color=ZERO, lw=1.0, alpha=0.8, label="autograd d/dx (straight-through)")
    ax_g.set_ylabel("gradient (per unit of upstream gradient)")
    ax_g.set_title("LSQ's gradients: a sawtooth inside, constant outside", fontsize=10)
    ax_g.legend(fontsize=7, loc="lower right")
    return fig


def pact_gradient(x, y, grad_alpha, grad_x, *, alpha: float, bits: int) -> Figure:
    """PACT's forward pass and its gradients d/dα and d/dx (autograd through ``qkit.qat.pact``)."""
    x, y, ga, gx = (np.asarray(a, float) for a in (x, y, grad_alpha, grad_x))
    fig = new_figure(10.0, 3.2)
    ax_f, ax_g = fig.subplots(1, 2)
    for ax in (ax_f, ax_g):
        ax.set_xlim(x.min(), x.max())
        ax.axvspan(alpha, x.max(), color=CLIPPED, alpha=0.08, lw=0, label="x ≥ α (clipped)")
        ax.axvline(alpha, color=CLIPPED, lw=0.8, ls="--")
        ax.set_xlabel("input x (pre-activation)")
        ax.grid(alpha=0.3)
    ax_f.plot(x, np.maximum(x, 0), ":", color=GRID, lw=1, label="ReLU(x)")
    ax_f.plot(x, y, color="#ff7f0e", lw=1.5, label=f"PACT, {2 ** bits - 1} steps of α/{2 ** bits - 1}")
    ax_f.set_ylabel("output")
    ax_f.set_title(f"PACT forward pass, α = {alpha:g}, {bits} bits", fontsize=10)
    ax_f.legend(fontsize=7, loc="upper left")
    ax_g.plot(x, ga, color="#ff7f0e", lw=1.5, label="autograd d/dα")
    ax_g.plot(x, gx, color=ZERO, lw=1.0, ls="--", label="autograd d/dx")
    ax_g.set_ylim(-0.1, 1.2)
    ax_g.set_ylabel("gradient")
    ax_g.set_title("d/dα = 1 where x ≥ α; d/dx = 1 on [0, α)", fontsize=10)
    ax_g.legend(fontsize=7, loc="center left")
    return fig


def evolution(histories: Mapping[str, object], points: Sequence[str], *, every: int) -> Figure:
    """One panel per method: each point's largest level (clip, in input units) over training; loss last.

    Args:
        histories: method -> :class:`qkit.qat.history.History` (same model, same bits).
        points: activation points to draw (names of ``History.act``).
        every: the recording interval (for the x label).
    """
    methods = list(histories)
    fig = new_figure(11.0, 3.2)
    axes = fig.subplots(1, len(methods) + 1)
    for ax, method in zip(axes, methods):
        h = histories[method]
        for p in points:
            row = h.act[p]
            style = "-" if row["method"] == method else "--"
            ax.plot(h.steps, row["top"], style, lw=1.3, label=f"{p}" + ("" if row["method"] == method
                                                                        else f" ({row['method']})"))
        ax.set_title(METHOD_LABELS.get(method, method), fontsize=10)
        ax.set_xlabel(f"optimizer step (read every {every})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    axes[0].set_ylabel("top of the grid (activation units)")
    ax = axes[-1]
    for method in methods:
        loss = np.asarray(histories[method].loss, float)
        k = max(1, min(every, len(loss)))
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")  # running mean over `every` steps
        ax.plot(np.arange(k, len(loss) + 1), smooth, color=METHOD_COLOURS.get(method), label=method)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"training loss (mean of {every} steps)")
    ax.set_title("training loss", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    return fig


def learned_vs_observed(rows: Sequence[dict], models: Sequence[str], methods: Sequence[str]) -> Figure:
    """Test accuracy after QAT against bits (W = A), mean ± standard deviation over seeds, per model.

    Args:
        rows: the ``learned`` grid's ``compare`` rows (``model, method, bits, seed, acc, float_acc``).
    """
    fig = new_figure(4.6 * len(models), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(models)))
    width = 0.12
    for ax, model in zip(axes, models):
        mine = [r for r in rows if r["model"] == model]
        bits = sorted({r["bits"] for r in mine})
        for i, method in enumerate(methods):
            accs = [[100 * r["acc"] for r in mine if r["method"] == method and r["bits"] == b] for b in bits]
            mean = [np.mean(a) for a in accs]
            std = [np.std(a) for a in accs]
            xs = np.array(bits, float) + (i - (len(methods) - 1) / 2) * width
            ax.errorbar(xs, mean, yerr=std, fmt="o-", ms=4, capsize=3, lw=1.2, color=METHOD_COLOURS.get(method),
                        label=f"{METHOD_LABELS.get(method, method)}")
        fp = 100 * mine[0]["float_acc"]
        ax.axhline(fp, color="black", ls="--", lw=0.8, label=f"float32 ({fp:.1f} %)")
        seeds = len({r["seed"] for r in mine})
        ax.set_title(f"{model}: QAT at W=A bits, {seeds} seeds", fontsize=10)
        ax.set_xticks(bits, [f"W{b}A{b}" for b in bits])
        ax.set_xlabel("bits (weights W, activations A)")
        ax.set_ylabel("test accuracy (%), mean ± std")
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return fig
