"""The tests every exercise module gets: ``from exercise_suite import *`` in ``tests/test_exNN.py``.

A lesson's test module declares what is specific to it and imports these tests::

    QUESTIONS = {"q1": q1, ...}                   # required: the questions, by the notebook's name
    DIAGNOSTICS = {"q1": ["piece", ...], ...}     # required: a piece of each declared mistake's message
    RIGHT = {"q1": [fn, ...], ...}                # correct answers written independently of the module
    WRONG = {"q1": [(fn, "piece"), ...], ...}     # wrong answers and a piece of the diagnostic expected
    TENSOR_INPUT = ["q1", ...]                    # questions whose first argument is a tensor

``question`` (and ``diagnostics``) are parametrized by ``tests/conftest.py``, one test per
entry of ``QUESTIONS``; the optional tables are read by the ``pytest_generate_tests`` below
(pytest calls a test module's own ``pytest_generate_tests`` next to conftest's), which only
touches the tests defined in this file.
"""

from __future__ import annotations

import pytest

from exercise_robustness import (assert_catches_in_place_changes, assert_each_mistake_diagnosed,
                                 assert_friendly_on_bad_code, assert_hint_points_the_way,
                                 assert_hint_shares_no_code, assert_mistakes_caught_by_fixed_cases,
                                 assert_stops_slow_code)

__all__ = ["pytest_generate_tests", "test_solution_passes_every_time", "test_other_correct_code_passes",
           "test_every_declared_mistake_gets_its_own_diagnostic", "test_every_mistake_is_caught_by_a_fixed_case",
           "test_wrong_learner_code_is_diagnosed", "test_robustness", "test_too_slow", "test_mutating_the_input",
           "test_hint_and_solution_show_something", "test_hint_points_the_way_without_the_code",
           "test_hint_shares_no_code_with_the_solution"]

REPEAT = 30  # gradings of each correct answer: every grading draws fresh random cases


def _params(questions: dict, names) -> list:
    return [pytest.param(questions[n], id=n) for n in names]


def pytest_generate_tests(metafunc) -> None:
    """Parametrize this file's table-driven tests from the test module's optional tables."""
    if metafunc.function.__module__ != __name__:
        return
    module, args = metafunc.module, metafunc.fixturenames
    questions = getattr(module, "QUESTIONS", {})
    if "right" in args:
        right = [(questions[n], fn) for n, fns in getattr(module, "RIGHT", {}).items() for fn in fns]
        metafunc.parametrize("right", right, ids=[f"{q.name}-{fn.__name__}" for q, fn in right])
    if "wrong" in args:
        wrong = [(questions[n], fn, piece) for n, cases in getattr(module, "WRONG", {}).items()
                 for fn, piece in cases]
        metafunc.parametrize("wrong", wrong, ids=[f"{q.name}-{fn.__name__}-{piece}" for q, fn, piece in wrong])
    if "tensor_input" in args:
        metafunc.parametrize("tensor_input", _params(questions, getattr(module, "TENSOR_INPUT", [])))


def test_solution_passes_every_time(question):
    for _ in range(REPEAT):
        fb = question.grade(question.solution_fn)
        assert fb.ok is True, fb


def test_other_correct_code_passes(right):
    question, fn = right
    for _ in range(REPEAT):
        fb = question.grade(fn)
        assert fb.ok is True, fb


def test_every_declared_mistake_gets_its_own_diagnostic(question, diagnostics):
    assert_each_mistake_diagnosed(question, diagnostics)


def test_every_mistake_is_caught_by_a_fixed_case(question):
    """So the diagnostic never depends on which random cases came up."""
    assert_mistakes_caught_by_fixed_cases(question)


def test_wrong_learner_code_is_diagnosed(wrong):
    question, fn, piece = wrong
    fb = question.grade(fn)
    assert fb.ok is False and piece in fb.message, fb


def test_robustness(question, monkeypatch):
    assert_friendly_on_bad_code(question, monkeypatch)


def test_too_slow(question):
    assert_stops_slow_code(question)


def test_mutating_the_input(tensor_input):
    assert_catches_in_place_changes(tensor_input)


def test_hint_and_solution_show_something(question, request, capsys):
    name = request.node.callspec.id  # the QUESTIONS key: what the notebook calls it
    question.hint()
    question.solution()
    out = capsys.readouterr().out
    assert out.startswith(f"Hint ({name}):") and f"def {question.fn_name}(" in out


def test_hint_points_the_way_without_the_code(question):
    assert_hint_points_the_way(question)


def test_hint_shares_no_code_with_the_solution(question):
    assert_hint_shares_no_code(question)
