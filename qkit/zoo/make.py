"""Retrain zoo models and write their state_dicts: ``python -m qkit.zoo.make [names...]``.

With no names every model is retrained. Deterministic: one thread, the random seed
of each recipe for ``torch.manual_seed`` (initial weights) and for ``fit``
(batch order, pixel shifts). The printed accuracies are on the digits test split;
``--out DIR`` writes the files somewhere else (to compare a rerun with the shipped ones).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from qkit import data, models, train

# fit keywords per model; "shift" means augment=train.shift_pixels (random ±1-pixel shifts).
CNN = dict(epochs=30, lr=1e-2, batch_size=64, weight_decay=1e-4, schedule="cosine", shift=True)
RECIPES = {
    "mlp": dict(epochs=30, lr=3e-3, batch_size=32, weight_decay=1e-4),
    "mobilenet_v1": CNN,
    "mobilenet_v2": CNN,
    "resnet": CNN,
    "inception": CNN,
    "wide_mlp": dict(epochs=20, lr=3e-4, batch_size=32, weight_decay=1e-4, schedule="cosine"),
}
SEED = 0


def train_model(name: str, *, epochs: int | None = None, seed: int = SEED, X: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> nn.Module:
    """Build ``name`` and fit it with its recipe (``epochs`` overrides).

    ``X, y``: the training images and labels, both or neither (default: the digits train
    split; ``benchmarks/validate_recipes.py`` passes the split minus its held-out images).
    """
    if (X is None) != (y is None):
        raise ValueError("give both X and y (training images and labels) or neither; got only "
                         + ("X" if y is None else "y"))
    recipe = dict(RECIPES[name])
    augment = train.shift_pixels if recipe.pop("shift", False) else None
    if epochs is not None:
        recipe["epochs"] = epochs
    if X is None:
        X, y = data.digits("train")
    torch.manual_seed(seed)
    model = models.build(name)
    train.fit(model, X, y, seed=seed, progress=False, augment=augment, **recipe)
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qkit.zoo.make", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"models to retrain (default: all of {models.names()})")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="directory for <name>.pt")
    args = parser.parse_args(argv)
    for name in args.names:
        models.build(name)  # ValueError listing the names for a typo
    torch.set_num_threads(1)
    Xt, yt = data.digits("test")
    for name in args.names or models.names():
        start = time.perf_counter()
        model = train_model(name)
        seconds = time.perf_counter() - start
        acc = train.evaluate(model, Xt, yt)
        torch.save(model.state_dict(), args.out / f"{name}.pt")
        print(f"{name}: test accuracy {acc:.4f}  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
