"""Calibration: watch a stream of batches, then choose the grid's float range.

An observer turns tensors into ``[x_min, x_max]`` and hands it to
:func:`qkit.choose_qparams`, so that ``x ≈ scale * (q - zero_point)``::

    obs = MinMaxObserver()
    for x in batches:
        obs.update(x)
    qp = obs.qparams(bits=8)

Min-max never clips, so one outlier widens ``scale`` for everybody. The other
observers clip at a threshold ``t`` on ``|x|`` (range ``[max(x_min, -t),
min(x_max, t)]``, so one-sided data such as ReLU outputs keep ``x_min = 0``):

* ``PercentileObserver`` — ``t`` = a percentile of ``|x|``;
* ``MSEObserver`` — ``t`` minimising the quantization mean squared error;
* ``EntropyObserver`` — ``t`` minimising KL divergence (TensorRT's calibration).

Those three read a histogram of ``x`` accumulated over the stream (bounded
memory). Its bins are symmetric around 0 and its radius doubles when a batch
exceeds it, so old bins merge exactly into new ones (no re-spreading of counts).
Scope: the histogram observers are per-tensor; min-max ones also per-channel.
"""

from __future__ import annotations

import numpy as np
import torch

from qkit.observers.base import MinMaxObserver, MovingAverageMinMaxObserver, Observer
from qkit.observers.histogram import EntropyObserver, MSEObserver, PercentileObserver
from qkit.qparams import QParams

OBSERVERS = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
    "entropy": EntropyObserver,
}


def calibrate(observer_or_name, batches, bits: int = 8, **qparams_options) -> QParams:
    """Feed every batch to an observer and return its grid.

    Args:
        observer_or_name: an :class:`Observer` (updated in place), or a name
            from :data:`OBSERVERS` for one with default options.
        batches: iterable of tensors / arrays (a single tensor counts as one
            batch). From a loader of ``(x, y)`` pairs pass ``(x for x, _ in loader)``.
        bits: grid width.
        **qparams_options: ``scheme``, ``signed``, ``narrow`` for :meth:`Observer.qparams`.

    Example:
        >>> qp = calibrate("minmax", [torch.tensor([-1.0, 0.0]), torch.tensor([2.0])])
        >>> round(qp.scale.item(), 6), qp.zero_point.item()
        (0.011765, -43)
    """
    if isinstance(observer_or_name, str):
        if observer_or_name not in OBSERVERS:
            raise ValueError(f"unknown observer {observer_or_name!r}; choose one of {sorted(OBSERVERS)}")
        observer_or_name = OBSERVERS[observer_or_name]()
    if not isinstance(observer_or_name, Observer):
        raise TypeError(f"expected an Observer or an observer name; got {type(observer_or_name).__name__}")
    if isinstance(batches, (torch.Tensor, np.ndarray)):
        batches = [batches]
    for x in batches:
        observer_or_name.update(x)
    return observer_or_name.qparams(bits, **qparams_options)


__all__ = ["OBSERVERS", "EntropyObserver", "MSEObserver", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "Observer", "PercentileObserver", "calibrate"]
