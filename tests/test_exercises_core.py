"""exercises.core: the declarative checker, on a toy question (DESIGN.md §5)."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time

import pytest
import torch

from exercises import core
from exercises.compare import show
from exercises.core import Feedback, Mistake, Question


def scaled_solution(x: torch.Tensor, k: int) -> torch.Tensor:
    """The toy exercise: multiply a float tensor by an int."""
    return x * k


def _random_case(g: torch.Generator) -> tuple[torch.Tensor, int]:
    return torch.randn(int(torch.randint(3, 9, (), generator=g)), generator=g), int(
        torch.randint(2, 9, (), generator=g))


TOY = Question(
    "qt", "my_scaled", reference=lambda x, k: x * k, solution_fn=scaled_solution,
    hint_text="Multiply x by k.", edge_cases=[(torch.tensor([1.0, -2.0, 0.5]), 3)],
    random_case=_random_case, timeout=2.0,
    mistakes=[Mistake(lambda x, k: x + k, "MISTAKE-ADD: you added k")],
)
FAST = dataclasses.replace(TOY, timeout=0.2)

INTS = Question(
    "qi", "my_pair", reference=lambda n: (n, n + 1), solution_fn=lambda n: (n, n + 1),
    hint_text="", edge_cases=[(1,), (5,)], parts=("low", "high"),
)


def test_solution_and_equivalent_code_pass():
    assert TOY.grade(scaled_solution).ok is True
    fb = TOY.grade(lambda x, k: k * x.clone())
    assert fb.ok is True and "correct" in fb.message


def test_known_mistake_is_named():
    fb = TOY.grade(lambda x, k: x + k)
    assert fb.ok is False and "MISTAKE-ADD" in fb.message


def test_unknown_wrong_answer_names_the_case_and_first_wrong_element():
    fb = TOY.grade(lambda x, k: x * k + torch.tensor([0.0, 1.0, 0.0]))
    assert fb.ok is False
    assert fb.message.startswith("for x=tensor([1.0, -2.0, 0.5]), k=3:")
    assert "element [1] is -5.0; expected -6.0" in fb.message
    assert "where x = -2.0" in fb.message and "1 of 3 values differ" in fb.message


def test_dtype_then_shape_then_values():
    assert "dtype torch.float64" in TOY.grade(lambda x, k: (x * k).double()[:1]).message
    assert "shape (1,)" in TOY.grade(lambda x, k: (x * k)[:1]).message
    assert "is of type list" in TOY.grade(lambda x, k: (x * k).tolist()).message


def test_float_tolerance_is_tight_but_not_zero():
    assert TOY.grade(lambda x, k: (x.double() * k * (1 + 1e-9)).float()).ok is True
    assert TOY.grade(lambda x, k: x * k * (1 + 1e-3)).ok is False


def test_ints_must_be_ints_and_tuples_are_named():
    assert INTS.grade(lambda n: [n, n + 1]).ok is True  # a list is fine for a tuple
    assert "`high` is the float 2.0; expected an int" in INTS.grade(lambda n: (n, n + 1.0)).message
    assert "`low` is a tensor" in INTS.grade(lambda n: (torch.tensor(n), n + 1)).message
    assert "you returned 3 values; expected 2 (low, high)" in INTS.grade(lambda n: (n, n, n)).message
    assert INTS.grade(lambda n: (n, n + 2)).message == "for n=1: you returned (1, 3); expected (1, 2)"


def test_alternatives_are_accepted():
    q = dataclasses.replace(INTS, alternatives=[lambda n: (n, n + 2)])
    assert q.grade(lambda n: (n, n + 2)).ok is True
    assert q.grade(lambda n: (n, n + 3)).ok is False


def test_not_attempted_none_and_missing_from_main(monkeypatch):
    monkeypatch.delattr(sys.modules["__main__"], "my_scaled", raising=False)
    for fb in (TOY.grade(None), TOY.grade()):
        assert fb.ok is None and "not attempted yet" in fb.message and "`my_scaled`" in fb.message


def test_an_explicit_none_is_not_looked_up(monkeypatch):
    monkeypatch.setattr(sys.modules["__main__"], "my_scaled", lambda x, k: x * k, raising=False)
    assert TOY.grade().ok is True  # no argument: the notebook's function is graded
    fb = TOY.grade(None)
    assert fb.ok is None and "you passed None" in fb.message


def _placeholders():
    def dots(x, k): ...

    def passes(x, k):
        pass

    def doc_only(x, k):
        """Multiply."""

    def doc_and_dots(x, k):
        """Multiply."""
        ...

    def doc_and_pass(x, k):
        """Multiply."""
        pass

    def not_implemented(x, k):
        raise NotImplementedError

    return [dots, passes, doc_only, doc_and_dots, doc_and_pass, not_implemented]


@pytest.mark.parametrize("fn", _placeholders(), ids=lambda f: f.__name__)
def test_placeholders_are_not_attempted(fn):
    fb = TOY.grade(fn)
    assert fb.ok is None and "not attempted yet" in fb.message


def test_a_constant_body_is_not_a_placeholder():
    def five(x, k):
        """Doc."""
        return 5

    assert TOY.grade(five).ok is False


def test_learner_exception_is_one_line_with_its_text():
    def boom(x, k):
        raise ZeroDivisionError("first line\nsecond line")

    fb = TOY.grade(boom)
    assert fb.ok is False
    assert "ZeroDivisionError: first line second line" in str(fb) and "\n" not in str(fb)


def test_returning_none():
    def forgot(x, k):
        y = x * k  # noqa: F841

    assert "returned None: did you forget `return`?" in TOY.grade(forgot).message


def test_mutating_the_input():
    def in_place(x, k):
        return x.mul_(k)

    fb = TOY.grade(in_place)
    assert fb.ok is False and "changed its input `x` in place" in fb.message


@pytest.mark.parametrize("body", ["loop", "sleep", "swallow"])
def test_too_slow_is_stopped_and_the_signal_handler_restored(body):
    def slow(x, k):
        if body == "loop":
            while True:
                pass
        while True:
            try:
                time.sleep(5)
            except Exception:  # a learner's catch-all must not eat the timeout
                if body != "swallow":
                    raise

    before = signal.getsignal(signal.SIGALRM)
    t0 = time.perf_counter()
    fb = FAST.grade(slow)
    assert time.perf_counter() - t0 < 2.0
    assert fb.ok is False and "ran longer than 0.2 s" in fb.message
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_grading_off_the_main_thread_skips_the_timer():
    result = []
    worker = threading.Thread(target=lambda: result.append(FAST.grade(scaled_solution)))
    worker.start()
    worker.join(10)
    assert result and result[0].ok is True


@pytest.mark.parametrize("thing", [3, "my_scaled", [1, 2]])
def test_non_callable(thing):
    fb = TOY.grade(thing)
    assert fb.ok is False and "qt.check expects your function" in fb.message


def test_checker_failure_is_one_friendly_line():
    broken = dataclasses.replace(TOY, reference=lambda x, k: 1 / 0)
    fb = broken.grade(scaled_solution)
    assert fb.ok is False and "checker itself failed" in fb.message and "\n" not in str(fb)


def test_random_cases_are_fresh_each_call_even_after_global_seeding():
    torch.manual_seed(0)
    a = TOY.cases()
    torch.manual_seed(0)
    b = TOY.cases()
    assert len(a) == len(b) == 1 + TOY.n_random
    assert any(not (x.shape == y.shape and torch.equal(x, y)) for (x, _), (y, _) in zip(a[1:], b[1:]))
    c, d = TOY.cases(seed=7), TOY.cases(seed=7)
    assert all(torch.equal(x, y) and k == m for (x, k), (y, m) in zip(c, d))


@pytest.mark.parametrize(
    "fn", [scaled_solution, lambda x, k: x + k, lambda x, k: 1 / 0, _placeholders()[0], 3])
def test_check_prints_exactly_one_line(fn, capsys):
    assert TOY.check(fn) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.strip()


def test_check_without_argument_finds_the_notebook_function(monkeypatch, capsys):
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "my_scaled", scaled_solution, raising=False)
    TOY.check()
    assert "correct" in capsys.readouterr().out
    monkeypatch.setattr(main, "my_scaled", lambda x, k: x + k)
    TOY.check()
    assert "MISTAKE-ADD" in capsys.readouterr().out
    monkeypatch.setattr(main, "my_scaled", 42)
    TOY.check()
    assert "expects your function" in capsys.readouterr().out


def test_hint_and_solution_print(capsys):
    TOY.hint()
    assert capsys.readouterr().out == "Hint (qt): Multiply x by k.\n"
    TOY.solution()
    out = capsys.readouterr().out
    assert "def my_scaled(x: torch.Tensor, k: int)" in out and "return x * k" in out


def test_ipython_gets_html_and_plain_text(monkeypatch, capsys):
    import IPython.display

    shown = []
    monkeypatch.setattr(core, "_in_ipython", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    TOY.check(lambda x, k: x + k)
    TOY.solution()
    assert capsys.readouterr().out == ""
    check_bundle, solution_bundle = shown
    assert "MISTAKE-ADD" in check_bundle["text/plain"] and "<div" in check_bundle["text/html"]
    solution_html = solution_bundle["text/html"]
    assert solution_html.startswith("<pre") and "white-space: pre;" in solution_html  # no re-wrapping
    assert "def my_scaled(x: torch.Tensor, k: int)" in solution_html
    assert solution_bundle["text/plain"].startswith("def my_scaled(")


def test_feedback_reprs():
    fb = Feedback(False, "use `x < 0`\nnot this")
    assert str(fb) == repr(fb) == "✘ use `x < 0` not this"
    assert "&lt;" in fb._repr_html_() and "<code>" in fb._repr_html_()
    assert str(Feedback(None, "later")).startswith("…") and str(Feedback(True, "yes")).startswith("✔")


def test_long_tensors_are_shown_short():
    big = dataclasses.replace(TOY, edge_cases=[(torch.arange(1000.0), 2)])
    fb = big.grade(lambda x, k: x * k + 1)
    assert fb.ok is False and len(str(fb)) < 320 and "for x of shape (1000,), k=2:" in fb.message


def test_tensors_are_described_by_their_shape():
    grid = torch.arange(15, dtype=torch.int8).reshape(3, 5)
    assert show(grid) == "a (3, 5) int8 tensor [0, 1, 2, …]"
    assert show(torch.zeros(2, 2)) == "a (2, 2) tensor [0.0, 0.0, 0.0, …]"
    assert show(torch.tensor([1.0, 2.0])) == "tensor([1.0, 2.0])"  # a few values: the values say it all
    assert show(torch.tensor(3, dtype=torch.int32)) == "tensor(3) (int32)"
    flat = dataclasses.replace(TOY, edge_cases=[(torch.ones(3, 5), 2)])
    fb = flat.grade(lambda x, k: x.reshape(-1) * k)
    assert fb.message == "for x of shape (3, 5), k=2: your result has shape (15,); expected (3, 5)"
    fb = flat.grade(lambda x, k: x * k + 0.5)  # unknown wrong values: the case says its shape
    assert fb.message.startswith("for x of shape (3, 5), k=2: element [0, 0] is 2.5; expected 2.0")


WIDE = Question(  # seven arguments, two of them big tensors: what a raising answer must not list
    "qw", "my_wide", reference=lambda a, b, c, d, e, f, g: a * g, solution_fn=lambda a, b, c, d, e, f, g: a * g,
    hint_text="", edge_cases=[(torch.linspace(-1, 1, 54).reshape(3, 3, 2, 3), torch.randn(3, 5),
                               torch.tensor([0.5, -0.25, 0.125]), torch.ones(3), torch.zeros(3), 2.5, 7)],
)


def test_a_raising_answer_is_one_short_line_without_its_arguments():
    def boom(a, b, c, d, e, f, g):
        return a.view(7)  # 54 values do not make 7

    fb = WIDE.grade(boom)
    text = str(fb)
    assert fb.ok is False and text.startswith("✘ your function raised RuntimeError: ")
    assert "\n" not in text and len(text) <= 200, text
    assert "(line " in text  # where in the learner's own code
    assert "on inputs a (3, 3, 2, 3), b (3, 5), c (3,)" in text  # shapes, not values
    assert "-0.25" not in text and "tensor(" not in text and "0.5" not in text


def test_a_long_error_message_is_cut():
    def boom(*args):
        raise ValueError("why " * 200)

    text = str(WIDE.grade(boom))
    assert len(text) <= 200 and "ValueError: why why" in text and "…" in text


def long_named_solution(first_argument: torch.Tensor,
                        second: int) -> torch.Tensor:
    """A model answer whose signature spans two lines."""
    return first_argument * second


def test_solution_renames_and_realigns_the_signature(capsys):
    for fn_name in ("my_x", "my_much_longer_function_name"):
        dataclasses.replace(TOY, fn_name=fn_name, solution_fn=long_named_solution).solution()
        first, second, *rest = capsys.readouterr().out.splitlines()
        assert first == f"def {fn_name}(first_argument: torch.Tensor,"
        assert second.index("second") == first.index("first_argument")  # still under the "("
        assert rest[-1] == "    return first_argument * second"
