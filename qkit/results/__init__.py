"""Precomputed experiment grids (DESIGN.md §11): too slow for a notebook, made by a script, stored as JSON.

Each grid is a module ``qkit/results/<name>.py`` beside this file that defines

* ``ARGS``: a dict of the arguments the grid is made with (seeds, epochs, models, bits …);
* ``points(args) -> list[dict]``: every point of the grid, each a small dict of keywords;
* ``compute(point: dict) -> dict``: one point's measured values (deterministic: fixed seeds, one thread).

``python -m qkit.results.make NAME`` computes every point and writes ``NAME.json``
(points, values, the arguments, torch's version); :func:`load` reads it back and
:func:`lookup` finds one point. A test recomputes a few sampled points and requires
them equal to the stored ones, so nothing here is typed by hand.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

HERE = Path(__file__).parent


def path(name: str) -> Path:
    """Where grid ``name``'s JSON lives."""
    return HERE / f"{name}.json"


def grid_module(name: str):
    """The module that defines grid ``name`` (``qkit.results.<name>``), or a ValueError naming the grids."""
    if not isinstance(name, str) or not (HERE / f"{name}.py").is_file() or name in ("make", "__init__"):
        known = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in ("make", "__init__"))
        raise ValueError(f"unknown results grid {name!r}; the grids are {known}")
    return importlib.import_module(f"qkit.results.{name}")


def load(name: str) -> dict:
    """The stored grid: ``{"name", "args", "torch", "rows": [{**point, **values}, ...]}``.

    Raises:
        ValueError: unknown grid, or its JSON not made yet (the error says the command that makes it).
    """
    grid_module(name)
    p = path(name)
    if not p.is_file():
        raise ValueError(f"results grid {name!r} has not been computed: run `python -m qkit.results.make {name}`")
    return json.loads(p.read_text())


def lookup(rows: list[dict], **point) -> dict:
    """The one row whose keys match ``point`` (a ValueError if none or several)."""
    found = [r for r in rows if all(r.get(k) == v for k, v in point.items())]
    if len(found) != 1:
        raise ValueError(f"{len(found)} rows match {point}; expected exactly one")
    return found[0]
