"""Lesson 09's static figures: scratch vs distilled student seed by seed; the gain against data size; T²."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from qkit.viz.base import new_figure
from qkit.viz.distill import DISTILLED, SCRATCH, TEACHER

CURVES = (DISTILLED, "#9467bd", "#ff7f0e")


def _mean_se(v: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(v, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a)))


def seeds_and_sizes(scratch: Sequence[float], distilled: Sequence[float], teacher: float,
                    sizes: Mapping[str, tuple[int, Sequence[float], Sequence[float]]], label: str = "") -> Figure:
    """Left: test accuracy (%) of each seed's pair of students, means ± standard error, the teacher.

    Right: the paired gain (points, mean ± standard error) against the number of labelled images.

    Args:
        scratch, distilled: test accuracies (fractions), seed by seed, of the main setting.
        teacher: the teacher's test accuracy (fraction).
        sizes: ``{name: (images, scratch accuracies, {curve label: distilled accuracies})}``, one entry
            per set size; one line per curve label (a size may lack some curves).
        label: what the main setting is (the left title).
    """
    fig = new_figure(10.0, 3.8)
    ax, bx = fig.subplots(1, 2, width_ratios=(1.0, 1.25))
    s, d = 100 * np.asarray(scratch), 100 * np.asarray(distilled)
    for a, b in zip(s, d):
        ax.plot([0, 1], [a, b], color="#bbbbbb", lw=0.8, zorder=1)
    ax.scatter(np.zeros(len(s)), s, color=SCRATCH, s=14, zorder=2, label="one seed")
    ax.scatter(np.ones(len(d)), d, color=DISTILLED, s=14, zorder=2)
    for x, v, c in ((0, s, SCRATCH), (1, d, DISTILLED)):
        m, se = _mean_se(v)
        ax.errorbar([x + 0.15], [m], yerr=[2 * se], fmt="o", ms=6, color=c, capsize=4, zorder=3,
                    label="mean ± 2 standard errors" if x == 0 else None)
    ax.axhline(100 * teacher, color=TEACHER, ls="--", lw=1, label=f"teacher ({100 * teacher:.1f} %)")
    ax.set_xticks([0, 1], ["from scratch", "distilled"])
    ax.set_xlim(-0.4, 1.5)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"the same student, same seeds and batches\n{label}", fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    ax.grid(alpha=0.3, axis="y")

    names = list(sizes)
    n = [sizes[k][0] for k in names]
    labels = list(sizes[names[0]][2])
    for j, lab in enumerate(labels):
        pts = [(x, *_mean_se(100 * (np.asarray(sizes[k][2][lab]) - np.asarray(sizes[k][1]))))
               for x, k in zip(n, names) if lab in sizes[k][2]]
        bx.errorbar([p[0] * (1 + 0.04 * j) for p in pts], [p[1] for p in pts], yerr=[2 * p[2] for p in pts],
                    fmt="o-" if j == 0 else "s--", color=CURVES[j % len(CURVES)], capsize=4, label=lab)
    bx.axhline(0, color="black", lw=0.8)
    bx.set_xscale("log")
    bx.set_xticks(n, [f"{k}\n({v})" for k, v in zip(names, n)], fontsize=7.5)
    bx.minorticks_off()
    bx.set_xlabel("labelled images a class (images in all, log scale)")
    bx.set_ylabel("gain in test accuracy (points)")
    bx.set_title("the gain against the size of the labelled set", fontsize=9)
    bx.legend(fontsize=7, title="distilled − scratch, mean ± 2 paired SE", title_fontsize=7)
    bx.grid(alpha=0.3)
    return fig


def t_squared(Ts: Sequence[float], without: Sequence[float], with_t2: Sequence[float]) -> Figure:
    """Size of the soft term's gradient against T, without and with the T² factor (log–log axes)."""
    fig = new_figure(6.5, 3.4)
    ax = fig.add_subplot()
    ax.loglog(Ts, without, "o-", color=SCRATCH, label="KL(p_t ‖ p_s) alone")
    ax.loglog(Ts, with_t2, "s-", color=DISTILLED, label="T² · KL(p_t ‖ p_s)")
    ax.set_xlabel("temperature T (log scale)")
    ax.set_ylabel("gradient norm wrt the student's logits")
    ax.set_title("the T² factor keeps the soft term's gradient on one scale", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig
