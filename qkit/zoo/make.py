"""Retrain every zoo model and write its state_dict: ``python -m qkit.zoo.make``.

Deterministic: one thread, fixed seeds; the printed accuracies are on the
digits test split.
"""

from __future__ import annotations

from pathlib import Path

import torch

from qkit import data, models, train

RECIPES = {"mlp": dict(epochs=30, lr=3e-3, batch_size=32, weight_decay=1e-4)}


def main() -> None:
    torch.set_num_threads(1)
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    for name in models.names():
        torch.manual_seed(0)
        model = models.build(name)
        train.fit(model, X, y, seed=0, progress=False, **RECIPES[name])
        acc = train.evaluate(model, Xt, yt)
        torch.save(model.state_dict(), Path(__file__).with_name(f"{name}.pt"))
        print(f"{name}: test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
