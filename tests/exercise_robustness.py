"""Checks every exercise module must pass, shared by tests/test_ex*.py.

Whatever the learner hands in — nothing, a placeholder, code that raises, forgets
``return``, is not a function, loops forever or changes its input — ``grade``
answers with one friendly line and never raises.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import time


def assert_friendly_on_bad_code(q, monkeypatch) -> None:
    def placeholder(*args):
        """Your code here."""
        ...

    def raises(*args):
        raise KeyError("no such thing")

    def forgets_return(*args):
        q.solution_fn(*args)

    monkeypatch.delattr(sys.modules["__main__"], q.fn_name, raising=False)
    for fn in (None, placeholder):
        fb = q.grade(fn)
        assert fb.ok is None and "not attempted yet" in fb.message
    assert "you passed None" in q.grade(None).message
    fb = q.grade(raises)
    assert fb.ok is False and "\n" not in str(fb)
    assert fb.message.startswith("your function raised KeyError: 'no such thing' (line "), fb
    assert len(str(fb)) <= 200 and "tensor(" not in fb.message, fb  # inputs by shape, not listed
    assert "did you forget `return`" in q.grade(forgets_return).message
    assert "expects your function" in q.grade(1.5).message


def assert_stops_slow_code(q) -> None:
    def slow(*args):
        time.sleep(10)

    t0 = time.perf_counter()
    fb = dataclasses.replace(q, timeout=0.1).grade(slow)
    assert fb.ok is False and "ran longer than" in fb.message
    assert time.perf_counter() - t0 < 2.0


def assert_catches_in_place_changes(q) -> None:
    def in_place(first, *rest):
        out = q.solution_fn(first.clone(), *rest)
        first.zero_()
        return out

    assert "changed its input" in q.grade(in_place).message


def assert_each_mistake_diagnosed(q, pieces, repeat: int = 5) -> None:
    """Every declared mistake gets exactly its own message, whatever random cases come up."""
    assert len(q.mistakes) == len(pieces)
    for mistake, piece in zip(q.mistakes, pieces):
        assert piece in mistake.message
        for _ in range(repeat):
            fb = q.grade(mistake.fn)
            assert fb.ok is False and fb.message == mistake.message, (mistake.message, fb)


def assert_mistakes_caught_by_fixed_cases(q) -> None:
    """Each declared mistake already differs from the reference on one of the fixed ``edge_cases``."""
    cases = q.cases()
    for mistake in q.mistakes:
        first = next(i for i, args in enumerate(cases) if not q._same(mistake.fn(*args), q.reference(*args)))
        assert first < len(q.edge_cases), mistake.message


def assert_hint_points_the_way(q) -> None:
    """A hint names the function or the idea and the pitfall; it writes no code (the solution does).

    "No code" is checked as: no call written out (a name or bracket right before "("), and no
    line of the solution's body in the hint.
    """
    hint = " ".join(q.hint_text.split())
    call = re.search(r"[\w\])]\(", hint)
    assert call is None, f"{q.name}'s hint writes a call ({hint[max(call.start() - 20, 0):call.end() + 20]!r})"
    body = inspect.getsource(q.solution_fn).split(":\n", 1)[-1]
    for line in body.splitlines():
        code = " ".join(line.split("#")[0].split())
        if len(code) > 12 and not code.startswith(('"""', "return")):
            assert code not in hint, f"{q.name}'s hint gives the solution's line {code!r}"


def _code_ngrams(text: str, n: int = 4) -> set:
    tokens = re.findall(r"\w+|[^\w\s]", text)
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def assert_hint_shares_no_code(q) -> None:
    """No run of four code tokens of the solution's body (comments left out) appears in the hint."""
    body = inspect.getsource(q.solution_fn).split('"""')[-1]
    code = "\n".join(line.split("#")[0] for line in body.splitlines())
    shared = _code_ngrams(q.hint_text) & _code_ngrams(code)
    assert q.hint_text and not shared, f"{q.name}'s hint repeats the solution's code: {sorted(shared)[:3]}"
