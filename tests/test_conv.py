"""qkit.kernels.conv / conv_engine: every exact convolution path equals int64 and ref, whatever the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qkit import choose_qparams, quantize, tensor_range, weight_qparams
from qkit.kernels import conv, conv_engine, engine, fast, int8_conv2d
from qkit.kernels import matmul as mm

pytestmark = pytest.mark.lesson03

MATMULS = [name for name, (_, check) in mm.CANDIDATES.items() if check() is None]
# (C_in, C_out, k, groups, geometry): every kind, K = 1024 exactly and K > 1024 (chunks), depthwise x1 and x2
GEOMETRIES = [
    (16, 16, 3, 16, dict(padding=1)),  # depthwise
    (8, 16, 3, 8, dict(stride=2, padding=1)),  # depthwise, multiplier 2
    (6, 6, 3, 6, dict(dilation=2, padding=2)),  # depthwise, dilated
    (24, 10, 1, 1, dict()),  # pointwise
    (24, 10, 1, 1, dict(stride=2)),  # 1x1, stride 2
    (1024, 3, 1, 1, dict()),  # pointwise, K = 1024: the exact bound
    (128, 5, 3, 1, dict(padding=1)),  # K = 1152: two float32 chunks
    (9, 7, 3, 1, dict(stride=2, padding=1)),
    (8, 6, 3, 2, dict(dilation=2, padding=2)),  # grouped
    (1, 4, 3, 1, dict(padding=1)),  # one input channel (channels-last is ambiguous there)
]


def extreme_case(seed, c_in, c_out, k, groups, n=3, h=7):
    """int8 input and weight with whole images and filters at -128 / 127: the largest sums."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-128, 128, (n, c_in, h, h), generator=gen, dtype=torch.int8)
    w = torch.randint(-128, 128, (c_out, c_in // groups, k, k), generator=gen, dtype=torch.int8)
    x[0], x[1, : c_in // 2], w[: max(1, c_out // 2)] = -128, 127, -128
    return x, w


def int64_sums(x, w, z_x, stride=1, padding=0, dilation=1, groups=1):
    """The sums in float64 (exact: |.| < 2**53), padded with z_x: (N, C_out, Ho, Wo)."""
    p = (padding, padding) if isinstance(padding, int) else padding
    xp = F.pad(x.double(), (p[1], p[1], p[0], p[0]), value=z_x)
    return F.conv2d(xp, w.double(), None, stride, 0, dilation, groups).long()


def pairs(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("c_in,c_out,k,groups,geometry", GEOMETRIES)
@pytest.mark.parametrize("z_x", [-128, 127])
@pytest.mark.parametrize("channels_last", [False, True])
def test_float32_sums_are_exact_on_full_range_data(c_in, c_out, k, groups, geometry, z_x, channels_last):
    x, w = extreme_case(c_in + k, c_in, c_out, k, groups)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    g = {key: pairs(geometry.get(key, d)) for key, d in (("stride", 1), ("padding", 0), ("dilation", 1))}
    got = conv.float32_sums(x, w.float(), z_x, g["stride"], g["padding"], g["dilation"], groups)
    assert got.dtype == (torch.int32 if c_in // groups * k * k > conv.CHUNK else torch.float32)
    assert got.is_contiguous(memory_format=torch.channels_last) or got.shape[1] == 1
    assert torch.equal(got.long(), int64_sums(x, w, z_x, groups=groups, **geometry))


@pytest.mark.parametrize("name", MATMULS)
@pytest.mark.parametrize("c_in,c_out,k,groups,geometry", GEOMETRIES)
def test_matmul_sums_are_exact_on_each_matmul_path(forced_matmul, name, c_in, c_out, k, groups, geometry):
    forced_matmul(name)
    x, w = extreme_case(c_in * k, c_in, c_out, k, groups)
    g = {key: pairs(geometry.get(key, d)) for key, d in (("stride", 1), ("padding", 0), ("dilation", 1))}
    want = int64_sums(x, w, -128, groups=groups, **geometry)  # (N, C_out, Ho, Wo)
    got = conv.matmul_sums(x, w, -128, g["stride"], g["padding"], g["dilation"], groups, tuple(want.shape[2:]))
    assert got.dtype == torch.int32
    assert torch.equal(got.long(), want.permute(0, 2, 3, 1).reshape(-1, c_out))


def conv_layer(seed, c_in, c_out, k, groups, n=2, h=7):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, h, generator=gen).clamp(min=-0.5)  # a non-zero zero_point
    w = torch.randn(c_out, c_in // groups, k, k, generator=gen) * 0.3
    b = torch.randn(c_out, generator=gen) * 0.1
    x_qp, w_qp = choose_qparams(*tensor_range(x)), weight_qparams(w)
    return quantize(x, x_qp), x_qp, quantize(w, w_qp), w_qp, b, choose_qparams(-4.0, 4.0)


@pytest.mark.parametrize("path", conv_engine.PATHS)
@pytest.mark.parametrize("c_in,c_out,k,groups,geometry", GEOMETRIES)
def test_int8_conv2d_on_each_forced_conv_path_equals_ref(forced_conv, path, c_in, c_out, k, groups, geometry):
    forced_conv(path)
    args = conv_layer(c_in + c_out, c_in, c_out, k, groups)
    want = int8_conv2d(*args, groups=groups, **geometry, backend="ref")
    for backend in ("fast", "eager"):
        got = int8_conv2d(*args, groups=groups, **geometry, backend=backend)
        assert torch.equal(got, want), backend
        assert got.is_contiguous(memory_format=torch.channels_last)  # the next conv reads it without a copy
    assert conv_engine.info().forced and set(conv_engine.info().chosen.values()) == {path}


def test_the_float32_sums_ignore_a_lowered_onednn_precision():
    backend = torch.backends.mkldnn.conv
    old = backend.fp32_precision
    x, w = extreme_case(0, 64, 8, 3, 1)
    try:
        for precision in ("bf16", "tf32"):
            backend.fp32_precision = precision
            got = conv.float32_sums(x, w.float(), -128, (1, 1), (1, 1), (1, 1), 1)
            assert torch.equal(got.long(), int64_sums(x, w, -128, padding=1)), precision
            assert backend.fp32_precision == precision  # restored after the call
    finally:
        backend.fp32_precision = old


def test_the_chunk_bound_is_what_the_docstring_proves():
    assert conv.CHUNK * 128 * 128 == 2**24  # the largest exact float32 integer range
    assert conv.fits_float32(1024, 1, 1, 1) and conv.fits_float32(2000, 3, 3, 1)  # chunked over channels
    assert not conv.fits_float32(2000, 3, 3, 2)  # grouped and K > 1024: the matmul path
    assert not conv.fits_float32(1, 33, 33, 1)  # one channel's taps alone exceed 1024


def test_info_names_each_kind_and_the_reason():
    conv_engine.reset()
    info = conv_engine.info()
    assert set(info.chosen) == set(conv_engine.KINDS) and set(info.chosen.values()) <= set(conv_engine.PATHS)
    assert info.float32_exact  # IEEE float32 conv2d: exact on any CPU
    for kind, times in info.seconds.items():  # the choice is the faster of the two timings
        assert info.chosen[kind] == min(times, key=times.get)
    assert "depthwise" in str(info) and "matmul" in str(info)


def test_a_wrong_float32_conv_is_never_chosen_or_forced(monkeypatch, forced_conv):
    monkeypatch.setattr(conv, "is_exact", lambda: False)
    conv_engine.reset()
    info = conv_engine.info()
    assert set(info.chosen.values()) == {"matmul"} and "never used" in info.reason
    forced_conv("float32")
    with pytest.raises(ValueError, match="cannot be used on this machine"):
        conv_engine.info()
    forced_conv("gpu")
    with pytest.raises(ValueError, match="QKIT_INT8_CONV must be one of"):
        conv_engine.info()


def test_kinds():
    assert conv_engine.kind(1, 3, 3, (1, 1), 16) == "depthwise"
    assert conv_engine.kind(1, 3, 3, (1, 1), 1) == "spatial"  # one channel, one group: an ordinary conv
    assert conv_engine.kind(8, 1, 1, (0, 0), 1) == "pointwise"
    assert conv_engine.kind(8, 1, 1, (1, 1), 1) == "spatial"  # padded 1x1 reads z_x at the border


def test_requantize_rows_takes_float32_and_int32_accumulators_alike():
    gen = torch.Generator().manual_seed(3)
    acc = torch.randint(-(1 << 24), 1 << 24, (50, 6), generator=gen, dtype=torch.int32)
    args = conv_layer(1, 6, 6, 1, 1)
    prepared = fast.prepare(args[2], args[3], args[4], args[1], args[5])
    want = fast.requantize(acc, prepared, fused=False)
    for fused in (True, False):
        assert torch.equal(fast.requantize_rows(acc.float(), prepared, fused), want)
        assert torch.equal(fast.requantize_rows(acc, prepared, fused), want)
