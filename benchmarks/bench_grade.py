"""The class grader's budgets: one notebook graded ≤ its own run time + 10 s; ``--jobs`` scales to the cores.

Run: ``python benchmarks/bench_grade.py [--repeat 3] [--lesson notebooks/01_affine_and_scale_maps.ipynb]``.

* *own run time*: the notebook executed alone in a fresh kernel by ``nbclient`` (what a learner's
  "restart and run all" costs); *graded*: ``python -m exercises.grade`` on the same file, start to
  end (a new worker, the kernel, taking the functions out, the checks in their own process);
  medians of ``--repeat`` runs, interleaved. The lesson notebook is used with its exercise cells
  filled in with the kit's solutions, so every question is really graded.
* *scaling*: the generated class (``tests/grading_class.py``, the notebooks that finish) graded with
  ``--jobs 1`` and ``--jobs N`` (N = the cores), wall time and speed-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from qkit.kernels.bench import machine_line  # noqa: E402


def solved_copy(lesson: Path, folder: Path) -> Path:
    """The lesson notebook with each ``my_…`` placeholder cell replaced by the kit's solution."""
    import nbformat  # noqa: PLC0415

    from exercises.core import solution_source  # noqa: PLC0415
    from exercises.grading.execute import questions_of  # noqa: PLC0415
    from exercises.grading.scan import scan_notebook  # noqa: PLC0415

    nb = nbformat.read(lesson, as_version=4)
    qs = [q for m in scan_notebook(nb).lessons for q in questions_of(m)]
    for cell in nb.cells:
        for q in qs:
            if cell.cell_type == "code" and cell.source.lstrip().startswith(f"def {q.fn_name}("):
                cell.source = solution_source(q.solution_fn, q.fn_name) + f"\n{q.name}.check({q.fn_name})"
    out = folder / lesson.name
    nbformat.write(nb, out)
    return out


def own_run(path: Path) -> float:
    code = ("import sys, nbformat, time; from nbclient import NotebookClient; "
            "nb = nbformat.read(sys.argv[1], as_version=4); t = time.perf_counter(); "
            "NotebookClient(nb, timeout=600, kernel_name='python3', "
            "resources={'metadata': {'path': sys.argv[2]}}).execute(); print(time.perf_counter() - t)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(path), str(path.parent)], check=True, capture_output=True,
                   env=dict(os.environ, QKIT_PROGRESS="off", MPLBACKEND="Agg"))
    return time.perf_counter() - start


def graded(paths: list[Path], jobs: int, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "exercises.grade", *map(str, paths), "--out", str(out), "--jobs", str(jobs)],
                   check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lesson", type=Path, default=ROOT / "notebooks" / "01_affine_and_scale_maps.ipynb")
    args = ap.parse_args()
    print(machine_line())
    from grading_class import write_class  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nb = solved_copy(args.lesson, tmp)
        own, grade = [], []
        for _ in range(args.repeat):
            own.append(own_run(nb))
            grade.append(graded([nb], 1, tmp / "gb"))
        o, g = statistics.median(own), statistics.median(grade)
        print(f"\n{'':34s} {'median s':>9}")
        print(f"{'own run (nbclient, fresh kernel)':34s} {o:9.1f}")
        print(f"{'graded (python -m exercises.grade)':34s} {g:9.1f}")
        print(f"{'PASS' if g <= o + 10 else 'FAIL'}  grading overhead {g - o:.1f} s (budget <= 10 s) on {args.lesson.name}")
        class_paths = [p for p in write_class(tmp / "class") if p.stem in ("ada", "ben", "cy", "hal", "ivy", "jo", "kim", "lou")]
        jobs = os.cpu_count() or 1
        one = statistics.median(graded(class_paths, 1, tmp / "g1") for _ in range(max(1, args.repeat - 1)))
        many = statistics.median(graded(class_paths, jobs, tmp / "gn") for _ in range(max(1, args.repeat - 1)))
        print(f"\n{len(class_paths)} generated notebooks: --jobs 1 {one:.1f} s, --jobs {jobs} {many:.1f} s, "
              f"speed-up {one / many:.2f}x on {jobs} cores")
        print(f"{'PASS' if one / many >= 0.7 * jobs else 'FAIL'}  --jobs {jobs} speed-up >= {0.7 * jobs:.1f}x "
              f"(70 % of the cores)")


if __name__ == "__main__":
    main()
