"""Lesson 08's structured-pruning table and figure: dense vs unstructured vs structured at equal sparsity.

How to call them (the notebook)::

    from qkit import results
    from qkit.results.channels import latency, summary
    from qkit.figures.channels import structured_table, structured_figure

    rows = summary(results.load("channels")["rows"], "resnet")        # grid machine's latencies
    # or re-measure here, cheaply (a few seconds per amount):
    # rows = summary(results.load("channels")["rows"], "resnet",
    #                {a: latency("resnet", a, repeat=10) for a in (0.25, 0.5, 0.75)})
    print(structured_table(rows))
    structured_figure(rows, model="resnet")

``rows`` is :func:`qkit.results.channels.summary`'s list: one dict per method and amount with
``method, amount, sparsity, acc, acc_std, seeds, params, bytes, sparse_bytes, ms, speedup``.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from qkit.measure import format_bytes
from qkit.viz.base import new_figure

COLOURS = {"dense": "black", "unstructured": "#1f77b4", "structured": "#d62728"}
LABELS = {"dense": "dense (as shipped)", "unstructured": "unstructured: magnitude, same sparsity",
          "structured": "structured: channels removed"}
KEYS = ("method", "amount", "sparsity", "acc", "acc_std", "params", "bytes", "ms", "speedup")


def _check_rows(rows) -> list[dict]:
    if not isinstance(rows, Sequence) or not rows or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"rows must be a non-empty list of dicts from qkit.results.channels.summary; got {rows!r:.80}")
    missing = [k for k in KEYS if k not in rows[0]]
    if missing:
        raise ValueError(f"rows lack {missing}: pass qkit.results.channels.summary(...)'s list")
    return list(rows)


def structured_table(rows: Sequence[dict]) -> str:
    """A text table, one line per model: accuracy after fine-tuning ± std over seeds, size, latency, speed-up.

    Example:
        >>> rows = [dict(method="dense", amount=0.0, sparsity=0.0, acc=0.99, acc_std=0.0, seeds=0, params=1000,
        ...              bytes=5000, sparse_bytes=None, ms=2.0, speedup=1.0),
        ...         dict(method="structured", amount=0.5, sparsity=0.75, acc=0.985, acc_std=0.002, seeds=3,
        ...              params=260, bytes=1400, sparse_bytes=None, ms=1.0, speedup=2.0)]
        >>> print(structured_table(rows))
        method        channels removed  weights removed  accuracy (± std, seeds)  non-zero params       file  ms / batch  speed-up
        dense                        —                —  99.00 %                            1,000   4.88 KiB        2.00     1.00×
        structured                50 %             75 %  98.50 % ± 0.20 (3)                   260   1.37 KiB        1.00     2.00×
    """
    rows = _check_rows(rows)
    head = (f"{'method':12s}  {'channels removed':>16s}  {'weights removed':>15s}  {'accuracy (± std, seeds)':23s}  "
            f"{'non-zero params':>15s}  {'file':>9s}  {'ms / batch':>10s}  {'speed-up':>8s}")
    lines = [head]
    for r in rows:
        channels = "—" if r["method"] == "dense" else ("same shapes" if r["method"] == "unstructured"
                                                       else f"{100 * r['amount']:.0f} %")
        removed = "—" if r["method"] == "dense" else f"{100 * r['sparsity']:.0f} %"
        acc = f"{100 * r['acc']:.2f} %" + (f" ± {100 * r['acc_std']:.2f} ({r['seeds']})" if r.get("seeds") else "")
        ms = "—" if r["ms"] is None else f"{r['ms']:.2f}"
        speed = "—" if r["speedup"] is None else f"{r['speedup']:.2f}×"
        lines.append(f"{r['method']:12s}  {channels:>16s}  {removed:>15s}  {acc:23s}  {r['params']:>15,}  "
                     f"{format_bytes(r['bytes']):>9s}  {ms:>10s}  {speed:>8s}")
    return "\n".join(lines)


def structured_figure(rows: Sequence[dict], model: str = "", batch: int = 256) -> Figure:
    """Accuracy after fine-tuning against non-zero parameters (left) and against latency (right), both methods.

    Error bars: ± one standard deviation over the random seeds. Points are labelled with the weights removed.
    The right panel is skipped (a note instead) when ``rows`` carry no latencies.
    """
    rows = _check_rows(rows)
    fig = new_figure(10.0, 3.8)
    left, right = fig.subplots(1, 2)
    for method in ("unstructured", "structured"):
        found = sorted((r for r in rows if r["method"] == method), key=lambda r: r["sparsity"])
        if not found:
            continue
        accs = [100 * r["acc"] for r in found]
        errs = [100 * r["acc_std"] for r in found]
        for ax, key in ((left, "params"), (right, "ms")):
            if any(r[key] is None for r in found):
                continue
            xs = [r[key] for r in found]
            ax.errorbar(xs, accs, yerr=errs, fmt="o-", ms=5, lw=1.6, capsize=3, color=COLOURS[method],
                        label=LABELS[method])
            for x, a, r in zip(xs, accs, found):
                ax.annotate(f"{100 * r['sparsity']:.0f} %", (x, a), textcoords="offset points",
                            xytext=(4, -11) if method == "structured" else (4, 5), fontsize=7, color=COLOURS[method])
    for r in rows:
        if r["method"] == "dense":
            left.plot([r["params"]], [100 * r["acc"]], "*", ms=12, color=COLOURS["dense"], label=LABELS["dense"])
            if r["ms"] is not None:
                right.plot([r["ms"]], [100 * r["acc"]], "*", ms=12, color=COLOURS["dense"], label=LABELS["dense"])
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    left.set_xlim(left=0)
    left.set_xlabel("non-zero parameters (count)")
    right.set_xlabel(f"latency, torch fp32 (ms per batch of {batch} images)")
    for ax in (left, right):
        ax.set_ylabel("test accuracy after fine-tuning (%)")
        ax.grid(alpha=0.3)
    if right.lines:
        right.legend(fontsize=7, loc="lower right")
    else:
        right.text(0.5, 0.5, "no latencies in these rows", ha="center", va="center", transform=right.transAxes)
    left.legend(fontsize=7, loc="lower right")
    left.set_title(f"{model}: accuracy vs size (labels: weights removed)", fontsize=10)
    right.set_title(f"{model}: accuracy vs speed (same shapes → same time)", fontsize=10)
    return fig
