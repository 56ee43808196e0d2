"""The fake-quantization modules of quantization-aware training: one per weight, one per requantization point.

Each module computes in float what the integer model will compute, on a grid
``x ≈ scale * (q - zero_point)`` that it can hand to the converter
(:meth:`qparams`), so that :func:`qkit.qat.convert` deploys exactly what
training simulated. Three ways to choose the grid (``method``):

* ``"minmax"`` — observed ranges. Activations: an exponential moving average
  (momentum 0.9) of each batch's min and max, frozen after ``ema_steps``
  training batches so the grid stops moving while the weights settle. Weights:
  the current weight's per-channel max ``|w|`` at every step
  (:func:`qkit.weight_qparams`, narrow symmetric grid).
* ``"lsq"`` — learned step (Esser et al. 2019): ``scale`` is a parameter,
  initialised ``2·mean|x| / √Qp``, trained with the gradient of
  :func:`qkit.qat.lsq_quantize`, scaled by ``g = 1/√(N·Qp)`` (N values per scale).
* ``"pact"`` — learned clip (Choi et al. 2018) for activations that cannot be
  negative (after a ReLU): ``α`` is a parameter, initialised at the calibration
  maximum, the grid is ``α / (2^b - 1)``-spaced on ``[0, α]``. Points that can
  be negative (the model's input, a linear bottleneck, logits) have no clip
  from 0 to learn: they use LSQ. Weights use LSQ.
* ``learn_zero_point=True`` (with ``"lsq"``/``"pact"``): points that can be negative
  learn a zero point too — LSQ+ (Bhalgat et al. 2020, :mod:`qkit.qat.lsq_plus`),
  starting from LSQ's step about the calibration's mean, with the grid's middle level there
  (a min-max start is far too coarse at 2 bits: the network starts at chance).

An unsigned ``b``-bit grid ``[0, 2^b - 1]`` is held in int8 as the signed
range ``[-2^(b-1), 2^(b-1) - 1]`` with ``zero_point = -2^(b-1)``: the same
levels, ``(q - zero_point)`` unchanged.

Binary weights (``bits=1``) are ``sign(w) · mean|w|`` per channel (XNOR-Net,
Rastegari et al. 2016) with the straight-through estimator, whatever the
method; ternary ones are the 2-bit narrow grid ``{-1, 0, +1} · scale``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qkit.qat.functions import lsq_grad_scale, lsq_quantize, pact, sign_ste
from qkit.qat.lsq_plus import lsq_plus_quantize
from qkit.ptq.modules import multiply_real
from qkit.qparams import QParams, choose_qparams, qrange, weight_qparams
from qkit.quant import fake_quantize

METHODS = ("minmax", "lsq", "pact")
EMA_MOMENTUM = 0.9


def positive(scale: torch.Tensor) -> torch.Tensor:
    """A learned step as used: ``|s|`` (at least 1e-8). An optimizer step can carry ``s`` past zero;
    the grid then keeps its size instead of the run stopping on a negative step."""
    return scale.abs().clamp_min(1e-8)


def _grid(scale: torch.Tensor, bits: int, unsigned: bool) -> QParams:
    """The int8-held grid of a zero-point-0 quantizer: signed ``[-2^(b-1), 2^(b-1)-1]``, or unsigned shifted."""
    qmin, qmax = qrange(bits)
    zero_point = qmin if unsigned else 0
    scale = scale.detach().float().reshape(()).clone()
    return QParams(scale, torch.tensor(zero_point, dtype=torch.int32), qmin, qmax)


class ActQuant(nn.Module):
    """Fake quantization of one activation at ``bits``, where the integer model requantizes.

    Args:
        bits: 2..8.
        method: ``"minmax"``, ``"lsq"`` or ``"pact"``.
        sample: the calibration values seen at this point (float tensor), or None
            (``"minmax"`` only: the first training batch initialises the range).
        features: values per sample at this point (LSQ's gradient scale ``1/√(features·Qp)``).
        ema_steps: ``"minmax"``: training batches that move the range before it freezes.

    Example:
        >>> fq = ActQuant(4, "pact", torch.tensor([0.0, 1.0, 3.0]))   # alpha = 3: steps of 3/15
        >>> fq(torch.tensor([0.29, 2.0, 7.0]))
        tensor([0.2000, 2.0000, 3.0000], grad_fn=<...>)
        >>> g = fq.qparams(); float(g.scale), int(g.zero_point), g.qmin, g.qmax   # [0, 15] held as [-8, 7]
        (0.20000000298023224, -8, -8, 7)
    """

    def __init__(self, bits: int, method: str, sample: torch.Tensor | None, *, features: int = 1,
                 ema_steps: int = 50, learn_zero_point: bool = False) -> None:
        super().__init__()
        self.bits, self.ema_steps = bits, ema_steps
        unsigned = sample is not None and float(sample.min()) >= 0.0
        self.method = "lsq" if method == "pact" and not unsigned else method  # no clip from 0 to learn
        self.unsigned = unsigned
        self.affine = self.method == "lsq" and learn_zero_point and not unsigned  # LSQ+ (qkit.qat.lsq_plus)
        if self.method == "minmax":
            self.register_buffer("lo", torch.tensor(0.0))
            self.register_buffer("hi", torch.tensor(0.0))
            self.register_buffer("seen", torch.tensor(0))
            if sample is not None:
                self.observe(sample)
        elif sample is None:
            raise ValueError(f"method={method!r} needs calibration data to initialise its grids")
        elif self.affine:  # LSQ+: LSQ's step about the mean, the grid's middle level at the mean
            x = sample.detach().float()
            qmin, qmax = qrange(bits)
            step = (2 * (x - x.mean()).abs().mean() / math.sqrt(qmax)).clamp_min(1e-8)
            middle = (qmin + qmax) / 2 - float(x.mean() / step)
            self.scale = nn.Parameter(step.reshape(()))
            self.zero_point = nn.Parameter(torch.tensor(float(min(max(round(middle), qmin), qmax))))
            self.grad_scale = lsq_grad_scale(features, 2 ** bits - 1)
        elif self.method == "lsq":
            qmax = 2 ** bits - 1 if unsigned else 2 ** (bits - 1) - 1
            init = 2 * sample.detach().abs().mean() / math.sqrt(qmax)
            self.scale = nn.Parameter(init.float().clamp_min(1e-8).reshape(()))
            self.grad_scale = lsq_grad_scale(features, qmax)
        else:
            self.alpha = nn.Parameter(sample.detach().max().float().clamp_min(1e-6).reshape(()))

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        lo, hi = x.min().float(), x.max().float()
        if int(self.seen) == 0:
            self.lo.copy_(lo), self.hi.copy_(hi)
        else:
            self.lo.mul_(EMA_MOMENTUM).add_((1 - EMA_MOMENTUM) * lo)
            self.hi.mul_(EMA_MOMENTUM).add_((1 - EMA_MOMENTUM) * hi)
        self.seen += 1

    def qparams(self) -> QParams:
        """The grid this point trains on, held in int8 (see the module docstring)."""
        if self.method == "minmax":
            if int(self.seen) == 0:
                raise RuntimeError("this activation has seen no data yet: run a batch through the model first")
            return choose_qparams(self.lo, self.hi, self.bits)  # affine, signed b-bit levels
        if self.affine:
            qmin, qmax = qrange(self.bits)
            z = torch.round(self.zero_point.detach()).clamp(qmin, qmax).to(torch.int32)  # as lsq_plus_quantize
            return QParams(positive(self.scale).detach().float().clone(), z, qmin, qmax)
        if self.method == "lsq":
            return _grid(positive(self.scale), self.bits, self.unsigned)
        return _grid(self.alpha.detach() / (2 ** self.bits - 1), self.bits, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "minmax":
            if self.training and int(self.seen) < self.ema_steps or int(self.seen) == 0:
                self.observe(x.detach())
            out = fake_quantize(x, self.qparams())
        elif self.affine:
            out = lsq_plus_quantize(x, positive(self.scale), self.zero_point, *qrange(self.bits), self.grad_scale)
        elif self.method == "lsq":
            qmin, qmax = (0, 2 ** self.bits - 1) if self.unsigned else qrange(self.bits)
            out = lsq_quantize(x, positive(self.scale), qmin, qmax, self.grad_scale)
        else:
            out = pact(x, self.alpha, self.bits)
        pooled = self.__dict__.get("pool_of")
        if pooled is not None:  # the value the integer pool computes; the gradient stays the one above
            out = out + (self.integer_pool(x.detach(), *pooled) - out.detach())
        return out

    def integer_pool(self, mean: torch.Tensor, source: ActQuant, hw: int) -> torch.Tensor:
        """After a global average pool of ``source``'s grid: what :class:`qkit.ptq.modules.QuantGlobalAvgPool`
        computes (``rounding="float64"``), as a float on this grid.

        The pool's input is on ``source``'s grid, so ``H·W·mean / s_x`` is the integer sum of levels
        (recovered exactly by rounding); the integer model rounds ``sum · s_x / (H·W·s_y)`` once, in
        float64. Float32 arithmetic would instead round a value a few ulps off that product, and when
        the two grids' steps are in a ratio like 1:1 (LSQ starts both at 2·mean|x|/√Qp, and a mean
        has the mean of its inputs) the product is often exactly a tie: half the ties would go the
        other way.
        """
        x_qp, y_qp = source.qparams(), self.qparams()
        acc = torch.round(mean.double() * hw / float(x_qp.scale))  # float64, exact integers
        y = multiply_real(acc, float(x_qp.scale) / (hw * float(y_qp.scale)))  # int64, the pool's own rounding
        z = int(y_qp.zero_point)
        return (torch.clamp(y + z, y_qp.qmin, y_qp.qmax) - z).float() * y_qp.scale  # float32 on this grid

    def extra_repr(self) -> str:
        return f"bits={self.bits}, method={self.method!r}, unsigned={self.unsigned}, affine={self.affine}"


class WeightQuant(nn.Module):
    """Fake quantization of one conv/linear weight, symmetric, per output channel (or per tensor).

    ``bits=1``: binary ``sign(w)·mean|w|``; 2: ternary (narrow grid ``{-1, 0, 1}``); up to 8.

    Example:
        >>> w = torch.tensor([[0.5, -1.0, 0.1], [0.2, 0.2, -0.2]])
        >>> WeightQuant(1, "minmax", w)(w)                  # sign(w) times each row's mean |w|
        tensor([[ 0.5333, -0.5333,  0.5333],
                [ 0.2000,  0.2000, -0.2000]])
        >>> WeightQuant(2, "minmax", w)(w)                  # ternary, scale = max |w| per row
        tensor([[ 0.0000, -1.0000,  0.0000],
                [ 0.2000,  0.2000, -0.2000]])
    """

    def __init__(self, bits: int, method: str, weight: torch.Tensor, *, per_channel: bool = True) -> None:
        super().__init__()
        self.bits, self.per_channel = bits, per_channel
        self.method = "minmax" if bits == 1 else ("lsq" if method == "pact" else method)
        self.qmax = 1 if bits == 1 else qrange(bits, narrow=True)[1]
        if self.method == "lsq":
            w = weight.detach()
            flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
            init = 2 * flat.abs().mean(dim=1) / math.sqrt(self.qmax)  # (C,) or (1,)
            self.scale = nn.Parameter(init.clamp_min(1e-8) if per_channel else init.reshape(()))
            self.grad_scale = lsq_grad_scale(flat.shape[1], self.qmax)

    def _shape(self, s: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return s.reshape(-1, *[1] * (w.dim() - 1)) if self.per_channel else s  # (C, 1, ...) broadcasts over w

    def binary_scale(self, w: torch.Tensor) -> torch.Tensor:
        flat = w.reshape(w.shape[0], -1) if self.per_channel else w.reshape(1, -1)
        return flat.abs().mean(dim=1).clamp_min(1e-8) if self.per_channel else flat.abs().mean().clamp_min(1e-8)

    def qparams(self, w: torch.Tensor) -> QParams:
        """The weight grid the integer model stores ``w`` on (zero point 0; axis 0 when per channel)."""
        axis = 0 if self.per_channel else None
        if self.bits == 1:
            scale = self.binary_scale(w.detach()).float()
        elif self.method == "minmax":
            return weight_qparams(w.detach(), self.bits, per_channel=self.per_channel, narrow=True)
        else:
            scale = positive(self.scale).detach().float().clone()
        return QParams(scale, torch.zeros_like(scale, dtype=torch.int32), -self.qmax, self.qmax, axis)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.bits == 1:
            scale = self.binary_scale(w)
            out = sign_ste(w, self._shape(scale, w))
        elif self.method == "minmax":
            qp = self.qparams(w)
            scale, out = qp.scale, fake_quantize(w, qp)
        else:
            scale = positive(self.scale)
            out = lsq_quantize(w, self._shape(scale, w), -self.qmax, self.qmax, self.grad_scale)
        self.__dict__["last_scale"] = scale.detach()  # (C,) or 0-d: the bias's grid needs it
        return out

    def extra_repr(self) -> str:
        return f"bits={self.bits}, method={self.method!r}, per_channel={self.per_channel}"


def fake_quantize_bias(bias: torch.Tensor | None, x_scale: torch.Tensor | None, w_scale: torch.Tensor) -> torch.Tensor | None:
    """The bias on the int32 accumulator grid ``s_x·s_w``, as the integer kernel rounds it
    (:func:`qkit.kernels.ref.quantize_bias`: float64, half to even); straight-through gradient.

    Example:
        >>> fake_quantize_bias(torch.tensor([0.1234]), torch.tensor(0.1), torch.tensor([0.01]))   # step 0.001
        tensor([0.1230])
    """
    if bias is None or x_scale is None:
        return bias
    step = x_scale.double() * w_scale.double()  # (C,) exact product of two float32
    b_hat = (torch.round(bias.detach().double() / step) * step).float()  # (C,)
    return bias + (b_hat - bias.detach())


class _QATLayer:
    """Shared by the QAT conv and linear: the fake-quantized weight, and the bias on its int32 grid.

    ``input_quant`` (set by :func:`qkit.qat.prepare`) is the activation quantizer whose grid this layer
    reads; without one (a float input) the bias stays float.
    """

    def quantized(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_hat = self.wq(self.weight)
        source = self.__dict__.get("input_quant")
        x_scale = None if source is None else source.qparams().scale
        return w_hat, fake_quantize_bias(self.bias, x_scale, self.wq.last_scale)


class QATConv2d(_QATLayer, nn.Conv2d):
    """An ``nn.Conv2d`` that convolves with its fake-quantized weight (``self.wq``) and bias."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, *self.quantized())


