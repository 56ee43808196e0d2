"""qkit.qrange: the integer range of a B-bit grid (DESIGN.md §3)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

import qkit

pytestmark = pytest.mark.lesson01


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((8,), {}, (-128, 127)),
        ((8, True), {}, (-128, 127)),
        ((8, True, True), {}, (-127, 127)),
        ((8,), {"narrow": True}, (-127, 127)),
        ((8, False), {}, (0, 255)),
        ((8,), {"signed": False}, (0, 255)),
        ((4,), {}, (-8, 7)),
        ((4, False), {}, (0, 15)),
        ((2, True, True), {}, (-1, 1)),
        ((1,), {}, (-1, 0)),
        ((1, False), {}, (0, 1)),
        ((16,), {}, (-32768, 32767)),
        ((16, False), {}, (0, 65535)),
    ],
)
def test_contract_values(args, kwargs, expected):
    got = qkit.qrange(*args, **kwargs)
    assert got == expected
    assert all(type(v) is int for v in got)


@settings(max_examples=examples(200), deadline=None)
@given(bits=st.integers(1, 16), signed=st.booleans(), narrow=st.booleans())
def test_level_count(bits, signed, narrow):
    if narrow and (not signed or bits < 2):
        with pytest.raises(ValueError):
            qkit.qrange(bits, signed, narrow)
        return
    qmin, qmax = qkit.qrange(bits, signed, narrow)
    assert type(qmin) is int and type(qmax) is int
    assert qmax - qmin + 1 == 2**bits - (1 if narrow else 0)
    assert qmin <= 0 <= qmax  # every grid can hold 0.0 exactly
    if signed:
        assert qmax == 2 ** (bits - 1) - 1
        if narrow:
            assert qmin == -qmax  # symmetric
    else:
        assert qmin == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0,), {}, ValueError, r"bits must be an int in \[1, 16\]; got 0"),
        ((17,), {}, ValueError, r"bits must be an int in \[1, 16\]; got 17"),
        ((-3,), {}, ValueError, r"bits must be an int in \[1, 16\]"),
        ((4.0,), {}, TypeError, r"bits must be an int; got float"),
        ((True,), {}, TypeError, r"bits must be an int; got bool"),
        (("8",), {}, TypeError, r"bits must be an int; got str"),
        ((8, "yes"), {}, TypeError, r"signed must be True or False; got str"),
        ((8, True, 1), {}, TypeError, r"narrow must be True or False; got int"),
        ((8, False, True), {}, ValueError, r"narrow=True applies to signed grids only"),
        ((1, True, True), {}, ValueError, r"narrow signed grid needs bits >= 2"),
    ],
)
def test_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        qkit.qrange(*args, **kwargs)
