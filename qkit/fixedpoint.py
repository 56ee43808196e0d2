"""Fixed-point requantization: ``round(acc * M)`` with integer operations only.

Equation: ``acc * M ≈ acc * multiplier * 2**(shift - 31)``.

Derivation (in the spirit of gemmlowp's ``doc/quantization.md``):

1. An int8 layer accumulates ``acc = Σ (q_x - zp_x)(q_w - zp_w)`` in int32. The
   real output is ``scale_x * scale_w * acc``; on the output grid that is
   ``acc * M`` levels with the real multiplier ``M = scale_x * scale_w / scale_y``,
   mostly in (0, 1). An integer-only kernel must form ``round(acc * M)``
   without a float.
2. Split ``M = q * 2**e`` with ``q`` in [0.5, 1) (``frexp``) and store ``q`` in
   Q0.31: ``multiplier = round_half_away(q * 2**31)``, in [2**30, 2**31]. The
   value 2**31 does not fit int32, so it becomes ``2**30`` with ``e + 1``.
   Then ``shift = e`` and ``M ≈ multiplier * 2**(shift - 31)`` to within a
   relative 2**-31. TFLite's sign convention: ``shift > 0`` shifts left.
3. ``acc * M`` is then computed in three integer stages, as TFLite's reference
   ``MultiplyByQuantizedMultiplier`` does (the default, double-rounding build)::

       x = acc * 2**max(shift, 0)                               # exact; must fit int32
       y = saturating_rounding_doubling_high_mul(x, multiplier) # round(x*multiplier/2**31)
       r = rounding_divide_by_pot(y, max(-shift, 0))            # round(y / 2**-shift)

   Stage 2 keeps the high 32 bits of the 64-bit product, doubled (ARM's
   ``VQRDMULH``), rounding ties toward +inf; stage 3 rounds ties away from 0.
4. Error: the last rounding errs by ≤ 1/2; when shift < 0 the stage-2
   rounding adds ≤ 2**(shift-1); the multiplier's own rounding adds
   ≤ |acc| * 2**(shift-32). As ``|acc * 2**max(shift, 0)| ≤ 2**31``, the
   total is ``|r - acc * M| ≤ 1``: ``r`` is within one output level of the
   exact product, but is not always the correctly rounded ``round(acc * M)``
   (double rounding). With ``M = 1/4`` (``multiplier = 2**30, shift = -1``)
   and ``acc = 5``: stage 2 rounds 2.5 up to 3, stage 3 rounds 3/2 to 2,
   while ``round(1.25)`` is 1:

   >>> multiply_by_quantized_multiplier(torch.tensor([1, 5, 6]), 2**30, -1)
   tensor([1, 2, 2], dtype=torch.int32)

5. **One rounding in float64** (``rounding="float64"``). TensorFlow Lite's
   reference FULLY_CONNECTED (``reference/integer_ops/fully_connected.h``, the
   overloads that take the scales) skips the fixed-point pair: it forms
   ``M = double(s_x) * double(s_w) / double(s_y)`` and returns C's
   ``round(double(acc) * M)``, ties away from zero. ``double(acc)`` is exact
   (``|acc| < 2**31 < 2**53``); the product is rounded once to 53 bits (an error
   below ``2**-22`` while ``|acc * M| < 2**31``), then to an integer, so
   ``|r - acc * M| <= 1/2 + 2**-22``: the correctly rounded result except within
   ``2**-22`` of a tie. :func:`multiply_by_real_multiplier` takes ``M`` itself;
   ``multiply_by_quantized_multiplier(..., rounding="float64")`` takes the pair,
   ``M = multiplier * 2**(shift - 31)`` (exact in float64). Ties differ from
   ``"single"``, which rounds them toward +inf (``-0.5 -> 0``):

   >>> acc = torch.tensor([5, 2, -2])                                       # times M = 1/4
   >>> multiply_by_quantized_multiplier(acc, 2**30, -1, rounding="float64")  # 1.25, 0.5, -0.5
   tensor([ 1,  1, -1], dtype=torch.int32)
   >>> multiply_by_quantized_multiplier(acc, 2**30, -1, rounding="single")
   tensor([1, 1, 0], dtype=torch.int32)

6. **The pair, both ties up** (``rounding="double_up"``). ruy, the matrix library
   behind TFLite's optimized CONV_2D and FULLY_CONNECTED, keeps two roundings in
   its AVX2 / AVX-512 kernels (``ruy/kernel_avx512.cc``): ``(x * multiplier + 2**30)
   >> 31`` (stage 2 above, unchanged) and then ``(y + 2**(rs-1)) >> rs``, a
   rounding shift whose ties go toward +inf for negative ``y`` too. Only negative
   ties differ from ``"double"``: ``-5 * 1/4`` gives -1 there, ``-1`` here as well,
   but ``-6 * 1/4 = -1.5`` gives -2 there and -1 here:

   >>> multiply_by_quantized_multiplier(torch.tensor([-5, -6, 6]), 2**30, -1, rounding="double_up")
   tensor([-1, -1,  2], dtype=torch.int32)

Reference transcribed (and tested bit for bit): TensorFlow Lite
``kernels/internal/common.cc`` (2023 layout; the ``TFLITE_SINGLE_ROUNDING``-off
branch, unchanged since the inline ``common.h`` version), ``quantization_util.cc``
``QuantizeMultiplier``, and gemmlowp ``fixedpoint/fixedpoint.h``.

Edge cases, where C++ is undefined or TFLite only asserts, this module decides:

- ``quantize_multiplier`` refuses negative, NaN and infinite reals
  (``ValueError``), and reals whose shift would exceed 30 (``real ≥ 2**30``,
  roughly): ``1 << 31`` overflows C's int. TFLite's single-rounding build
  instead clamps to ``(2**31 - 1, 30)``; the default build followed here has no
  clamp, so a value it would hand on to undefined behaviour is refused.
- ``multiply_by_quantized_multiplier`` raises ``ValueError`` when
  ``acc * 2**shift`` (shift > 0) overflows int32 (signed overflow, undefined
  in C++), and for shifts outside [-31, 30]. Any int32 ``multiplier`` works,
  negative ones included, as in TFLite's default build.
"""

