"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a small student learns from a large teacher.

The teacher's logits ``t`` softened by a temperature ``T`` give *soft targets*
``p_t = softmax(t / T)``: besides the right class they say which wrong classes look
alike (a 3 is a bit like an 8, hardly like a 1). The student's logits ``s`` give
``p_s = softmax(s / T)``, and the loss mixes matching those soft targets with the
ordinary cross-entropy on the labels::

    loss = alpha · T² · KL(p_t ‖ p_s) + (1 − alpha) · CE(s, labels)
    KL(p_t ‖ p_s) = (1/N) Σ_n Σ_k p_t[n,k] · (log p_t[n,k] − log p_s[n,k])

Why ``T²``: ``d KL / d s = (p_s − p_t) / (T · N)``, so the soft term's gradient
shrinks like ``1/T`` — and for large ``T`` also ``p_s − p_t ≈ (s − t) / (K · T)``,
so like ``1/T²`` overall. Multiplying by ``T²`` keeps the two terms' gradients on the
same scale whatever the temperature, so ``alpha`` means the same at every ``T``
(Hinton et al. 2015, section 2). The gradient of the whole loss wrt the student's
logits is, row by row::

    d loss / d s = alpha · T · (p_s − p_t) / N + (1 − alpha) · (softmax(s) − onehot(labels)) / N

