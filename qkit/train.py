"""Fit a classifier and measure its accuracy: the two loops every lesson needs.

Training is deterministic for a given ``seed`` on a given machine (batches
are drawn from a seeded generator); ``evaluate`` never touches gradients.
``outputs`` is the batched eval-mode forward pass ``evaluate`` is built on, and
``one_thread`` runs a block on one torch thread (tiny models on a busy machine).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from qkit._checks import check_int


def _check_xy(X, y) -> None:
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"X and y must be tensors; got {type(X).__name__} and {type(y).__name__}")
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must hold the same, non-zero number of samples; got {len(X)} and {len(y)}")


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 10,
    lr: float = 1e-2,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    schedule: str = "constant",
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
    params=None,
    on_step: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[int], None] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> list[float]:
    """Train ``model`` on ``(X, y)`` with Adam and cross-entropy.

    Args:
        model: a classifier returning logits (N, classes).
        X: inputs (N, ...), float32.
        y: labels (N,), int64.
        epochs: passes over the data.
        lr: Adam learning rate.
        batch_size: samples per step.
        weight_decay: Adam's L2 penalty.
        seed: seeds the batch order, so a rerun gives the same model.
        progress: show a progress bar (tqdm; a widget bar in Jupyter).
        schedule: ``"constant"`` learning rate, or ``"cosine"``: decayed every
            step as ``lr * (1 + cos(pi * step / steps)) / 2``, down to 0.
        augment: optional ``augment(X_batch, generator) -> X_batch`` applied to
            each training batch; it draws from fit's seeded generator (see
            :func:`shift_pixels`), so augmented runs stay deterministic.
        penalty: optional zero-argument callable whose value is added to every
            step's loss (e.g. PACT's ``λ·Σα²``, :meth:`qkit.qat.QATModel.penalty`).
        params: what Adam optimizes: default ``model.parameters()``; or a list of
            parameter groups (dicts with ``"params"`` and an optional ``"lr"``, as
            ``torch.optim`` takes them), e.g. a larger rate for quantizers' steps.
        on_step: optional ``on_step(step, loss)`` called after every optimizer step
            (``step`` counts from 1; ``loss`` the step's loss as a float): to record.
        on_epoch: optional ``on_epoch(epoch)`` after every epoch (from 1); the model
            is back in train mode afterwards.
        loss_fn: optional ``loss_fn(logits, labels, inputs) -> loss`` instead of
            cross-entropy (e.g. distillation from a teacher that sees the same, augmented, inputs).

    Returns:
        The mean training loss of each epoch.
    """
    _check_xy(X, y)
    check_int("epochs", epochs, low=1)
    check_int("batch_size", batch_size, low=1)
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine'; got {schedule!r}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters() if params is None else params, lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(X) / batch_size)
    sched = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    losses = []
    bar = _progress(range(epochs), progress)
    model.train()
    step = 0
    for epoch in bar:
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for i in range(0, len(X), batch_size):
            idx = order[i : i + batch_size]
            xb = X[idx] if augment is None else augment(X[idx], gen)
            out = model(xb)
            loss = nn.functional.cross_entropy(out, y[idx]) if loss_fn is None else loss_fn(out, y[idx], xb)
            if penalty is not None:
                loss = loss + penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            total += loss.item() * len(idx)
            if on_step is not None:
                on_step(step, loss.item())
        losses.append(total / len(X))
        if on_epoch is not None:
            on_epoch(epoch + 1)
            model.train()
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def shift_pixels(X: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 1) -> torch.Tensor:
    """Shift each image by a random whole number of pixels in [-max_shift, max_shift] per axis.

    Pixels shifted in from outside the image are 0 (the digits' background).
    Pass it as ``fit(..., augment=shift_pixels)``.

    Example:
        >>> X = torch.arange(9.0).reshape(1, 1, 3, 3)
        >>> shift_pixels(X, torch.Generator().manual_seed(0))[0, 0]
        tensor([[0., 3., 4.],
                [0., 6., 7.],
                [0., 0., 0.]])
    """
    check_int("max_shift", max_shift, low=0)
    m, (h, w) = max_shift, X.shape[-2:]
    padded = nn.functional.pad(X, (m, m, m, m))  # (N, C, H + 2m, W + 2m)
    dy, dx = torch.randint(0, 2 * m + 1, (2, len(X)), generator=generator)  # (N,) each; m = no shift
    out = torch.empty_like(X)
    for oy in range(2 * m + 1):
        for ox in range(2 * m + 1):
            sel = (dy == oy) & (dx == ox)
            out[sel] = padded[sel, ..., oy : oy + h, ox : ox + w]
    return out


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``(X, y)``, a float in [0, 1].

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        ...     _ = model[1].bias.zero_()
        >>> evaluate(model, torch.tensor([[2.0, 1, 0, 0], [0, 3.0, 0, 0]]), torch.tensor([0, 0]))
        0.5
    """
    _check_xy(X, y)
    return (outputs(model, X, batch_size).argmax(dim=1) == y).sum().item() / len(X)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread, then restore the thread count.

    The zoo's models are tiny and the batches small: a second thread buys little,
    and on a busy machine its waiting costs more than it saves (the precomputation
    of these panels ran several times faster on one thread under load).

    Example:
        >>> before = torch.get_num_threads()
        >>> with one_thread():
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def outputs(model: nn.Module, X: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``model(X)`` in eval mode, in batches (the model's train/eval mode is restored).

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> outputs(layer, torch.zeros(5, 3)).shape
        torch.Size([5, 2])
    """
    was_training = model.training
    model.eval()
    out = torch.cat([model(X[i: i + batch_size]) for i in range(0, len(X), batch_size)])  # (N, classes)
    model.train(was_training)
    return out


def _progress(it, show: bool, desc: str = "epochs", unit: str = "epoch"):
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, unit=unit, leave=False)
