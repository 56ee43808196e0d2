"""Lesson 09's panel: temperature and alpha; the teacher's soft targets live, the students from the grid.

The soft targets are ``softmax(teacher_logits / T)`` of a few real digits, computed once
per temperature when the panel is built; the students' accuracies come from the
precomputed grid ``qkit/results/distill.json`` (``python -m qkit.results.make distill``).
A slider move only looks up and redraws (:class:`qkit.viz.distill.SoftTargetPlot`).
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np
import torch

from qkit.distill import paired_gain, soft_targets
from qkit.results.distill import runs
from qkit.viz.distill import SoftTargetPlot
from qkit.widgets.base import Panel


def sweep_gain(rows: list[dict], per_class: int, Ts, alphas) -> np.ndarray:
    """(len(Ts), len(alphas)) mean validation gain, distilled − scratch, in points.

    Example:
        >>> rows = [{"per_class": 1, "T": t, "alpha": a, "seed": s, "val": v, "test": 0.0}
        ...         for t, a, v in ((1.0, 0.0, 0.5), (2.0, 0.5, 0.6)) for s in (0, 1)]
        >>> sweep_gain(rows, 1, [2.0], [0.5])
        array([[10.]])
    """
    base = np.mean(runs(rows, per_class, 1.0, 0.0)["val"])
    return np.array([[100 * (np.mean(runs(rows, per_class, T, a)["val"]) - base) for a in alphas] for T in Ts])


def _selection(description: str, values, value) -> w.SelectionSlider:
    return w.SelectionSlider(options=[(f"{v:g}", v) for v in values], value=value, description=description,
                             continuous_update=True, style={"description_width": "initial"},
                             layout=w.Layout(width="360px"))


class DistillPanel(Panel):
    """Sliders: temperature T and alpha over the grid's sweep.

    Args:
        grid: ``qkit.results.load("distill")``.
        images: (D, 1, 8, 8) or (D, 8, 8) digits to show (a handful).
        labels: their (D,) classes.
        teacher_logits: (D, K) the teacher's logits for them.
    """

    def __init__(self, grid: dict, images, labels, teacher_logits) -> None:
        args, rows = grid["args"], grid["rows"]
        self.args, self.rows, self.k = args, rows, args["sweep_per_class"]
        logits = torch.as_tensor(teacher_logits, dtype=torch.float32)  # (D, K)
        if logits.dim() != 2 or len(logits) != len(labels) or len(images) != len(labels):
            raise ValueError(f"images, labels and teacher_logits must describe the same D digits; got "
                             f"{len(images)}, {len(labels)} and logits of shape {tuple(logits.shape)}")
        self.soft = {T: soft_targets(logits, T).numpy() for T in args["Ts"]}  # T -> (D, K)
        self.scratch = runs(rows, self.k, 1.0, 0.0)
        self.gain = sweep_gain(rows, self.k, args["Ts"], args["alphas"])
        pics = np.asarray(images, dtype=np.float32).reshape(len(labels), 8, 8)
        self.plot = SoftTargetPlot(pics, [int(c) for c in labels], soft_targets(logits, 1.0).numpy(), args["Ts"],
                                   args["alphas"], self.gain,
                                   title=f"{args['teacher']} teaches a {args['hidden']}-unit perceptron "
                                         f"({self.k} labelled images a class, {len(args['seeds'])} seeds)")
        chosen = args["chosen"]
        controls = {"T": _selection("temperature T", args["Ts"], chosen["T"]),
                    "alpha": _selection("alpha", args["alphas"], chosen["alpha"])}
        super().__init__(controls, self.plot, rows=[["T", "alpha"]])

    def update(self, T, alpha) -> str:
        if T not in self.soft or alpha not in self.args["alphas"]:
            raise ValueError(f"T must be one of {self.args['Ts']} and alpha one of {self.args['alphas']}; "
                             f"got T={T!r}, alpha={alpha!r}")
        soft = self.soft[T]
        self.plot.update(soft, T, alpha)
        got = runs(self.rows, self.k, T, alpha)
        gain, se = paired_gain(got["val"], self.scratch["val"])
        tgain, tse = paired_gain(got["test"], self.scratch["test"])
        self.accuracy = float(np.mean(got["val"]))
        wrong = 1 - soft.max(axis=1)  # (D,) probability the teacher puts on the other classes
        chosen = self.args["chosen"]
        mark = " (the pair chosen on validation)" if (T, alpha) == (chosen["T"], chosen["alpha"]) else ""
        verdict = "stands out of" if gain > 2 * se else "does not stand out of"
        n = len(got["val"])
        return (f"At <b>T = {T:g}</b> the teacher puts {100 * wrong.mean():.1f} % of its probability on the "
                f"wrong classes (mean over the digits shown; {100 * (1 - self.soft[min(self.soft)].max(1)).mean():.2f}"
                f" % at T = {min(self.soft):g}). Student with <b>T = {T:g}, alpha = {alpha:g}</b>{mark}: "
                f"validation {100 * self.accuracy:.1f} % vs scratch {100 * np.mean(self.scratch['val']):.1f} %, "
                f"gain <b>{100 * gain:+.1f} ± {100 * se:.1f}</b> points (paired standard error, {n} seeds), "
                f"which {verdict} the spread over random seeds; on test {100 * tgain:+.1f} ± {100 * tse:.1f}.")