:func:`train` trains a student on this loss with :func:`qkit.train.fit` (Adam, the
same batches and augmentation as a scratch run with the same seed): the teacher sees
every (augmented) batch the student sees, in eval mode, without gradients.
:func:`soft_targets` is what the lesson's temperature slider shows. :func:`per_class` (a small
balanced labelled set), :func:`epochs_for` (the same number of steps whatever the set's size) and
:func:`paired_gain` (mean and standard error of seed-paired differences) set up and judge the
lesson's comparison of a distilled student with the same student from scratch.

Scope: one teacher, logits only (no intermediate features as in FitNets).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import nn

from qkit._checks import as_tensor, check_int
from qkit.train import fit

__all__ = ["loss", "soft_targets", "train", "student", "per_class", "epochs_for", "paired_gain"]


def _check_T_alpha(T, alpha) -> tuple[float, float]:
    for name, v in (("T", T), ("alpha", alpha)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a real number; got {type(v).__name__} {v!r}")
    if not T > 0:
        raise ValueError(f"T must be > 0; got {T}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    return float(T), float(alpha)


def _logits(name: str, x) -> torch.Tensor:
    t = as_tensor(name, x)
    if not t.is_floating_point():
        raise TypeError(f"{name} must hold floating-point values; got dtype {t.dtype}")
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-d (N, classes); got shape {tuple(t.shape)}")
    return t


def soft_targets(teacher_logits, T: float = 4.0) -> torch.Tensor:
    """The teacher's soft targets ``softmax(teacher_logits / T)`` along the last axis.

    T = 1 is the ordinary softmax; a larger T flattens it, so the small
    probabilities of the wrong classes become visible.

    Example:
        >>> soft_targets(torch.tensor([[4.0, 2.0, 0.0]]), T=1.0)
        tensor([[0.8668, 0.1173, 0.0159]])
        >>> soft_targets(torch.tensor([[4.0, 2.0, 0.0]]), T=4.0)  # exp(1), exp(0.5), 1, normalised
        tensor([[0.5065, 0.3072, 0.1863]])
    """
    T, _ = _check_T_alpha(T, 0.0)
    t = as_tensor("teacher_logits", teacher_logits)
    if not t.is_floating_point():
        raise TypeError(f"teacher_logits must hold floating-point values; got dtype {t.dtype}")
    return torch.softmax(t / T, dim=-1)


def loss(student_logits, teacher_logits, labels, *, T: float = 4.0, alpha: float = 0.9) -> torch.Tensor:
    """Hinton et al.'s (2015) distillation loss: ``alpha·T²·KL(p_t ‖ p_s) + (1 − alpha)·CE(s, labels)``.

    ``p_t = softmax(teacher_logits / T)``, ``p_s = softmax(student_logits / T)``; KL and
    CE are means over the batch. The teacher's logits are detached (only the student
    learns). ``alpha = 0`` is plain cross-entropy; ``alpha = 1`` ignores the labels.

    Args:
        student_logits: (N, K) float.
        teacher_logits: (N, K) float.
        labels: (N,) int64 class indices.
        T: temperature > 0.
        alpha: weight of the soft term, in [0, 1].

    Returns:
        A 0-d tensor.

    Example:
        With equal logits the soft term is 0 and only ``(1 − alpha)·CE`` is left:
        two classes, logits (0, 0), CE = log 2 = 0.6931, times 0.1:

        >>> s = torch.zeros(1, 2)
        >>> round(loss(s, s, torch.tensor([0])).item(), 5)
        0.06931

        Soft term alone (alpha = 1), teacher logits (4, 0) at T = 4: p_t = softmax(1, 0)
        = (0.7311, 0.2689), p_s = (0.5, 0.5), KL = 0.7311·ln(0.7311/0.5) + 0.2689·ln(0.2689/0.5)
        = 0.11094, times T² = 16:

        >>> round(loss(s, torch.tensor([[4.0, 0.0]]), torch.tensor([0]), T=4.0, alpha=1.0).item(), 4)
        1.7751
    """
    T, alpha = _check_T_alpha(T, alpha)
    s = _logits("student_logits", student_logits)  # (N, K)
    t = _logits("teacher_logits", teacher_logits).detach()  # (N, K)
    y = as_tensor("labels", labels)
    if s.shape != t.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape; "
                         f"got {tuple(s.shape)} and {tuple(t.shape)}")
    if y.dtype != torch.int64 or y.shape != s.shape[:1]:
        raise ValueError(f"labels must be int64 of shape ({s.shape[0]},); got {y.dtype} of shape {tuple(y.shape)}")
    log_ps = torch.log_softmax(s / T, dim=1)  # (N, K)
    log_pt = torch.log_softmax(t / T, dim=1)  # (N, K)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1).mean()  # 0-d: KL(p_t ‖ p_s), batch mean
    ce = nn.functional.cross_entropy(s, y)  # 0-d, at T = 1
    return alpha * T * T * kl + (1 - alpha) * ce


def student(hidden: int = 32) -> nn.Module:
    """The lesson's student: the zoo's perceptron (``qkit.models.DigitsMLP``) narrowed to ``hidden`` units.

    64 → 32 → 10 has 64·32 + 32 + 32·10 + 10 = 2,410 parameters, 1/32 of the resnet teacher's 77,754.

    Example:
        >>> sum(p.numel() for p in student().parameters())
        2410
    """
    from qkit.models import DigitsMLP

    return DigitsMLP(hidden=hidden)


def train(
    student: nn.Module,
    teacher: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    T: float = 4.0,
    alpha: float = 0.9,
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 32,
    weight_decay: float = 1e-4,
    seed: int = 0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    progress: bool = True,
    on_epoch: Callable[[int], None] | None = None,
    schedule: str = "constant",
) -> list[float]:
    """Train ``student`` in place on :func:`loss` against ``teacher``'s logits (the teacher is not changed).

    The keywords are :func:`qkit.train.fit`'s; a scratch student trained with
    ``fit(student, X, y, epochs=..., lr=..., batch_size=..., weight_decay=..., seed=..., augment=..., schedule=...)``
    sees the very same batches in the same order (same seed), so the only difference
    is the loss. ``alpha = 0`` *is* that scratch run (plain cross-entropy).

    The teacher runs once per distinct input: its logits are remembered by the input's
    bytes. Pixel shifts (``augment=qkit.train.shift_pixels``) make only 9 versions of an
    image, so the teacher runs about ``9·N`` times instead of ``epochs·N``; the logits are
    the same either way (an eval-mode model computes each image on its own).

    Returns:
        The mean training loss (distillation loss) of each epoch.
    """
    T, alpha = _check_T_alpha(T, alpha)
    was_training = teacher.training
    teacher.eval()

    seen: dict[bytes, torch.Tensor] = {}  # input's bytes -> the teacher's logits for it

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        keys = [row.numpy().tobytes() for row in inputs]
        new = [i for i, k in enumerate(keys) if k not in seen]
        if new:
            with torch.no_grad():
                fresh = teacher(inputs[new])  # (B', K): only inputs the teacher has not seen yet
            for i, row in zip(new, fresh):
                seen.setdefault(keys[i], row)
        t = torch.stack([seen[k] for k in keys])  # (B, K) the teacher's logits for this (augmented) batch
        return loss(logits, t, labels, T=T, alpha=alpha)

    try:
        return fit(student, X, y, epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                   seed=seed, augment=augment, progress=progress, on_epoch=on_epoch, schedule=schedule, loss_fn=loss_fn)
    finally:
        teacher.train(was_training)


def per_class(X: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``k`` images of each class, in their original order: a small, balanced labelled set.

    Example:
        >>> X, y = torch.arange(6.0).reshape(6, 1), torch.tensor([0, 1, 0, 0, 1, 1])
        >>> Xs, ys = per_class(X, y, 2)
        >>> Xs.flatten().tolist(), ys.tolist()
        ([0.0, 1.0, 2.0, 4.0], [0, 1, 0, 1])
    """
    check_int("k", k, low=1)
    y = as_tensor("y", y)
    if len(X) != len(y):
        raise ValueError(f"X and y must hold the same number of samples; got {len(X)} and {len(y)}")
    rank = torch.zeros_like(y)  # (N,) int64: how many earlier images share this image's class
    for c in y.unique():
        sel = y == c
        rank[sel] = torch.arange(int(sel.sum()))
    keep = rank < k  # (N,) bool
    return X[keep], y[keep]


def epochs_for(n: int, steps: int, batch_size: int = 32) -> int:
    """Epochs that give at least ``steps`` optimizer steps on ``n`` samples: ``ceil(steps / ceil(n / batch))``.

    Runs on subsets of different sizes then train for (about) the same number of steps.

    Example:
        >>> epochs_for(100, 800), epochs_for(1079, 800)  # 4 batches an epoch; 34 batches an epoch
        (200, 24)
    """
    for name, v in (("n", n), ("steps", steps), ("batch_size", batch_size)):
        check_int(name, v, low=1)
    return math.ceil(steps / math.ceil(n / batch_size))


def paired_gain(distilled, scratch) -> tuple[float, float]:
    """Mean and standard error of the paired differences ``distilled[i] − scratch[i]`` (same seed i).

    Pairing by seed removes what the two runs share (the initial weights, the batch
    order), so the standard error ``sd(d) / sqrt(n)`` is usually smaller than the random seeds'
    spread of either run alone. A gain stands out of the noise when it exceeds about
    twice this standard error.

    Example:
        >>> m, se = paired_gain([0.80, 0.84, 0.83], [0.76, 0.78, 0.77])  # d = 0.04, 0.06, 0.06
        >>> round(m, 4), round(se, 4)
        (0.0533, 0.0067)
    """
    a = [float(v) for v in distilled]
    b = [float(v) for v in scratch]
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"distilled and scratch must hold the same number (>= 2) of runs; got {len(a)} and {len(b)}")
    d = [u - v for u, v in zip(a, b)]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1))
    return mean, sd / math.sqrt(len(d))
