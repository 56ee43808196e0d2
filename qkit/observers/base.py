"""Calibration, part 1: the observer interface and the min-max observers.

``x ≈ scale * (q - zero_point)``: an observer watches batches and returns the
range ``[x_min, x_max]`` for :func:`qkit.choose_qparams` (overview in :mod:`qkit.observers`).
Min-max never clips, so one outlier widens ``scale`` for everybody; the
moving-average variant follows each batch's min and max with an exponential
moving average. Both work per tensor or per channel (``axis``).
"""

from __future__ import annotations

import torch

from qkit._checks import as_float_tensor, check_int
from qkit.qparams import SCHEMES, QParams, choose_qparams, qrange, tensor_range


class Observer:
    """Base class: ``update(x)`` on every batch, then ``range()`` / ``qparams()``.

    Args:
        axis: None for one range for the whole tensor; an axis for one range
            per slice along it (per-channel), e.g. 1 for (N, C, H, W) activations.
    """

    per_channel = True  # subclasses that only do per-tensor set False

    def __init__(self, axis: int | None = None) -> None:
        if axis is not None:
            check_int("axis", axis)
            if not self.per_channel:
                raise ValueError(
                    f"{type(self).__name__} is per-tensor only (axis=None); got axis={axis}. "
                    "Use MinMaxObserver or MovingAverageMinMaxObserver for per-channel ranges"
                )
        self.axis = axis
        self.batches = 0  # number of update() calls so far
        self.channels: int | None = None

    def update(self, x) -> Observer:
        """Observe one batch (tensor or numpy array, not empty, finite); returns self."""
        x = as_float_tensor("x", x).detach()
        n = self.batches + 1
        if x.numel() == 0:
            raise ValueError(f"batch {n} is empty (shape {tuple(x.shape)}): nothing to observe")
        if not torch.isfinite(x).all():
            bad, name = (torch.isnan(x), "NaN") if torch.isnan(x).any() else (torch.isinf(x), "inf")
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"batch {n} contains {name} at index {where}; a range must be finite")
        if self.axis is not None:
            if not -x.dim() <= self.axis < x.dim():
                raise ValueError(
                    f"axis={self.axis} does not exist in batch {n} of shape {tuple(x.shape)}"
                )
            c = x.shape[self.axis]
            if self.channels is not None and c != self.channels:
                raise ValueError(
                    f"per-channel batches must keep {self.channels} channels along axis "
                    f"{self.axis}; batch {n} has {c} (shape {tuple(x.shape)})"
                )
            self.channels = c
        self._observe(x)
        self.batches = n
        return self

    def range(self, bits: int = 8, *, scheme: str = "affine", signed: bool = True,
              narrow: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The clipping range ``(x_min, x_max)`` chosen: float32, 0-d or 1-d along ``axis``.

        The grid options matter only to observers whose choice depends on the
        grid (MSE, entropy); the others ignore them.
        """
        self._check(bits, scheme, signed, narrow)
        return self._range(bits, scheme, signed, narrow)

    def qparams(self, bits: int = 8, *, scheme: str = "affine", signed: bool = True,
                narrow: bool = False) -> QParams:
        """``choose_qparams(*self.range(...), bits, ...)`` for the stream seen so far."""
        lo, hi = self.range(bits, scheme=scheme, signed=signed, narrow=narrow)
        return choose_qparams(lo, hi, bits, scheme=scheme, signed=signed, narrow=narrow, axis=self.axis)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(axis={self.axis}, batches={self.batches})"

    def _check(self, bits, scheme, signed, narrow) -> None:
        if self.batches == 0:
            raise ValueError("empty stream: call update(x) with at least one batch")
        if not isinstance(scheme, str) or scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}; got {scheme!r}")
        qrange(bits, signed, narrow)  # validates bits / signed / narrow

    def _observe(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def _range(self, bits, scheme, signed, narrow) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class MinMaxObserver(Observer):
    """Running minimum and maximum: never clips, so outliers widen the grid.

    Example:
        >>> obs = MinMaxObserver().update(torch.tensor([-1.0, 0.5])).update(torch.tensor([2.0]))
        >>> obs.range()
        (tensor(-1.), tensor(2.))
        >>> round(obs.qparams(bits=8).scale.item(), 6)     # 3 / 255
        0.011765
    """

    def _observe(self, x):
        lo, hi = tensor_range(x, self.axis)  # 0-d, or (C,) per channel
        if self.batches == 0:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val, self.max_val = torch.minimum(self.min_val, lo), torch.maximum(self.max_val, hi)

    def _range(self, bits, scheme, signed, narrow):
        return self.min_val.clone(), self.max_val.clone()


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Exponential moving average of each batch's min and max (as torch's observer of that name).

    The first batch sets the range; then ``min_val += c * (batch_min - min_val)``
    (same for max) with ``c = averaging_constant``, so a single wild batch moves
    the range by only a fraction ``c`` of its excess.

    Example:
        >>> obs = MovingAverageMinMaxObserver(averaging_constant=0.5)
        >>> obs.update(torch.tensor([-1.0, 1.0])).update(torch.tensor([-3.0, 5.0])).range()
        (tensor(-2.), tensor(3.))
    """

    def __init__(self, averaging_constant: float = 0.01, axis: int | None = None) -> None:
        super().__init__(axis)
        if not isinstance(averaging_constant, (int, float)) or not 0 < averaging_constant <= 1:
            raise ValueError(f"averaging_constant must be a number in (0, 1]; got {averaging_constant!r}")
        self.averaging_constant = float(averaging_constant)

    def _observe(self, x):
        lo, hi = tensor_range(x, self.axis)
        if self.batches == 0:
            self.min_val, self.max_val = lo, hi
        else:
            c = self.averaging_constant
            self.min_val = self.min_val + c * (lo - self.min_val)
            self.max_val = self.max_val + c * (hi - self.max_val)
