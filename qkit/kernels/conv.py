"""Exact int8 convolution sums ``Σ q_x q_w``: by float32 convolutions, or by im2col and the int8 matmul.

Equation: at every output position ``acc[n, o, h, w] = Σ_{c, i, j} q_x[n, c, h·s + i·d, w·s + j·d] q_w[o, c, i, j]``
over the ``K = C_in/groups · kH · kW`` taps of one output, the input padded with ``z_x``
(the integer of 0.0: :mod:`qkit.kernels.ref`, stage 2). Two ways to get the same integers:

* :func:`float32_sums` — torch's own float32 ``conv2d`` on the int8 values. **Why it is
  exact:** each product of two int8 values is an integer with ``|q_x q_w| <= 128 · 128 = 2**14``.
  Whatever order and grouping the convolution uses (direct, blocked, GEMM-based, vectorised,
  with fused multiply-adds), every value it forms is the sum of a *subset* of one output's
  ``K`` products: an integer of magnitude at most ``K · 2**14``. For ``K <= 1024`` that is at
  most ``2**24``, and float32 (24-bit significand) holds every such integer exactly, so no
  operation ever rounds and the result is the exact sum. For ``K > 1024`` the input channels
  are split into chunks of at most ``1024 // (kH·kW)`` channels, each chunk is summed exactly
  in float32, converted to int32, and the chunks are added in int32 (as
  :func:`qkit.kernels.matmul.float32_chunked` does for matmuls).
  Two conditions: real float32 arithmetic (no TF32 / bfloat16 inputs: the oneDNN precision
  setting is forced to ``"ieee"`` around the call), and no transform-based algorithm
  (Winograd, FFT: those form values that are not subsets of products, and round). torch's CPU
  convolutions are direct or GEMM-based; :func:`is_exact` checks it on full-range data, and
  :mod:`qkit.kernels.conv_engine` never uses a path that fails that check.
  Depthwise convolutions (``K = kH·kW = 9``) are the best case: no GEMM at all, one
  vectorised pass, where im2col plus a matmul of ``K = 9`` is nearly all copying.
* :func:`matmul_sums` — im2col then one exact int8 matmul per group (:mod:`qkit.kernels.engine`);
  a 1×1 convolution without padding needs no im2col: on channels-last activations its
  ``(N·H·W, C_in)`` rows are a view. Depthwise convolutions sum ``kH·kW`` shifted int32 products.

Both take any memory format; activations in qkit's int8 models are channels-last
(``torch.channels_last``: an NCHW view of NHWC memory), so that the accumulator rows
``(N·H_out·W_out, C_out)`` the requantization epilogue reads are a view, not a copy.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from qkit.kernels import engine

#: Most products one float32 sum may hold exactly: 1024 · 2**14 = 2**24.
CHUNK = 1024
CL = torch.channels_last


@contextmanager
def ieee_float32():
    """Real float32 in oneDNN's convolutions for the duration (no TF32 / bfloat16 inputs)."""
    conv = getattr(getattr(torch.backends, "mkldnn", None), "conv", None)
    old = getattr(conv, "fp32_precision", None)
    if old in (None, "none", "ieee") and getattr(torch.backends, "fp32_precision", "none") in ("none", "ieee"):
        yield
        return
    conv.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision = old


def channels_last(q: torch.Tensor) -> torch.Tensor:
    """``q`` (N, C, H, W) in channels-last memory (no copy if it already is)."""
    return q if q.is_contiguous(memory_format=CL) else q.contiguous(memory_format=CL)


def fits_float32(cin_g: int, kh: int, kw: int, groups: int) -> bool:
    """Whether :func:`float32_sums` can do this geometry exactly: one tap set fits 1024 products."""
    return kh * kw <= CHUNK and (groups == 1 or cin_g * kh * kw <= CHUNK)


def float32_sums(q_x: torch.Tensor, w_float: torch.Tensor, z_x: int, stride, padding, dilation,
                 groups: int) -> torch.Tensor:
    """Exact ``Σ q_x q_w`` by float32 conv2d (module docstring): float32 or int32 ``(N, C_out, Ho, Wo)``, channels last.

    ``w_float`` is the int8 weight as float32 ``(C_out, C_in/groups, kH, kW)``. The result holds
    exact integers: float32 when one chunk covers ``K``, int32 when chunks were added.

    Example:
        >>> q_x = torch.full((1, 1, 2, 2), 127, dtype=torch.int8)
        >>> w_float = torch.full((1, 1, 3, 3), -128.0)      # 4 taps 127·(-128), 5 padded (-128)·(-128)
        >>> float32_sums(q_x, w_float, -128, (1, 1), (1, 1), (1, 1), 1).flatten()
        tensor([16896., 16896., 16896., 16896.])
    """
    (ph, pw), (kh, kw), cin_g = padding, w_float.shape[2:], w_float.shape[1]
    x = channels_last(q_x)
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph), value=z_x)  # (N, C_in, Hp, Wp) int8, channels last
    x = x.float()  # (N, C_in, Hp, Wp) float32, exact integers
    step = cin_g if cin_g * kh * kw <= CHUNK else CHUNK // (kh * kw)  # input channels per exact chunk
    with ieee_float32():
        if step >= cin_g:
            return channels_last(F.conv2d(x, w_float, None, stride, 0, dilation, groups))  # float32, exact
        acc = None
        for start in range(0, cin_g, step):  # groups == 1 here (fits_float32)
            part = F.conv2d(x[:, start:start + step], w_float[:, start:start + step], None, stride, 0, dilation)
            part = channels_last(part).to(torch.int32)  # exact: |.| <= 2**24
            acc = part if acc is None else acc.add_(part)  # int32
        return acc


