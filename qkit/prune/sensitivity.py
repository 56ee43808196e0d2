"""Per-layer pruning sensitivity: accuracy when only one layer is pruned, at several sparsities.

For layer ``l`` and sparsity ``s``, prune ``l`` alone by magnitude to ``s``
(:func:`qkit.prune.magnitude` with ``layers=[l]``), every other layer dense, and
measure the accuracy on ``(X, y)``, without fine-tuning. Han et al. (2015) ran
this scan to give each layer its own sparsity; it shows which layers
tolerate pruning (large, redundant ones) and which do not (the first
convolution, a depthwise or a small last layer). One weight swap per point,
restored afterwards: the model is never copied.
"""

from __future__ import annotations

import torch
from torch import nn

from qkit.prune.magnitude import check_sparsity, keep_largest
from qkit.prune.masks import prunable
from qkit.train import _check_xy, _progress, evaluate


@torch.no_grad()
def sensitivity(model: nn.Module, X: torch.Tensor, y: torch.Tensor, sparsities=(0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
                *, progress: bool = False) -> dict[str, list[float]]:
    """``{layer name: [accuracy with only that layer pruned to s, for s in sparsities]}``.

    Args:
        model: a trained model (unchanged on return).
        X, y: the images and labels to measure accuracy on.
        sparsities: the sparsities to scan, each in [0, 1].
        progress: a progress bar over the layers.

    Returns:
        One list of accuracies (floats in [0, 1]) per conv/linear layer, in model order.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(torch.tensor([[1.0, 0.1], [0.1, 1.0]]))
        >>> X, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
        >>> sensitivity(model, X, y, (0.5, 1.0))     # half pruned: the 0.1s go; all pruned: a tie, argmax 0
        {'1': [1.0, 0.5]}
    """
    _check_xy(X, y)
    sparsities = [check_sparsity(s) for s in sparsities]
    out = {}
    for name, layer in _progress(list(prunable(model).items()), progress, desc="layers", unit="layer"):
        w = layer.weight
        original = w.detach().clone()
        accs = []
        try:
            for s in sparsities:
                keep = keep_largest(original.abs(), round(s * original.numel()))
                w.copy_(original * keep)  # only this layer pruned
                accs.append(evaluate(model, X, y))
        finally:
            w.copy_(original)
        out[name] = accs
    return out
