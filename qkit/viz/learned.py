"""Lesson 06's panel plot: LSQ's initial step times k — accuracy before and after a short fine-tune,
and the grid that step puts over one activation's values.

Left: test accuracy against k (log scale) for every bit-width, before fine-tuning (dashed) and after
(solid); the chosen bit-width's two curves are drawn thick, the slider's k is a vertical line.
Right: the histogram of the values arriving at one activation quantizer (static, one per bit-width)
under the grid levels ``q · k · s0`` (moving) and the clipped region beyond the top level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle

from qkit.viz.base import CLIPPED, GRID, INSIDE, Blitter, new_figure

FADED = 0.25


class InitPlot:
    """Accuracy against LSQ's init factor k (left) and the grid ``k · s0`` over one point's values (right).

    Args:
        factors: the k values (sorted, > 0).
        before, after: ``{bits: [accuracy % per k]}``.
        values: ``{bits: 1-d array}`` the values at the activation point drawn on the right.
        steps: ``{bits: s0}`` the LSQ initial step of that point; ``levels``: ``{bits: (qmin, qmax)}``.
        point: the point's name (for the title); float_acc: the float model's accuracy (%).
    """

    def __init__(self, factors: Sequence[float], before: Mapping[int, Sequence[float]],
                 after: Mapping[int, Sequence[float]], values: Mapping[int, np.ndarray], steps: Mapping[int, float],
                 levels: Mapping[int, tuple[int, int]], *, point: str, float_acc: float, epochs: int) -> None:
        self.factors = np.asarray(factors, float)
        self.before, self.after = dict(before), dict(after)
        self.steps, self.levels = dict(steps), dict(levels)
        self.fig = new_figure(10.5, 3.6, layout=None)
        self.fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.15, wspace=0.25)
        ax, axh = self.ax, self.axh = self.fig.subplots(1, 2)
        self.colors = {}
        for b in self.after:
            line = ax.plot(self.factors, self.after[b], "o-", ms=3, lw=1, alpha=FADED, label=f"W{b}A{b}")[0]
            self.colors[b] = line.get_color()
            ax.plot(self.factors, self.before[b], "o--", ms=2, lw=0.8, alpha=FADED, color=self.colors[b])
        ax.axhline(float_acc, color="black", lw=0.8, ls=":", label=f"float32 {float_acc:.1f} %")
        ax.set_xscale("log", base=2)
        ax.set_xticks(self.factors, [ratio_label(k) for k in self.factors])
        ax.minorticks_off()
        ax.set_ylim(0, 102)
        ax.set_xlabel("k: initial step = k · 2·mean|x|/√Qp (log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"LSQ init × k: solid after {epochs} epochs of fine-tuning, dashed before", fontsize=9.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        self.marker = ax.axvline(np.nan, color="black", lw=1, ls="--")
        self.chosen_after = ax.plot([], [], "o-", lw=3, ms=5, zorder=5)[0]
        self.chosen_before = ax.plot([], [], "o--", lw=2, ms=4, zorder=5)[0]
        self.dots = ax.plot([], [], "o", ms=8, mec="white", color="black", zorder=6)[0]
        self.hists = {}
        hi = max(float(np.quantile(np.abs(v), 0.999)) for v in values.values())
        for b, v in values.items():
            v = np.asarray(v, float)
            _, _, patches = axh.hist(v, bins=80, range=(min(0.0, float(v.min())), hi * 1.15), color=GRID,
                                     alpha=0.6, log=True)
            self.hists[b] = patches
        axh.set_xlim(min(0.0, min(float(np.min(v)) for v in values.values())), hi * 1.15)
        axh.set_xlabel(f"value arriving at '{point}' (activation units)")
        axh.set_ylabel("count (log)")
        self.title = axh.set_title("", fontsize=9.5)
        self.grid_lines = axh.add_collection(LineCollection([], colors=INSIDE, lw=0.8, alpha=0.9))
        self.clip = axh.add_patch(Rectangle((0, 0), 0, 1, transform=axh.get_xaxis_transform(), color=CLIPPED,
                                            alpha=0.15, lw=0))
        moving = [self.marker, self.chosen_before, self.chosen_after, self.dots, self.grid_lines, self.clip,
                  self.title]
        self.blitter = Blitter(self.fig, moving)
        self.bits = None

    def update(self, k: float, bits: int) -> dict:
        """Show factor ``k`` at ``bits``; return the accuracies there and the grid's top level."""
        if bits not in self.after:
            raise ValueError(f"bits must be one of {sorted(self.after)}; got {bits!r}")
        i = int(np.argmin(np.abs(np.log(self.factors) - np.log(k))))
        if self.bits != bits:  # the static part: this bit-width's histogram only
            for b, patches in self.hists.items():
                for p in patches:
                    p.set_visible(b == bits)
            self.bits = bits
        self.marker.set_xdata([k, k])
        c = self.colors[bits]
        self.chosen_after.set_data(self.factors, self.after[bits])
        self.chosen_before.set_data(self.factors, self.before[bits])
        self.chosen_after.set_color(c), self.chosen_before.set_color(c)
        self.dots.set_data([k, k], [self.before[bits][i], self.after[bits][i]])
        step = k * self.steps[bits]
        qmin, qmax = self.levels[bits]
        xs = step * np.arange(qmin, qmax + 1)
        self.grid_lines.set_segments([[(v, 0), (v, 1)] for v in xs])
        self.grid_lines.set_transform(self.axh.get_xaxis_transform())
        top = step * qmax
        right = self.axh.get_xlim()[1]
        self.clip.set_x(top), self.clip.set_width(max(right - top, 0.0))
        self.title.set_text(f"{qmax - qmin + 1} levels, step {step:.3g}: clipped above {top:.3g}")
        return {"before": self.before[bits][i], "after": self.after[bits][i], "top": top, "step": step}

    def render(self) -> bytes:
        """PNG of the current state (the static part is drawn once per bit-width)."""
        return self.blitter.render(key=self.bits)


def ratio_label(k: float) -> str:
    """A factor as the slider shows it.

    Example:
        >>> ratio_label(0.125), ratio_label(4.0)
        ('1/8', '4')
    """
    return f"{k:g}" if k >= 1 else f"1/{1 / k:g}"
