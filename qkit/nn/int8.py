"""Integer-only layers: int8 in, int8 out; ReLU and ReLU6 are clamps of the output grid.

Equation of every int8 tensor: ``x ≈ scale * (q - zero_point)``; the arithmetic
is :mod:`qkit.kernels` (``acc = Σ (q_x - z_x) q_w + bias_q`` in int32, then a
requantization onto the output grid by TensorFlow Lite's reference rule for the
op: float64 ``round(acc · M)`` for QuantLinear, the fixed-point pair for QuantConv2d).
"""

from __future__ import annotations

import torch
from torch import nn

from qkit import kernels
from qkit.kernels import fast
from qkit._checks import check_bool
from qkit.fixedpoint import check_rounding
from qkit.nn.layers import check_weight, conv_geometry, geometry_of
from qkit.qparams import QParams, choose_qparams, tensor_range, weight_qparams
from qkit.quant import check_qparams, dequantize, quantize


def clamp_grid(qp: QParams, activation: str | None) -> QParams:
    """The output grid with ReLU (``qmin = z``) or ReLU6 (also ``qmax = level of 6.0``) folded in.

    Example:
        >>> qp = clamp_grid(choose_qparams(-2.0, 8.0), "relu6")   # scale 10/255, z = -77
        >>> qp.qmin, qp.qmax, int(qp.zero_point)
        (-77, 76, -77)
    """
    if activation is None:
        return qp
    low = max(qp.qmin, int(qp.zero_point))  # ReLU: nothing below the level of 0.0
    high = qp.qmax
    if activation == "relu6":
        high = min(high, int(quantize(torch.tensor(6.0), qp)))  # the level nearest 6.0
    return qp._replace(qmin=low, qmax=high)


def _check_int8_grid(name: str, qp: QParams) -> QParams:
    """A per-tensor grid whose levels fit int8: [-128, 127] itself, or a sub-range of it (an activation
    grid of fewer bits, e.g. 4-bit [-8, 7], or unsigned 4-bit [0, 15] held as [-8, 7] with z = -8)."""
    check_qparams(qp)
    if qp.axis is not None or qp.qmin < -128 or qp.qmax > 127:
        raise ValueError(f"{name} must be a per-tensor grid whose levels fit int8 (-128 <= qmin < qmax <= 127); "
                         f"got {qp}")
    return qp


class _OnGrid(nn.Module):
    """A module that holds one per-tensor int8 grid ``qp``."""

    def __init__(self, qp: QParams) -> None:
        super().__init__()
        self.qp = _check_int8_grid("qp", qp)

    def _checked_grid(self) -> QParams | None:
        """``qp`` if it is a per-tensor grid already checked in this state (so the checks are not
        repeated on every call: they cost more than the arithmetic on a small batch), else None."""
        qp = self.qp
        if (qp.axis is not None or (qp.qmin, qp.qmax) != (-128, 127) or not isinstance(qp.scale, torch.Tensor)
                or qp.scale.is_inference()):
            return None  # the general path (its checks and errors)
        key = (id(qp.scale), id(qp.zero_point), qp.scale._version, qp.zero_point._version, qp.qmin, qp.qmax,
               qp.scale.dtype, qp.zero_point.dtype)
        if self.__dict__.get("_grid_key") != key:
            check_qparams(qp)
            if qp.scale.dtype != torch.float32 or qp.zero_point.dtype != torch.int32:
                return None
            self.__dict__["_grid_key"] = key
            self.__dict__["_inverse_scale"] = float(1.0 / qp.scale)  # the float32 value quantize forms, as a
            self.__dict__["_zero_point"] = int(qp.zero_point)        # Python number: no 0-d tensor broadcasts
        return qp


