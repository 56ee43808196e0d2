"""Accumulator bounds and two's-complement wrap (lesson 03), plus the accumulator panel."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

from qkit import widgets
from qkit.overflow import accumulator_bound, max_safe_k, running_sums, wrap

pytestmark = pytest.mark.lesson03


@given(k=st.integers(1, 10**6), xb=st.integers(1, 8), wb=st.integers(1, 8))
@settings(max_examples=examples(60), deadline=None)
def test_bound_is_reached_by_the_extreme_operands(k, xb, wb):
    a = 2**xb - 1  # largest q_x - zero_point_x
    q_w = -(2 ** (wb - 1))  # most negative weight on the grid
    assert accumulator_bound(k, xb, wb) == abs(k * a * q_w)


@pytest.mark.parametrize("acc_bits,xb,wb", [(32, 8, 8), (16, 8, 8), (32, 4, 4), (24, 8, 8)])
def test_max_safe_k_is_the_last_k_that_fits(acc_bits, xb, wb):
    k = max_safe_k(acc_bits, xb, wb)
    limit = 2 ** (acc_bits - 1) - 1
    assert accumulator_bound(max(k, 1), xb, wb) <= limit or k == 0
    assert accumulator_bound(k + 1, xb, wb) > limit


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=50), st.sampled_from([8, 16, 32]))
@settings(max_examples=examples(80), deadline=None)
def test_wrap_matches_fixed_width_integer_arithmetic(values, bits):
    dtype = {8: torch.int8, 16: torch.int16, 32: torch.int32}[bits]
    # numpy-free reference: reduce modulo 2**bits into the signed range by hand
    expected = [((v + 2 ** (bits - 1)) % 2**bits) - 2 ** (bits - 1) for v in values]
    assert wrap(torch.tensor(values), bits).tolist() == expected
    # and torch's own fixed-width dtypes agree (they wrap on this CPU)
    small = [v % 2**bits for v in values]
    assert torch.tensor(small, dtype=torch.int64).to(dtype).tolist() == expected


def test_running_sums_wrap_only_after_the_limit():
    products = torch.full((70_000,), -255 * 128)
    exact, wrapped = running_sums(products, 32)
    first_bad = int((exact != wrapped).nonzero()[0])
    assert first_bad + 1 == max_safe_k(32) + 1  # the (65 793 + 1)-th addition overflows
    assert int(exact[-1]) == -255 * 128 * 70_000


def test_errors_are_friendly():
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        accumulator_bound(0)
    with pytest.raises(TypeError, match="integers"):
        wrap(torch.tensor([1.5]), 16)
    with pytest.raises(ValueError, match="1-d"):
        running_sums(torch.zeros(2, 2, dtype=torch.int64), 32)


def test_accumulator_panel_reports_overflow_live():
    panel = widgets.AccumulatorPanel(k=4096)
    assert not panel.overflowed and "always fits" in panel.readout.value
    panel.controls["k"].value = 2**17  # past 65 793
    assert panel.overflowed and "can overflow" in panel.readout.value
    assert "wrapped around" in panel.readout.value
    panel.controls["acc_bits"].value = 16
    panel.controls["k"].value = 2
    assert panel.overflowed  # two worst-case products already overflow int16
    panel.controls["data"].value = "random"
    panel.controls["acc_bits"].value = 32
    assert not panel.overflowed and panel.error is None
    before = panel.image.value
    panel.controls["x_bits"].value = 4
    assert panel.image.value != before
    with pytest.raises(ValueError, match="power of two"):
        widgets.AccumulatorPanel(k=1000)
