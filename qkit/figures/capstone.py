"""Lesson 11's static figure: compression ratio against accuracy, stage by stage, and for every recipe of the grid."""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from qkit.viz.base import new_figure

STAGE_LABELS = {"original": "original\n(float32)", "distilled": "distilled\nstudent",
                "pruned": "pruned\n(sparse float32)", "quantized": "QAT integer\n(dense packed)",
                "packed": "final\n(sparse + packed)", "onnx": "ONNX file\n(int8, dense)"}
_OFFSETS = {"original": (0, 10), "distilled": (0, 10), "pruned": (0, -30), "quantized": (-10, 12),
            "packed": (14, -30), "onnx": (0, -30)}  # label offsets (points): the stages sit close together


def compression_vs_accuracy(summary: Mapping, main: tuple, *, budget_ratio: float = 20.0,
                            budget_drop: float = 1.5) -> Figure:
    """Two panels of test accuracy (%) against size ratio to the float32 original (log axis).

    Left: every stage of the ``main`` recipe (mean over seeds; bar: worst to best seed) and
    the final model's ONNX file. Right: the final model of every recipe of the grid.

    Args:
        summary: ``{(sparsity, w_bits): {stage: {"accuracy", "low", "high", "ratio"}}}``
            (:func:`qkit.results.capstone.summary`).
        main: the key of the recipe drawn stage by stage.
        budget_ratio, budget_drop: the lesson's budget, drawn as dashed lines.
    """
    if main not in summary:
        raise ValueError(f"main must be one of the recipes {sorted(summary)}; got {main!r}")
    fig = new_figure(11.0, 4.2)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    path = summary[main]
    teacher = 100 * path["original"]["accuracy"]
    stages = [s for s in path if s != "onnx"]
    left.plot([path[s]["ratio"] for s in stages], [100 * path[s]["accuracy"] for s in stages], "-",
              color="#1f77b4", lw=1.5, zorder=2)
    for s, st in path.items():
        x, y = st["ratio"], 100 * st["accuracy"]
        colour = "#9467bd" if s == "onnx" else "#1f77b4"
        left.errorbar([x], [y], yerr=[[y - 100 * st["low"]], [100 * st["high"] - y]], fmt="s" if s == "onnx" else "o",
                      color=colour, ms=6, capsize=3, zorder=3)
        left.annotate(STAGE_LABELS[s], (x, y), textcoords="offset points", xytext=_OFFSETS[s], fontsize=7.5,
                      ha="center", color=colour)
    for ax in (left, right):
        ax.axhline(teacher - budget_drop, color="#2ca02c", lw=0.9, ls="--",
                   label=f"budget: ≤ {budget_drop:g} points below the original")
        ax.axvline(budget_ratio, color="#2ca02c", lw=0.9, ls=":", label=f"budget: ≥ {budget_ratio:g}× smaller")
        ax.set_xscale("log")
        ax.set_xlabel("compression ratio: original's file / this file (×, log)")
        ax.grid(alpha=0.3, which="both")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    left.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}×" if v in (2, 5, 20, 30) else ""))
    right.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    left.set_ylim(teacher - 3.5, teacher + 1.5)
    left.set_ylabel("test accuracy (%), mean over random seeds")
    left.set_title(f"recipe {int(100 * main[0])} % sparse, {main[1]}-bit weights: stage by stage", fontsize=10)
    left.legend(fontsize=7.5, loc="lower left")
    for i, (key, st) in enumerate(sorted(summary.items())):
        f = st["packed"]
        x, y = f["ratio"], 100 * f["accuracy"]
        right.errorbar([x], [y], yerr=[[y - 100 * f["low"]], [100 * f["high"] - y]], fmt="o",
                       color="#1f77b4" if key == main else "#ff7f0e", ms=6, capsize=3)
        right.annotate(f"{int(100 * key[0])} %, {key[1]}-bit", (x, y), textcoords="offset points",
                       xytext=(7, 4 if i % 2 else -10), fontsize=8)
    right.set_ylabel("final model's test accuracy (%)")
    right.set_title("final models of every recipe (sparsity, weight bits)", fontsize=10)
    right.legend(fontsize=7.5, loc="lower left")
    return fig
