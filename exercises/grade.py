"""Grade a class: ``python -m exercises.grade NOTEBOOK_OR_FOLDER... [--out DIR] [--jobs N]`` (or ``qkit-grade``).

For every learner notebook (``*.ipynb``; folders are searched recursively):

1. its source is read, never run, by :mod:`exercises.grading.scan`: which lesson it is (its
   ``from exercises.exNN_… import q1, …`` line), and what it tried on the checker;
2. a worker (:mod:`exercises.grading.execute`) runs it in a fresh kernel under a time and a
   memory limit on the whole process tree (:mod:`exercises.grading.watch`), takes the learner's
   functions out by name, and grades each with the kit's own check on fresh random cases, the
   functions running in a process of their own (:mod:`exercises.grading.remote`);
3. the saved outputs' claims (a ``✔ correct`` under ``q1.check()``) are compared with the grades.

Nothing the notebook printed, or did to its own ``exercises``, counts: the grade is what its
functions earn here; the report says what it tried. A notebook that errors, hangs, runs out of
memory or is not a notebook is reported, and the run goes on. Learner code never runs in this
process.

Writes ``gradebook.csv`` and ``gradebook.json`` to ``--out`` (one row per learner file ×
question: file, lesson, question, status, points, feedback, seconds) and prints a summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from exercises.grading.scan import Scan, scan_notebook
from exercises.grading.watch import run_limited

STATUSES = ("correct", "wrong", "not attempted", "rejected", "not graded")
FIELDS = ["file", "lesson", "question", "status", "points", "feedback", "seconds", "notes"]
DEFAULTS = {"timeout": 600.0, "cell_timeout": 120.0, "memory_gb": 3.0}


def find_notebooks(paths: list[str]) -> list[Path]:
    """The files named, and every ``*.ipynb`` under the folders named (checkpoints skipped), sorted."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += [f for f in sorted(p.rglob("*.ipynb")) if ".ipynb_checkpoints" not in f.parts]
        else:
            found.append(p)
    return found


def _lesson_label(module: str) -> str:
    return module.removeprefix("exercises.ex")[:2]


def _row(file: Path, lesson: str, question: str, status: str, feedback: str, seconds: float, notes: str) -> dict:
    return {"file": str(file), "lesson": lesson, "question": question, "status": status,
            "points": 1 if status == "correct" else 0, "feedback": feedback, "seconds": round(seconds, 2),
            "notes": notes}


def _read(path: Path):
    import nbformat  # noqa: PLC0415

    if not path.is_file():
        return None, "not found"
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # not JSON, not a notebook, a newer format: all reported the same way
        return None, f"not a notebook ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    return nb, ""