class Quantize(_OnGrid):
    """float32 -> int8 on the grid ``qp`` (the entry of an integer network).

    Example:
        >>> qp = choose_qparams(-1.0, 1.0)
        >>> Quantize(qp)(torch.tensor([-1.0, 0.0, 0.5]))
        tensor([-128,   -1,   63], dtype=torch.int8)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qp = self._checked_grid() if isinstance(x, torch.Tensor) and x.dtype == torch.float32 else None
        # NaN in x makes the sum NaN (one cheap reduction, no bool tensor); a NaN sum
        # without NaN in x (+inf and -inf together) also takes the general path, which is exact.
        if qp is None or torch.isnan(x.sum()):
            return quantize(x, self.qp)  # the general case (and its errors)
        q = x * self.__dict__["_inverse_scale"]  # float32: quantize's own steps, in place after the first
        q.round_().add_(self.__dict__["_zero_point"]).clamp_(qp.qmin, qp.qmax)
        return q.to(torch.int8)  # int8


class Dequantize(_OnGrid):
    """int8 on the grid ``qp`` -> float32 (the exit of an integer network)."""

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        qp = self._checked_grid() if isinstance(q, torch.Tensor) and q.dtype == torch.int8 and q.numel() else None
        if qp is not None:  # a checked grid is [-128, 127] (_check_int8_grid): every int8 value lies on it
            return (q.to(torch.int32) - self.__dict__["_zero_point"]).to(torch.float32) * qp.scale  # dequantize's steps
        return dequantize(q, self.qp)  # the general case (and its errors)


class _QuantLayer(nn.Module):
    """Shared parts: int8 weight + grids as state, int8 -> int8 forward through qkit.kernels."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, x_qp: QParams, y_qp: QParams,
                 *, per_channel: bool, relu: bool, backend: str, rounding: str,
                 w_qp: QParams | None = None) -> None:
        super().__init__()
        check_bool("per_channel", per_channel)
        self.rounding = check_rounding(rounding)
        check_bool("relu", relu)
        if backend not in kernels.BACKENDS:
            raise ValueError(f"backend must be one of {kernels.BACKENDS}; got {backend!r}")
        self.x_qp = _check_int8_grid("x_qp", x_qp)
        self.y_qp = clamp_grid(_check_int8_grid("y_qp", y_qp), "relu" if relu else None)
        if w_qp is None:
            w_qp = weight_qparams(weight, 8, per_channel=per_channel)  # per output channel: axis 0
        else:  # a grid chosen elsewhere (QAT learned it): symmetric, int8 levels, per channel or per tensor
            check_qparams(w_qp)
            if w_qp.axis not in (None, 0) or w_qp.qmin < -128 or w_qp.qmax > 127 or bool((w_qp.zero_point != 0).any()):
                raise ValueError(f"w_qp must be a symmetric grid (zero_point 0) with int8 levels, per tensor or "
                                 f"along axis 0; got {w_qp}")
            if (w_qp.axis is not None) != per_channel:
                raise ValueError(f"w_qp is {'per channel' if w_qp.axis is not None else 'per tensor'} but "
                                 f"per_channel={per_channel}")
        self.w_qp = w_qp
        self.register_buffer("q_w", quantize(weight.detach(), self.w_qp).to(torch.int8).contiguous())  # int8
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.backend = backend

    def constants(self) -> tuple:
        """``(Prepared, float32 weight)``: this layer's per-weight constants, kept on the layer.

        Recomputed (by :func:`qkit.kernels.fast.prepare`, which also validates the grids) only when
        one of the tensors they come from is replaced or written in place (``load_state_dict``
        copies into the buffers: their version counters move). That is a few attribute reads per
        call instead of the global cache's comparison of every grid's values. Tensors made under
        ``torch.inference_mode()`` have no version counter: then the global cache decides.
        """
        if self.backend not in kernels.BACKENDS:
            raise ValueError(f"backend must be one of {kernels.BACKENDS}; got {self.backend!r}")
        qps = (self.x_qp, self.w_qp, self.y_qp)
        tensors = (self.q_w, self.bias, *(t for qp in qps for t in (qp.scale, qp.zero_point)))
        try:
            versions = tuple(None if t is None else t._version for t in tensors)
        except (RuntimeError, AttributeError):  # inference tensors (or a grid of plain numbers)
            return fast.prepare(self.q_w, self.w_qp, self.bias, self.x_qp, self.y_qp, self.rounding), None
        key = (versions, tuple((qp.qmin, qp.qmax, qp.axis) for qp in qps), self.rounding)
        kept = self.__dict__.get("_constants")
        if kept is not None and kept[0] == key and all(a is b for a, b in zip(kept[1], tensors)):
            return kept[2]
        prepared = fast.prepare(self.q_w, self.w_qp, self.bias, self.x_qp, self.y_qp, self.rounding)
        value = (prepared, fast.conv_weight_float(self.q_w) if self.q_w.dim() == 4 else None)
        self.__dict__["_constants"] = (key, tensors, value)
        return value

    def extra_repr(self) -> str:
        return (f"q_w={tuple(self.q_w.shape)} int8, per_channel={self.w_qp.axis is not None}, "
                f"x_zero_point={int(self.x_qp.zero_point)}, y_zero_point={int(self.y_qp.zero_point)}, "
                f"backend={self.backend!r}, rounding={self.rounding!r}")


