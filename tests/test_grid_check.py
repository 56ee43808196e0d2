"""The grid tests' comparison: exact on the recording float path, within a tolerance elsewhere."""

from __future__ import annotations

import pytest
from grid_check import same_or_close, same_path

from qkit.kernels import engine


def test_this_machines_path_demands_equal_values():
    here = engine.float_path()
    assert same_path(here)
    same_or_close(0.9, 0.9, here)
    with pytest.raises(AssertionError):
        same_or_close(0.9, 0.9 + 1e-9, here)  # one last bit off fails here


def test_a_capability_alone_is_not_a_float_path():
    """Rows made before the CPU model was recorded hold "AVX512" alone: compared within the tolerance."""
    old = engine.cpu_capability()
    assert not same_path(old)
    same_or_close(0.90, 0.905, old)
    with pytest.raises(AssertionError):
        same_or_close(0.90, 0.92, old)
    same_or_close(0.90, 0.92, old, tol=0.03)


def test_the_float_path_names_capability_and_model(monkeypatch):
    monkeypatch.setattr(engine, "cpu_model", lambda: "Example CPU 9000")
    assert engine.float_path() == f"{engine.cpu_capability()} · Example CPU 9000"
    assert not same_path(f"{engine.cpu_capability()} · Another CPU")
