"""Graded exercises for the qkit notebooks: one module per lesson.

Each lesson module (``exercises.ex01_affine``, …) declares questions ``q1``,
``q2``, … as data; :mod:`exercises.core` grades them all against qkit's
reference of the one equation ``x ≈ scale * (q - zero_point)``::

    from exercises.ex01_affine import q1
    q1.check()      # grades `my_qrange` from the notebook; q1.hint(); q1.solution()

Every check is remembered (:mod:`exercises.tracking`): ``exercises.progress()`` shows
every question of every lesson and how it went. Instructors grade a class with
``python -m exercises.grade`` (:mod:`exercises.grade`).
"""

from exercises.tracking import progress

__all__ = ["Feedback", "Mistake", "Question", "progress"]


def __getattr__(name: str):
    """``exercises.Question`` and friends, imported on first use (the grader's own process never needs torch)."""
    if name in ("Feedback", "Mistake", "Question"):
        from exercises import core  # noqa: PLC0415

        return getattr(core, name)
    raise AttributeError(f"module 'exercises' has no attribute {name!r}")
