"""What several compression techniques share: finding layers, swapping weights, tracing, folding, storage.

PTQ, QAT, partial quantization and pruning all need to look a layer up by
name, evaluate a model with one of its weights replaced, trace it with
``torch.fx``, fold its BatchNorms and store converted tensors compactly. Those
pieces live here, outside any one technique.
"""

from qkit.graph.weights import get_module, swapped_weight

__all__ = ["get_module", "swapped_weight"]
