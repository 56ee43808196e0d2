"""The class grader: a generated class of learner notebooks graded end to end, and its parts one by one."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest
import torch

from exercises.ex01_affine import q1, q3
from exercises.grading import codec
from exercises.grading.remote import Runner
from exercises.grading.scan import scan_sources
from exercises.grading.watch import run_limited
from grading_class import write_class

ROOT = Path(__file__).resolve().parents[1]
HANGS = ("eve", "fay")


def _grade(paths, out: Path, jobs: int, *limits: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "exercises.grade", *map(str, paths), "--out", str(out),
                             "--jobs", str(jobs), *limits], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    """Grade the class once, in three runs at the same time: each hanging notebook with its own tight limit."""
    paths = {p.stem: p for p in write_class(tmp_path_factory.mktemp("class"))}
    out = tmp_path_factory.mktemp("gradebook")
    runs = {
        "calm": _grade([p for k, p in paths.items() if k not in HANGS], out / "calm", 2,
                       "--cell-timeout", "120", "--timeout", "300", "--memory-gb", "2.5"),
        "eve": _grade([paths["eve"]], out / "eve", 1, "--cell-timeout", "15", "--timeout", "300"),
        "fay": _grade([paths["fay"]], out / "fay", 1, "--cell-timeout", "5", "--timeout", "45"),
    }
    stdout = ""
    for name, run in runs.items():
        so, se = run.communicate(timeout=900)
        assert run.returncode == 0, f"{name}: {se[-2000:]}"
        stdout += so
    rows, files = [], {}
    for part in runs:
        data = json.loads((out / part / "gradebook.json").read_text())
        with open(out / part / "gradebook.csv", newline="") as f:
            assert [r["file"] for r in csv.DictReader(f)] == [r["file"] for r in data["rows"]]
        rows += data["rows"]
        files |= {Path(f["file"]).stem: f for f in data["files"]}
    by = {}
    for r in rows:
        by.setdefault(Path(r["file"]).stem, {})[r["question"]] = r
    return {"rows": by, "files": files, "stdout": stdout}


def _status(gradebook, learner):
    return {q: r["status"] for q, r in gradebook["rows"][learner].items()}


def test_all_correct_and_some_wrong(gradebook):
    assert _status(gradebook, "ada") == {f"q{i}": "correct" for i in range(1, 6)}
    ben = _status(gradebook, "ben")
    assert ben == {"q1": "wrong", "q2": "correct", "q3": "correct", "q4": "correct", "q5": "not attempted"}
    assert "qmax is one too big" in gradebook["rows"]["ben"]["q1"]["feedback"]  # the mistake named
    assert sum(r["points"] for r in gradebook["rows"]["ada"].values()) == 5


def test_a_broken_notebook_is_graded_on_what_it_defined(gradebook):
    cy = _status(gradebook, "cy")
    assert cy["q1"] == cy["q2"] == "correct" and cy["q3"] == "correct"
    assert cy["q4"] == cy["q5"] == "not attempted"
    assert any("RuntimeError: I gave up here" in e for e in gradebook["files"]["cy"]["errors"])


def test_not_a_notebook_is_reported(gradebook):
    (row,) = gradebook["rows"]["dee"].values()
    assert row["status"] == "not graded" and "not a notebook" in row["feedback"]


def test_an_endless_cell_is_interrupted_and_the_rest_graded(gradebook):
    eve = _status(gradebook, "eve")
    assert eve == {f"q{i}": "correct" for i in range(1, 6)}
    assert any("ran longer than 15 s and was interrupted" in e for e in gradebook["files"]["eve"]["errors"])


def test_a_loop_that_eats_interrupts_is_stopped(gradebook):
    assert set(_status(gradebook, "fay").values()) == {"not graded"}
    problem = gradebook["files"]["fay"]["problem"]  # stopped at the cell, or (on a slow machine) at the notebook limit
    assert "could not be interrupted" in problem or "ran longer than 45 s" in problem


def test_a_memory_hog_is_stopped(gradebook):
    assert set(_status(gradebook, "gus").values()) == {"not graded"}
    assert "more than 2.5 GB" in gradebook["files"]["gus"]["problem"]


@pytest.mark.parametrize("learner,tried", [
    ("hal", "redefines q1.check"),
    ("ivy", "redefines exercises.core.Question.grade"),
    ("jo", "its saved output says q1 is correct"),
])
def test_tampering_earns_nothing_and_is_reported(gradebook, learner, tried):
    st = _status(gradebook, learner)
    assert st["q1"] == "wrong"  # the wrong my_qrange every tamperer hands in
    assert st["q2"] == "correct"
    assert any(tried in f for f in gradebook["files"][learner]["findings"])


def test_reading_the_solution_is_reported_and_handing_in_the_kits_code_rejected(gradebook):
    kim = _status(gradebook, "kim")
    assert kim["q1"] == kim["q2"] == "rejected"
    assert kim["q3"] == "correct"
    findings = " ".join(gradebook["files"]["kim"]["findings"])
    assert "q1.solution()" in findings and "q2.reference" in findings


def test_a_pickle_payload_cannot_reach_the_checker(gradebook):
    assert _status(gradebook, "lou")["q1"] == "wrong"


def test_the_summary_names_every_file(gradebook):
    for name in ("ada", "dee", "gus", "hal"):
        assert f"{name}.ipynb" in gradebook["stdout"]
    assert "gradebook:" in gradebook["stdout"]


# ---------------------------------------------------------------- the parts

@pytest.mark.parametrize("value", [
    torch.tensor([[1.5, -2.0]]), torch.arange(6, dtype=torch.int8).view(2, 3), torch.tensor(True),
    (1, 2.5, None, "s"), [1, [2, 3]], {"a": 1, 2: "b"}, 2**80, float("inf"), 1 + 2j,
    torch.tensor([1.0], dtype=torch.bfloat16)])
def test_codec_round_trips(value):
    back = codec.decode(json.loads(json.dumps(codec.encode(value))))
    if isinstance(value, torch.Tensor):
        assert torch.equal(back, value) and back.dtype == value.dtype
    else:
        assert back == value and type(back) is type(value)


def test_codec_refuses_what_it_does_not_know():
    with pytest.raises(ValueError, match="not a dtype"):
        codec.decode({"tensor": "object", "shape": [1], "data": ""})
    with pytest.raises(ValueError, match="not an encoded value"):
        codec.decode({"pickle": "gASV..."})
    weird = codec.decode(codec.encode(range(3)))
    assert type(weird).__name__ == "range" and weird != range(3)


LEARNER_CODE = """
import os

