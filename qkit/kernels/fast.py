"""Integer-only int8 linear and conv2d, fast version: bit for bit equal to ``ref.py``.

Equation: ``x ≈ scale * (q - zero_point)``; the math is derived in
:mod:`qkit.kernels.ref`. Three things make this version fast:

1. **Folded zero point, matmul in int8.** ``acc = Σ_k q_x q_w + offset[m]`` with
   ``offset = bias_q - z_x Σ_k q_w`` (stage 2 of ref). The sum is
   :func:`int8_matmul`: int8 × int8 → int32, exact, on the fastest path for this CPU.
2. **Per-weight constants computed once.** ``offset``, ``multiplier`` and
   ``shift`` depend on the weight, bias and grids only. They are cached (a small
   LRU keyed on the weight and bias tensors *objects*, their in-place version
   counters and the grids' values); a cached entry is never reused for another
   tensor, but writes that bypass torch's version counter (``.data``, numpy
   views) are not seen: call :func:`clear_cache` after those. Tensors made under
   ``torch.inference_mode()`` have no version counter: for them a copy of the
   values is kept and compared instead.
3. **Fused requantization epilogue.** Done eagerly, requantization is a dozen
   int64 passes over ``(N, M)``, slower than the matmul. :func:`epilogue` does
   it in one pass compiled by ``torch.compile`` (inductor), rewritten so that
   every step vectorises. For ``shift <= 0`` (``M < 1``, the usual case; ``rs = -shift``)
   it equals ``multiply_by_quantized_multiplier``:

   * SaturatingRoundingDoublingHighMul of ``x`` and ``m`` is ``trunc((a + nudge) / 2**31)``
     with ``a = x·m`` and ``nudge = 2**30`` if ``a >= 0`` else ``1 - 2**30``. For
     ``a < 0`` the truncation is a ceiling, ``ceil(s / 2**31) = floor((s + 2**31 - 1) / 2**31)``,
     which is ``floor((a + 2**30) / 2**31)`` again: ``h = (a + 2**30) >> 31``
     for every sign, no division. (It saturates only for ``x = m = -2**31``;
     our multipliers are >= 0.)
   * RoundingDivideByPOT by ``2**rs`` adds 1 to ``h >> rs`` when the dropped
     bits exceed ``2**(rs-1) - 1`` (``h >= 0``) or ``2**(rs-1)`` (``h < 0``):
     ``r = (h + c) >> rs`` with ``c = 2**(rs-1)`` or ``2**(rs-1) - 1`` (0 if ``rs = 0``).
   * Nested floors merge: ``floor(a/p) + c = floor((a + c·p)/p)`` and
     ``floor(floor(b/p)/q) = floor(b/(p·q))``. With ``h >= 0`` exactly when ``a >= -2**30``::

         r = (a + round_up) >> (31 + rs)     if a >= -2**30,  round_up = 2**30 + 2**31 · 2**(rs-1)
         r = (a + round_down) >> (31 + rs)   otherwise,       round_down = round_up - 2**31 (= round_up if rs = 0)

     one multiply, one select, one add, one shift, in int64 (``|a| < 2**62``,
     no overflow); ``|r| < 2**31`` as ``M < 1``, so the clamp runs in int32.

   ``shift > 0`` (``M >= 1``) takes the eager epilogue, which raises if
   ``acc · 2**shift`` leaves int32. If compilation fails, a warning is given
   once and the eager epilogue is used from then on.
4. **TensorFlow Lite's float64 rounding, in integers.** ``rounding="float64"``
   (the reference FULLY_CONNECTED) is ``round(fl(a · M))`` with ``a = acc + offset``,
   ``fl`` the IEEE double product and ``round`` ties away from zero. Compiled as
   float64 code it cost twice the ``_int_mm`` it follows (int32 -> float64 -> int32
   conversions vectorise badly); :func:`epilogue_float64` gets the same integers
   from int64 arithmetic (:func:`float64_constants`):

   * ``M = mant · 2**-E`` exactly, ``mant < 2**53`` an integer (``frexp``). Split
     ``mant = mh · 2**26 + ml``: ``a·mh`` and ``a·ml`` are exact in int64, and
     ``a·M·2**D = T + f`` with ``T = a·mh + floor(a·ml / 2**26)``, ``0 <= f < 1``,
     ``D = E - 26``. Rounding the *exact* product half away from zero is then
     ``(T + 2**(D-1)) >> D`` for ``T >= 0`` and ``-((2**(D-1) - T - [f > 0]) >> D)``
     below (``f``'s floor moves the tie by one unit there).
   * ``fl`` changes that result only where it moves ``a·M`` onto a half-integer
     ``h``: ``fl`` is monotone and ``h`` (``|h| < 2**10``, beyond that both clamp)
     is a double, so ``|a·M - h| <= ulp(h)/2 <= 2**-44``. The epilogue counts the
     outputs within ``2**-42`` of a half-integer (exact ties excluded: ``fl`` of a
     double is itself); that count is almost always 0 (about ``2**-(D-2)`` of the
     outputs when ``D < 42``), and when it is not, the layer's outputs are
     recomputed in float64 eagerly. So the bits are the float64 ones, always
     (``tests/test_kernels.py`` checks it on near-ties built on purpose).

The int8 × int8 → int32 matmul itself is :func:`int8_matmul`: the exact path
(``torch._int_mm``, a chunked float32 GEMM or ONNX Runtime) that
:mod:`qkit.kernels.engine` found fastest on this CPU, after checking each one
for exactness on extreme values.

Convolutions (:func:`int8_conv2d`) get their exact sums from torch's float32 ``conv2d`` on
the int8 values (exact for up to 1024 products per sum: :mod:`qkit.kernels.conv`) or from
im2col plus :func:`int8_matmul`, whichever :mod:`qkit.kernels.conv_engine` measured faster
for that kind of conv (depthwise, pointwise, spatial); the float32 accumulator goes
straight into the compiled epilogue (:func:`epilogue_float`). Outputs are channels-last, so
the next conv reads them without a copy. Every compiled kernel is checked against its eager
version on each new trace (:class:`qkit.kernels.compiled.Compiled`).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F

from qkit.fixedpoint import check_rounding
from qkit.kernels import conv, conv_engine, engine, ref
from qkit.kernels.compiled import Compiled
from qkit.qparams import QParams


class Prepared(NamedTuple):
    """Per-weight constants of one layer, each ``(M,)`` along the output channels."""

    offset: torch.Tensor  # int32: bias_q - z_x Σ_k q_w
    multiplier: torch.Tensor  # int32 Q0.31
    shift: torch.Tensor  # int32, TFLite sign convention
    fusable: bool  # every shift <= 0: the fused epilogue applies
    fused_args: tuple  # see fused_constants
    y_qp: QParams
    rounding: str  # "double" or "single" (qkit.fixedpoint.ROUNDINGS)


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 128


def clear_cache() -> None:
    """Forget every cached :class:`Prepared` (after writing to weights behind torch's back)."""
    _CACHE.clear()


def _build(q_w2: torch.Tensor, bias, x_qp: QParams, w_qp: QParams, y_qp: QParams, rounding: str) -> Prepared:
    """Stages 2-4 of ref for an ``(M, K)`` int8 weight: validate, then the constants."""
    m, k = q_w2.shape
    ref.check_grids(x_qp, w_qp, y_qp, m)
    z_x = int(x_qp.zero_point)
    bias_q = ref.quantize_bias(bias, x_qp, w_qp, m)  # (M,) int32
    ref.check_accumulator(k, z_x, bias_q)
    multiplier, shift = ref.output_multipliers(x_qp, w_qp, y_qp, m, rounding)  # (M,) each; "float64": M itself
    row_sums = q_w2.to(torch.int32).sum(dim=1)  # (M,) int32, |.| <= 128 K
    offset = (bias_q.long() - z_x * row_sums.long()).to(torch.int32)  # (M,) fits by stage 4
    fused_args = fused_constants(multiplier, shift, y_qp, rounding)
    if rounding == "float64":  # the integer emulation covers 2**-36 <= M < 2**26 (float64_constants)
        fusable = bool(((multiplier >= 2.0 ** -36) & (multiplier < 2.0 ** 26)).all())
    else:
        fusable = bool((shift <= 0).all())
    return Prepared(offset, multiplier, shift, fusable, fused_args, y_qp, rounding)


def rounding_constants(shift: torch.Tensor, rounding: str = "double") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(31 + rs, round_up, round_down)`` of the merged rounding (module docstring), int64, for shifts <= 0.

    ``rounding="single"`` (one rounding of the product, TFLite's single-rounding
    build) is the same formula with ``round_up = round_down = 2**(30 + rs)``;
    ``rounding="double_up"`` (ruy's pair, ties up twice) with ``round_down = round_up``.

    Example:
        >>> total_shift, round_up, round_down = rounding_constants(torch.tensor([0, -1, -3]))   # rs = 0, 1, 3
        >>> total_shift, round_up - (1 << 30), round_up - round_down     # 2**31 · 2**(rs-1); 2**31 if rs > 0
        (tensor([31, 32, 34]), tensor([         0, 2147483648, 8589934592]), tensor([         0, 2147483648, 2147483648]))
    """
    rs = (-shift.long()).clamp(min=0)  # right shift of RoundingDivideByPOT, int64
    if check_rounding(rounding) == "float64":
        raise ValueError("rounding='float64' has no fixed-point constants: fused_constants keeps the real M")
    if rounding == "single":
        half = torch.ones_like(rs) << (30 + rs)  # int64: 2**(total_shift - 1)
        return 31 + rs, half, half
    c = torch.where(rs > 0, torch.ones_like(rs) << (rs - 1).clamp(min=0), 0)  # 2**(rs-1), or 0
    round_up = (1 << 30) + (c << 31)  # int64
    if rounding == "double_up":  # ruy's second rounding adds 2**(rs-1) whatever the sign: no select
        return 31 + rs, round_up, round_up
    round_down = round_up - torch.where(rs > 0, 1 << 31, 0)  # int64
    return 31 + rs, round_up, round_down


def rounding_multiply(x: torch.Tensor, multiplier, total_shift, round_up, round_down) -> torch.Tensor:
    """``multiply_by_quantized_multiplier`` as one multiply, select, add and shift: int64 out (module docstring).

    ``x`` holds int32 values; the constants come from :func:`rounding_constants`
    and broadcast along ``x``.

    The select is arithmetic, not ``torch.where``: ``(a + 2**30) >> 63`` is ``-1`` exactly when
    ``a < -2**30`` and ``0`` otherwise (an arithmetic shift of an int64 with ``|a + 2**30| < 2**63``),
    so ``round_up - (mask & (round_up - round_down))`` is ``round_down`` there and ``round_up``
    elsewhere: the same integers. (inductor's vectorised AVX2 code for an int64
    compare-and-select gave wrong results with torch 2.13, under ``ATEN_CPU_CAPABILITY=avx2``;
    shifts, ands and adds are right, so the compiled epilogue stays vectorised there.)

    Example:
        >>> a = torch.tensor([-(1 << 30) - 1, -(1 << 30), 0])
        >>> rounding_multiply(a, 1, torch.tensor(0), torch.tensor(10), torch.tensor(3)) - a   # down, up, up
        tensor([ 3, 10, 10])
    """
    a = x.to(torch.int64) * multiplier  # int64, |a| < 2**62
    below = (a + (1 << 30)) >> 63  # int64: -1 where a < -2**30, else 0
    return (a + (round_up - (below & (round_up - round_down)))) >> total_shift  # int64


def fused_constants(multiplier: torch.Tensor, shift: torch.Tensor, y_qp: QParams, rounding: str = "double") -> tuple:
    """:func:`epilogue`'s constants: multiplier, total shift, round_up, round_down (int64 ``(M,)``)
    and ``(z_y, qmin_y - z_y, qmax_y - z_y)`` (int32 ``(3,)``). For shifts <= 0 only.

    ``rounding="float64"``: ``multiplier`` is the real ``M`` (float64, from
    ``ref.output_multipliers``); the constants are :func:`epilogue_float64`'s:
    :func:`float64_constants` stacked into one ``(6, M)`` tensor, and ``out``."""
    z_y = int(y_qp.zero_point)
    out = torch.tensor([z_y, y_qp.qmin - z_y, y_qp.qmax - z_y], dtype=torch.int32)  # (3,)
    if check_rounding(rounding) == "float64":
        return torch.stack(float64_constants(multiplier)), out  # (6, M) int64: one argument, not six
    return (multiplier.long(), *rounding_constants(shift, rounding), out)


_LOW = 26  # mant = mh · 2**26 + ml (module docstring, item 4)


def float64_constants(real: torch.Tensor) -> tuple:
    """``(mh, ml, D, half, mask, near)``, int64 ``(M,)`` each: ``M = (mh·2**26 + ml) · 2**-(D+26)``.

    ``half = 2**(D-1)``, ``mask = 2**D - 1`` and ``near = floor(2**(D-42))``: how close
    to a half-integer (in units of ``2**-D``) an output must come to be recomputed in
    float64 (module docstring, item 4). Valid for ``2**-36 <= M < 2**26``
    (``1 <= D <= 62``); other multipliers give ``D = 1`` here and the eager epilogue.

    Example:
        >>> mh, ml, d, half, mask, near = float64_constants(torch.tensor([0.375], dtype=torch.float64))
        >>> int(mh) * 2**26 + int(ml), int(d) + 26   # 0.375 = 3 · 2**51 / 2**53
        (6755399441055744, 54)
    """
    fraction, exponent = torch.frexp(real.double())  # real = fraction · 2**exponent, fraction in [0.5, 1)
    mant = (fraction * 2.0 ** 53).long()  # (M,) int64, exact: 53-bit integers
    d = (27 - exponent.long()).clamp(1, 62)  # (M,) int64: D = E - 26, E = 53 - exponent
    one = torch.ones_like(d)
    near = torch.where(d > 42, one << (d - 42).clamp(min=0), 0)  # (M,) int64
    return mant >> _LOW, mant & ((1 << _LOW) - 1), d, one << (d - 1), (one << d) - 1, near


def epilogue_float64(acc, offset, consts, out):
    """``round(fl((acc + offset) · M))`` -> int8, clamped, in int64 arithmetic; and how many outputs came near a tie.

    Module docstring, item 4. The selects are arithmetic (an int64 sign shifted down is
    ``-1`` or ``0``), as in :func:`rounding_multiply`. Returns ``(int8 (R, M), int64 count)``;
    a count above 0 means: recompute in float64 (:func:`requantize` does).

    Example:
        >>> acc = torch.tensor([[10, -10, 5, -5, 1000]], dtype=torch.int32)   # M = 0.3: 3, -3, 1.5, -1.5
        >>> y_qp = QParams(torch.tensor(1.0), torch.tensor(0, dtype=torch.int32), -128, 127)
        >>> consts = fused_constants(torch.tensor([0.3], dtype=torch.float64), None, y_qp, "float64")
        >>> epilogue_float64(acc, torch.zeros(1, dtype=torch.int32), *consts)   # 5·fl(0.3) < 1.5 ...
        (tensor([[  3,  -3,   1,  -1, 127]], dtype=torch.int8), tensor(2))
        >>> 5 * 0.3    # ... but fl rounds the product onto the tie: two outputs to recompute in float64
        1.5
    """
    mh, ml, d, half, mask, near = consts  # (M,) int64 each: float64_constants, stacked
    a = (acc + offset).to(torch.int64)  # (R, M) int64, |a| < 2**31
    lo = a * ml  # (R, M) int64, |.| < 2**57
    t = a * mh + (lo >> _LOW)  # (R, M) int64: floor(a·M·2**D)
    f = ((lo & ((1 << _LOW) - 1)) + ((1 << _LOW) - 1)) >> _LOW  # (R, M) int64: 1 if the dropped bits are not 0
    up = (t + half) >> d  # (R, M) int64: rounded, for t >= 0
    down = -((half - t - f) >> d)  # (R, M) int64: rounded, for t < 0
    r = up + ((t >> 63) & (down - up))  # (R, M) int64
    w = (t + half) & mask  # (R, M) int64: where a·M·2**D sits between two ties
    exact_tie = ((w - 1) >> 63) & (1 - f)  # 1 where a·M is a half-integer exactly
    low = (((w - near - 2) >> 63) & 1) - exact_tie  # just above a tie
    high = ((mask - near - 2 - w) >> 63) & 1  # just below the next one
    r = torch.clamp(r, out[1].long(), out[2].long()).to(torch.int32)  # (R, M) int32, shifted grid bounds
    return (r + out[0]).to(torch.int8), (low | high).sum()  # (R, M) int8; int64 count


def _snapshot(qps) -> tuple:
    return tuple((qp.scale.clone(), qp.zero_point.clone(), qp.qmin, qp.qmax, qp.axis) for qp in qps)


def _same(snap: tuple, qps) -> bool:
    return all(
        isinstance(qp, QParams) and (qp.qmin, qp.qmax, qp.axis) == s[2:]
        and isinstance(qp.scale, torch.Tensor) and isinstance(qp.zero_point, torch.Tensor)
        and qp.scale.shape == s[0].shape and qp.zero_point.shape == s[1].shape
        and torch.equal(qp.scale, s[0]) and torch.equal(qp.zero_point, s[1])
        for s, qp in zip(snap, qps)
    )


def _version(t):
    """What tells a later call that ``t`` was not written to: its version counter, or a copy.

    Tensors made under ``torch.inference_mode()`` have no version counter (reading it
    raises); for those, a copy of the values is kept and compared (one cheap pass over
    the weight, against a matmul's N passes).
    """
    if not isinstance(t, torch.Tensor):
        return None
    if t.is_inference():
        with torch.inference_mode():
            return t.clone()  # same values, compared with torch.equal
    return t._version


def _unchanged(versions: tuple, tensors: tuple) -> bool:
    """Whether each tensor still has the version (or the values) :func:`_version` recorded."""
    for v, t in zip(versions, tensors):
        if isinstance(v, torch.Tensor):  # an inference tensor's copy
            if not (isinstance(t, torch.Tensor) and t.is_inference() and torch.equal(v, t)):
                return False
        elif v != (t._version if isinstance(t, torch.Tensor) and not t.is_inference() else None):
            return False
    return True


def prepare(q_w: torch.Tensor, w_qp: QParams, bias, x_qp: QParams, y_qp: QParams,
            rounding: str = "double") -> Prepared:
    """Cached :class:`Prepared` for an int8 weight (``(M, K)``, or a conv weight flattened per row)."""
    qps = (x_qp, w_qp, y_qp)
    key = (id(q_w), id(bias), check_rounding(rounding))
    hit = _CACHE.get(key)
    if hit is not None:
        w_ref, b_ref, vers, snap, prepared = hit
        if (w_ref() is q_w and (b_ref is None) == (bias is None) and (b_ref is None or b_ref() is bias)
                and _unchanged(vers, (q_w, bias)) and _same(snap, qps)):
            _CACHE.move_to_end(key)
            return prepared
    prepared = _build(q_w.reshape(q_w.shape[0], -1), bias, x_qp, w_qp, y_qp, rounding)
    if isinstance(bias, torch.Tensor) or bias is None:  # numpy biases are new tensors every call
        b_ref = None if bias is None else weakref.ref(bias)
        _CACHE[key] = (weakref.ref(q_w), b_ref, (_version(q_w), _version(bias)), _snapshot(qps), prepared)
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return prepared


def epilogue(acc, offset, multiplier, total_shift, round_up, round_down, out):
    """The fused requantization (module docstring): int32 ``(R, M)`` accumulator -> int8 ``(R, M)``.

    Example:
        >>> acc = torch.tensor([[10, -10, 5, -5, 1000]], dtype=torch.int32)   # M = 0.3
        >>> y_qp = QParams(torch.tensor(1.0), torch.tensor(0, dtype=torch.int32), -128, 127)
        >>> consts = fused_constants(torch.tensor([1288490189]), torch.tensor([-1]), y_qp)
        >>> epilogue(acc, torch.zeros(1, dtype=torch.int32), *consts)   # 1.5 -> 2, -1.5 -> -2
        tensor([[  3,  -3,   2,  -2, 127]], dtype=torch.int8)
    """
    r = rounding_multiply(acc + offset, multiplier, total_shift, round_up, round_down)  # (R, M) int64; exact
    r = torch.clamp(r.to(torch.int32), out[1], out[2])  # (R, M) int32, shifted grid bounds
    return (r + out[0]).to(torch.int8)  # (R, M) int8


_Compiled = Compiled(epilogue, "int8 requantization epilogue")  # checked against eager per new trace
_FLOAT64 = Compiled(epilogue_float64, "int8 requantization epilogue (float64 rounding, in integers)")


def _fused(acc: torch.Tensor, prepared: Prepared):
    """The compiled epilogue (:class:`qkit.kernels.compiled.Compiled`), or None if compilation is unavailable."""
    if _Compiled.failed:
        return None
    if _Compiled.eager is not epilogue:  # epilogue was replaced (tests): compile the new one
        _Compiled.eager, _Compiled.fn, _Compiled.seen = epilogue, None, set()
    return _Compiled(acc, prepared.offset, *prepared.fused_args)  # (R, M) int8


def requantize(acc: torch.Tensor, prepared: Prepared, fused: bool = True) -> torch.Tensor:
    """int32 ``(R, M)`` ``Σ q_x q_w`` -> int8 ``(R, M)``: fused if possible, else eager (via fixedpoint)."""
    if fused and prepared.fusable and prepared.rounding == "float64":
        if not _FLOAT64.failed:
            out, near_ties = _FLOAT64(acc, prepared.offset, *prepared.fused_args)  # (R, M) int8; count
            if int(near_ties) == 0:
                return out
    elif fused and prepared.fusable:
        out = _fused(acc, prepared)
        if out is not None:
            return out
    acc = acc + prepared.offset  # (R, M) int32, exact by stage 4
    return ref.requantize(acc, prepared.multiplier, prepared.shift, prepared.y_qp, prepared.rounding)  # several passes


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact ``a @ b`` for int8 ``(N, K)`` and ``(K, M)``: int32 ``(N, M)``, on the path :mod:`qkit.kernels.engine` chose.

    Example:
        >>> int8_matmul(torch.tensor([[2], [-3]], dtype=torch.int8), torch.tensor([[4, 5]], dtype=torch.int8))
        tensor([[  8,  10],
                [-12, -15]], dtype=torch.int32)
    """
    return engine.matmul(a, b)  # (N, M) int32


def int8_linear(q_x, x_qp, q_w, w_qp, bias, y_qp, *, fused: bool = True, rounding: str = "float64",
                prepared: Prepared | None = None) -> torch.Tensor:
    """Fast :func:`qkit.kernels.ref.int8_linear`: :func:`int8_matmul` + the (fused) epilogue.

    ``prepared`` (optional) is this layer's :class:`Prepared`, kept by the caller (the int8
    modules keep theirs: :meth:`qkit.nn.QuantLinear.constants`); without it :func:`prepare`'s cache is used.
    """
    q_x = ref.int8_tensor("q_x", q_x, 2, "(N, K)")
    q_w = ref.int8_tensor("q_w", q_w, 2, "(M, K)")
    if q_x.shape[1] != q_w.shape[1]:
        raise ValueError(f"q_x is (N, K) = {tuple(q_x.shape)} but q_w is (M, K) = {tuple(q_w.shape)}: K differs")
    if prepared is None:
        prepared = prepare(q_w, w_qp, bias, x_qp, y_qp, rounding)
    if q_x.shape[0] == 0:
        return torch.empty(0, q_w.shape[0], dtype=torch.int8)
    acc = int8_matmul(q_x.contiguous(), q_w.contiguous().T)  # (N, M) int32: Σ_k q_x q_w
    return requantize(acc, prepared, fused)  # (N, M) int8


def conv2d_sums(q_x, q_w, z_x: int, *, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    """``Σ q_x q_w`` at every output position of an int8 conv2d, border padded with ``z_x``.

    Returns int32 ``(N, H_out, W_out, C_out)``, channels last: ``reshape(-1, C_out)``
    gives a matmul's ``(R, C_out)`` accumulator rows. Padding with ``z_x`` (the
    integer of 0.0) keeps the folded ``- z_x Σ q_w`` exact at the border.
    This is the matmul path (:func:`qkit.kernels.conv.matmul_sums`: im2col plus one
    :func:`int8_matmul` per group; depthwise convolutions sum ``kH·kW`` shifted int32
    products); :func:`int8_conv2d` may take the float32 path instead (:mod:`qkit.kernels.conv_engine`).

    Example:
        >>> q_x, q_w = torch.ones(1, 1, 2, 2, dtype=torch.int8), torch.ones(1, 1, 3, 3, dtype=torch.int8)
        >>> conv2d_sums(q_x, q_w, -3, padding=1).flatten()     # 4 ones and 5 padded -3s each
        tensor([-11, -11, -11, -11], dtype=torch.int32)
    """
    q_x, q_w, stride, padding, dilation, groups, (h_out, w_out) = ref.conv_geometry(
        q_x, q_w, stride, padding, dilation, groups)
    n, c_out = q_x.shape[0], q_w.shape[0]
    if n * h_out * w_out == 0:
        return torch.zeros(n, h_out, w_out, c_out, dtype=torch.int32)
    rows = conv.matmul_sums(q_x, q_w, z_x, stride, padding, dilation, groups, (h_out, w_out))  # (R, C_out) int32
    return rows.reshape(n, h_out, w_out, c_out)  # (N, Ho, Wo, C_out) int32


def epilogue_float(acc, offset, multiplier, total_shift, round_up, round_down, out):
    """:func:`epilogue` of a float32 accumulator that holds exact integers (:mod:`qkit.kernels.conv`).

    The conversion to int32 is exact (the values are integers with ``|acc| < 2**31``: stage 4
    of ref) and, compiled, fused into the epilogue's one pass instead of a pass of its own.
    """
    return epilogue(acc.to(torch.int32), offset, multiplier, total_shift, round_up, round_down, out)


_FLOAT_EPILOGUE = Compiled(epilogue_float, "int8 requantization epilogue (float32 accumulator)")


def requantize_rows(acc: torch.Tensor, prepared: Prepared, fused: bool = True) -> torch.Tensor:
    """:func:`requantize` for an int32 or an exact-integer float32 ``(R, M)`` accumulator -> int8 ``(R, M)``."""
    if acc.dtype == torch.int32 or prepared.rounding == "float64":
        return requantize(acc.to(torch.int32), prepared, fused)
    if fused and prepared.fusable and not _Compiled.failed:
        return _FLOAT_EPILOGUE(acc, prepared.offset, *prepared.fused_args)  # (R, M) int8
    return requantize(acc.to(torch.int32), prepared, fused)  # (R, M) int8


def conv_weight_float(q_w: torch.Tensor) -> torch.Tensor:
    """The int8 conv weight as float32, the float32 path's operand (int8 modules keep it)."""
    return q_w.float()  # (C_out, C_in/groups, kH, kW) float32, exact


def int8_conv2d(q_x, x_qp, q_w, w_qp, bias, y_qp, *, stride=1, padding=0, dilation=1, groups=1,
                fused: bool = True, rounding: str = "double", prepared: Prepared | None = None,
                w_float: torch.Tensor | None = None) -> torch.Tensor:
    """Fast :func:`qkit.kernels.ref.int8_conv2d`: exact sums (float32 conv or im2col + matmul), the epilogue.

    The path per kind of conv (depthwise, pointwise, spatial) is :func:`qkit.kernels.conv_engine.path`.
    The result is channels-last (``torch.channels_last``: an ``(N, C_out, Ho, Wo)`` view of
    NHWC memory, the layout the epilogue writes), so the next conv reads it without a copy;
    ``.contiguous()`` gives the NCHW layout. ``prepared`` / ``w_float`` are the layer's
    constants if the caller keeps them (:class:`qkit.nn.QuantConv2d` does).
    """
    q_x, q_w, stride, padding, dilation, groups, (h_out, w_out) = ref.conv_geometry(
        q_x, q_w, stride, padding, dilation, groups)
    n, c_out, cin_g, kh, kw = q_x.shape[0], *q_w.shape
    if prepared is None:
        prepared = prepare(q_w, w_qp, bias, x_qp, y_qp, rounding)
    if n * h_out * w_out == 0:
        return torch.empty(n, c_out, h_out, w_out, dtype=torch.int8)
    z_x = int(x_qp.zero_point)
    kind = conv_engine.kind(cin_g, kh, kw, padding, groups)
    if conv_engine.path(kind) == "float32" and conv.fits_float32(cin_g, kh, kw, groups):
        w_float = conv_weight_float(q_w) if w_float is None else w_float
        acc = conv.rows_of(conv.float32_sums(q_x, w_float, z_x, stride, padding, dilation, groups))  # (R, C_out)
    else:
        acc = conv.matmul_sums(q_x, q_w, z_x, stride, padding, dilation, groups, (h_out, w_out))  # (R, C_out) int32
    out = requantize_rows(acc, prepared, fused)  # (R, C_out) int8
    return out.reshape(n, h_out, w_out, c_out).permute(0, 3, 1, 2)  # (N, C_out, Ho, Wo), channels last