class QuantLinear(_QuantLayer):
    """An ``nn.Linear`` running integer-only: int8 (N, in) -> int8 (N, out).

    Example:
        >>> _ = torch.manual_seed(0); layer = nn.Linear(16, 4)
        >>> x = torch.randn(8, 16)
        >>> x_qp = choose_qparams(*tensor_range(x)); y = layer(x)
        >>> y_qp = choose_qparams(*tensor_range(y))
        >>> qlayer = QuantLinear.from_float(layer, x_qp, y_qp, backend="ref")
        >>> q_y = qlayer(quantize(x, x_qp))
        >>> q_y.dtype, q_y.shape
        (torch.int8, torch.Size([8, 4]))
        >>> steps_off = (dequantize(q_y, y_qp) - y).abs().max() / y_qp.scale   # in output levels
        >>> bool(steps_off < 4)          # weight and input rounding, then one level of output rounding
        True
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, x_qp: QParams, y_qp: QParams, *,
                 per_channel: bool = True, relu: bool = False, backend: str = "fast",
                 rounding: str = "float64", w_qp: QParams | None = None) -> None:
        super().__init__(check_weight(weight, 2, "(out, in)"), bias, x_qp, y_qp, per_channel=per_channel,
                         relu=relu, backend=backend, rounding=rounding, w_qp=w_qp)

    @classmethod
    def from_float(cls, linear: nn.Linear, x_qp: QParams, y_qp: QParams, *, per_channel: bool = True,
                   relu: bool = False, backend: str = "fast", rounding: str = "float64",
                   w_qp: QParams | None = None) -> QuantLinear:
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected an nn.Linear; got {type(linear).__name__}")
        return cls(linear.weight, linear.bias, x_qp, y_qp, per_channel=per_channel, relu=relu,
                   backend=backend, rounding=rounding, w_qp=w_qp)

    def forward(self, q_x: torch.Tensor) -> torch.Tensor:
        if self.backend == "ref":
            return kernels.int8_linear(q_x, self.x_qp, self.q_w, self.w_qp, self.bias, self.y_qp,
                                       backend="ref", rounding=self.rounding)
        return fast.int8_linear(q_x, self.x_qp, self.q_w, self.w_qp, self.bias, self.y_qp,
                                fused=self.backend == "fast", rounding=self.rounding,
                                prepared=self.constants()[0])


class QuantConv2d(_QuantLayer):
    """An ``nn.Conv2d`` running integer-only: int8 (N, C_in, H, W) -> int8 (N, C_out, H', W').

    Built from a float conv (:meth:`from_float`) or directly from a float
    weight ``(C_out, C_in/groups, kH, kW)`` and the geometry keywords of
    ``torch.nn.functional.conv2d``.

    Example:
        >>> _ = torch.manual_seed(0); qp = choose_qparams(-3.0, 3.0)
        >>> layer = QuantConv2d(torch.randn(4, 2, 3, 3) * 0.1, None, qp, qp, padding=1, backend="ref")
        >>> layer(torch.zeros(1, 2, 5, 5, dtype=torch.int8)).shape
        torch.Size([1, 4, 5, 5])
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, x_qp: QParams, y_qp: QParams, *,
                 stride=1, padding=0, dilation=1, groups=1, per_channel: bool = True, relu: bool = False,
                 backend: str = "fast", rounding: str = "double", w_qp: QParams | None = None) -> None:
        geometry = conv_geometry(check_weight(weight, 4, "(C_out, C_in/groups, kH, kW)"), stride, padding,
                                 dilation, groups)
        super().__init__(weight, bias, x_qp, y_qp, per_channel=per_channel, relu=relu, backend=backend,
                         rounding=rounding, w_qp=w_qp)
        self.geometry = geometry

    @classmethod
    def from_float(cls, conv: nn.Conv2d, x_qp: QParams, y_qp: QParams, *, per_channel: bool = True,
                   relu: bool = False, backend: str = "fast", rounding: str = "double",
                   w_qp: QParams | None = None) -> QuantConv2d:
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"expected an nn.Conv2d; got {type(conv).__name__}")
        return cls(conv.weight, conv.bias, x_qp, y_qp, **geometry_of(conv), per_channel=per_channel, relu=relu,
                   backend=backend, rounding=rounding, w_qp=w_qp)

    def forward(self, q_x: torch.Tensor) -> torch.Tensor:
        """int8 ``(N, C_in, H, W)`` -> int8 ``(N, C_out, H', W')``; on the fast backends the result is
        channels-last memory (:func:`qkit.kernels.fast.int8_conv2d`), which the next conv reads without a copy."""
        if self.backend == "ref":
            return kernels.int8_conv2d(q_x, self.x_qp, self.q_w, self.w_qp, self.bias, self.y_qp,
                                       backend="ref", rounding=self.rounding, **self.geometry)
        prepared, w_float = self.constants()
        return fast.int8_conv2d(q_x, self.x_qp, self.q_w, self.w_qp, self.bias, self.y_qp, **self.geometry,
                                fused=self.backend == "fast", rounding=self.rounding, prepared=prepared,
                                w_float=w_float)
