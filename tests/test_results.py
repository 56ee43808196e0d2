"""qkit.results: the registry of precomputed grids (DESIGN.md §11)."""

from __future__ import annotations

import pytest

from qkit import results


def test_unknown_grid_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown results grid 'nope'; the grids are"):
        results.load("nope")
    with pytest.raises(ValueError, match="unknown results grid"):
        results.grid_module("make")


def test_lookup_finds_exactly_one_row():
    rows = [{"model": "a", "bits": 4, "acc": 0.9}, {"model": "a", "bits": 8, "acc": 0.95}]
    assert results.lookup(rows, model="a", bits=8)["acc"] == 0.95
    with pytest.raises(ValueError, match="2 rows match"):
        results.lookup(rows, model="a")
    with pytest.raises(ValueError, match="0 rows match"):
        results.lookup(rows, model="b")
