"""Graded exercises: a question is data, one checker grades them all.

Lessons revolve around ``x ≈ scale * (q - zero_point)``. A :class:`Question` holds a
reference, fixed edge cases, a maker of random cases (fresh ``os.urandom`` seed per
call: nothing to memorise), typical wrong answers (:class:`Mistake`) and a hint.
:meth:`Question.check` compares the learner's result with the reference (type, then
dtype, then shape, then values: integers exactly, floats within ``rtol``/``atol``) and
shows one friendly line. It never raises into the notebook.

Scope: arguments are passed positionally; where an int is expected an int is required.
A body of only ``...``/``pass``/``return None`` counts as not attempted.

Example:
    >>> def double(n: int) -> int:
    ...     return 2 * n
    >>> q0 = Question("q0", "my_double", reference=double, solution_fn=double,
    ...               hint_text="Multiply by two.", edge_cases=[(0,), (3,)],
    ...               random_case=lambda g: (int(torch.randint(-9, 9, (), generator=g)),))
    >>> q0.grade(lambda n: n + n)
    ✔ correct! `my_double` matches the reference on 12 cases (2 fixed, 10 random).
    >>> q0.grade(lambda n: n + 2)
    ✘ for n=0: you returned 2; expected 0
    >>> def my_double(n):
    ...     ...
    >>> q0.grade(my_double).ok is None
    True
"""

from __future__ import annotations

import ast
import html
import inspect
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from exercises.compare import describe_case, show, structure_diff, value_diff
from exercises.sandbox import (FAILED, TookTooLong, call_quietly, clone_args, exception_text,
                               is_placeholder, learner_line, time_limit)

__all__ = ["Feedback", "Mistake", "Question"]

_ICON = {True: "✔", False: "✘", None: "…"}
_COLOR = {True: "#1a7f37", False: "#cf222e", None: "#9a6700"}
LOOK_UP = object()  # check()'s default: find the learner's function in the notebook by name