def grade_notebook(path: Path, *, timeout: float = DEFAULTS["timeout"], cell_timeout: float = DEFAULTS["cell_timeout"],
                   memory_gb: float = DEFAULTS["memory_gb"], work: Path | None = None) -> dict:
    """Grade one learner file: ``{"file", "rows", "findings", "problem", "seconds"}`` (never raises)."""
    start = time.monotonic()
    nb, problem = _read(path)
    if nb is None:
        return {"file": str(path), "rows": [_row(path, "?", "-", "not graded", problem, 0.0, "")],
                "findings": [], "problem": problem, "seconds": time.monotonic() - start}
    scan: Scan = scan_notebook(nb)
    findings = [f"cell {c}: {what}" for c, what in scan.findings]
    if not scan.lessons:
        problem = "no lesson found (no `from exercises.exNN_... import q1, ...` cell)"
        return {"file": str(path), "rows": [_row(path, "?", "-", "not graded", problem, 0.0, "; ".join(findings))],
                "findings": findings, "problem": problem, "seconds": time.monotonic() - start}
    work = Path(tempfile.mkdtemp(prefix="qkit-grade-")) if work is None else work
    result = work / (path.stem + ".result.json")
    cmd = [sys.executable, "-m", "exercises.grading.execute", str(path), str(result),
           "--cell-timeout", str(cell_timeout)] + [a for m in scan.lessons for a in ("--lesson", m)]
    env = dict(os.environ, QKIT_PROGRESS="off", MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    with open(work / (path.stem + ".log"), "wb") as log:
        run = run_limited(cmd, timeout=timeout, memory_bytes=int(memory_gb * 2**30), env=env,
                          cwd=path.parent, stdout=log, stderr=log)
    data = None
    if run.reason == "ok" and run.returncode == 0:
        try:
            data = json.loads(result.read_text())
        except (OSError, ValueError):
            data = None
    if data is None:
        problem = {"timeout": f"ran longer than {timeout:g} s and was stopped",
                   "memory": f"used more than {memory_gb:g} GB of memory and was stopped"}.get(
            run.reason, f"the grader's worker failed (exit code {run.returncode}; log in {work})")
        from exercises.grading.execute import questions_of  # noqa: PLC0415

        rows = [_row(path, _lesson_label(m), q.name, "not graded", problem, 0.0, "; ".join(findings))
                for m in scan.lessons for q in questions_of(m)]
        return {"file": str(path), "rows": rows, "findings": findings, "problem": problem,
                "seconds": time.monotonic() - start}
    errors = [f"cell {e['cell']}: {e['error']}" if e["cell"] else e["error"] for e in data["errors"]]
    if data.get("stuck"):
        from exercises.grading.execute import questions_of  # noqa: PLC0415

        problem = errors[-1]
        rows = [_row(path, _lesson_label(m), q.name, "not graded", problem, 0.0, "; ".join(findings))
                for m in scan.lessons for q in questions_of(m)]
        return {"file": str(path), "rows": rows, "findings": findings, "errors": errors, "problem": problem,
                "seconds": time.monotonic() - start, "run_seconds": data["run_seconds"]}
    rows = []
    for q in data["questions"]:
        status = {True: "correct", False: "wrong", None: "not attempted"}[q["ok"]]
        status = "rejected" if q["rejected"] else status
        notes = list(findings)
        if scan.claims.get(q["question"]) and status != "correct":
            notes.append(f"its saved output says {q['question']} is correct, but its function is not "
                         "(outputs edited by hand, or not rerun)")
        rows.append(_row(path, _lesson_label(q["lesson"]), q["question"], status, q["feedback"], q["seconds"],
                         "; ".join(notes)))
    for n in {note for r in rows for note in r["notes"].split("; ") if "saved output" in note}:
        findings.append(n)
    return {"file": str(path), "rows": rows, "findings": findings, "errors": errors,
            "problem": "; ".join(errors), "seconds": time.monotonic() - start, "run_seconds": data["run_seconds"]}


def write_gradebook(results: list[dict], out: Path) -> tuple[Path, Path]:
    """``gradebook.csv`` (one row per file × question) and ``gradebook.json`` (the same, plus per-file notes)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [r for res in results for r in res["rows"]]
    csv_path, json_path = out / "gradebook.csv", out / "gradebook.json"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    files = [{k: res.get(k) for k in ("file", "findings", "errors", "problem", "seconds", "run_seconds")}
             for res in results]
    json_path.write_text(json.dumps({"graded": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": files,
                                     "rows": rows}, indent=1, ensure_ascii=False), encoding="utf-8")
    return csv_path, json_path


def summary(results: list[dict]) -> str:
    """One line per learner file: points per lesson, what went wrong, what it tried.

    Example:
        >>> rows = [{"lesson": "01", "question": "q1", "status": "correct", "points": 1},
        ...         {"lesson": "01", "question": "q2", "status": "wrong", "points": 0}]
        >>> print(summary([{"file": "class/ada.ipynb", "rows": rows, "findings": ["cell 3: redefines q1.check"],
        ...                 "problem": "", "seconds": 9.5}]))
        file                              lesson  points  time  notes
        ada.ipynb                             01   1 / 2    10 s  tried: cell 3: redefines q1.check
    """
    lines = [f"{'file':32s}  {'lesson':>6}  {'points':>6}  {'time':>4}  notes"]
    for res in results:
        lessons = sorted({r["lesson"] for r in res["rows"]})
        points = sum(r["points"] for r in res["rows"])
        graded = [r for r in res["rows"] if r["question"] != "-"]
        notes = []
        if res.get("problem"):
            notes.append(res["problem"])
        if res["findings"]:
            notes.append("tried: " + "; ".join(res["findings"]))
        lines.append(f"{Path(res['file']).name[:32]:32s}  {','.join(lessons):>6}  {points:>2} / {len(graded):<2}"
                     f"  {res['seconds']:>3.0f} s  {' | '.join(notes)}"[:240])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m exercises.grade", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="learner notebooks, or folders of them")
    ap.add_argument("--out", type=Path, default=Path("gradebook"), help="folder for gradebook.csv/.json")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks graded at once (default: cores)")
    ap.add_argument("--timeout", type=float, default=DEFAULTS["timeout"], help="seconds per notebook")
    ap.add_argument("--cell-timeout", type=float, default=DEFAULTS["cell_timeout"], help="seconds per cell")
    ap.add_argument("--memory-gb", type=float, default=DEFAULTS["memory_gb"], help="memory per notebook (GB)")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1; got {args.jobs}")
    notebooks = find_notebooks(args.paths)
    if not notebooks:
        ap.error(f"no notebooks found in {args.paths}")
    from tqdm.auto import tqdm  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="qkit-grade-"))
    results: list[dict] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, tqdm(total=len(notebooks), desc="grading",
                                                                  unit="notebook") as bar:
        def one(i_path):
            i, path = i_path
            res = grade_notebook(path, timeout=args.timeout, cell_timeout=args.cell_timeout,
                                 memory_gb=args.memory_gb, work=work / str(i))
            bar.update(1)
            return res

        for i in range(len(notebooks)):
            (work / str(i)).mkdir()
        results = list(pool.map(one, enumerate(notebooks)))
    csv_path, json_path = write_gradebook(results, args.out)
    print(summary(results))
    print(f"gradebook: {csv_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
