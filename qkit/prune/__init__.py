"""Pruning: zero weights (unstructured) or remove channels (structured), and make the savings real.

* :func:`magnitude` — zero the smallest ``|w|``, globally or per layer (Han et al. 2015);
  :func:`finetune` trains the result with its zeros kept (:mod:`qkit.prune.masks`);
* :func:`gradual` — Zhu & Gupta's (2017) polynomial schedule (:mod:`qkit.prune.schedule`);
* :func:`sensitivity` — accuracy with one layer pruned at a time;
* :func:`to_sparse` / :func:`load_sparse` — bitmask + non-zero values, so the file shrinks;
* :func:`channels` — structured: smaller layers for real (:mod:`qkit.prune.channels`);
* :func:`sparsity` — the fraction of conv/linear weights that are 0.
"""

from qkit.prune.channels import channels
from qkit.prune.magnitude import magnitude, magnitude_masks
from qkit.prune.masks import FINETUNE, apply_masks, finetune, keep_masks, layer_sparsity, masks, prunable, sparsity
from qkit.prune.schedule import gradual, polynomial
from qkit.prune.sensitivity import sensitivity
from qkit.prune.sparse import decode, encode, load_sparse, to_sparse

__all__ = ["FINETUNE", "apply_masks", "channels", "decode", "encode", "finetune", "gradual", "keep_masks",
           "layer_sparsity", "load_sparse", "magnitude", "magnitude_masks", "masks", "polynomial", "prunable",
           "sensitivity", "sparsity", "to_sparse"]
