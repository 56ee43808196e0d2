"""Integer-only graph operations besides conv/linear: ReLU, add, concatenation, global average pool.

Every int8 tensor lives on its own grid ``x ≈ scale * (q - zero_point)``.
Moving a value from grid ``a`` to grid ``y`` is ``q_y = z_y + (s_a / s_y)(q_a - z_a)``;
the real factor ``s_a / s_y`` is a fixed-point ``(multiplier, shift)``
(:func:`qkit.fixedpoint.quantize_multiplier`) applied with
:func:`qkit.fixedpoint.multiply_by_quantized_multiplier`, so no float runs at
inference time. The multipliers are derived from the grids on each call (a few
scalar operations), so the modules stay right if the grids are reloaded.

* ReLU is a clamp at the level of 0.0 (``z``); ReLU6 also clamps at the level of 6.0
  (:func:`qkit.nn.clamp_grid`, the same clamp a conv/linear fuses in).
* Add is TFLite's integer add: both inputs are shifted left by 20 bits, scaled
  onto a common grid (``2 max(s_a, s_b)``), summed, and requantized onto ``y``.
* Concatenation requantizes each input onto the output grid (unchanged if it is
  already on it), then concatenates int8 tensors.
* Global average pooling sums ``q - z_x`` over the H×W window in int32 and
  requantizes with ``M = s_x / (H·W·s_y)``: the mean, rounded once.

Rescaling (concatenation) and pooling take ``rounding``: ``"double"`` (default) is
the fixed-point pair above; ``"float64"`` is one rounding of ``acc · M`` in float64,
ties away from zero (:func:`qkit.fixedpoint.round_half_away`), as TensorFlow Lite's
reference FULLY_CONNECTED does. The pair rounds twice, and on the small sums of
low-bit grids its first rounding is coarse: a 2×2 pool of one level
(``acc = 1``) with ``M = 0.375`` gives 1 (``round(0.75) = 1``, then ``1/2 → 1``),
where the mean rounds to 0. :func:`qkit.qat.convert` uses ``"float64"`` so that the
integer model computes what training simulated.

Speed: done eagerly, the add is a dozen int64 passes over its tensors. When every shift
is <= 0 (multipliers below 1, the usual case) add, rescale and pooling run as one pass
compiled by ``torch.compile`` (:class:`qkit.kernels.compiled.Compiled`), with the same
integer operations (:func:`qkit.kernels.fast.rounding_multiply`: the same bits as
:func:`multiply`); their fixed-point constants are derived from the grids' values and kept
until those values change. Otherwise (or if compilation fails) the eager code below runs.
"""

from __future__ import annotations

import torch
from torch import nn

from qkit.fixedpoint import check_rounding, multiply_by_quantized_multiplier, quantize_multiplier, round_half_away
from qkit.kernels.compiled import Compiled
from qkit.kernels.fast import rounding_constants, rounding_multiply
from qkit.nn import clamp_grid
from qkit.qparams import QParams
from qkit.quant import quantize  # noqa: F401  (the doctests use it)

ADD_LEFT_SHIFT = 20  # TFLite's headroom for the integer add: |q - z| <= 255 << 20 < 2**31


def multiply(x: torch.Tensor, multiplier: int, shift: int) -> torch.Tensor:
    """``multiply_by_quantized_multiplier(x, multiplier, shift)`` in one int64 pass (same bits), int64 out.

    For ``shift <= 0`` the two roundings of TFLite's reference merge into one
    add and one shift (:func:`qkit.kernels.fast.rounding_multiply`, derived in
    :mod:`qkit.kernels.fast`); ``x`` must hold int32 values. ``shift > 0``
    takes the reference path.

    Example:
        >>> x = torch.arange(-1000, 1000, 7)
        >>> m, s = quantize_multiplier(0.3)
        >>> torch.equal(multiply(x, m, s), multiply_by_quantized_multiplier(x, m, s).long())
        True
    """
    if shift > 0:
        return multiply_by_quantized_multiplier(x, multiplier, shift).long()
    return rounding_multiply(x, multiplier, *rounding_constants(torch.tensor(shift)))  # int64


