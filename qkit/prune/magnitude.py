"""Magnitude pruning (Han et al. 2015): zero the weights of smallest ``|w|``.

For a target sparsity ``s`` (the fraction of weights set to 0) and the weights
``w_1 … w_n`` of the layers pruned together, keep exactly the ``n - k`` of largest
magnitude, ``k = round(s · n)``::

    m_i = 1  if |w_i| is among the n - k largest,  else 0        w ← w · m

(ties at the threshold are broken by position, so exactly ``k`` go). ``scope``
says what "together" means:

* ``"global"``: one ranking over every conv/linear weight of the model. Layers
  whose weights are small (big layers, usually) lose more; a small layer whose
  weights all matter keeps them.
* ``"layer"``: each layer ranked alone, every layer at sparsity ``s``.

>>> layer = nn.Linear(4, 1, bias=False)
>>> with torch.no_grad():
...     _ = layer.weight.copy_(torch.tensor([[0.3, -2.0, 0.1, -0.5]]))
>>> magnitude(layer, 0.5).weight.tolist()       # the two smallest |w|, 0.1 and 0.3, go
[[0.0, -2.0, 0.0, -0.5]]
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from qkit.prune.masks import _check_model, apply_masks, prunable

SCOPES = ("global", "layer")


def check_sparsity(sparsity) -> float:
    """``sparsity`` as a float in [0, 1], or a ValueError/TypeError saying what was got."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise TypeError(f"sparsity must be a number in [0, 1]; got {type(sparsity).__name__}")
    if not 0.0 <= float(sparsity) <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1] (the fraction of weights set to 0); got {sparsity}")
    return float(sparsity)


def keep_largest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of ``scores``' shape: False at the ``k`` smallest entries (ties: the first ones), True elsewhere.

    Example:
        >>> keep_largest(torch.tensor([0.3, 2.0, 0.1, 0.3]), 2)
        tensor([False,  True, False,  True])
    """
    flat = scores.reshape(-1)  # (n,)
    order = torch.sort(flat, stable=True).indices  # ascending; equal scores keep their positions' order
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep[order[:k]] = False
    return keep.view(scores.shape)


def magnitude_masks(model: nn.Module, sparsity: float, *, scope: str = "global",
                    layers: list[str] | None = None) -> dict[str, torch.Tensor]:
    """``{layer name: bool mask}`` of magnitude pruning at ``sparsity`` (nothing is changed).

    Args:
        model: any model with conv/linear layers.
        sparsity: fraction of the chosen layers' weights to zero, in [0, 1].
        scope: ``"global"`` (one ranking over all chosen layers) or ``"layer"`` (each alone).
        layers: the layers to prune (default: every conv/linear layer); the others get no mask.
    """
    sparsity = check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}; got {scope!r}")
    all_layers = prunable(_check_model(model))
    names = list(all_layers) if layers is None else list(layers)
    unknown = [n for n in names if n not in all_layers]
    if unknown:
        raise ValueError(f"not conv/linear layers of the model: {unknown}; the layers are {list(all_layers)}")
    if not names:
        raise ValueError("no layers to prune: the model has no conv/linear layer (or layers=[] was given)")
    weights = {n: all_layers[n].weight.detach().abs() for n in names}
    if scope == "layer":
        return {n: keep_largest(w, round(sparsity * w.numel())) for n, w in weights.items()}
    flat = torch.cat([w.reshape(-1) for w in weights.values()])  # (n_total,)
    keep = keep_largest(flat, round(sparsity * flat.numel()))
    out, start = {}, 0
    for n, w in weights.items():
        out[n] = keep[start: start + w.numel()].view(w.shape)
        start += w.numel()
    return out


def magnitude(model: nn.Module, sparsity: float, *, scope: str = "global",
              layers: list[str] | None = None) -> nn.Module:
    """A copy of ``model`` with the smallest-magnitude weights set to exactly 0.

    Args:
        model: any model with conv/linear layers (left unchanged).
        sparsity: fraction of the weights set to 0, in [0, 1]: of all chosen layers' weights
            together (``scope="global"``) or of each layer's (``scope="layer"``).
        scope: ``"global"`` or ``"layer"``.
        layers: only these conv/linear layers (default: all of them).

    Returns:
        The pruned copy, in the original's train/eval mode. Train it with
        :func:`qkit.prune.finetune` (the zeros stay zero).

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        ...     _ = model[1].weight.copy_(torch.tensor([[0.5, 5.0]]))
        >>> magnitude(model, 0.5)[0].weight.tolist()     # global: 0.5, 1 and 2 are the 3 smallest of 6
        [[0.0, 0.0], [3.0, 4.0]]
        >>> magnitude(model, 0.5, scope="layer")[1].weight.tolist()   # each layer loses half
        [[0.0, 5.0]]
    """
    kept = magnitude_masks(model, sparsity, scope=scope, layers=layers)
    return apply_masks(copy.deepcopy(model), kept)
