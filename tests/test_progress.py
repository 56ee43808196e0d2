"""Learner progress: checks record it, the table shows it, a broken file is moved aside, two kernels lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import exercises
from exercises import tracking
from exercises.ex01_affine import q1, q2


@pytest.fixture()
def store(tmp_path, monkeypatch):
    path = tmp_path / "qkit" / "progress.json"
    monkeypatch.setenv(tracking.ENV, str(path))
    return path


def test_a_check_records_its_verdict(store, capsys):
    q1.check(lambda bits, signed=True, narrow=False: (0, 0))
    q1.check(q1.solution_fn)
    q2.check(None)
    data = json.loads(store.read_text())
    assert data["format"] == "qkit-progress"
    e1, e2 = data["questions"]["01/q1"], data["questions"]["01/q2"]
    assert (e1["status"], e1["attempts"], e1["solved"]) == ("correct", 2, True)
    assert (e2["status"], e2["solved"]) == ("not attempted", False)


def test_the_table_lists_every_question_of_every_lesson(store, capsys):
    q1.check(q1.solution_fn)
    rows = tracking.table()
    lessons = {r["lesson"] for r in rows}
    assert {"01", "02", "03", "04", "05", "06", "07"} <= lessons
    assert [r for r in rows if r["solved"]] == [r for r in rows if (r["lesson"], r["question"]) == ("01", "q1")]
    exercises.progress()
    out = capsys.readouterr().out
    assert "1 of" in out and str(store) in out


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "someone-else", "questions": []}), "[]"])
def test_a_broken_or_foreign_file_is_moved_aside_and_rebuilt(store, capsys, content):
    store.parent.mkdir(parents=True)
    store.write_text(content)
    assert tracking.load()["questions"] == {}  # reading reports it and leaves it alone
    assert store.read_text() == content
    q1.check(q1.solution_fn)  # never raises; the file is rebuilt
    assert json.loads(store.read_text())["questions"]["01/q1"]["solved"]
    aside = [p for p in store.parent.iterdir() if ".broken-" in p.name]
    assert len(aside) == 1 and aside[0].read_text() == content
    assert "moved aside" in capsys.readouterr().err


def test_off_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(tracking.ENV, "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    q1.check(q1.solution_fn)
    assert not any(tmp_path.rglob("progress.json"))


def test_an_unwritable_place_never_breaks_a_check(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(tracking.ENV, str(blocker / "progress.json"))  # a folder that cannot exist
    q1.check(q1.solution_fn)
    captured = capsys.readouterr()
    assert "correct" in captured.out and "could not record progress" in captured.err


HAMMER = """
import sys, time
from pathlib import Path
from exercises.tracking import record
path, lesson, n, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
(folder / f"ready-{lesson}").touch()
while not (folder / "go").exists():  # both writers start together
    time.sleep(0.01)
for i in range(n):
    record(lesson, f"q{i}", True, "ok", path=path)
"""


def test_two_kernels_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "progress.json"
    lessons, n = ("01", "02"), 40
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER, str(path), lesson, str(n), str(tmp_path)])
             for lesson in lessons]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{lesson}").exists() for lesson in lessons) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    assert all(p.wait(120) == 0 for p in procs)
    keys = set(json.loads(path.read_text())["questions"])
    assert keys == {f"{lesson}/q{i}" for lesson in lessons for i in range(n)}
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # no temporary file left behind
