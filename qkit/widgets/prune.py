"""Lesson 08's panel: magnitude pruning of the zoo's resnet, from the precomputed grid ``qkit/results/prune.json``.

Every sparsity was pruned, fine-tuned (over seeds) and pruned gradually once by
``python -m qkit.results.make prune``; a slider move only looks the rows up and
redraws (:class:`qkit.viz.prune.SparsityPlot`).
"""

from __future__ import annotations

import statistics

import ipywidgets as w

from qkit.viz.prune import COLOURS, SparsityPlot
from qkit.widgets.base import Panel, toggle

SCOPES = {"global ranking": "global", "each layer alone": "layer"}


def sparsity_curves(rows: list[dict]) -> dict:
    """The grid's rows as plot data: ``{curve: {sparsity: [accuracies %]}}``, one value per seed.

    Example:
        >>> rows = [{"kind": "oneshot", "scope": "global", "sparsity": 0.5, "acc": 0.9},
        ...         {"kind": "finetuned", "sparsity": 0.5, "seed": 0, "acc": 0.95},
        ...         {"kind": "finetuned", "sparsity": 0.5, "seed": 1, "acc": 0.97}]
        >>> sparsity_curves(rows)
        {'global': {0.5: [90.0]}, 'finetuned': {0.5: [95.0, 97.0]}}
    """
    curves: dict = {}
    for r in rows:
        if r["kind"] == "oneshot":
            key = r["scope"]
        elif r["kind"] in ("finetuned", "gradual"):
            key = r["kind"]
        else:
            continue
        curves.setdefault(key, {}).setdefault(r["sparsity"], []).append(100 * r["acc"])
    return curves


class SparsityPanel(Panel):
    """Slider = the sparsity; toggle = how one-shot pruning ranks the weights (all together, or layer by layer).

    Args:
        grid: ``qkit.results.load("prune")``.
    """

    def __init__(self, grid: dict) -> None:
        rows = grid["rows"]
        self.curves = sparsity_curves(rows)
        self.sparsities = sorted(self.curves["global"])
        self.oneshot = {(r["scope"], r["sparsity"]): r for r in rows if r["kind"] == "oneshot"}
        sens = next(r for r in rows if r["kind"] == "sensitivity")
        self.layers, self.dense = list(sens["sizes"]), 100 * sens["dense"]
        self.sizes = [sens["sizes"][n] for n in self.layers]  # weights per layer
        self.plot = SparsityPlot(self.sparsities, self.curves, self.dense, self.layers, self.sizes,
                                 title=f"{grid['args']['model']}: magnitude pruning, before and after "
                                       f"fine-tuning ({len(grid['args']['seeds'])} seeds, "
                                       f"{grid['args']['epochs']} epochs)")
        options = [(f"{100 * s:g} %", s) for s in self.sparsities]
        controls = {
            "sparsity": w.SelectionSlider(options=options, value=0.9 if 0.9 in self.sparsities else self.sparsities[0],
                                          description="sparsity", continuous_update=True,
                                          style={"description_width": "initial"}, layout=w.Layout(width="420px")),
            "scope": toggle("one-shot ranks", list(SCOPES), "global ranking"),
        }
        super().__init__(controls, self.plot, rows=[["sparsity", "scope"]])

    def _mean(self, key: str, s: float) -> float | None:
        v = self.curves.get(key, {}).get(s)
        return statistics.mean(v) if v else None

    def update(self, sparsity, scope) -> str:
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {list(SCOPES)}; got {scope!r}")
        if sparsity not in self.sparsities:
            raise ValueError(f"sparsity must be one of {self.sparsities}; got {sparsity!r}")
        key = SCOPES[scope]
        row = self.oneshot[(key, sparsity)]
        accs = {k: self._mean(k, sparsity) for k in ("global", "layer", "finetuned", "gradual")}
        shown = {k: v for k, v in accs.items() if v is not None}
        bars = [row["layers"][n] for n in self.layers]
        self.plot.update(sparsity, shown, bars, COLOURS[key],
                         f"{scope}: {100 * sparsity:g} % overall (dashed), each layer's share:")
        self.accuracy = accs["finetuned"]
        ft = self.curves["finetuned"][sparsity]
        gradual = (f"; pruned gradually over the same epochs: <b>{accs['gradual']:.1f} %</b>"
                   if accs["gradual"] is not None else "")
        return (f"<b>{100 * sparsity:g} %</b> of the weights set to 0, one-shot ({scope}): test accuracy "
                f"<b>{accs[key]:.1f} %</b> right after pruning (dense {self.dense:.1f} %). "
                f"Global pruning, then fine-tuned with the zeros kept: <b>{accs['finetuned']:.1f} %</b> "
                f"(seeds {min(ft):.1f}–{max(ft):.1f} %){gradual}. "
                f"Files: float32 {row['file_fp32']:,} B sparse vs {row['file_fp32_dense']:,} B dense "
                f"({row['file_fp32_dense'] / row['file_fp32']:.1f}× smaller); int8 {row['file_int8']:,} B sparse "
                f"vs {row['file_int8_dense']:,} B dense.")
