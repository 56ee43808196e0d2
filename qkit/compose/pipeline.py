"""Run the whole capstone pipeline and measure every stage in TensorFlow Lite's columns.

TensorFlow Lite's documentation tabulates quantized CNNs with the columns *top-1
accuracy* (original, post-training quantized, quantization-aware trained),
*latency* (ms) and *size* (original, optimized; MB). :func:`stage_rows` gives the same
three measurements with one row per *stage* of :mod:`qkit.compose.stages` instead:

=========  ===========================================================  ==========================
stage      model                                                        size is the bytes of
=========  ===========================================================  ==========================
original   the zoo teacher, float32                                     ``torch.save`` of its state
distilled  the narrower student, float32                                the same
pruned     the pruned student, float32, stored sparse                   :func:`qkit.prune.to_sparse`
quantized  the QAT integer model, weights packed densely                :func:`qkit.qat.convert`
packed     the same integers, bitmask + packed non-zeros (the final)    :func:`qkit.compose.to_sparse_packed`
onnx       the final model exported, run in ONNX Runtime                the ``.onnx`` file (int8 weights)
=========  ===========================================================  ==========================

Every size is :func:`qkit.measure.model_size` of the real artifact (container included)
or the ONNX file's bytes; every accuracy is measured on the digits' test split;
latency is :func:`qkit.measure.compare`'s round-robin median (qkit's integer kernels
for the integer stages, ONNX Runtime for the last row).
"""

from __future__ import annotations

import os
import tempfile

import torch
from torch import nn

from qkit import export, measure, models, prune, qat
from qkit.compose.stages import RECIPE, check_recipe, distill_stage, prune_stage, quantize_stage
from qkit.compose.storage import load_sparse_packed, to_sparse_packed
from qkit.train import outputs

__all__ = ["STAGES", "agreement", "assemble", "integer_skeleton", "load_final", "run", "stage_rows"]

STAGES = ("original", "distilled", "pruned", "quantized", "packed", "onnx")


def agreement(a: nn.Module, b: nn.Module, X: torch.Tensor) -> float:
    """Fraction of the images of ``X`` on which ``a`` and ``b`` predict the same class.

    Example:
        >>> layer = nn.Linear(4, 3)
        >>> agreement(layer, layer, torch.randn(10, 4))
        1.0
    """
    return (outputs(a, X).argmax(1) == outputs(b, X).argmax(1)).float().mean().item()


def run(data: tuple, r: dict | None = None, *, seed: int = 0, teacher: nn.Module | None = None,
        onnx_dir: str | None = None, progress: bool = False) -> dict[str, nn.Module]:
    """Every stage's model, ``{stage: model}`` in :data:`STAGES` order (``"onnx"``: an ``OnnxModel``).

    Args:
        data: ``(X, y, Xt, yt)``: training images and labels, test images (for the export's example) and labels.
        r: the recipe (default :data:`qkit.compose.RECIPE`).
        seed: the random seed of every training stage (batch order, pixel shifts, QAT's initial batch).
        teacher: the float model to start from (default: the zoo's ``r["teacher"]``).
        onnx_dir: where the ONNX file goes (default: a new temporary directory).
        progress: progress bars for the training stages.
    """
    r = check_recipe(dict(RECIPE if r is None else r))
    X, y, Xt, _ = data
    teacher = models.load(r["teacher"]).eval() if teacher is None else teacher.eval()
    student = distill_stage(teacher, X, y, r, seed=seed, progress=progress)
    pruned = prune_stage(student, teacher, X, y, r, seed=seed, progress=progress)
    quantized = quantize_stage(pruned, teacher, X, y, r, seed=seed, progress=progress)
    return assemble(teacher, student, pruned, quantized, Xt[:1], onnx_dir=onnx_dir)


def assemble(teacher: nn.Module, student: nn.Module, pruned: nn.Module, quantized: nn.Module,
             example: torch.Tensor, *, onnx_dir: str | None = None) -> dict[str, nn.Module]:
    """``{stage: model}`` from the trained stages: the pruned model stored sparse, the integer one packed
    sparse (the final model) and exported to ONNX (``"onnx"``: an ``OnnxModel`` with its ``path``)."""
    packed = to_sparse_packed(quantized)
    path = os.path.join(onnx_dir or tempfile.mkdtemp(prefix="qkit_capstone_"), "final_int8.onnx")
    onnx_model = export.OnnxModel(export.to_onnx(packed, path, example))
    onnx_model.path = path
    return {"original": teacher, "distilled": student, "pruned": prune.to_sparse(pruned),
            "quantized": quantized, "packed": packed, "onnx": onnx_model}


def stage_rows(stages: dict[str, nn.Module], Xt: torch.Tensor, yt: torch.Tensor, *, timing: bool = True,
               batch: int = 256, repeat: int = 20) -> list[dict]:
    """One row per stage: accuracy, size (bytes), ratio to the first stage, latency (:func:`qkit.measure.compare`).

    The ``onnx`` row's size is the file's bytes (``export.file_size``), and it gains
    ``agreement``: the fraction of test images on which ONNX Runtime and qkit's integer
    kernels (the ``packed`` model) predict the same class. Timing is machine-dependent;
    ``timing=False`` leaves the latency columns None.
    """
    rows = measure.compare(stages, Xt, yt, batch=batch, repeat=repeat, timing=timing)
    base = rows[0]
    for row in rows:
        row["stage"] = row.pop("name")
        model = stages[row["stage"]]
        if isinstance(model, export.OnnxModel) and hasattr(model, "path"):
            row["size"] = export.file_size(model.path)
            row["agreement"] = agreement(model, stages["packed"], Xt) if "packed" in stages else None
        row["size_ratio"] = base["size"] / row["size"]
        row["sparsity"] = _sparsity(model)
    return rows


def _sparsity(model: nn.Module) -> float | None:
    """Fraction of zero weights: float layers' ``weight`` or integer layers' ``q_w`` (None for ONNX)."""
    from qkit.nn import QuantConv2d, QuantLinear

    ws = [m.q_w for m in model.modules() if isinstance(m, (QuantConv2d, QuantLinear))]
    ws += [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
           and isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not ws:
        return None
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def integer_skeleton(r: dict, X: torch.Tensor) -> nn.Module:
    """An untrained integer model of the recipe's architecture and bits: what a saved final state loads into."""
    r = check_recipe(dict(r))
    student = prune.channels(models.load(r["teacher"]), r["width_cut"])
    qat_model = qat.prepare(student, w_bits=r["w_bits"], a_bits=r["a_bits"], calibration=X[: r["calibration"]])
    return qat.convert(qat_model)


def load_final(state: dict, r: dict, X: torch.Tensor) -> nn.Module:
    """The final (``packed``) model of a recipe from its saved ``state_dict`` (e.g. the capstone grid's)."""
    return load_sparse_packed(integer_skeleton(r, X), state).eval()
