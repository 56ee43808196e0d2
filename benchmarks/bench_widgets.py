"""Time every slider move of every lesson's panels: compute + redraw + PNG, Agg backend.

Run: ``make bench`` or ``python benchmarks/bench_widgets.py [--repeat N]``.
Prints, per control, the median and 95th percentile over N moves through the
control's range (DESIGN.md §8 budget: median <= 60 ms, p95 <= 120 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

from qkit import data, models, widgets  # noqa: E402

from qkit.kernels.bench import machine_line  # noqa: E402

BUDGET_MEDIAN_MS, BUDGET_P95_MS = 60.0, 120.0


def values_for(control, n: int) -> list:
    """n values that walk the control's range back and forth (each differs from the last)."""
    if hasattr(control, "options") and not hasattr(control, "min"):
        opts = [o[1] if isinstance(o, tuple) else o for o in control.options]
        return [opts[i % len(opts)] for i in range(1, n + 1)]
    if isinstance(control.value, bool):
        return [bool(i % 2 == 0) != control.value for i in range(n)]
    lo, hi = control.min, control.max
    span = [lo + (hi - lo) * k / 10 for k in range(11)]
    if isinstance(control.value, int):
        span = sorted({round(v) for v in span})
    walk = span + span[-2:0:-1]
    return [walk[i % len(walk)] for i in range(1, n + 1)]


def time_moves(panel, name: str, repeat: int) -> list[float]:
    control = panel.controls[name]
    start = control.value
    times = []
    for v in values_for(control, repeat):
        if v == control.value:
            continue
        t0 = time.perf_counter()
        control.value = v  # fires the callback: compute + redraw + PNG
        times.append((time.perf_counter() - t0) * 1e3)
    control.value = start
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=60, help="slider moves per control")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine_line())
    X_train, _ = data.digits("train")
    X, y = data.digits("test")
    mlp = models.load("mlp")
    panels = {
        "NumberLinePanel": widgets.NumberLinePanel(),
        "WeightBitsPanel": widgets.WeightBitsPanel(mlp, "fc1", X, y),
        "GranularityPanel": widgets.GranularityPanel(mlp, "fc1", X, y),
        "CalibrationPanel": widgets.CalibrationPanel(mlp, "relu", X_train[:256], X, y,
                                                     X_outlier=X_train[:1] * 20),
        "AccumulatorPanel": widgets.AccumulatorPanel(),
        "CalibSizePanel": widgets.CalibrationSizePanel(models.load("mobilenet_v1"), X_train, X, y),
        "BitsCliffPanel": widgets.BitsCliffPanel({n: models.load(n) for n in models.names()},
                                                 X_train[:256], X, y),
    }
    print(f"{'panel':<17} {'control':<11} {'moves':>5} {'median ms':>10} {'p95 ms':>8}  budget")
    worst = []
    for pname, panel in panels.items():
        for cname in panel.controls:
            t = time_moves(panel, cname, args.repeat)
            med = statistics.median(t)
            p95 = statistics.quantiles(t, n=20)[-1] if len(t) >= 20 else max(t)
            ok = med <= BUDGET_MEDIAN_MS and p95 <= BUDGET_P95_MS
            worst.append(ok)
            print(f"{pname:<17} {cname:<11} {len(t):>5} {med:>10.1f} {p95:>8.1f}  {'ok' if ok else 'OVER'}")
    print(f"budget: median <= {BUDGET_MEDIAN_MS:.0f} ms, p95 <= {BUDGET_P95_MS:.0f} ms -> "
          f"{'all within' if all(worst) else 'SOME OVER'}")


if __name__ == "__main__":
    main()
