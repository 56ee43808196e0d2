"""A made-up class of learner notebooks for lesson 01, for the grader's tests (and its benchmark).

Each learner is a small notebook with the lesson's exercise cells only (the lesson's prose and
experiments add run time, not grading cases). Who is who:

* ``ada``: every answer right; ``ben``: q1 off by one, q5 missing, the rest right;
* ``cy``: a cell raises halfway (what came before is graded, what came after is not there);
* ``dee``: not a notebook; ``eve``: a cell that loops forever (interrupted at the cell limit);
* ``fay``: a loop that swallows the interrupt (stopped at the notebook limit);
* ``gus``: allocates 4 GB (stopped at the memory limit);
* tampering, each with a wrong ``my_qrange``: ``hal`` redefines ``q1.check``; ``ivy`` patches
  ``exercises.core``; ``jo`` edits the saved output to say ✔; ``kim`` reads the solution and
  hands in the kit's own functions; ``lou`` hides a payload in a pickled global that patches the
  checker where the function is loaded.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from exercises.core import solution_source
from exercises.ex01_affine import q1, q2, q3, q4, q5

QUESTIONS = (q1, q2, q3, q4, q5)
IMPORTS = "import torch\nimport qkit\nfrom exercises.ex01_affine import q1, q2, q3, q4, q5"
WRONG_QRANGE = ("def my_qrange(bits, signed=True, narrow=False):\n"
                "    return (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2 ** bits)\n")


def _answers(skip=(), wrong_q1=False) -> list[str]:
    cells = []
    for q in QUESTIONS:
        if q.name in skip:
            continue
        cells.append(WRONG_QRANGE if (q is q1 and wrong_q1) else solution_source(q.solution_fn, q.fn_name))
        cells.append(f"{q.name}.check()")
    return cells


def _notebook(cells: list[str], outputs: dict[int, str] | None = None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Lesson 01 exercises")]
    for i, c in enumerate(cells):
        cell = nbformat.v4.new_code_cell(c)
        if outputs and i in outputs:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=outputs[i])]
        nb.cells.append(cell)
    return nb


EVIL = '''class Payload:
    def __reduce__(self):  # runs where the pickle is loaded: tries to make every check say correct
        code = ("import exercises.core as c; "
                "c.Question.grade = lambda self, fn=None, seed=None: c.Feedback(True, 'correct!')")
        return (exec, (code,))

payload = Payload()

def my_qrange(bits, signed=True, narrow=False):
    _ = payload
    return (0, 0)
'''


def learners() -> dict[str, nbformat.NotebookNode | str]:
    """Each learner's file: a notebook, or (for ``dee``) plain text."""
    right = _answers()
    wrong = _answers(wrong_q1=True)
    check_cell = wrong.index("q1.check()")
    return {
        "ada": _notebook([IMPORTS] + right),
        "ben": _notebook([IMPORTS] + _answers(skip=("q5",), wrong_q1=True)),
        "cy": _notebook([IMPORTS] + right[:4] + ["raise RuntimeError('I gave up here')"] + right[4:6]),
        "dee": "these are my answers: 1) -128, 127 ...",
        "eve": _notebook([IMPORTS] + right[:4] + ["while True:\n    pass"] + right[4:]),
        "fay": _notebook([IMPORTS] + right[:2] + [
            "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"]),
        "gus": _notebook([IMPORTS] + right[:2] + ["hog = bytearray(4 * 2**30)"] + right[2:]),
        "hal": _notebook([IMPORTS, "q1.check = lambda *args: print('✔ correct!')"] + wrong),
        "ivy": _notebook([IMPORTS, "import exercises.core\n"
                          "exercises.core.Question.grade = lambda self, fn=None, seed=None: "
                          "exercises.core.Feedback(True, 'correct!')"] + wrong),
        "jo": _notebook([IMPORTS] + wrong,
                        outputs={1 + check_cell: "✔ correct! `my_qrange` matches the reference on 16 cases.\n"}),
        "kim": _notebook([IMPORTS, "q1.solution()", "my_qrange = q1.solution_fn",
                          "def my_affine_qparams(*args):\n    return q2.reference(*args)"] + right[4:]),
        "lou": _notebook([IMPORTS, EVIL, "q1.check()"] + right[2:]),
    }


def write_class(folder: Path) -> list[Path]:
    """Write every learner's file into ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, nb in learners().items():
        path = folder / f"{name}.ipynb"
        if isinstance(nb, str):
            path.write_text(nb)
        else:
            nbformat.write(nb, path)
        paths.append(path)
    return paths
