"""Data sets that ship inside qkit, so every lesson runs offline.

>>> X, y = digits("test")
>>> X.shape, X.dtype, y.dtype, float(X.max())
(torch.Size([359, 1, 8, 8]), torch.float32, torch.int64, 1.0)
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import torch

SPLITS = ("train", "test", "all")


@lru_cache(maxsize=1)
def _digits_arrays() -> dict[str, np.ndarray]:
    with resources.files(__package__).joinpath("digits.npz").open("rb") as f:
        with np.load(f) as z:
            return {k: z[k] for k in z.files}


def digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """The 8×8 handwritten digits (UCI, CC BY 4.0), shipped with the kit.

    Args:
        split: ``"train"`` (1438 images), ``"test"`` (359) or ``"all"`` (1797).
            The split is fixed and stratified (20 % of each class in test).

    Returns:
        ``(X, y)``: X float32 (n, 1, 8, 8) with pixels in [0, 1]; y int64 (n,).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    a = _digits_arrays()
    keep = np.ones_like(a["test"]) if split == "all" else (a["test"] == (split == "test"))
    X = torch.from_numpy(a["images"][keep].astype(np.float32) / 16.0).unsqueeze(1)  # (n, 1, 8, 8)
    y = torch.from_numpy(a["labels"][keep].astype(np.int64))  # (n,)
    return X, y


from .download import fashion_mnist, mnist  # noqa: E402  (online-only downloaders)

__all__ = ["SPLITS", "digits", "fashion_mnist", "mnist"]
