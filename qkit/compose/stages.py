"""The capstone pipeline, one function per stage: distill → prune → quantize (QAT) → pack → export.

Each stage takes the previous stage's model and returns a new one (nothing is
changed in place), so every intermediate model can be measured::

    teacher (zoo resnet, float32)
      │ distill   narrower copy (qkit.prune.channels: the same blocks, `width_cut` of every
      │           layer's channels removed), trained on Hinton et al.'s (2015) loss against the teacher
      ▼
    student (float32)
      │ prune     magnitude pruning to `sparsity` (Han et al. 2015, one global ranking),
      │           then a fine-tune with the teacher's soft targets, the zeros kept at 0
      ▼
    pruned student (float32, mostly zeros)
      │ quantize  qkit.qat.prepare at `w_bits` weights / 8-bit activations, QAT fine-tune
      │           distilled from the teacher, the pruning masks re-applied after every step;
      │           qkit.qat.convert: the integer-only model, weights bit-packed
      ▼
    integer model (int8 activations, `w_bits` weights packed densely)
      │ pack      qkit.compose.storage: bitmask + the non-zero weights packed at `w_bits`
      ▼
    final integer model ── export ──▶ ONNX file (int8 weights: ONNX holds no packed bits)

The teacher teaches at every training stage (distillation, the pruning fine-tune and
QAT), as in Polino et al. (2018) and Mishra & Marr (2018): each stage's soft targets
come from the same float32 original, so the accuracy lost at one stage is pulled back
towards the original's, not towards the previous stage's.

>>> RECIPE["sparsity"], RECIPE["w_bits"]
(0.75, 4)
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from qkit import distill, prune, qat
from qkit.train import fit, shift_pixels

__all__ = ["RECIPE", "check_recipe", "distill_stage", "kd_loss", "prune_stage", "quantize_stage", "recipe"]

RECIPE = {
    "teacher": "resnet",  # the zoo model everything starts from
    "width_cut": 0.5,  # fraction of every prunable channel group removed to make the student
    "distill_epochs": 10, "distill_lr": 3e-3, "T": 4.0, "alpha": 0.9,
    "sparsity": 0.75, "prune_epochs": 8, "prune_lr": 3e-3,
    "w_bits": 4, "a_bits": 8, "qat_epochs": 6, "calibration": 256,
}


def recipe(**changes) -> dict:
    """:data:`RECIPE` with ``changes`` (checked).

    Example:
        >>> recipe(sparsity=0.9)["sparsity"]
        0.9
    """
    return check_recipe({**RECIPE, **changes})


def check_recipe(r: dict) -> dict:
    """``r`` if it has every key of :data:`RECIPE` with a sensible value; else a ValueError/TypeError naming it."""
    if not isinstance(r, dict):
        raise TypeError(f"a recipe is a dict like qkit.compose.RECIPE; got {type(r).__name__}")
    unknown, missing = set(r) - set(RECIPE), set(RECIPE) - set(r)
    if unknown or missing:
        raise ValueError(f"recipe keys must be {sorted(RECIPE)}; unknown {sorted(unknown)}, missing {sorted(missing)}")
    if not isinstance(r["prune_lr"], float) or not r["prune_lr"] > 0 or not isinstance(r["distill_lr"], float):
        raise ValueError(f"recipe's learning rates must be floats > 0; got {r['distill_lr']!r}, {r['prune_lr']!r}")
    for key in ("width_cut", "sparsity"):
        v = r[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < 1:
            raise ValueError(f"recipe[{key!r}] must be a fraction in [0, 1); got {v!r}")
    for key in ("distill_epochs", "prune_epochs", "qat_epochs", "calibration"):
        if isinstance(r[key], bool) or not isinstance(r[key], int) or r[key] < 1:
            raise ValueError(f"recipe[{key!r}] must be an int >= 1; got {r[key]!r}")
    if r["w_bits"] not in range(2, 9) or r["a_bits"] not in range(2, 9):
        raise ValueError(f"recipe's w_bits and a_bits must be ints in 2..8; got {r['w_bits']!r}, {r['a_bits']!r}")
    return r


def kd_loss(teacher: nn.Module, T: float, alpha: float):
    """``loss_fn(logits, labels, inputs)`` for :func:`qkit.train.fit`: :func:`qkit.distill.loss` against ``teacher``.

    The teacher (kept in eval mode) sees the very batch the student sees, pixel shifts included.

    Example:
        >>> teacher = nn.Linear(2, 3).eval()
        >>> x = torch.ones(4, 2)
        >>> loss_fn = kd_loss(teacher, 4.0, 1.0)
        >>> round(loss_fn(teacher(x), torch.zeros(4, dtype=torch.int64), x).item(), 6)   # same logits: KL = 0
        0.0
    """
    teacher.eval()

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = teacher(inputs)  # (N, classes) float32
        return distill.loss(logits, soft, labels, T=T, alpha=alpha)

    return loss_fn


def distill_stage(teacher: nn.Module, X: torch.Tensor, y: torch.Tensor, r: dict, *, seed: int = 0,
                  progress: bool = False) -> nn.Module:
    """The student: ``teacher`` with ``r["width_cut"]`` of its channels removed, then distilled from it.

    The narrower copy starts from the teacher's strongest filters (Li et al. 2017's L1
    criterion), then trains ``r["distill_epochs"]`` epochs (Adam, cosine, ±1-pixel shifts)
    on the distillation loss at temperature ``r["T"]``, soft-target weight ``r["alpha"]``.
    """
    student = prune.channels(teacher, r["width_cut"]) if r["width_cut"] > 0 else _copy(teacher)
    fit(student, X, y, epochs=r["distill_epochs"], lr=r["distill_lr"], batch_size=64, schedule="cosine",
        augment=shift_pixels, loss_fn=kd_loss(teacher, r["T"], r["alpha"]), seed=seed, progress=progress)
    return student.eval()


def prune_stage(student: nn.Module, teacher: nn.Module, X: torch.Tensor, y: torch.Tensor, r: dict, *,
                seed: int = 0, progress: bool = False) -> nn.Module:
    """``student`` magnitude-pruned to ``r["sparsity"]`` (global), fine-tuned with the teacher, zeros kept.

    The fine-tune's settings are the recipe's, every one given (Adam at ``r["prune_lr"]``, cosine,
    batch 64, ±1-pixel shifts), so the grid does not move when :data:`qkit.prune.FINETUNE` does.
    """
    pruned = prune.magnitude(student, r["sparsity"])
    if r["sparsity"] > 0:
        prune.finetune(pruned, X, y, epochs=r["prune_epochs"], lr=r["prune_lr"], seed=seed, progress=progress,
                       batch_size=64, schedule="cosine", weight_decay=0.0, augment=shift_pixels,
                       loss_fn=kd_loss(teacher, r["T"], r["alpha"]))
    return pruned.eval()


def quantize_stage(pruned: nn.Module, teacher: nn.Module, X: torch.Tensor, y: torch.Tensor, r: dict, *,
                   seed: int = 0, progress: bool = False) -> nn.Module:
    """QAT of ``pruned`` at ``r["w_bits"]``/``r["a_bits"]``, distilled from ``teacher``, masks kept; the integer model.

    BatchNorm folding scales a weight row by ``γ/σ``, so a pruned 0 stays 0 in the QAT
    copy; :func:`qkit.prune.keep_masks` on the QAT model holds those zeros through
    training, and a 0 quantizes to the integer 0 (symmetric weight grids).
    """
    torch.manual_seed(seed)
    qat_model = qat.prepare(pruned, w_bits=r["w_bits"], a_bits=r["a_bits"], calibration=X[: r["calibration"]])
    qat.finetune(qat_model, X, y, epochs=r["qat_epochs"], seed=seed, progress=progress, teacher=teacher,
                 T=qat.TEACHER["T"], alpha=qat.TEACHER["alpha"], on_step=prune.keep_masks(qat_model))
    return qat.convert(qat_model)


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)
