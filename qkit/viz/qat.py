"""Lesson 05's panel plots: the straight-through estimator on one weight; PTQ vs QAT accuracy over bits.

Both plots draw what does not move once (the float curves, the PTQ line) and
then only move the artists a slider changes (:class:`~qkit.viz.base.Blitter`):
the staircase and its gradients for a bit width; the QAT line for a number of
fine-tuning epochs and the marker at the chosen bit width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.collections import LineCollection

from qkit.viz.base import CLIPPED, GRID, INSIDE, ZERO, Blitter, new_figure


class STEPlot:
    """Three views of ``loss(w) = (q(w)·x − t)²`` for one scalar weight ``w`` at the chosen bit width.

    ``curves[bits]`` holds numpy arrays over the common ``w`` axis: ``q`` (the fake-quantized weight),
    ``loss``, ``ste`` (the straight-through gradient), ``true`` (autograd through ``round``) and
    ``steps`` (the ``w`` where ``q`` jumps: the true gradient is undefined there), ``edge`` (the STE passes
    ``|w| <= edge``, shaded); ``float_loss`` and
    ``float_grad`` are the unquantized loss and its gradient.
    """

    def __init__(self, w: np.ndarray, curves: Mapping[int, Mapping[str, np.ndarray]], float_loss: np.ndarray,
                 float_grad: np.ndarray, clip: float) -> None:
        self.w, self.curves = np.asarray(w, float), curves
        self.fig = new_figure(11.0, 3.5, layout=None)
        self.fig.subplots_adjust(left=0.06, right=0.99, top=0.86, bottom=0.15, wspace=0.28)
        ax_q, ax_l, ax_g = self.axes = self.fig.subplots(1, 3)
        self.edges = []
        for ax in self.axes:
            self.edges += [ax.axvline(np.nan, color=INSIDE, lw=0.8, ls=":"), ax.axvline(np.nan, color=INSIDE,
                                                                                       lw=0.8, ls=":")]
            ax.grid(alpha=0.3)
            ax.set_xlim(self.w[0], self.w[-1])
            ax.set_xlabel("float weight w")
        ax_q.plot(self.w, self.w, "--", color=GRID, lw=1, label="w (float)")
        self.q_line = ax_q.plot([], [], color=INSIDE, lw=1.6, label="q(w), fake-quantized")[0]
        ax_q.set_ylabel("weight value used")
        ax_q.set_title("forward: a staircase", fontsize=10)
        ax_q.set_ylim(-1.25 * clip, 1.25 * clip)
        ax_q.legend(fontsize=7.5, loc="upper left")
        ax_l.plot(self.w, float_loss, "--", color=GRID, lw=1, label="(w·x − t)², float")
        self.loss_line = ax_l.plot([], [], color=INSIDE, lw=1.6, label="(q(w)·x − t)²")[0]
        every = np.concatenate([c["loss"] for c in curves.values()] + [float_loss])
        ax_l.set_ylim(-0.05 * every.max(), 1.05 * every.max())
        ax_l.set_ylabel("loss")
        ax_l.set_title("the loss is piecewise constant", fontsize=10)
        ax_l.legend(fontsize=7.5, loc="upper center")
        ax_g.plot(self.w, float_grad, "--", color=GRID, lw=1, label="float gradient")
        self.ste_line = ax_g.plot([], [], color=ZERO, lw=1.8, label="STE gradient (fake_quantize)")[0]
        self.true_line = ax_g.plot([], [], color=CLIPPED, lw=1.2, label="true gradient (through round)")[0]
        self.step_marks = ax_g.plot([], [], "|", color=CLIPPED, ms=9, mew=1.2, label="undefined (a jump)")[0]
        grads = np.concatenate([c["ste"] for c in curves.values()] + [float_grad])
        lo, hi = min(grads.min(), 0.0), max(grads.max(), 0.0)
        ax_g.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        ax_g.set_ylabel("d loss / d w")
        ax_g.set_title("backward: 0 almost everywhere, or STE", fontsize=10)
        ax_g.legend(fontsize=7, loc="lower right")
        self.fig.suptitle("loss(w) = (q(w)·x − t)², q: the narrow symmetric grid of [−1, 1]; between the dotted "
                          "lines the STE passes the gradient", fontsize=10)
        moving = [*self.edges, self.q_line, self.loss_line, self.ste_line, self.true_line, self.step_marks]
        self.blitter = Blitter(self.fig, moving)

    def update(self, bits: int) -> None:
        """Show the curves of ``bits``."""
        c = self.curves[bits]
        self.q_line.set_data(self.w, c["q"])
        self.loss_line.set_data(self.w, c["loss"])
        self.ste_line.set_data(self.w, c["ste"])
        self.true_line.set_data(self.w, c["true"])
        self.step_marks.set_data(c["steps"], np.zeros_like(c["steps"]))
        for i, line in enumerate(self.edges):
            line.set_xdata([(-1) ** i * c["edge"]] * 2)

    def render(self) -> bytes:
        return self.blitter.render()


Stats = Mapping[tuple[str, int, int], tuple[float, float, float]]  # (model, bits, epochs) -> (mean, lo, hi)


class AccuracyBitsPlot:
    """Test accuracy against weight bits, one subplot per model: PTQ (fixed), QAT (after chosen epochs).

    ``stats[model, bits, epochs] = (mean, lo, hi)`` over seeds, in %; the bars span lo..hi.
    ``float_acc[model]`` (%) is drawn as a dashed line.
    """

    def __init__(self, stats: Stats, float_acc: Mapping[str, float], models: Sequence[str],
                 bits: Sequence[int]) -> None:
        self.stats, self.models, self.bits = stats, list(models), sorted(bits, reverse=True)
        self.fig = new_figure(11.5, 3.3, layout=None)
        self.fig.subplots_adjust(left=0.06, right=0.99, top=0.8, bottom=0.16, wspace=0.12)
        axes = self.fig.subplots(1, len(self.models), sharey=True)
        self.axes = dict(zip(self.models, np.atleast_1d(axes)))
        self.qat_lines, self.qat_bars, self.markers = {}, {}, {}
        x = np.arange(len(self.bits))  # equally spaced, 8 bits on the left
        for model, ax in self.axes.items():
            ax.axhline(float_acc[model], color=GRID, ls="--", lw=1, label="float")
            mean, lo, hi = self._curve(model, 0)
            ax.errorbar(x - 0.06, mean, yerr=np.maximum([mean - lo, hi - mean], 0.0), fmt="o-", ms=3, lw=1.2, capsize=3,
                        color=CLIPPED, label="PTQ (0 epochs)")
            self.qat_lines[model] = ax.plot([], [], "s-", ms=4, lw=1.8, color=INSIDE, label="QAT")[0]
            self.qat_bars[model] = ax.add_collection(LineCollection([], colors=INSIDE, lw=1.8))
            self.markers[model] = ax.axvline(np.nan, color="black", lw=1, ls=":")
            ax.set_xticks(x, [str(b) for b in self.bits])
            ax.set_xlim(-0.4, len(self.bits) - 0.6)
            ax.set_ylim(0, 103)
            ax.set_xlabel("weight bits (activations 8)")
            ax.set_title(model, fontsize=10)
            ax.grid(alpha=0.3)
        first = self.axes[self.models[0]]
        first.set_ylabel("test accuracy (%)")
        handles, labels = first.get_legend_handles_labels()
        self.fig.legend(handles, labels, fontsize=8, loc="upper right", ncol=3, frameon=False)
        self.fig.suptitle("integer models on the digits test set, PTQ vs QAT: mean over random seeds, bars from min to max",
                          fontsize=10, x=0.01, ha="left")
        self.epoch_labels = {m: ax.text(0.98, 0.04, "", transform=ax.transAxes, ha="right", fontsize=8,
                                        color=INSIDE) for m, ax in self.axes.items()}
        moving = [*self.qat_lines.values(), *self.qat_bars.values(), *self.markers.values(),
                  *self.epoch_labels.values()]
        self.blitter = Blitter(self.fig, moving)

    def _curve(self, model: str, epochs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.array([self.stats[model, b, epochs] for b in self.bits], float)  # (len(bits), 3)
        return rows[:, 0], rows[:, 1], rows[:, 2]

    def update(self, bits: int, epochs: int) -> None:
        """QAT after ``epochs`` fine-tuning epochs; a marker at ``bits``."""
        x = np.arange(len(self.bits))
        pos = self.bits.index(bits)
        for model in self.models:
            mean, lo, hi = self._curve(model, epochs)
            self.qat_lines[model].set_data(x + 0.06, mean)  # a little right of PTQ: the bars stay apart
            self.qat_bars[model].set_segments([[(i + 0.06, lo[i]), (i + 0.06, hi[i])] for i in x])
            self.markers[model].set_xdata([pos, pos])
            self.epoch_labels[model].set_text(f"QAT: {epochs} epoch{'s' if epochs != 1 else ''}")

    def render(self) -> bytes:
        return self.blitter.render()