def _constants(multiplier: int, shift: int) -> list:
    """``[m, total_shift, round_up, round_down]`` of :func:`multiply` as ints (shift <= 0)."""
    return [multiplier, *(int(c) for c in rounding_constants(torch.tensor(shift)))]


def _add_kernel(q_a, q_b, c):
    """TFLite's integer add in one pass; ``c`` int64 ``(17,)``: z_a, z_b, then [m, t, up, down] for a, b and
    the output, then z_y, qmin, qmax (the clamp). Same integer steps as :meth:`QuantAdd.forward`."""
    a = (q_a.to(torch.int32) - c[0].to(torch.int32)) * (1 << ADD_LEFT_SHIFT)  # int32, |.| < 2**28
    b = (q_b.to(torch.int32) - c[1].to(torch.int32)) * (1 << ADD_LEFT_SHIFT)  # int32
    acc = rounding_multiply(a, c[2], c[3], c[4], c[5]) + rounding_multiply(b, c[6], c[7], c[8], c[9])  # int64
    y = rounding_multiply(acc, c[10], c[11], c[12], c[13]) + c[14]  # int64
    return torch.clamp(y, c[15], c[16]).to(torch.int8)


def _rescale_kernel(q, c):
    """:func:`rescale` in one pass; ``c`` int64 ``(8,)``: z_x, [m, t, up, down], z_y, qmin, qmax."""
    r = rounding_multiply(q.to(torch.int32) - c[0].to(torch.int32), c[1], c[2], c[3], c[4])  # int64
    return torch.clamp(r + c[5], c[6], c[7]).to(torch.int8)


def _pool_kernel(q, c):
    """:class:`QuantGlobalAvgPool` in one pass; ``c`` int64 ``(8,)`` as :func:`_rescale_kernel`'s."""
    acc = (q.to(torch.int32) - c[0].to(torch.int32)).sum(dim=(2, 3), keepdim=True, dtype=torch.int32)  # int32
    r = rounding_multiply(acc, c[1], c[2], c[3], c[4])  # int64
    return torch.clamp(r + c[5], c[6], c[7]).to(torch.int8)


ADD = Compiled(_add_kernel, "int8 residual add")
RESCALE = Compiled(_rescale_kernel, "int8 rescale")
POOL = Compiled(_pool_kernel, "int8 global average pool")


class _Kept:
    """Constants derived from grids' values, recomputed when the values change."""

    def __init__(self, make) -> None:
        self.make, self.key, self.value = make, None, None

    def __call__(self, key):
        if key != self.key:
            self.key, self.value = key, self.make(*key)
        return self.value


def _grid_key(qp: QParams) -> tuple:
    return float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax


def _rescale_constants(x_key, y_key):
    """(None, (multiplier, shift)) for the eager path if shift > 0, else (int64 (8,) constants, None)."""
    multiplier, shift = quantize_multiplier(x_key[0] / y_key[0])
    if shift > 0:
        return None, (multiplier, shift)
    return torch.tensor([x_key[1], *_constants(multiplier, shift), y_key[1], y_key[2], y_key[3]]), None


def _pool_constants(x_key, y_key, hw: int):
    """int64 (8,) constants of the pool (M = s_x / (H·W·s_y), as the eager code forms it), or None if shift > 0."""
    multiplier, shift = quantize_multiplier(x_key[0] / (hw * y_key[0]))
    if shift > 0:
        return None
    return torch.tensor([x_key[1], *_constants(multiplier, shift), y_key[1], y_key[2], y_key[3]])


_RESCALE_KEPT: dict = {}


def multiply_real(acc: torch.Tensor, real: float) -> torch.Tensor:
    """``round(acc · real)`` in float64, ties away from zero (int64 out): the one-rounding requantization.

    Example:
        >>> multiply_real(torch.tensor([1, 3, -3]), 0.375)          # 0.375, 1.125, -1.125
        tensor([ 0,  1, -1])
        >>> multiply(torch.tensor([1]), *quantize_multiplier(0.375))  # the fixed-point pair rounds twice
        tensor([1])
    """
    return round_half_away(acc.to(torch.float64) * real).to(torch.int64)


