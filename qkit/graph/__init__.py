"""What several compression techniques share: finding layers, swapping weights, tracing, folding, storage.

PTQ, QAT, partial quantization and pruning all need to look a layer up by
name, evaluate a model with one of its weights replaced, trace it with
``torch.fx``, fold its BatchNorms and store converted tensors compactly. Those
pieces live here, outside any one technique, one file each:

* :mod:`qkit.graph.weights` — :func:`get_module`, :func:`set_module`, :func:`swapped_weight`;
* :mod:`qkit.graph.trace` — :func:`trace` (``torch.fx``, with an error that says why it failed);
* :mod:`qkit.graph.fold` — :func:`fold_batchnorm`, :func:`fold_conv_bn`, :func:`bn_as_conv`;
* :mod:`qkit.graph.storage` — :func:`share_storage` (one storage per dtype: a compact ``torch.save``).
"""

from qkit.graph.fold import bn_as_conv, fold_batchnorm, fold_conv_bn
from qkit.graph.storage import share_storage
from qkit.graph.trace import trace
from qkit.graph.weights import get_module, set_module, swapped_weight

__all__ = ["bn_as_conv", "fold_batchnorm", "fold_conv_bn", "get_module", "set_module", "share_storage",
           "swapped_weight", "trace"]
