"""Partial quantization and mixed precision (lesson 07): which layers can take few bits, and how many.

Quantizing a network at ``x ≈ scale * (q - zero_point)`` does not hurt every
layer alike. The lesson's three steps, one module each:

* :mod:`qkit.partial.sizes` — :func:`layers` (the conv/linear layers of the
  BN-folded graph, in graph order: the names used everywhere here), :func:`layer_kinds` and
  :func:`weight_bytes` (packed weight bytes at a bit-width per layer);
* :mod:`qkit.partial.sensitivity` — :func:`sensitivity` (accuracy drop per layer
  when only that layer is quantized), :func:`sensitivity_table` (per layer and
  bit-width) and :func:`simulate_bits` (a model with a bit-width per layer);
* :mod:`qkit.partial.allocate` — :func:`allocate` (greedy mixed precision under a
  size budget, from single-layer drops), :func:`optimal` (exhaustive, small models) and
  :func:`random_allocation` (the baseline);
* :mod:`qkit.partial.measured` — :func:`greedy_measured` (the same greedy, every
  candidate move evaluated for real: tight budgets too) and its :class:`Scorer`;
* :mod:`qkit.partial.pareto` — :func:`pareto_front` of (size, accuracy) points.

Everything is simulated quantization in float arithmetic (as :mod:`qkit.simulate`);
the integer model that keeps chosen layers float is ``qkit.ptq.convert(..., skip=...)``.

>>> from qkit import models
>>> mlp = models.load("mlp")
>>> layers(mlp), weight_bytes(mlp, {"fc1": 8, "fc2": 8})     # (8192 + 512) + (1280 + 40)
(['fc1', 'fc2'], 10024)
"""

from qkit.partial.allocate import allocate, greedy, optimal, random_allocation
from qkit.partial.measured import Scorer, greedy_measured
from qkit.partial.pareto import pareto_front
from qkit.partial.sensitivity import sensitivity, sensitivity_table, simulate_bits
from qkit.partial.sizes import layer_kinds, layers, weight_bytes

__all__ = ["Scorer", "allocate", "greedy", "greedy_measured", "layer_kinds", "layers", "optimal", "pareto_front",
           "random_allocation", "sensitivity", "sensitivity_table", "simulate_bits", "weight_bytes"]
