"""Model hooks on weights: look a layer up (or replace it) by name; evaluate with another weight swapped in.

"What does accuracy become if this layer's weight were ``w_hat``?" is the
question of every weight experiment (quantized, pruned, perturbed weights).
:func:`swapped_weight` answers it without copying the model: inside the
``with`` block the layer computes with ``w_hat``; afterwards, even if the block
raised, the original tensor is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def get_module(model: nn.Module, layer: str) -> nn.Module:
    """The sub-module of ``model`` called ``layer`` (a dotted name), or a ``ValueError`` listing the names.

    Example:
        >>> from qkit import models
        >>> get_module(models.load("mlp"), "fc1")
        Linear(in_features=64, out_features=128, bias=True)
    """
    modules = dict(model.named_modules())
    if not isinstance(layer, str) or layer not in modules or layer == "":
        names = [n for n in modules if n]
        raise ValueError(f"layer must name a module of the model, one of {names}; got {layer!r}")
    return modules[layer]


def set_module(model: nn.Module, layer: str, module: nn.Module) -> None:
    """Put ``module`` in ``model`` (in place) under the dotted name ``layer``, replacing what was there.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Sequential(nn.ReLU(), nn.Linear(8, 2)))
        >>> set_module(model, "1.0", nn.ReLU6())
        >>> model[1][0]
        ReLU6()
    """
    parent, _, name = layer.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


@contextmanager
def swapped_weight(model: nn.Module, layer: str, weight: torch.Tensor) -> Iterator[nn.Module]:
    """Within the ``with`` block, ``layer`` computes with ``weight`` instead of its own.

    Example:
        >>> from qkit import data, models, fake_quantize, weight_qparams
        >>> from qkit.train import evaluate
        >>> X, y = data.digits("test")
        >>> model = models.load("mlp")
        >>> w = model.fc1.weight.detach()
        >>> with swapped_weight(model, "fc1", fake_quantize(w, weight_qparams(w, 2))):
        ...     low = evaluate(model, X, y)
        >>> low < evaluate(model, X, y)          # 2-bit fc1 hurts; outside the block all is float again
        True
    """
    module = get_module(model, layer)
    current = getattr(module, "weight", None)
    if not isinstance(current, torch.Tensor):
        raise ValueError(f"layer {layer!r} ({type(module).__name__}) has no weight tensor to swap")
    if not isinstance(weight, torch.Tensor) or weight.shape != current.shape:
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"the weight for {layer!r} must be a tensor of shape {tuple(current.shape)}; got {got}")
    original = current.data
    try:
        current.data = weight.detach().to(original.dtype)
        yield model
    finally:
        current.data = original
