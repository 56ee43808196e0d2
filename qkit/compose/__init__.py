"""Lesson 11: the techniques together — distill → prune → quantize (QAT) → pack → export to ONNX Runtime.

* :mod:`qkit.compose.stages` — one function per stage and the recipe (:data:`RECIPE`);
* :mod:`qkit.compose.storage` — pruned low-bit integer weights saved as a bitmask plus
  bit-packed non-zeros (:func:`to_sparse_packed`), so pruning and packing both shrink the file;
* :mod:`qkit.compose.pipeline` — :func:`run` every stage, :func:`stage_rows` measures each in
  TensorFlow Lite's columns (accuracy, latency, size).

>>> from qkit import compose
>>> compose.STAGES
('original', 'distilled', 'pruned', 'quantized', 'packed', 'onnx')
"""

from qkit.compose.pipeline import STAGES, agreement, assemble, integer_skeleton, load_final, run, stage_rows
from qkit.compose.stages import RECIPE, check_recipe, distill_stage, kd_loss, prune_stage, quantize_stage, recipe
from qkit.compose.storage import decode, encode, layer_bits, load_sparse_packed, stored_bytes, to_sparse_packed

__all__ = ["RECIPE", "STAGES", "agreement", "assemble", "check_recipe", "decode", "distill_stage", "encode", "integer_skeleton", "kd_loss", "load_final",
           "layer_bits", "load_sparse_packed", "prune_stage", "quantize_stage", "recipe", "run", "stage_rows", "stored_bytes",
           "to_sparse_packed"]
