"""Run every notebook in a fresh kernel; print its wall time and the kernel's peak memory.

Run: ``python benchmarks/bench_notebooks.py [--repeat N]`` (DESIGN.md §8 budgets:
each notebook <= 60 s, kernel peak RSS <= 1.5 GB, as Binder gives 2 GB).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from qkit.kernels.bench import machine_line

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S, BUDGET_MB = 60.0, 1536.0
PEAK = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux"


def run_once(path: Path) -> tuple[float, float]:
    """(seconds to execute every cell, kernel peak RSS in MiB)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    peak_kib = int(nb.cells[-1].outputs[0]["text"].strip())
    return seconds, peak_kib / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(machine_line())
    print(f"{'notebook':<38} {'runs':>4} {'median s':>9} {'peak MiB':>9}  budget")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        runs = [run_once(path) for _ in range(args.repeat)]
        sec = statistics.median(r[0] for r in runs)
        mib = max(r[1] for r in runs)
        ok = sec <= BUDGET_S and mib <= BUDGET_MB
        print(f"{path.name:<38} {len(runs):>4} {sec:>9.1f} {mib:>9.0f}  {'ok' if ok else 'OVER'}")
    print(f"budget: <= {BUDGET_S:.0f} s and <= {BUDGET_MB:.0f} MiB per notebook (kernel start included)")


if __name__ == "__main__":
    main()
