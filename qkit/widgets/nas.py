"""Lesson 10's panel: constraint sliders over the stored table; random search against evolution over seeds.

Every architecture's parameters, proxy estimate and latency were measured once by
``python -m qkit.results.make nas``. With them, a search is a table lookup, so the panel runs
both strategies on every seed for every setting of the sliders once, when it is built
(:func:`qkit.nas.search` on the table, :func:`qkit.nas.compare.summarize`); a move only looks up and redraws
(:class:`qkit.viz.nas.SearchPlot`).
"""

from __future__ import annotations

import ipywidgets as w
import numpy as np

from qkit import nas
from qkit.nas.compare import StoredTable, summarize
from qkit.viz.nas import SearchPlot
from qkit.widgets.base import Panel, toggle

NO_LIMIT = 0  # a slider's "no limit" (ipywidgets' SelectionSlider cannot hold None)
PARAM_LIMITS = (1500, 2000, 3000, 4000, 6000, 9000, 15000, 30000, NO_LIMIT)
LATENCY_LIMITS = (1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, NO_LIMIT)


class SearchPanel(Panel):
    """Sliders: the parameter limit, the latency limit, the random seed shown; toggle: whose trials the left shows.

    Args:
        grid: ``qkit.results.load("nas")``.
        seeds: how many seeds each strategy runs per setting (the mean curves average them).
        trials: the trial budget (default: the grid's).
    """

    def __init__(self, grid: dict, *, seeds: int = 10, trials: int | None = None, space: nas.Space = nas.SPACE,
                 progress: bool = False) -> None:
        if not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"seeds must be an int >= 1; got {seeds!r}")
        self.table = StoredTable.from_grid(grid)
        self.trials = int(grid["args"]["trials"] if trials is None else trials)
        self.space, self.seeds = space, seeds
        self.archs = space.archs()
        self.index = {a: i for i, a in enumerate(self.archs)}
        self.params = np.array([nas.count_params(a) for a in self.archs])  # (A,)
        self.latency = np.array([self.table.latency(a) for a in self.archs])  # (A,) ms
        est = np.array([self.table.estimate(a) for a in self.archs])  # (A,)
        self.estimates = est
        self.results: dict = {}
        combos = [(p, lat) for p in PARAM_LIMITS for lat in LATENCY_LIMITS]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(combos), desc="searches on the stored table", unit="setting", leave=False)
        for p, lat in combos:  # everything a move can show, computed once
            self.results[(p, lat)] = self._compute(p, lat)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        self.plot = SearchPlot(self.params, est, [a.block for a in self.archs], self.trials,
                               title=f"{space.size} architectures, {self.trials} trials a search, "
                                     f"{seeds} seeds a strategy (estimates and latencies: the stored table)")
        label = lambda v, unit: "no limit" if v == NO_LIMIT else f"{v:g} {unit}"  # noqa: E731
        controls = {
            "max_params": w.SelectionSlider(options=[(label(v, "params"), v) for v in PARAM_LIMITS], value=9000,
                                            description="max parameters", continuous_update=True,
                                            style={"description_width": "initial"}, layout=w.Layout(width="420px")),
            "max_latency_ms": w.SelectionSlider(options=[(label(v, "ms"), v) for v in LATENCY_LIMITS], value=NO_LIMIT,
                                                description="max latency (batch of 256)", continuous_update=True,
                                                style={"description_width": "initial"},
                                                layout=w.Layout(width="460px")),
            "seed": w.IntSlider(value=0, min=0, max=seeds - 1, step=1, description="seed shown",
                                continuous_update=True, style={"description_width": "initial"},
                                layout=w.Layout(width="300px")),
            "shown": toggle("trials shown", list(nas.STRATEGIES), "evolution"),
        }
        super().__init__(controls, self.plot, rows=[["max_params", "max_latency_ms"], ["seed", "shown"]])

    def _compute(self, max_params, max_latency_ms):
        """Both strategies on every seed under these limits, or the search's error message."""
        max_params = None if max_params == NO_LIMIT else max_params
        max_latency_ms = None if max_latency_ms == NO_LIMIT else max_latency_ms
        try:
            runs = {s: [nas.search(self.space, strategy=s, trials=self.trials, max_params=max_params,
                                   max_latency_ms=max_latency_ms, seed=seed, estimate=self.table.estimate,
                                   latency=self.table.latency) for seed in range(self.seeds)]
                    for s in nas.STRATEGIES}
        except ValueError as e:
            return str(e)
        curves = {s: np.array([nas.best_so_far(t) for t in ts]) for s, ts in runs.items()}  # (seeds, trials)
        return {"runs": runs, "curves": curves, "summary": summarize(curves)}

    def feasible(self, max_params, max_latency_ms) -> np.ndarray:
        """Bool mask over the architectures: the ones that meet both limits (0 or None: no limit)."""
        ok = np.ones(len(self.archs), dtype=bool)
        if max_params:
            ok &= self.params <= max_params
        if max_latency_ms:
            ok &= self.latency <= max_latency_ms
        return ok

    def update(self, max_params, max_latency_ms, seed, shown) -> str:
        if shown not in nas.STRATEGIES:
            raise ValueError(f"shown must be one of {nas.STRATEGIES}; got {shown!r}")
        res = self.results.get((max_params, max_latency_ms))
        if res is None:
            raise ValueError(f"limits must be among the sliders' values; got {max_params!r}, {max_latency_ms!r}")
        if isinstance(res, str):
            raise ValueError(res)
        ok = self.feasible(max_params, max_latency_ms)
        trials = res["runs"][shown][seed]
        best = max(trials, key=lambda t: (t.estimate, -t.index))
        ceiling = float(self.estimates[ok].max())
        self.plot.update(ok, [self.index[t.arch] for t in trials], self.index[best.arch], max_params or None,
                         {s: c.mean(axis=0) for s, c in res["curves"].items()},
                         {s: c[seed] for s, c in res["curves"].items()}, ceiling)
        s = res["summary"]
        self.summary = s
        distinct = len({t.arch for t in trials})
        gap = round(100 * (s["evolution"] - s["random"]), 1)  # points, at the readout's precision
        verdict = (f"evolution ahead by {gap:.1f} points" if gap > 0 else
                   f"random search ahead by {-gap:.1f} points" if gap < 0 else "a tie at this precision")
        limits = []  # each limit with how many architectures it alone admits, so a move that binds none still shows
        if max_params:
            limits.append(f"≤ {max_params:,} params: {int((self.params <= max_params).sum())}")
        if max_latency_ms:
            limits.append(f"≤ {max_latency_ms:g} ms: {int((self.latency <= max_latency_ms).sum())}")
        named = "; ".join(limits) if limits else "no limits set"
        return (f"<b>{int(ok.sum())} of {len(ok)}</b> architectures meet the limits ({named}; best proxy "
                f"{100 * ceiling:.1f} %). Seed {seed}, {shown}: {distinct} distinct architectures in "
                f"{self.trials} trials, best <b>{best.key}</b> ({best.params:,} params, {best.latency_ms:.2f} ms, "
                f"proxy {100 * best.estimate:.1f} %). Mean best at the budget over {s['seeds']} seeds: random "
                f"<b>{100 * s['random']:.1f} %</b>, evolution <b>{100 * s['evolution']:.1f} %</b> ({verdict}; "
                f"evolution wins {s['wins']}, ties {s['ties']}, loses {s['seeds'] - s['wins'] - s['ties']}).")