def matmul_sums(q_x: torch.Tensor, q_w: torch.Tensor, z_x: int, stride, padding, dilation, groups: int,
                out_hw: tuple) -> torch.Tensor:
    """Exact ``Σ q_x q_w`` by im2col and the engine's int8 matmul: int32 ``(N·Ho·Wo, C_out)`` rows (NHWC order).

    Example:
        >>> q_x, q_w = torch.ones(1, 1, 2, 2, dtype=torch.int8), torch.ones(1, 1, 3, 3, dtype=torch.int8)
        >>> matmul_sums(q_x, q_w, -3, (1, 1), (1, 1), (1, 1), 1, (2, 2)).flatten()  # 4 ones, 5 padded -3s
        tensor([-11, -11, -11, -11], dtype=torch.int32)
    """
    (sh, sw), (ph, pw), (dh, dw), (h_out, w_out) = stride, padding, dilation, out_hw
    n, c_out, cin_g, kh, kw = q_x.shape[0], *q_w.shape
    cout_g, rows = c_out // groups, n * h_out * w_out
    if kh == kw == 1 and ph == pw == 0 and groups == 1:  # pointwise: the rows are the channels-last pixels
        x = q_x if sh == sw == 1 else q_x[:, :, ::sh, ::sw]  # (N, C_in, Ho, Wo)
        cols = channels_last(x).permute(0, 2, 3, 1).reshape(rows, cin_g)  # (R, C_in) int8, a view
        return engine.matmul(cols, q_w.reshape(c_out, cin_g).T)  # (R, C_out) int32
    xp = F.pad(q_x, (pw, pw, ph, ph), value=z_x)  # (N, C_in, Hp, Wp) int8
    if cin_g == 1:  # depthwise: kH·kW shifted products, in int32
        xp = xp.permute(0, 2, 3, 1)  # (N, Hp, Wp, C_in) int8 view
        if cout_g > 1:
            xp = xp.repeat_interleave(cout_g, dim=3)  # (N, Hp, Wp, C_out): channel o reads o // cout_g
        w = q_w.reshape(c_out, kh * kw).T.to(torch.int32)  # (kH·kW, C_out) int32
        acc = torch.zeros(n, h_out, w_out, c_out, dtype=torch.int32)
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, i * dh: i * dh + sh * (h_out - 1) + 1: sh,
                         j * dw: j * dw + sw * (w_out - 1) + 1: sw]  # (N, H_out, W_out, C_out) int8
                acc += tap.to(torch.int32) * w[i * kw + j]  # int32, within stage 4's bound
        return acc.reshape(rows, c_out)  # (R, C_out) int32
    patches = xp.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)  # (N, C_in, Ho, Wo, ., .)
    patches = patches[..., ::dh, ::dw].permute(0, 2, 3, 1, 4, 5)  # (N, Ho, Wo, C_in, kH, kW) view
    w2 = q_w.contiguous().reshape(c_out, cin_g * kh * kw)  # (C_out, K) int8
    accs = []
    for g in range(groups):
        cols = patches[:, :, :, g * cin_g: (g + 1) * cin_g].reshape(rows, cin_g * kh * kw)  # (R, K) im2col
        accs.append(engine.matmul(cols, w2[g * cout_g: (g + 1) * cout_g].T))  # (R, C_out/g) int32
    return accs[0] if groups == 1 else torch.cat(accs, dim=1)  # (R, C_out) int32


def rows_of(acc: torch.Tensor) -> torch.Tensor:
    """A channels-last ``(N, C, H, W)`` accumulator as ``(N·H·W, C)`` rows: a view, no copy."""
    return acc.permute(0, 2, 3, 1).reshape(-1, acc.shape[1])  # (R, C_out)


def _probe_cases() -> list:
    """Full-range conv cases (x, w, z_x, stride, padding, dilation, groups): K = 1024 exactly, K > 1024, depthwise."""
    gen = torch.Generator().manual_seed(0)
    cases = []
    for n, c, h, o, k, s, d, g in ((3, 1024, 3, 5, 1, 1, 1, 1), (2, 128, 5, 7, 3, 1, 1, 1), (2, 9, 6, 4, 3, 2, 2, 1),
                                   (3, 16, 7, 16, 3, 1, 1, 16), (2, 8, 6, 16, 3, 2, 1, 8), (2, 6, 5, 4, 3, 1, 1, 2)):
        x = torch.randint(-128, 128, (n, c, h, h), generator=gen, dtype=torch.int8)
        w = torch.randint(-128, 128, (o, c // g, k, k), generator=gen, dtype=torch.int8)
        x[0], w[: max(1, o // 2)] = -128, -128  # sums of 2**14 products: the largest partial sums
        x[1, : c // 2] = 127
        cases.append((x, w, -128 if n % 2 else 127, (s, s), (k // 2 * d,) * 2, (d, d), g))
    return cases


def is_exact() -> bool:
    """Whether :func:`float32_sums` equals an int64 convolution on every probe case (full-range values).

    >>> is_exact()
    True
    """
    for x, w, z, s, p, d, g in _probe_cases():
        want = F.conv2d(F.pad(x.double(), (p[1], p[1], p[0], p[0]), value=z), w.double(), None, s, 0, d, g)
        got = float32_sums(x, w.float(), z, s, p, d, g)
        if got.shape != want.shape or not torch.equal(got.double(), want):  # float64 exact: |sums| < 2**53
            return False
    return True
