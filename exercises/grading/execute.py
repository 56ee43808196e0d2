"""One notebook, graded: run it in a fresh kernel, collect the learner's functions, check them outside.

Run as ``python -m exercises.grading.execute NOTEBOOK RESULT.json [--cell-timeout S]`` by
:mod:`exercises.grade`, under :func:`exercises.grading.watch.run_limited` (time and memory
of the whole tree: this process, the kernel, the runner). Steps:

1. the notebook runs top to bottom in a fresh kernel (``nbclient``; errors recorded, not
   fatal; a cell over ``--cell-timeout`` is interrupted and the run goes on);
2. one more cell, in the same kernel, pickles (cloudpickle) each function the lesson's
   questions name and writes them as base64 in JSON — nothing else leaves the kernel, and
   what it printed or did to its own copy of ``exercises`` stays there;
3. the kernel is shut down; a runner process (:mod:`exercises.grading.remote`) loads the
   functions, and this process, which never ran learner code, grades each question with the
   kit's own check on fresh random cases.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

EXPORT = '''
def __qkit_export(names, path):
    import base64, json
    import cloudpickle
    out = {}
    for name in names:
        if name in globals():
            try:
                out[name] = base64.b64encode(cloudpickle.dumps(globals()[name])).decode("ascii")
            except Exception as e:
                out[name] = {"error": type(e).__name__ + ": " + str(e)[:200]}
    with open(path, "w") as f:
        json.dump(out, f)
__qkit_export(%r, %r)
del __qkit_export
'''


def questions_of(module_name: str) -> list:
    """The questions ``q1``, ``q2``, … a lesson module declares, in order."""
    from exercises.core import Question  # noqa: PLC0415

    mod = importlib.import_module(module_name)
    found = [v for k, v in vars(mod).items() if isinstance(v, Question) and k == v.name]
    return sorted(found, key=lambda q: int(q.name[1:]) if q.name[1:].isdigit() else 0)


def run_notebook(path: Path, names, cell_timeout: float, blobs_path: Path) -> dict:
    """Execute the notebook, then the export cell (``names()``: the functions to take out); report errors."""
    import nbformat  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = NotebookClient(nb, timeout=int(cell_timeout), allow_errors=True, interrupt_on_timeout=True,
                            error_on_timeout={"ename": "CellTimeout", "evalue": f"ran longer than {cell_timeout:g} s",
                                              "traceback": []},
                            kernel_name="python3", shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    errors = []
    with client.setup_kernel():
        code_index = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            code_index += 1
            t0 = time.monotonic()
            client.execute_cell(cell, index)
            timed_out = time.monotonic() - t0 >= cell_timeout
            for out in cell.outputs:
                if out.get("output_type") == "error":
                    text = (f"ran longer than {cell_timeout:g} s and was interrupted" if timed_out
                            else f"{out.get('ename')}: {out.get('evalue')}")
                    errors.append({"cell": code_index, "error": text[:200]})
            if timed_out and not _responds(client, nbformat):
                errors[-1:] = [{"cell": code_index, "error": f"ran longer than {cell_timeout:g} s and could not "
                                                         "be interrupted: the notebook was stopped there"}]
                return {"run_seconds": time.monotonic() - start, "errors": errors, "stuck": code_index}
        export = nbformat.v4.new_code_cell(EXPORT % (names(), str(blobs_path)))
        nb.cells.append(export)
        client.execute_cell(export, len(nb.cells) - 1)
    return {"run_seconds": time.monotonic() - start, "errors": errors}


PROBE_SECONDS = 10  # after an interrupted cell: how long the kernel may take to answer again


def _responds(client, nbformat) -> bool:
    """Does the kernel run a new cell after an interrupt? (A loop that swallows KeyboardInterrupt keeps it busy.)"""
    timeout, client.timeout = client.timeout, PROBE_SECONDS
    try:
        probe = nbformat.v4.new_code_cell("pass")
        t0 = time.monotonic()
        client.execute_cell(probe, 0)
        return time.monotonic() - t0 < PROBE_SECONDS
    finally:
        client.timeout = timeout


def grade_functions(questions: list[tuple[str, object]], blobs: dict, runner) -> list[dict]:
    """Each question's verdict on the learner's function (official check, fresh random cases)."""
    from exercises.core import Feedback  # noqa: PLC0415

    rows = []
    loadable = {k: base64.b64decode(v) for k, v in blobs.items() if isinstance(v, str)}
    runner.load(loadable)
    try:
        for lesson, q in questions:
            start = time.monotonic()
            status = runner.status.get(q.fn_name, {})
            if q.fn_name not in blobs:
                fb = Feedback(None, f"not attempted: the notebook defines no `{q.fn_name}`")
            elif isinstance(blobs[q.fn_name], dict) or not status.get("loaded"):
                why = blobs[q.fn_name]["error"] if isinstance(blobs[q.fn_name], dict) else status.get("error")
                fb = Feedback(False, f"`{q.fn_name}` could not be taken out of the notebook ({why})")
            elif not status.get("callable"):
                fb = Feedback(False, f"`{q.fn_name}` is not a function: it is {status.get('type')} {status.get('repr')}")
            elif status.get("kit"):
                fb = Feedback(False, f"rejected: `{q.fn_name}` uses the checker's own code "
                                     f"({', '.join(status['kit'])}); write your own")
            else:
                runner.ensure()
                fb = q.grade(runner.function(q.fn_name))
            rows.append({"lesson": lesson, "question": q.name, "function": q.fn_name, "ok": fb.ok, "feedback": str(fb),
                         "rejected": bool(status.get("kit")), "seconds": round(time.monotonic() - start, 3)})
    finally:
        runner.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("result", type=Path)
    ap.add_argument("--lesson", action="append", required=True, help="a lesson module, e.g. exercises.ex01_affine")
    ap.add_argument("--cell-timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    from exercises.grading.remote import Runner  # noqa: PLC0415

    runner = Runner(log=args.result.with_suffix(".runner.log"), env=dict(os.environ, QKIT_PROGRESS="off"))
    found: list = []  # the lesson's questions, imported (torch and all) while the kernel starts and runs
    loader = threading.Thread(target=lambda: found.extend((m, q) for m in args.lesson for q in questions_of(m)))
    loader.start()

    def names() -> list[str]:
        loader.join()
        return sorted({q.fn_name for _, q in found})

    with tempfile.TemporaryDirectory(prefix="qkit-grade-") as tmp:
        blobs_path = Path(tmp) / "functions.json"
        run = run_notebook(args.notebook.resolve(), names, args.cell_timeout, blobs_path)
        rows = []
        if run.get("stuck"):  # nothing to take out of a kernel that no longer answers
            runner.close()
        else:
            try:
                blobs = json.loads(blobs_path.read_text())
            except (OSError, ValueError):
                blobs = {}
                run["errors"].append({"cell": None, "error": "the learner's functions could not be collected"})
            rows = grade_functions(found, blobs if isinstance(blobs, dict) else {}, runner)
    args.result.write_text(json.dumps({**run, "questions": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