def _check_rounding(rounding: str) -> str:
    if rounding not in ("double", "float64"):
        check_rounding(rounding)  # its error names every rounding the kernels know
        raise ValueError(f"rounding must be 'double' or 'float64' here; got {rounding!r}")
    return rounding


def rescale(q: torch.Tensor, x_qp: QParams, y_qp: QParams, rounding: str = "double") -> torch.Tensor:
    """int8 ``q`` on ``x_qp`` -> int8 on ``y_qp``: ``clamp(z_y + round((s_x/s_y)(q - z_x)))``, fixed point
    (``rounding="double"``) or one float64 rounding (``"float64"``)."""
    if _check_rounding(rounding) == "float64":
        r = multiply_real(q.to(torch.int32) - int(x_qp.zero_point), float(x_qp.scale) / float(y_qp.scale))
        return torch.clamp(r + int(y_qp.zero_point), y_qp.qmin, y_qp.qmax).to(torch.int8)
    key = (_grid_key(x_qp), _grid_key(y_qp))
    kept = _RESCALE_KEPT.get(key)
    if kept is None:
        if len(_RESCALE_KEPT) > 256:
            _RESCALE_KEPT.clear()
        kept = _RESCALE_KEPT[key] = _rescale_constants(*key)
    if kept[0] is not None and q.numel():
        return RESCALE(q, kept[0])  # int8, one pass
    multiplier, shift = quantize_multiplier(float(x_qp.scale) / float(y_qp.scale))
    r = multiply(q.to(torch.int32) - int(x_qp.zero_point), multiplier, shift)  # int64
    return torch.clamp(r + int(y_qp.zero_point), y_qp.qmin, y_qp.qmax).to(torch.int8)


class QuantReLU(nn.Module):
    """ReLU (or ReLU6) on an int8 tensor: a clamp on its own grid; the grid does not change."""

    def __init__(self, qp: QParams, activation: str = "relu") -> None:
        super().__init__()
        self.qp, self.activation = qp, activation

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        qp = clamp_grid(self.qp, self.activation)
        return torch.clamp(q, qp.qmin, qp.qmax)  # int8, same grid


class QuantAdd(nn.Module):
    """``a + b`` for int8 tensors on grids ``a_qp``, ``b_qp`` -> int8 on ``y_qp`` (TFLite's integer add).

    Example:
        >>> from qkit import choose_qparams, dequantize
        >>> a_qp, b_qp, y_qp = choose_qparams(-1.0, 1.0), choose_qparams(0.0, 4.0), choose_qparams(-1.0, 5.0)
        >>> a, b = torch.tensor([0.5, -1.0]), torch.tensor([3.0, 0.25])
        >>> q = QuantAdd(a_qp, b_qp, y_qp)(quantize(a, a_qp), quantize(b, b_qp))
        >>> dequantize(q, y_qp)                                  # float: [3.5, -0.75]
        tensor([ 3.5059, -0.7529])
    """

    def __init__(self, a_qp: QParams, b_qp: QParams, y_qp: QParams, activation: str | None = None) -> None:
        super().__init__()
        self.a_qp, self.b_qp, self.y_qp, self.activation = a_qp, b_qp, y_qp, activation

    def _compiled_constants(self, a_key, b_key, y_key, activation):
        twice_max = 2 * max(a_key[0], b_key[0])
        pairs = [quantize_multiplier(a_key[0] / twice_max), quantize_multiplier(b_key[0] / twice_max),
                 quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * y_key[0]))]
        if any(shift > 0 for _, shift in pairs):
            return None
        qp = clamp_grid(self.y_qp, activation)
        return torch.tensor([a_key[1], b_key[1], *(c for m, s in pairs for c in _constants(m, s)),
                             y_key[1], qp.qmin, qp.qmax])  # int64 (17,)

    def forward(self, q_a: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
        kept = self.__dict__.get("_kept")
        if kept is None:
            kept = self.__dict__["_kept"] = _Kept(self._compiled_constants)
        c = kept((_grid_key(self.a_qp), _grid_key(self.b_qp), _grid_key(self.y_qp), self.activation))
        if c is not None and q_a.shape == q_b.shape and q_a.numel():
            return ADD(q_a, q_b, c)  # int8, one pass
        s_a, s_b, s_y = float(self.a_qp.scale), float(self.b_qp.scale), float(self.y_qp.scale)
        twice_max = 2 * max(s_a, s_b)  # common grid of the two inputs, with one bit of headroom
        acc = 0
        for q, qp, s in ((q_a, self.a_qp, s_a), (q_b, self.b_qp, s_b)):
            shifted = (q.to(torch.int32) - int(qp.zero_point)) * (1 << ADD_LEFT_SHIFT)  # int32, |.| < 2**28
            acc = acc + multiply(shifted, *quantize_multiplier(s / twice_max))  # int64, |.| < 2**28
        m, shift = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * s_y))
        y = multiply(acc, m, shift) + int(self.y_qp.zero_point)  # int64
        qp = clamp_grid(self.y_qp, self.activation)
        return torch.clamp(y, qp.qmin, qp.qmax).to(torch.int8)