from __future__ import annotations

import math
import numbers

import torch

from qkit._checks import as_tensor, as_int_tensor, check_int

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MIN_SHIFT, MAX_SHIFT = -31, 30
# How requantization rounds: "double" (gemmlowp's pair: TFLite's default build, its
# convolutions), "single" (one rounding of the 64-bit product: the TFLITE_SINGLE_ROUNDING
# build) or "float64" (one rounding, half away from zero, of a float64 product: TFLite's
# reference FULLY_CONNECTED today) or "double_up" (the pair with both ties toward +inf:
# ruy's x86 kernels, TFLite's optimized CONV_2D / FULLY_CONNECTED on such CPUs).
ROUNDINGS = ("double", "single", "float64", "double_up")


def check_rounding(rounding) -> str:
    """``rounding`` if it is one of :data:`ROUNDINGS`, else a ValueError naming them."""
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}; got {rounding!r}")
    return rounding


def _int32_values(name: str, v) -> torch.Tensor:
    """``v`` (int, integer array or tensor) as an int64 tensor, checked to hold int32 values."""
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return torch.tensor(check_int(name, v, INT32_MIN, INT32_MAX), dtype=torch.int64)
    t = as_int_tensor(name, v).to(torch.int64)
    if t.numel() and (t.min() < INT32_MIN or t.max() > INT32_MAX):
        raise ValueError(
            f"{name} must hold int32 values in [{INT32_MIN}, {INT32_MAX}]; got values in "
            f"[{t.min().item()}, {t.max().item()}]"
        )
    return t


def _check_range(name: str, t: torch.Tensor, low: int, high: int) -> None:
    bad = (t < low) | (t > high)
    if bad.any():
        raise ValueError(f"{name} must lie in [{low}, {high}]; got {t[bad].reshape(-1)[0].item()}")