class QATLinear(_QATLayer, nn.Linear):
    """An ``nn.Linear`` that multiplies by its fake-quantized weight (``self.wq``) and adds its bias."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, *self.quantized())


def qat_layer(layer: nn.Conv2d | nn.Linear, bits: int, method: str, per_channel: bool) -> nn.Module:
    """A QAT copy of a float conv/linear layer: same parameters (shared), a weight quantizer added."""
    cls = QATConv2d if isinstance(layer, nn.Conv2d) else QATLinear
    new = cls.__new__(cls)
    new.__dict__.update(layer.__dict__)  # same parameters, geometry and hooks; now a QAT class
    new._modules = dict(layer._modules)
    new.wq = WeightQuant(bits, method, layer.weight, per_channel=per_channel)
    return new


def float_layer(layer: nn.Module) -> nn.Conv2d | nn.Linear:
    """The deployable float twin of a QAT layer: its weight replaced by the fake-quantized weight (on the grid)."""
    cls = nn.Conv2d if isinstance(layer, nn.Conv2d) else nn.Linear
    new = cls.__new__(cls)
    new.__dict__.update(layer.__dict__)
    new._parameters = dict(layer._parameters)
    new._modules = {}
    with torch.no_grad():
        new.weight = nn.Parameter(layer.wq(layer.weight).detach().clone())
    return new