@dataclass(frozen=True)
class Feedback:
    """Verdict of one check: ``ok`` True (correct), False (wrong), None (not attempted)."""

    ok: bool | None
    message: str

    def __str__(self) -> str:
        text = " ".join(f"{_ICON[self.ok]} {self.message}".split())  # always one line
        return text if len(text) <= 320 else text[:319] + "…"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(self)))
        return f'<div style="color:{_COLOR[self.ok]};font-weight:600">{body}</div>'


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``fn`` implements it, ``message`` names it."""

    fn: Callable[..., Any]
    message: str


def solution_source(fn: Callable[..., Any], new_name: str) -> str:
    """``fn``'s source with ``def`` renamed to ``new_name``, its signature's continuation lines re-aligned.

    Example:
        >>> from exercises.compare import describe_case
        >>> print("".join(solution_source(describe_case, "my_case").splitlines(keepends=True)[:2]), end="")
        def my_case(names: Sequence[str], args: Sequence[Any], *, shapes_only: bool = False,
                    limit: int = 80) -> str:
    """
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return f"# the solution of {new_name} is not available here\n"
    old = getattr(fn, "__name__", "")
    match = re.search(rf"^def {re.escape(old)}\(", src, flags=re.M)
    if not old.isidentifier() or match is None:
        return src
    lines = src.splitlines(keepends=True)
    first = src[: match.start()].count("\n")  # the def line
    try:
        body_line = ast.parse(src).body[0].body[0].lineno - 1  # first line after the signature
    except (SyntaxError, IndexError, AttributeError):
        body_line = first + 1
    shift = len(new_name) - len(old)
    lines[first] = lines[first].replace(f"def {old}(", f"def {new_name}(", 1)
    for i in range(first + 1, body_line):  # continuation lines of the signature move with the "("
        if shift > 0:
            lines[i] = " " * shift + lines[i]
        else:
            lead = len(lines[i]) - len(lines[i].lstrip(" "))
            lines[i] = lines[i][min(-shift, max(lead - 4, 0)):]
    return "".join(lines)


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")  # a Jupyter kernel has always imported it
    return ipython is not None and ipython.get_ipython() is not None


def _display(plain: str, **bundle: str) -> None:
    """Show ``plain`` (with richer MIME types) in IPython; print it elsewhere."""
    try:
        if _in_ipython():
            from IPython.display import display

            return display({"text/plain": plain, **bundle}, raw=True)
    except Exception:
        pass
    print(plain)


@dataclass
class Question:
    """One graded exercise, declared as data.

    Attributes:
        name: how the notebook calls it, e.g. ``"q1"``.
        fn_name: the learner's function, looked up in ``__main__``, e.g. ``"my_qrange"``.
        reference: the truth (usually a qkit function wrapped to the question's signature).
        solution_fn: readable model answer shown by :meth:`solution`.
        hint_text: one or two lines shown by :meth:`hint`.
        edge_cases: fixed argument tuples, tried first, in order.
        random_case: makes one argument tuple from a ``torch.Generator``.
        n_random: random cases per check.
        mistakes: typical wrong answers, tried in order at the first failing case.
        alternatives: other acceptable answers (e.g. ``x / scale`` vs ``x * (1 / scale)``).
        parts: names of the elements when the answer is a tuple.
        rtol, atol: tolerance for float values (integers compare exactly).
        timeout: seconds the learner's function may take over all cases.
    """

    name: str
    fn_name: str
    reference: Callable[..., Any]
    solution_fn: Callable[..., Any]
    hint_text: str
    edge_cases: Sequence[tuple] = ()
    random_case: Callable[[torch.Generator], tuple] | None = None
    n_random: int = 10
    mistakes: Sequence[Mistake] = ()
    alternatives: Sequence[Callable[..., Any]] = ()
    parts: Sequence[str] = ()
    rtol: float = 1e-6
    atol: float = 0.0
    timeout: float = 3.0

    def check(self, fn: Any = LOOK_UP) -> None:
        """Grade ``fn`` (default: ``fn_name`` from the notebook) and show one line."""
        fb = self.grade(fn)
        _display(str(fb), **{"text/html": fb._repr_html_()})
        from exercises.tracking import record_check  # noqa: PLC0415  (progress: exercises.progress())

        record_check(self, fb.ok, str(fb))

    def hint(self) -> None:
        """Show the hint."""
        html_hint = f"<div><b>Hint ({self.name}):</b> {html.escape(self.hint_text)}</div>"
        _display(f"Hint ({self.name}): {self.hint_text}", **{"text/html": html_hint})

    def solution(self) -> None:
        """Show the model answer's source, renamed to the learner's function name.

        In Jupyter it is a ``<pre>`` block: lines keep their breaks and indentation
        (a long line scrolls sideways instead of wrapping mid-word).
        """
        src = solution_source(self.solution_fn, self.fn_name).rstrip("\n")
        block = ('<pre style="white-space: pre; overflow-x: auto; word-break: normal; '
                 f'overflow-wrap: normal"><code>{html.escape(src)}</code></pre>')
        _display(src, **{"text/html": block})

    def cases(self, seed: int | None = None) -> list[tuple]:
        """Edge cases, then ``n_random`` random ones (fresh seed unless ``seed`` is given)."""
        gen = torch.Generator()
        gen.manual_seed(int.from_bytes(os.urandom(8), "little") >> 1 if seed is None else seed)
        rand = [tuple(self.random_case(gen)) for _ in range(self.n_random)] if self.random_case else []
        return [tuple(c) for c in self.edge_cases] + rand

    def grade(self, fn: Any = LOOK_UP, *, seed: int | None = None) -> Feedback:
        """Grade ``fn`` and return the :class:`Feedback` without showing it; never raises."""
        try:
            return self._grade(fn, seed)
        except KeyboardInterrupt:
            return Feedback(False, "check interrupted")
        except BaseException as e:  # the checker must never raise into the notebook
            return Feedback(False, f"the checker itself failed ({type(e).__name__}: {e}); "
                                   "please tell the course authors. Your code may be fine.")

    def _grade(self, fn: Any, seed: int | None) -> Feedback:
        """:meth:`grade` without the safety net."""
        if fn is None:
            return Feedback(None, f"not attempted yet: you passed None; define `{self.fn_name}` and "
                                  f"pass the function itself: {self.name}.check({self.fn_name})")
        if fn is LOOK_UP:
            fn = getattr(sys.modules.get("__main__"), self.fn_name, None)
        if fn is None:
            return Feedback(None, f"not attempted yet: define `{self.fn_name}` above and run its cell")
        if not callable(fn):
            return Feedback(False, f"{self.name}.check expects your function, as in {self.name}."
                                   f"check({self.fn_name}); got {type(fn).__name__} {show(fn)}")
        name = getattr(fn, "__name__", "<")
        name = self.fn_name if name.startswith("<") else name
        if is_placeholder(fn):
            return Feedback(None, f"not attempted yet: replace the `...` in `{name}` with your code "
                                  "and run its cell")
        cases, label = self.cases(seed), ""
        try:
            with time_limit(self.timeout):
                for args in cases:
                    label = describe_case(self._arg_names(len(args)), args)
                    verdict = self._grade_case(fn, name, args, label)
                    if verdict is not None:
                        return verdict
        except TookTooLong:
            return Feedback(False, f"`{name}` ran longer than {self.timeout:g} s (for {label}): is "
                                   "there an endless loop, or a Python loop over every element?")
        n_edge = len(self.edge_cases)
        return Feedback(True, f"correct! `{name}` matches the reference on {len(cases)} cases "
                              f"({n_edge} fixed, {len(cases) - n_edge} random).")

    def _arg_names(self, n: int) -> list[str]:
        try:
            names = list(inspect.signature(self.solution_fn).parameters)
        except (TypeError, ValueError):
            names = []
        return (names + [f"arg{i}" for i in range(len(names), n)])[:n]

    def _grade_case(self, fn: Callable[..., Any], name: str, args: tuple, label: str) -> Feedback | None:
        """Feedback on the first problem in this case; None if the case passes."""
        want, given = self.reference(*clone_args(args)), clone_args(args)
        try:
            got = fn(*given)
        except NotImplementedError:
            return Feedback(None, f"not attempted yet: `{name}` raises NotImplementedError (for {label})")
        except (Exception, SystemExit) as e:  # one short line: the error, then the inputs' shapes
            names = self._arg_names(len(args))
            return Feedback(False, f"your function raised {exception_text(e, 70)}{learner_line(e, fn)} "
                                   f"on inputs {describe_case(names, args, shapes_only=True, limit=60)}")
        names = self._arg_names(len(args))
        for arg, before, after in zip(names, args, given):
            if isinstance(before, torch.Tensor) and not torch.equal(before, after):
                return Feedback(False, f"your function changed its input `{arg}` in place; work on "
                                       f"a copy ({arg}.clone()) or use out-of-place operations")
        if got is None:
            return Feedback(False, f"`{name}` returned None: did you forget `return`?")
        probe = next(((k, v) for k, v in zip(names, args) if isinstance(v, torch.Tensor)), None)
        try:
            problem = self._diff(got, want, probe)
        except Exception as e:
            return Feedback(False, f"for {label}: could not compare your result {show(got)} "
                                   f"({type(e).__name__}: {e})")
        if problem is None or any(self._same(got, call_quietly(alt, args)) for alt in self.alternatives):
            return None
        mistake = next((m for m in self.mistakes if self._same(got, call_quietly(m.fn, args))), None)
        return Feedback(False, mistake.message if mistake else f"for {label}: {problem}")

    def _diff(self, got: Any, want: Any, probe: tuple[str, torch.Tensor] | None = None) -> str | None:
        return (structure_diff(got, want, "your result", self.parts)
                or value_diff(got, want, "your result", self.parts, (self.rtol, self.atol), probe))

    def _same(self, got: Any, other: Any) -> bool:
        try:
            return other is not FAILED and other is not None and self._diff(got, other) is None
        except Exception:
            return False
