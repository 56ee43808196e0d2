"""Fit a classifier and measure its accuracy: the two loops every lesson needs.

Training is deterministic for a given ``seed`` on a given machine (batches
are drawn from a seeded generator); ``evaluate`` never touches gradients.
"""

from __future__ import annotations

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

    Returns:
        The mean training loss of each epoch.
    """
    _check_xy(X, y)
    check_int("epochs", epochs, low=1)
    check_int("batch_size", batch_size, low=1)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    bar = _progress(range(epochs), progress)
    model.train()
    for _ in bar:
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for i in range(0, len(X), batch_size):
            idx = order[i : i + batch_size]
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(X))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


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
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(X), batch_size):
        correct += (model(X[i : i + batch_size]).argmax(dim=1) == y[i : i + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(X)


def _progress(it, show: bool):
    if not show:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc="epochs", unit="epoch", leave=False)
