"""qkit.kernels.saturation: AVX2's saturating int16 pair sums in u8 × s8 matmul, emulated and real."""

from __future__ import annotations

import platform

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from qkit.fixedpoint import ROUNDINGS
from qkit.kernels.engine import cpu_int8_units
from qkit.kernels.saturation import (int8_linear_avx2, matmul_u8s8_avx2, onnxruntime_u8s8, pair_sums,
                                     saturated_pairs)

pytestmark = pytest.mark.lesson03


def avx2_by_hand(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    """Plain Python ints: products of k = 2j and 2j + 1 added, clamped to int16, then summed."""
    n, k, m = len(a), len(b), len(b[0])
    out = [[0] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            for p in range(0, k, 2):
                s = a[i][p] * b[p][j] + (a[i][p + 1] * b[p + 1][j] if p + 1 < k else 0)
                out[i][j] += max(-32768, min(32767, s))
    return out


@st.composite
def shapes_and_data(draw, a_max=255, b_lo=-128, b_hi=127):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 12)), draw(st.integers(1, 4))
    ends = st.sampled_from  # extremes are where the saturation is
    a = draw(st.lists(st.one_of(st.integers(0, a_max), ends([0, a_max])), min_size=n * k, max_size=n * k))
    b = draw(st.lists(st.one_of(st.integers(b_lo, b_hi), ends([b_lo, b_hi])), min_size=k * m, max_size=k * m))
    return (torch.tensor(a, dtype=torch.uint8).reshape(n, k), torch.tensor(b, dtype=torch.int8).reshape(k, m))


@given(shapes_and_data())
def test_emulation_equals_an_independent_int64_clamped_loop(ab):
    a, b = ab
    assert matmul_u8s8_avx2(a, b).tolist() == avx2_by_hand(a.tolist(), b.tolist())
    exact = (a.long() @ b.long()).int()
    assert torch.equal(matmul_u8s8_avx2(a, b), exact) == (saturated_pairs(a, b) == 0)


@given(shapes_and_data(b_lo=-64, b_hi=63))
def test_7_bit_weights_never_saturate(ab):
    a, b = ab
    assert saturated_pairs(a, b) == 0
    assert torch.equal(matmul_u8s8_avx2(a, b), (a.long() @ b.long()).int())


@given(shapes_and_data(a_max=127))
def test_7_bit_activations_never_saturate(ab):
    a, b = ab
    assert saturated_pairs(a, b) == 0
    assert torch.equal(matmul_u8s8_avx2(a, b), (a.long() @ b.long()).int())


def test_full_range_pairs_saturate_and_the_error_is_the_clamped_excess():
    a = torch.tensor([[255, 255, 255, 255]], dtype=torch.uint8)
    b = torch.tensor([[127], [127], [-128], [-128]], dtype=torch.int8)
    assert pair_sums(a, b).tolist() == [[[64770, -65280]]]
    assert saturated_pairs(a, b) == 2
    assert matmul_u8s8_avx2(a, b).item() == 32767 - 32768


def test_errors_say_what_was_expected():
    with pytest.raises(TypeError, match="uint8"):
        matmul_u8s8_avx2(torch.zeros(2, 2, dtype=torch.int8), torch.zeros(2, 2, dtype=torch.int8))
    with pytest.raises(TypeError, match="int8"):
        matmul_u8s8_avx2(torch.zeros(2, 2, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        matmul_u8s8_avx2(torch.zeros(2, 3, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.int8))


def test_onnxruntime_is_exact_when_no_pair_can_saturate():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (8, 300), generator=g, dtype=torch.uint8)
    b = torch.randint(-64, 64, (300, 5), generator=g, dtype=torch.int8)  # 7-bit weights
    assert torch.equal(onnxruntime_u8s8(a, b), (a.long() @ b.long()).int())


def test_onnxruntime_full_range_u8s8_is_what_this_cpu_is_said_to_do():
    """The lesson's claim: exact with int8 dot-product units, saturated on x86 without them."""
    a = torch.full((4, 64), 255, dtype=torch.uint8)  # every pair 2·255·127: saturates whatever the pairing
    b = torch.full((64, 3), 127, dtype=torch.int8)
    got, exact = onnxruntime_u8s8(a, b), (a.long() @ b.long()).int()
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    if x86 and not any("vnni" in f or "amx" in f for f in cpu_int8_units()):
        assert torch.equal(got, matmul_u8s8_avx2(a, b)) and not torch.equal(got, exact)
    else:
        assert torch.equal(got, exact)


@given(shapes_and_data(b_lo=-63, b_hi=63), st.integers(-128, 127), st.sampled_from(ROUNDINGS))
def test_a_layer_through_the_avx2_sum_equals_the_reference_when_nothing_saturates(ab, z_x, rounding):
    from qkit import QParams, choose_qparams
    from qkit.kernels import ref

    a, b = ab
    q_x = (a.to(torch.int16) - 128).to(torch.int8)  # (N, K) int8: the layer's input
    q_w = b.T.contiguous()  # (M, K) int8, 7-bit
    x_qp = QParams(torch.tensor(0.02), torch.tensor(z_x, dtype=torch.int32), -128, 127)
    w_qp = choose_qparams(-1.0, 1.0, scheme="scale")
    y_qp = choose_qparams(-300.0, 300.0)
    bias = torch.linspace(-1, 1, q_w.shape[0])
    want = ref.int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, rounding=rounding)
    assert torch.equal(int8_linear_avx2(q_x, x_qp, q_w, w_qp, bias, y_qp, rounding=rounding), want)
