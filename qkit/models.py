"""The tiny model zoo: small classifiers for the 8×8 digits, with shipped weights.

Pretrained state_dicts live in ``qkit/zoo/`` and are made by
``python -m qkit.zoo.make`` (deterministic: fixed seed, one thread).

>>> names()
['mlp']
>>> model = load("mlp")
>>> sum(p.numel() for p in model.parameters())
9610
"""

from __future__ import annotations

from importlib import resources

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """64 → 128 → 10 perceptron with ReLU: small, yet its weights look like real ones."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 8, 8) -> (N, 10)
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


_ZOO = {"mlp": DigitsMLP}


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_ZOO)


def build(name: str) -> nn.Module:
    """A freshly initialised (untrained) model of the given zoo name."""
    if name not in _ZOO:
        raise ValueError(f"unknown model {name!r}; choose one of {names()}")
    return _ZOO[name]()


def load(name: str, pretrained: bool = True) -> nn.Module:
    """Build a zoo model, with its shipped weights if ``pretrained``; returned in eval mode."""
    model = build(name)
    if pretrained:
        with resources.files("qkit.zoo").joinpath(f"{name}.pt").open("rb") as f:
            model.load_state_dict(torch.load(f, weights_only=True))
    return model.eval()
