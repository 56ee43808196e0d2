"""Lesson 11's panel: pick a recipe (sparsity, weight bits) and see every stage's file and accuracy.

Every recipe was run over three seeds by ``python -m qkit.results.make capstone``
(:mod:`qkit.results.capstone`); a change only looks the recipe up in
:func:`qkit.results.capstone.summary` and redraws (:class:`qkit.viz.capstone.StagePlot`).
A combination the grid did not run is said so in the readout.
"""

from __future__ import annotations

from qkit.results.capstone import summary
from qkit.viz.capstone import NAMES, StagePlot
from qkit.widgets.base import Panel, toggle


class StagePanel(Panel):
    """Toggles = the recipe's sparsity and weight bits; the picture shows that recipe stage by stage.

    Args:
        grid: ``qkit.results.load("capstone")``.
        budget_ratio, budget_drop: the lesson's budget (at least this many times smaller, at most
            this many points lost), drawn as lines and checked in the readout.
    """

    def __init__(self, grid: dict, *, budget_ratio: float = 20.0, budget_drop: float = 1.5) -> None:
        self.table = summary(grid)
        self.budget_ratio, self.budget_drop = budget_ratio, budget_drop
        first = tuple(grid["args"]["recipes"][0])
        self.stages = list(self.table[first])
        original = self.table[first]["original"]
        sizes = [s["size"] for st in self.table.values() for s in st.values()]
        lows = [s["low"] for st in self.table.values() for s in st.values()]
        self.plot = StagePlot(self.stages, original["size"], original["accuracy"],
                              (min(sizes) / 2, max(sizes) * 3), (100 * min(lows) - 2, 101))
        sparsities = sorted({k[0] for k in self.table})
        bits = sorted({k[1] for k in self.table})
        controls = {
            "sparsity": toggle("sparsity", [(f"{round(100 * s)} %", s) for s in sparsities], first[0]),
            "w_bits": toggle("weight bits", [(f"{b}-bit", b) for b in bits], first[1]),
        }
        super().__init__(controls, self.plot)

    def update(self, sparsity, w_bits) -> str:
        key = (sparsity, w_bits)
        if key not in self.table:
            ran = ", ".join(f"{round(100 * s)} % at {b} bits" for s, b in sorted(self.table))
            raise ValueError(f"the grid has no run at {round(100 * sparsity)} % sparsity with {w_bits}-bit "
                             f"weights; it ran {ran}")
        st = self.table[key]
        rows = [st[s] for s in self.stages]
        self.plot.update([r["size"] for r in rows], [r["accuracy"] for r in rows], [r["low"] for r in rows],
                         [r["high"] for r in rows],
                         f"{round(100 * sparsity)} % sparse, {w_bits}-bit weights: every stage "
                         f"(mean of {rows[0]['seeds']} random seeds)")
        final, original = st["packed"], st["original"]
        drop = 100 * (original["accuracy"] - final["accuracy"])
        self.final = final
        met = final["ratio"] >= self.budget_ratio and drop <= self.budget_drop
        return (f"final model: <b>{final['size']:,} bytes</b>, {final['ratio']:.1f}× smaller than the float32 "
                f"original's {original['size']:,}; test accuracy <b>{100 * final['accuracy']:.2f} %</b> "
                f"({drop:.2f} points lost; random seeds {100 * final['low']:.2f}–{100 * final['high']:.2f} %). "
                f"Budget (≥ {self.budget_ratio:g}×, ≤ {self.budget_drop:g} points): "
                f"<b>{'met' if met else 'not met'}</b>. The ONNX file holds dense int8: {st['onnx']['size']:,} bytes."
                f"<br>Test accuracy by stage: " + ", ".join(f"{NAMES.get(s, s)} {100 * r['accuracy']:.2f} %"
                                                           for s, r in zip(self.stages, rows)) + ".")
