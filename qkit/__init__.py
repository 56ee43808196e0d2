"""qkit: a teaching kit for neural-network compression.

The public API (DESIGN.md §3) is re-exported here::

    x ≈ scale * (q - zero_point)

>>> import qkit
>>> qp = qkit.choose_qparams(-1.0, 2.0, bits=8)
>>> qkit.dequantize(qkit.quantize(torch.tensor([0.0, 1.0, 0.3]), qp), qp)
tensor([0.0000, 1.0000, 0.3059])
"""

import torch  # noqa: F401  (used by the doctest above)

from qkit import compose, distill, export, fixedpoint, graph, measure, nas, pack, partial, prune, ptq, qat  # noqa: F401  (qkit.ptq.convert, qkit.qat.prepare, qkit.distill.loss, …)
from qkit.binary import binarize, ternarize
from qkit.groups import fake_quantize_grouped, group_view, quantize_grouped, scale_overhead_bits, ungroup
from qkit.observers import (
    OBSERVERS,
    EntropyObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    Observer,
    PercentileObserver,
    calibrate,
)
from qkit.qparams import QParams, choose_qparams, qrange, tensor_range, weight_qparams
from qkit.quant import dequantize, fake_quantize, quantize, storage_dtype

__version__ = "0.1.0"

__all__ = [
    "OBSERVERS",
    "EntropyObserver",
    "MSEObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "Observer",
    "PercentileObserver",
    "QParams",
    "binarize",
    "calibrate",
    "choose_qparams",
    "dequantize",
    "fake_quantize",
    "fake_quantize_grouped",
    "group_view",
    "qrange",
    "quantize",
    "quantize_grouped",
    "scale_overhead_bits",
    "storage_dtype",
    "tensor_range",
    "ternarize",
    "ungroup",
    "weight_qparams",
]
