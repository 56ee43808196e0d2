"""A learner's progress: every question of every lesson and how its last check went.

Each ``qN.check()`` records its verdict in a small JSON file in the user's data directory
(``$XDG_DATA_HOME/qkit/progress.json``, by default ``~/.local/share/qkit/progress.json``;
``QKIT_PROGRESS=/some/file.json`` puts it elsewhere, ``QKIT_PROGRESS=off`` records nothing).
:func:`progress` shows the table.

Safe by construction:

* written atomically: to a temporary file in the same folder, then ``os.replace`` — a reader
  sees the old file or the new one, never half of one;
* read–change–write under an exclusive lock (``fcntl.flock`` on ``progress.json.lock``), so two
  kernels checking at once both land (without ``fcntl``, on Windows, the last writer wins);
* a file that is not JSON, or not this kit's, is reported in one line, moved aside
  (``progress.json.broken-<time>``) and rebuilt; a lesson never fails because of it.

Example:
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "progress.json"
    >>> record("01", "q1", True, "✔ correct!", path=f)
    >>> record("01", "q1", False, "✘ for bits=0: ...", path=f)
    >>> entry = load(f)["questions"]["01/q1"]
    >>> entry["status"], entry["attempts"], entry["solved"]
    ('wrong', 2, True)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

FORMAT, VERSION = "qkit-progress", 1
ENV = "QKIT_PROGRESS"
STATUS = {True: "correct", False: "wrong", None: "not attempted"}
_reported: set[str] = set()


def default_path() -> Path | None:
    """Where progress is kept (``None`` when ``QKIT_PROGRESS=off``)."""
    env = os.environ.get(ENV, "")
    if env.lower() in ("off", "0", "no", "false"):
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "qkit" / "progress.json"


def _empty() -> dict:
    return {"format": FORMAT, "version": VERSION, "questions": {}}


def _report(message: str) -> None:
    if message not in _reported:  # once per kernel
        _reported.add(message)
        print(f"(progress) {message}", file=sys.stderr)


def _valid(data: object) -> bool:
    return (isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("questions"), dict)
            and all(isinstance(v, dict) for v in data["questions"].values()))


def _read(path: Path, *, repair: bool) -> dict:
    """The file's contents; a broken or foreign file is reported (and, if ``repair``, moved aside)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty()
    except OSError as e:
        _report(f"cannot read {path} ({e}); starting a fresh record")
        return _empty()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if _valid(data):
        return data
    if repair:
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        _report(f"{path} was not a qkit progress file: moved aside to {aside.name}, and rebuilt")
    else:
        _report(f"{path} is not a qkit progress file (the next check moves it aside)")
    return _empty()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # Windows: no lock
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomically(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def record(lesson: str, question: str, ok: bool | None, message: str, *, path: Path | None = None) -> None:
    """Store one check's verdict (``ok``: True correct, False wrong, None not attempted)."""
    path = default_path() if path is None else Path(path)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        data = _read(path, repair=True)
        key = f"{lesson}/{question}"
        old = data["questions"].get(key, {})
        data["questions"][key] = {
            "lesson": lesson, "question": question, "status": STATUS[ok], "message": message[:320],
            "attempts": int(old.get("attempts", 0)) + 1, "solved": bool(old.get("solved")) or ok is True,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        _write_atomically(path, data)


def load(path: Path | None = None) -> dict:
    """The stored progress (an empty record if there is none, or it is broken: reported, left in place)."""
    path = default_path() if path is None else Path(path)
    return _empty() if path is None else _read(path, repair=False)


def lesson_of_module(module_name: str) -> str | None:
    """``"03"`` for ``exercises.ex03_kernels``; None for anything else."""
    m = re.fullmatch(r"exercises\.ex(\d\d)_\w+", module_name)
    return m.group(1) if m else None


def record_check(question: object, ok: bool | None, message: str) -> None:
    """What :meth:`exercises.core.Question.check` calls: find the question's lesson, record, never raise."""
    try:
        for name, mod in list(sys.modules.items()):
            lesson = lesson_of_module(name)
            if lesson and getattr(mod, getattr(question, "name", ""), None) is question:
                record(lesson, question.name, ok, message)
                return
    except Exception as e:  # progress must never break a lesson
        _report(f"could not record progress ({type(e).__name__}: {e})")


def all_questions() -> list[tuple[str, str, str]]:
    """``(lesson, question, function name)`` for every question of every lesson module."""
    import exercises  # noqa: PLC0415
    from exercises.core import Question  # noqa: PLC0415

    out = []
    for info in sorted(pkgutil.iter_modules(exercises.__path__), key=lambda i: i.name):
        lesson = lesson_of_module(f"exercises.{info.name}")
        if lesson is None:
            continue
        mod = importlib.import_module(f"exercises.{info.name}")
        qs = [v for k, v in vars(mod).items() if isinstance(v, Question) and k == v.name]
        out += [(lesson, q.name, q.fn_name) for q in sorted(qs, key=lambda q: int(q.name[1:] or 0))]
    return out


def table(path: Path | None = None) -> list[dict]:
    """One row per question of every lesson: its status ("not tried yet" if never checked), attempts, solved."""
    stored = load(path)["questions"]
    rows = []
    for lesson, question, fn_name in all_questions():
        e = stored.get(f"{lesson}/{question}", {})
        rows.append({"lesson": lesson, "question": question, "function": fn_name,
                     "status": e.get("status", "not tried yet"), "attempts": int(e.get("attempts", 0)),
                     "solved": bool(e.get("solved")), "time": e.get("time", "")})
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as text: one line per lesson, one mark per question (✔ solved, ✘ tried, · not yet).

    Example:
        >>> print(format_table([{"lesson": "01", "question": "q1", "solved": True, "attempts": 1},
        ...                     {"lesson": "01", "question": "q2", "solved": False, "attempts": 2},
        ...                     {"lesson": "02", "question": "q1", "solved": False, "attempts": 0}]))
        lesson  solved  q1 q2
            01   1 / 2   ✔  ✘
            02   0 / 1   ·
        1 of 3 questions solved
    """
    lessons: dict[str, list[dict]] = {}
    for r in rows:
        lessons.setdefault(r["lesson"], []).append(r)
    width = max((len(v) for v in lessons.values()), default=0)
    lines = ["lesson  solved  " + " ".join(f"q{i + 1}" for i in range(width))]
    for lesson, qs in lessons.items():
        marks = " ".join(" ✔" if q["solved"] else (" ✘" if q["attempts"] else " ·") for q in qs)
        solved = sum(q["solved"] for q in qs)
        lines.append(f"{lesson:>6}  {solved:>2} / {len(qs):<2} {marks}".rstrip())
    lines.append(f"{sum(r['solved'] for r in rows)} of {len(rows)} questions solved")
    return "\n".join(lines)


def progress(path: Path | None = None) -> None:
    """Show the table of every question of every lesson (in Jupyter and in a terminal)."""
    from exercises.core import _display  # noqa: PLC0415

    where = default_path() if path is None else path
    rows = table(path)
    note = f"kept in {where}" if where else "recording is off: QKIT_PROGRESS=off"
    _display(format_table(rows) + f"\n({note})", **{"text/html": format_html(rows, note)})


def format_html(rows: list[dict], note: str = "") -> str:
    """The same table for Jupyter: a cell per question, green when solved, red when tried, grey when not yet."""
    import html  # noqa: PLC0415

    colors = {"solved": "#1a7f37", "tried": "#cf222e", "not yet": "#8c959f"}
    lessons: dict[str, list[dict]] = {}
    for r in rows:
        lessons.setdefault(r["lesson"], []).append(r)
    body = []
    for lesson, qs in lessons.items():
        cells = []
        for q in qs:
            kind = "solved" if q["solved"] else ("tried" if q["attempts"] else "not yet")
            tip = html.escape(f"{q['question']} ({q.get('function', '')}): {q.get('status', '')}, "
                              f"{q['attempts']} check(s)")
            cells.append(f'<td title="{tip}" style="color:{colors[kind]};text-align:center">'
                         f'{"✔" if kind == "solved" else ("✘" if kind == "tried" else "·")} {q["question"]}</td>')
        solved = sum(q["solved"] for q in qs)
        body.append(f"<tr><th>{html.escape(lesson)}</th><td>{solved} / {len(qs)}</td>{''.join(cells)}</tr>")
    total = sum(r["solved"] for r in rows)
    return (f'<table class="qkit-progress"><tr><th>lesson</th><th>solved</th><th colspan="9">questions</th></tr>'
            f'{"".join(body)}</table><div>{total} of {len(rows)} questions solved ({html.escape(note)})</div>')
