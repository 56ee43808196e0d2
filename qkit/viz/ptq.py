"""Lesson 04's panel plot: precomputed curves, the slider's position and one highlighted curve.

Both of lesson 04's panels (calibration-set size, the bit-width cliff) show a
few accuracy curves that were computed once; a slider move only moves the
vertical line at the chosen x, the value labels there and the highlight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from matplotlib.collections import LineCollection

from qkit.viz.base import Blitter, new_figure

FADED = 0.3  # alpha of the curves that are not highlighted


class CurvesPlot:
    """Several y(x) curves, drawn once (faded); the highlighted one is drawn thick, on top.

    At the chosen x: a vertical line, one marker per curve in the curve's
    colour, and the curves' values written beside the line, spread apart so
    they never pile up even when the curves nearly coincide (the cliff at 8 bits).
    """

    def __init__(self, curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str,
                 ylabel: str, title: str, logx: bool = False, ylim: tuple[float, float] | None = None) -> None:
        self.fig = new_figure(9.0, 3.6, layout=None)
        self.fig.subplots_adjust(left=0.08, right=0.8, top=0.9, bottom=0.14)
        ax = self.ax = self.fig.add_subplot()
        self.curves = {k: (np.asarray(x, float), np.asarray(y, float)) for k, (x, y) in curves.items()}
        self.lines, self.colors = {}, {}
        for name, (x, y) in self.curves.items():
            line = ax.plot(x, y, "o-", ms=3, lw=1.0, alpha=FADED, label=name)[0]
            self.lines[name], self.colors[name] = line, line.get_color()
        if logx:
            ax.set_xscale("log", base=2)
            xs = sorted({float(v) for x, _ in self.curves.values() for v in x})
            ax.set_xticks(xs, [f"{v:g}" for v in xs])  # the slider's values, written plainly
            ax.minorticks_off()
        if ylim:
            ax.set_ylim(*ylim)
        xs = np.concatenate([x for x, _ in self.curves.values()])
        lo, hi = xs.min(), xs.max()
        if logx:  # room on the right, past the last x, for the value labels
            ax.set_xlim(lo / 1.3, hi * 2.2)
            self.label_x = hi * 1.2
        else:
            ax.set_xlim(lo - 0.04 * (hi - lo), hi + 0.3 * (hi - lo))
            self.label_x = hi + 0.06 * (hi - lo)
            if len(np.unique(xs)) <= 16:
                ax.set_xticks(np.unique(xs))  # only the values the slider takes
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        legend = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                           title="highlighted: thick", title_fontsize=7)
        for handle in legend.legend_handles:
            handle.set_alpha(1.0)  # the legend keys in full colour
        ax.grid(alpha=0.3, which="both")
        self.marker = ax.axvline(np.nan, color="black", lw=1, ls="--")
        self.chosen = ax.plot([], [], "o-", lw=3.2, ms=5, zorder=5)[0]
        self.dots = {name: ax.plot([], [], "o", ms=7, mec="white", mew=0.8, color=c, zorder=6)[0]
                     for name, c in self.colors.items()}
        self.labels = {name: ax.text(0, 0, "", fontsize=7.5, color=c, va="center", zorder=7)
                       for name, c in self.colors.items()}
        self.leaders = ax.add_collection(LineCollection([], colors=list(self.colors.values()), lw=0.6,
                                                        alpha=0.7, zorder=6))  # value label -> its marker
        self.logx = logx
        moving = [self.marker, self.leaders, self.chosen, *self.dots.values(), *self.labels.values()]
        self.blitter = Blitter(self.fig, moving)

    def render(self) -> bytes:
        """PNG of the current state."""
        return self.blitter.render()

    def label_positions(self, ys: Mapping[str, float]) -> dict[str, float]:
        """Heights for the value labels: in order of value, at least 9 % of the axis apart.

        Example:
            >>> plot = CurvesPlot({"a": ([2, 8], [10, 98.0]), "b": ([2, 8], [20, 98.2])},
            ...                   xlabel="B", ylabel="%", title="", ylim=(0, 100))
            >>> plot.label_positions({"a": 98.0, "b": 98.2})  # pushed apart, then down below the top
            {'a': 88.0, 'b': 97.0}
        """
        lo, hi = self.ax.get_ylim()
        gap = 0.09 * (hi - lo)
        inside = {n: float(np.clip(np.nan_to_num(v, nan=hi), lo, hi)) for n, v in ys.items()}  # inf: at the edge
        order = sorted(inside, key=lambda n: inside[n])
        placed: dict[str, float] = {}
        for name in order:  # bottom-up: each label as close to its value as the one below allows
            below = max(placed.values(), default=-np.inf)
            placed[name] = max(inside[name], below + gap)
        above = hi - 0.03 * (hi - lo) + gap
        for name in reversed(order):  # top-down: past the top, push down only as far as needed
            placed[name] = min(placed[name], above - gap)
            above = placed[name]
        return {n: float(v) for n, v in placed.items()}

    def update(self, x: float, highlight: str | None = None) -> dict[str, float]:
        """Mark ``x`` on every curve (and thicken ``highlight``); return each curve's y there."""
        self.marker.set_xdata([x, x])
        ys = {name: float(np.interp(x, cx, cy)) for name, (cx, cy) in self.curves.items()}
        for name, dot in self.dots.items():
            dot.set_data([x], [ys[name]])
        dots = sorted(self.dots, key=lambda n: n == highlight)  # the highlighted marker drawn last, on top
        self.blitter.moving = [self.marker, self.leaders, self.chosen, *(self.dots[n] for n in dots),
                               *self.labels.values()]
        text_x = self.label_x  # always in the margin past the data: never over a curve
        bottom, top = self.ax.get_ylim()
        segments, places = [], self.label_positions(ys)
        for name in self.colors:  # the leaders' colours are in this order
            label, y = self.labels[name], places[name]
            label.set_position((text_x, y))
            label.set_text(f"{name} {ys[name]:.1f}")
            label.set_fontweight("bold" if name == highlight else "normal")
            segments.append([(x, float(np.clip(ys[name], bottom, top))), (text_x, y)])
        self.leaders.set_segments(segments)  # in the order of self.colors
        if highlight in self.curves:
            self.chosen.set_data(*self.curves[highlight])
            self.chosen.set_color(self.colors[highlight])
        else:
            self.chosen.set_data([], [])
        return ys
