"""Lesson 07's panel: mixed precision under a size budget, from the precomputed grid ``qkit/results/partial.json``.

Every budget's allocations (greedy with measured moves, greedy from added
single-layer drops, random ones) were found and evaluated once by
``python -m qkit.results.make partial``; a slider move only looks a row up and
redraws (:class:`qkit.viz.partial.BudgetPlot`).
"""

from __future__ import annotations

import ipywidgets as w

from qkit.partial.pareto import pareto_front
from qkit.viz.partial import COLOURS, BudgetPlot
from qkit.widgets.base import Panel, toggle

SHOWN = {"greedy (measured)": "greedy", "greedy (added drops)": "plain", "random (seed 0)": "random0"}


def budget_points(rows: list[dict]) -> dict:
    """The grid's rows as plot data: uniform points, both greedy curves, every random point, the Pareto front.

    Example:
        >>> rows = [{"kind": "uniform", "bits": 4, "bytes": 10, "accuracy": 0.9},
        ...         {"kind": "budget", "budget": 12, "greedy": {"bytes": 11, "accuracy": 0.95},
        ...          "plain": {"bytes": 12, "accuracy": 0.93}, "random0": {"bytes": 9, "accuracy": 0.5}}]
        >>> pts = budget_points(rows)
        >>> pts["front"]                      # (12 B, 93 %) loses to (11 B, 95 %)
        ([9, 10, 11], [50.0, 90.0, 95.0])
    """
    uniform = {r["bits"]: (r["bytes"], 100 * r["accuracy"]) for r in rows if r["kind"] == "uniform"}
    budgets = sorted((r for r in rows if r["kind"] == "budget"), key=lambda r: r["budget"])
    curves = {k: ([r["budget"] for r in budgets], [r[k]["bytes"] for r in budgets],
                  [100 * r[k]["accuracy"] for r in budgets]) for k in ("greedy", "plain")}
    randoms = [(r[k]["bytes"], 100 * r[k]["accuracy"]) for r in budgets for k in r if k.startswith("random")]
    every = list(uniform.values()) + randoms + [(b, a) for k in curves for b, a in zip(*curves[k][1:])]
    keep = pareto_front([p[0] for p in every], [p[1] for p in every])
    return {"uniform": uniform, "curves": curves, "budgets": budgets,
            "randoms": ([p[0] for p in randoms], [p[1] for p in randoms]),
            "front": ([every[i][0] for i in keep], [every[i][1] for i in keep])}


class BudgetPanel(Panel):
    """Slider = the size budget of the weights; the plane shows where each allocation lands.

    Args:
        grid: ``qkit.results.load("partial")``.
        layers: the model's layer names (``qkit.partial.layers(model)``), in graph order.
        fp32_bytes: the float32 weight bytes (``qkit.partial.weight_bytes(model, {})``).
    """

    def __init__(self, grid: dict, layers: list[str], fp32_bytes: int) -> None:
        self.layers, self.fp32 = list(layers), fp32_bytes
        self.points = pts = budget_points(grid["rows"])
        self.rows = {r["budget"]: r for r in pts["budgets"]}
        self.uniform = pts["uniform"]
        self.seeds = sorted(k for k in pts["budgets"][0] if k.startswith("random"))
        choices = grid["args"]["choices"]
        self.plot = BudgetPlot(pts["uniform"], pts["curves"], pts["randoms"], pts["front"], self.layers, choices,
                               fp32_bytes, title=f"{grid['args']['model']}: mixed precision of the weights "
                                                 "(activations float)")
        options = [(f"{b:,} B ({100 * b / fp32_bytes:.1f} %)", b) for b in sorted(self.rows)]
        start = min(self.rows, key=lambda b: abs(b - self.uniform.get(4, (b,))[0]))
        controls = {
            "budget": w.SelectionSlider(options=options, value=start, description="weight budget",
                                        continuous_update=True, style={"description_width": "initial"},
                                        layout=w.Layout(width="520px")),
            "shown": toggle("bars show", list(SHOWN), "greedy (measured)"),
        }
        super().__init__(controls, self.plot, rows=[["budget"], ["shown"]])

    def update(self, budget, shown) -> str:
        if shown not in SHOWN:
            raise ValueError(f"shown must be one of {list(SHOWN)}; got {shown!r}")
        row, key = self.rows[budget], SHOWN[shown]
        pick = row[key]
        colour = COLOURS["random" if key.startswith("random") else key]
        others = ([row[k]["bytes"] for k in ("greedy", "plain", *self.seeds) if k != key],
                  [100 * row[k]["accuracy"] for k in ("greedy", "plain", *self.seeds) if k != key])
        bits = [pick["bits_map"][n] for n in self.layers]
        self.plot.update(budget, bits, (pick["bytes"], 100 * pick["accuracy"]), others, colour,
                         f"{shown}: {pick['bytes']:,} B, {100 * pick['accuracy']:.1f} %")
        self.accuracy = pick["accuracy"]
        fits = [b for b, (nbytes, _) in self.uniform.items() if nbytes <= budget]
        best_uniform = (f"the widest uniform width that fits, {max(fits)} bits"
                        + ("" if max(fits) != 32 else " (float)")
                        + f", reaches {self.uniform[max(fits)][1]:.1f} %") if fits else "no uniform width fits"
        rand = [100 * row[k]["accuracy"] for k in self.seeds]
        return (f"budget <b>{budget:,} bytes</b> = {100 * budget / self.fp32:.1f} % of the float32 weights "
                f"({self.fp32:,} B). <b>{shown}</b>: {pick['bytes']:,} B, test accuracy "
                f"<b>{100 * pick['accuracy']:.1f} %</b>. Greedy (measured) {100 * row['greedy']['accuracy']:.1f} %, "
                f"greedy (added drops) {100 * row['plain']['accuracy']:.1f} %, random {min(rand):.1f}–"
                f"{max(rand):.1f} % ({len(rand)} seeds); {best_uniform}.")
