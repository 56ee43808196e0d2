"""A panel plot of precomputed curves with the slider's position marked (lesson 04's panels)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qkit.viz.base import Blitter, new_figure


class CurvesPlot:
    """Several y(x) curves, drawn once; a slider move only moves the marker and the highlight."""

    def __init__(self, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str,
                 ylabel: str, title: str, logx: bool = False, ylim: tuple[float, float] | None = None) -> None:
        self.fig = new_figure(8.0, 3.4, layout=None)
        self.fig.subplots_adjust(left=0.09, right=0.78, top=0.9, bottom=0.15)
        ax = self.ax = self.fig.add_subplot()
        self.curves = {k: (np.asarray(x, float), np.asarray(y, float)) for k, (x, y) in curves.items()}
        self.lines = {}
        for name, (x, y) in self.curves.items():
            self.lines[name] = ax.plot(x, y, "o-", ms=3.5, lw=1.2, label=name)[0]
        if logx:
            ax.set_xscale("log", base=2)
            xs = sorted({float(v) for x, _ in self.curves.values() for v in x})
            ax.set_xticks(xs, [f"{v:g}" for v in xs])  # the slider's values, written plainly
            ax.minorticks_off()
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(alpha=0.3, which="both")
        self.marker = ax.axvline(np.nan, color="black", lw=1, ls="--")
        self.dots = ax.plot([], [], "o", ms=9, mfc="none", mec="black", mew=1.5)[0]
        self.chosen = ax.plot([], [], "-", lw=5, color="black", alpha=0.3)[0]
        self.blitter = Blitter(self.fig, [self.marker, self.dots, self.chosen])

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def update(self, x: float, highlight: str | None = None) -> dict[str, float]:
        """Mark ``x`` on every curve (and thicken ``highlight``); return each curve's y there."""
        self.marker.set_xdata([x, x])
        ys = {name: float(np.interp(x, cx, cy)) for name, (cx, cy) in self.curves.items()}
        self.dots.set_data([x] * len(ys), list(ys.values()))
        if highlight in self.curves:
            self.chosen.set_data(*self.curves[highlight])
        else:
            self.chosen.set_data([], [])
        return ys
