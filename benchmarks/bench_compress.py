"""Pruning, distillation, architecture search and all of them together on the zoo: issue 10's budgets, measured.

Run: ``python benchmarks/bench_compress.py [--quick] [--parts prune,channels,distill,nas,capstone]``.

Each part lives in its own script beside this one (``compress_<part>.py``, runnable
alone) and returns its rows — name, value, budget, passed, detail — from
``budgets(quick)``; this script runs the parts in turn and prints one table. The
first line names the CPU: latencies and speed-ups hold for this machine only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from qkit.kernels.bench import machine_line  # noqa: E402

PARTS = ("prune", "channels", "distill", "nas", "capstone")


def format_rows(rows: list[dict]) -> str:
    """One line per budget: PASS/FAIL, the name, the measured value against the budget, the detail.

    >>> print(format_rows([dict(name="90 % sparsity drop", value=0.4, budget="<= 1 point", passed=True, detail="mlp")]))
    PASS  90 % sparsity drop                                    0.4  (budget <= 1 point)  mlp
    """
    lines = []
    for r in rows:
        value = f"{r['value']:.3g}" if isinstance(r["value"], float) else str(r["value"])
        lines.append(f"{'PASS' if r['passed'] else 'FAIL'}  {r['name']:48s} {value:>8s}  (budget {r['budget']})"
                     + (f"  {r['detail']}" if r.get("detail") else ""))
    return "\n".join(lines)


def run_part(doc: str, budgets, quick_help: str, after: str = "") -> None:
    """The command line of one ``compress_<part>.py`` run alone: its ``--quick`` flag, the CPU line, its table.

    Args:
        doc: the part's module docstring (its first line describes the command).
        budgets: the part's ``budgets(quick=...)``.
        quick_help: what ``--quick`` does in that part.
        after: a line printed under the table (empty: none).
    """
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    args = ap.parse_args()
    print(machine_line())
    print(format_rows(budgets(quick=args.quick)))
    if after:
        print(after)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and epochs (a smoke run; budgets not final)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown parts {unknown}; choose from {PARTS}")
    print(machine_line())
    rows = []
    for part in parts:
        start = time.perf_counter()
        module = importlib.import_module(f"compress_{part}")
        got = module.budgets(quick=args.quick)
        print(f"\n{part} ({time.perf_counter() - start:.0f} s)")
        print(format_rows(got))
        rows += got
    passed = sum(bool(r["passed"]) for r in rows)
    print(f"\n{passed} of {len(rows)} budgets met")


if __name__ == "__main__":
    main()