class QuantCat(nn.Module):
    """``torch.cat`` of int8 tensors: each one rescaled onto the output grid ``y_qp`` first."""

    def __init__(self, x_qps: list[QParams], y_qp: QParams, dim: int = 0, rounding: str = "double") -> None:
        super().__init__()
        self.x_qps, self.y_qp, self.dim, self.rounding = list(x_qps), y_qp, dim, _check_rounding(rounding)

    def forward(self, *qs: torch.Tensor) -> torch.Tensor:
        same = [float(qp.scale) == float(self.y_qp.scale) and int(qp.zero_point) == int(self.y_qp.zero_point)
                for qp in self.x_qps]
        parts = [q if ok else rescale(q, qp, self.y_qp, self.rounding) for q, qp, ok in zip(qs, self.x_qps, same)]
        return torch.cat(parts, dim=self.dim)  # int8 on y_qp

    def extra_repr(self) -> str:
        return f"inputs={len(self.x_qps)}, dim={self.dim}"


class QuantGlobalAvgPool(nn.Module):
    """Mean over H and W of an int8 ``(N, C, H, W)``: int32 sum of ``q - z_x``, times ``s_x/(H·W·s_y)``."""

    def __init__(self, x_qp: QParams, y_qp: QParams, keepdim: bool = True, rounding: str = "double") -> None:
        super().__init__()
        self.x_qp, self.y_qp, self.keepdim, self.rounding = x_qp, y_qp, keepdim, _check_rounding(rounding)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        n, c, h, w = q.shape
        if self.rounding == "float64":
            acc = (q.to(torch.int32) - int(self.x_qp.zero_point)).sum(dim=(2, 3), keepdim=self.keepdim)  # int32
            y = multiply_real(acc, float(self.x_qp.scale) / (h * w * float(self.y_qp.scale)))  # int64
            return torch.clamp(y + int(self.y_qp.zero_point), self.y_qp.qmin, self.y_qp.qmax).to(torch.int8)
        if q.numel() and h * w < (1 << 23):  # int32 sums: |.| <= 255 H W
            kept = self.__dict__.get("_kept")
            if kept is None:
                kept = self.__dict__["_kept"] = _Kept(_pool_constants)
            c_ = kept((_grid_key(self.x_qp), _grid_key(self.y_qp), h * w))
            if c_ is not None:
                out = POOL(q, c_)  # int8 (N, C, 1, 1), one pass
                return out if self.keepdim else out.reshape(n, c)
        acc = (q.to(torch.int32) - int(self.x_qp.zero_point)).sum(dim=(2, 3), keepdim=self.keepdim)  # int32
        m, shift = quantize_multiplier(float(self.x_qp.scale) / (h * w * float(self.y_qp.scale)))
        y = multiply(acc, m, shift) + int(self.y_qp.zero_point)  # int64
        return torch.clamp(y, self.y_qp.qmin, self.y_qp.qmax).to(torch.int8)

    def extra_repr(self) -> str:
        return f"keepdim={self.keepdim}, rounding={self.rounding!r}"