def raises(bits, signed=True, narrow=False):
    return {}["missing"]

def exits(bits, signed=True, narrow=False):
    os._exit(3)

def in_place(x, bits):
    x.mul_(2)
    return x

def loops(bits, signed=True, narrow=False):
    while True:
        pass

def placeholder(bits, signed=True, narrow=False):
    ...
"""


@pytest.fixture(scope="module")
def runner():
    notebook = {"__name__": "__main__"}  # functions as a notebook defines them: pickled by value
    exec(LEARNER_CODE, notebook)
    names = ("raises", "exits", "in_place", "loops", "placeholder")
    r = Runner()
    r.load({n: cloudpickle.dumps(notebook[n]) for n in names})
    yield r
    r.close()


def test_learner_errors_come_back_by_name(runner):
    fb = q1.grade(runner.function("raises"))
    assert fb.ok is False and "KeyError: 'missing'" in fb.message


def test_a_function_that_kills_its_process_is_reported_and_the_runner_restarts(runner):
    fb = q1.grade(runner.function("exits"))
    assert fb.ok is False and "exit code 3" in fb.message
    assert q1.grade(runner.function("placeholder")).ok is None  # a fresh runner answers


def test_time_limit_and_restart(runner):
    fb = q1.grade(runner.function("loops"))
    assert fb.ok is False and "ran longer than" in fb.message
    runner.ensure()
    assert runner.call("in_place", (torch.ones(2), 8))[0].tolist() == [2.0, 2.0]


def test_in_place_changes_are_seen_by_the_check(runner):
    x = torch.ones(3)
    runner.function("in_place")(x, 8)
    assert x.tolist() == [2.0, 2.0, 2.0]
    assert "not attempted" in q3.grade(runner.function("placeholder")).message


def test_scan_finds_each_kind_of_tampering():
    found = [w for _, w in scan_sources([
        "from exercises.ex01_affine import q1, q2\nimport exercises.core",
        "q1.check = print\nsetattr(q2, 'reference', print)\ndel q1.mistakes",
        "import sys\nsys.modules['exercises.core'] = None",
        "x = q2.solution_fn\nq1.hint()"]).findings]
    assert found == ["imports the checker's insides (exercises.core)", "redefines q1.check", "changes q2 with setattr()",
                     "deletes q1.mistakes", "reads the known mistakes of q1 (q1.mistakes)", "redefines sys.modules[...]",
                     "reads the solution of q2 (q2.solution_fn)"]


def test_memory_limit_covers_grandchildren():
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'x = bytearray(2 * 2**30); import time; time.sleep(60)'])")
    run = run_limited([sys.executable, "-c", code], timeout=120, memory_bytes=2**30)
    assert run.reason == "memory" and run.seconds < 60