def _broadcast(*named: tuple[str, torch.Tensor]) -> tuple[int, ...]:
    try:
        return tuple(torch.broadcast_shapes(*(t.shape for _, t in named)))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in named)
        raise ValueError(f"shapes must broadcast together; got {shapes}") from None


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a real multiplier into ``(multiplier, shift)``: ``real ≈ multiplier * 2**(shift-31)``.

    TFLite's ``QuantizeMultiplier``: ``q, e = frexp(real)``; ``multiplier =
    round_half_away(q * 2**31)``; a result of 2**31 is halved with ``e + 1``;
    a shift below -31 (``real`` < 2**-32, roughly) flushes to ``(0, 0)``, as
    does ``real == 0``. Otherwise ``multiplier`` is in [2**30, 2**31).

    Args:
        real: finite float in [0, 2**30) (roughly: the shift must be ≤ 30).

    Returns:
        ``(multiplier, shift)``, two Python ints.

    Example:
        >>> quantize_multiplier(0.75)          # 0.75 * 2**31 = 1610612736
        (1610612736, 0)
        >>> quantize_multiplier(0.1)           # 0.8 * 2**-3; round(0.8 * 2**31)
        (1717986918, -3)
        >>> quantize_multiplier(1 - 2**-33)    # q * 2**31 rounds up to 2**31
        (1073741824, 1)
    """
    if isinstance(real, bool) or not isinstance(real, numbers.Real):
        hint = "; use quantize_multipliers for tensors" if hasattr(real, "shape") else ""
        raise TypeError(f"real must be a float; got {type(real).__name__}{hint}")
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"real must be finite and >= 0; got {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)  # real = q * 2**shift, q in [0.5, 1)
    scaled = q * 2.0**31  # exact: a power-of-two scaling
    multiplier = math.floor(scaled)
    if scaled - multiplier >= 0.5:  # round half away from zero (scaled > 0)
        multiplier += 1
    if multiplier == 2**31:  # does not fit int32: 2**31 * 2**e == 2**30 * 2**(e+1)
        multiplier //= 2
        shift += 1
    if shift < MIN_SHIFT:  # every bit would be shifted out: flush to zero
        return 0, 0
    if shift > MAX_SHIFT:
        raise ValueError(
            f"real must be below 2**30 (its shift must be <= {MAX_SHIFT}); got {real!r}, shift {shift}"
        )
    return multiplier, shift


def quantize_multipliers(reals) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel :func:`quantize_multiplier`: one ``(multiplier, shift)`` per real.

    Args:
        reals: float tensor or numpy array (any shape, typically ``(M,)``);
            float64 values are used as they are, not rounded to float32.

    Returns:
        ``(multiplier, shift)``: two int32 tensors of ``reals``' shape.

    Example:
        >>> quantize_multipliers(torch.tensor([0.5, 0.1, 0.0], dtype=torch.float64))
        (tensor([1073741824, 1717986918,          0], dtype=torch.int32), tensor([ 0, -3,  0], dtype=torch.int32))
    """
    t = as_tensor("reals", reals)
    if not t.is_floating_point():
        raise TypeError(f"reals must hold floating-point values; got dtype {t.dtype}")
    pairs = [quantize_multiplier(r) for r in t.double().reshape(-1).tolist()]  # offline; small
    multiplier = torch.tensor([m for m, _ in pairs], dtype=torch.int32).reshape(t.shape)
    shift = torch.tensor([s for _, s in pairs], dtype=torch.int32).reshape(t.shape)
    return multiplier, shift


def _srdhm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Saturating rounding doubling high mul on int64 tensors holding int32 values."""
    ab = a * b  # int64: |a * b| <= 2**62, exact
    nudge = torch.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge  # int64
    # C++'s `/ (1ll << 31)` truncates toward zero; `>>` floors. They differ for
    # negative s that are not multiples of 2**31: add 1 there.
    high = (s >> 31) + ((s < 0) & ((s & ((1 << 31) - 1)) != 0))  # int64, trunc(s / 2**31)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)  # 2**62 / 2**31 = 2**31 > INT32_MAX
    return torch.where(overflow, INT32_MAX, high)


def _rdbpot(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """Rounding divide by 2**exponent on int64 tensors (int32 values, exponent in [0, 31])."""
    mask = (torch.ones_like(exponent) << exponent) - 1  # int64, low `exponent` bits
    remainder = x & mask  # the bits `>>` drops, as in two's complement
    threshold = (mask >> 1) + (x < 0)  # half, or just over half for negatives
    return (x >> exponent) + (remainder > threshold)  # floor, +1 past the threshold


def saturating_rounding_doubling_high_mul(a, b) -> torch.Tensor:
    """``round(a * b / 2**31)`` for int32 ``a``, ``b``: gemmlowp's ``SaturatingRoundingDoublingHighMul``.

    The 64-bit product's high 32 bits, doubled (ARM ``VQRDMULH``). As in C++:
    add a nudge (``2**30``, or ``1 - 2**30`` for a negative product), then
    divide by 2**31 truncating toward zero. Together these round to nearest
    with ties toward +inf. The one result that does not fit int32,
    ``INT32_MIN * INT32_MIN``, saturates to ``INT32_MAX``.

    Args:
        a, b: ints or integer tensors holding int32 values, broadcastable.

    Returns:
        int32 tensor of the broadcast shape.

    Example:
        >>> a = torch.tensor([2**30, -2**30, -3 * 2**29, 1000, -2**31], dtype=torch.int32)
        >>> b = torch.tensor([1, 1, 2, 2**30, -2**31], dtype=torch.int32)
        >>> saturating_rounding_doubling_high_mul(a, b)   # 0.5, -0.5, -1.5, 500, sat.
        tensor([         1,          0,         -1,        500, 2147483647],
               dtype=torch.int32)
    """
    a, b = _int32_values("a", a), _int32_values("b", b)
    _broadcast(("a", a), ("b", b))
    return _srdhm(a, b).to(torch.int32)


def rounding_divide_by_pot(x, exponent) -> torch.Tensor:
    """``round(x / 2**exponent)``, ties away from zero: gemmlowp's ``RoundingDivideByPOT``.

    A rounding arithmetic right shift: ``x >> exponent`` floors, then adds 1
    when the dropped bits (``remainder``) exceed ``threshold``, which is
    ``2**(exponent-1) - 1`` for ``x >= 0`` (a tie rounds up) and
    ``2**(exponent-1)`` for ``x < 0`` (a tie stays down): ties away from zero.

    Args:
        x: int or integer tensor holding int32 values.
        exponent: int or integer tensor in [0, 31], broadcastable with ``x``.

    Returns:
        int32 tensor of the broadcast shape.

    Example:
        >>> rounding_divide_by_pot(torch.tensor([5, 6, -5, -6, 7], dtype=torch.int32), 2)
        tensor([ 1,  2, -1, -2,  2], dtype=torch.int32)
    """
    x, exponent = _int32_values("x", x), _int32_values("exponent", exponent)
    _check_range("exponent", exponent, 0, 31)
    _broadcast(("x", x), ("exponent", exponent))
    return _rdbpot(x, exponent).to(torch.int32)


def round_half_away(v: torch.Tensor) -> torch.Tensor:
    """C's ``round``: to the nearest integer, ties away from zero, exactly (float64 in, float64 out).

    ``v - trunc(v)`` is exact in floating point, so comparing it with 1/2 decides
    without the error of ``floor(v + 0.5)`` (which sends 0.49999999999999994 to 1).

    Example:
        >>> round_half_away(torch.tensor([0.5, -0.5, 1.5, -2.5, 0.49999999999999994], dtype=torch.float64))
        tensor([ 1., -1.,  2., -3.,  0.], dtype=torch.float64)
    """
    t = torch.trunc(v)  # float64, toward zero
    return t + torch.where((v - t).abs() >= 0.5, torch.sign(v), torch.zeros_like(v))


def multiply_by_real_multiplier(acc, real) -> torch.Tensor:
    """``round(double(acc) * real)``, ties away from zero, saturated to int32 (module docstring, stage 5).

    TensorFlow Lite's reference FULLY_CONNECTED requantizes so, with the real
    ``M = double(s_x) * double(s_w) / double(s_y)``. C's cast of an out-of-range
    double to int32 is undefined; here it saturates.

    Args:
        acc: integer tensor holding int32 values (any shape).
        real: float, or float tensor broadcastable to ``acc`` (per channel: last axis);
            finite and >= 0; float64 values are used as they are.

    Returns:
        int32 tensor of ``acc``'s shape.

    Example:
        >>> multiply_by_real_multiplier(torch.tensor([[10, -10, 5, 3]]), 0.3)   # 3, -3, 1.5, 0.9
        tensor([[ 3, -3,  2,  1]], dtype=torch.int32)
    """
    acc_t = _int32_values("acc", acc)  # int64
    if isinstance(real, numbers.Real) and not isinstance(real, bool):
        real_t = torch.tensor(float(real), dtype=torch.float64)
    else:
        real_t = as_tensor("real", real)
        if not real_t.is_floating_point():
            raise TypeError(f"real must be a float or a float tensor; got dtype {real_t.dtype}")
        real_t = real_t.double()
    if not torch.isfinite(real_t).all() or (real_t < 0).any():
        raise ValueError("real must be finite and >= 0; got NaN, inf or a negative value")
    if _broadcast(("acc", acc_t), ("real", real_t)) != acc_t.shape:
        raise ValueError(f"real {tuple(real_t.shape)} must broadcast to acc's shape {tuple(acc_t.shape)}")
    r = round_half_away(acc_t.double() * real_t)  # float64: one IEEE product, then C's round
    return r.clamp(INT32_MIN, INT32_MAX).to(torch.int32)


def multiply_by_quantized_multiplier(acc, multiplier, shift, *, rounding: str = "double") -> torch.Tensor:
    """``acc * multiplier * 2**(shift - 31)``, rounded: TFLite's ``MultiplyByQuantizedMultiplier``.

    ``rounding="double"`` (default) is described below. ``rounding="single"`` is
    TFLite's ``TFLITE_SINGLE_ROUNDING`` build: the 64-bit product is rounded once,
    ``(acc * multiplier + 2**(30 - shift)) >> (31 - shift)`` (ties toward +inf),
    saturated to int32; no left shift, so no overflow error. ``rounding="float64"``
    is :func:`multiply_by_real_multiplier` with ``real = multiplier * 2**(shift - 31)``
    (multiplier >= 0; one rounding, ties away from zero). ``rounding="double_up"`` is
    the default pair with ``(y + 2**(rs-1)) >> rs`` as its second rounding (ruy's).

    Bit-exact with TFLite's reference (default, double-rounding build)::

        RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
            acc * (1 << left_shift), multiplier), right_shift)

    with ``left_shift = max(shift, 0)`` and ``right_shift = max(-shift, 0)``.
    The result is within 1 of the exact ``acc * multiplier * 2**(shift-31)``.

    Args:
        acc: integer tensor (any shape) holding int32 values.
        multiplier: int or integer tensor of int32 values, broadcastable to
            ``acc`` (per-channel along the last axis: shape ``(M,)`` for an
            ``(N, M)`` ``acc``).
        shift: int or integer tensor in [-31, 30], broadcastable to ``acc``.
        rounding: ``"double"`` (default), ``"single"``, ``"float64"`` or ``"double_up"`` (:data:`ROUNDINGS`).

    Returns:
        int32 tensor of ``acc``'s shape.

    Raises:
        ValueError: ``acc * 2**shift`` overflows int32 for some ``shift > 0``
            (undefined behaviour in the C++ reference), values out of range, or
            an unknown ``rounding``.

    Example:
        >>> m, s = quantize_multiplier(0.3)              # (1288490189, -1)
        >>> multiply_by_quantized_multiplier(torch.tensor([10, -10, 5, 1000]), m, s)
        tensor([  3,  -3,   2, 300], dtype=torch.int32)
        >>> multiply_by_quantized_multiplier(torch.tensor([5]), 2**30, -1, rounding="single")  # 1.25 -> 1
        tensor([1], dtype=torch.int32)
        >>> acc = torch.tensor([[100, 100], [-7, -7]], dtype=torch.int32)   # (N, M)
        >>> multiply_by_quantized_multiplier(acc, torch.tensor([2**30, 2**30]), torch.tensor([0, 2]))
        tensor([[ 50, 200],
                [ -3, -14]], dtype=torch.int32)
    """
    check_rounding(rounding)
    acc_t = _int32_values("acc", acc)  # int64
    multiplier = _int32_values("multiplier", multiplier)  # int64
    shift = _int32_values("shift", shift)  # int64
    _check_range("shift", shift, MIN_SHIFT, MAX_SHIFT)
    if _broadcast(("acc", acc_t), ("multiplier", multiplier), ("shift", shift)) != acc_t.shape:
        raise ValueError(
            f"multiplier {tuple(multiplier.shape)} and shift {tuple(shift.shape)} must broadcast "
            f"to acc's shape {tuple(acc_t.shape)} without enlarging it"
        )
    if rounding == "float64":
        real = multiplier.double() * torch.pow(2.0, (shift - 31).double())  # float64, exact
        return multiply_by_real_multiplier(acc_t, real)
    if rounding == "single":
        total = 31 - shift  # int64, in [1, 62]
        r = (acc_t * multiplier + (torch.ones_like(total) << (total - 1))) >> total  # int64, |acc·m| < 2**62
        return r.clamp(INT32_MIN, INT32_MAX).to(torch.int32)
    left_shift = shift.clamp(min=0)  # int64
    right_shift = (-shift).clamp(min=0)  # int64
    x = acc_t * (torch.ones_like(left_shift) << left_shift)  # int64, exact
    wrapped = (x < INT32_MIN) | (x > INT32_MAX)
    if wrapped.any():
        i = wrapped.nonzero()[0].tolist()
        a = acc_t.expand_as(x)[tuple(i)].item()
        s = left_shift.expand_as(x)[tuple(i)].item()
        raise ValueError(
            f"acc * 2**shift must fit int32 (overflow is undefined behaviour in TFLite's "
            f"reference); got acc={a}, shift={s} at index {tuple(i)}"
        )
    y = _srdhm(x, multiplier)  # int64 holding int32: round(x * multiplier / 2**31)
    if rounding == "double_up":  # ruy: (y + 2**(rs-1)) >> rs, ties toward +inf; int64, no overflow
        return ((y + ((torch.ones_like(right_shift) << right_shift) >> 1)) >> right_shift).to(torch.int32)
    return _rdbpot(y, right_shift).to(torch.int32)  # round(y / 2**right_shift)
