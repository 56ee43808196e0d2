"""Pruning masks: which conv/linear weights are kept, and keeping the others at exactly 0 while training.

A mask ``m`` (bool, the weight's shape) keeps ``w`` where ``m`` is True; the pruned
model computes with ``w * m``. Here the mask is not stored beside the weight: a
pruned weight *is* 0, so ``mask = (w != 0)`` is read back from the weights
themselves (:func:`masks`). Training would move those zeros (Adam updates every
weight that gets a gradient, and a pruned weight does), so :func:`keep_masks`
returns an ``on_step`` hook for :func:`qkit.train.fit` (and :func:`qkit.qat.finetune`)
that writes ``w ← w * m`` after every optimizer step.

Why a hook and not ``torch.nn.utils.parametrize`` (``w = w_orig * m`` computed in
forward): with the hook the layers stay plain ``nn.Conv2d`` / ``nn.Linear`` with a
plain ``weight``, so everything downstream works unchanged — ``state_dict`` keys,
:func:`qkit.qat.prepare` (BN folding scales each output channel, ``w·γ/σ``, so a 0
stays 0; its QAT layers re-read the zeros with :func:`masks`), :func:`qkit.ptq.convert`
(a weight of 0 quantizes to the integer 0 on a symmetric grid) and :mod:`qkit.prune.sparse`.
The price: a pruned weight is non-zero between an optimizer step and the hook, never
in a forward pass.

>>> layer = nn.Linear(3, 2, bias=False)
>>> with torch.no_grad():
...     _ = layer.weight.copy_(torch.tensor([[0.5, 0.0, -1.0], [0.0, 0.0, 2.0]]))
>>> masks(layer)[""].int()
tensor([[1, 0, 1],
        [0, 0, 1]], dtype=torch.int32)
>>> sparsity(layer)  # 3 of 6 weights are 0
0.5
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from qkit._checks import check_int
from qkit.train import fit, shift_pixels

PRUNABLE = (nn.Conv2d, nn.Linear)  # QAT's QATConv2d / QATLinear are subclasses: included


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return model


def prunable(model: nn.Module) -> dict[str, nn.Module]:
    """``{name: layer}`` of every conv/linear layer (the layers pruning acts on), in model order.

    Example:
        >>> list(prunable(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))))
        ['0', '2']
    """
    _check_model(model)
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer name: weight != 0}`` (bool, the weight's shape) for every conv/linear layer."""
    return {name: m.weight.detach() != 0 for name, m in prunable(model).items()}


def _check_masks(model: nn.Module, kept: dict[str, torch.Tensor]) -> dict[str, nn.Module]:
    layers = prunable(model)
    if not isinstance(kept, dict):
        raise TypeError(f"masks must be a dict {{layer name: bool tensor}}; got {type(kept).__name__}")
    for name, m in kept.items():
        if name not in layers:
            raise ValueError(f"mask for {name!r}, which is not a conv/linear layer of the model; "
                             f"the layers are {list(layers)}")
        if not isinstance(m, torch.Tensor) or m.shape != layers[name].weight.shape:
            got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ValueError(f"mask {name!r} must be a tensor of shape {tuple(layers[name].weight.shape)}; got {got}")
    return layers


@torch.no_grad()
def apply_masks(model: nn.Module, kept: dict[str, torch.Tensor]) -> nn.Module:
    """Set every weight outside its mask to 0, in place (layers without a mask are left alone); returns ``model``.

    Example:
        >>> layer = nn.Linear(2, 1, bias=False)
        >>> apply_masks(layer, {"": torch.tensor([[True, False]])}).weight[0, 1].item()
        0.0
    """
    layers = _check_masks(_check_model(model), kept)
    for name, m in kept.items():
        w = layers[name].weight
        w.mul_(m.to(w.dtype))  # (out, ...) float32; masked entries become exactly 0 (w·0 = ±0)
        w.masked_fill_(~m.bool(), 0.0)  # and +0, not -0
    return model


def keep_masks(model: nn.Module, kept: dict[str, torch.Tensor] | None = None) -> Callable[[int, float], None]:
    """An ``on_step(step, loss)`` hook that re-applies the masks after every optimizer step.

    Args:
        model: the model being trained (the hook writes into its weights).
        kept: the masks; default: the model's zeros now (:func:`masks`).

    Example:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight[:, :2].zero_()
        >>> X, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
        >>> _ = fit(model, X, y, epochs=2, progress=False, on_step=keep_masks(model))
        >>> model[1].weight[:, :2].abs().max().item()      # still exactly zero after training
        0.0
    """
    kept = masks(model) if kept is None else {k: v.detach().bool().clone() for k, v in kept.items()}
    _check_masks(model, kept)

    def on_step(step: int, loss: float) -> None:
        apply_masks(model, kept)

    return on_step


def sparsity(model: nn.Module) -> float:
    """Fraction of the conv/linear weights that are exactly 0 (biases, BN and others not counted).

    Example:
        >>> layer = nn.Linear(4, 1, bias=True)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 2.0]]))
        >>> sparsity(layer)
        0.5
    """
    layers = prunable(model)
    total = sum(m.weight.numel() for m in layers.values())
    if total == 0:
        raise ValueError("the model has no conv/linear weights to count")
    zeros = sum(int((m.weight == 0).sum()) for m in layers.values())
    return zeros / total


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """``{layer name: fraction of its weights that are 0}`` for every conv/linear layer."""
    return {name: float((m.weight == 0).float().mean()) for name, m in prunable(model).items()}


# The kit's fine-tuning recipe after pruning: Adam, cosine decay, ±1-pixel shifts (as the zoo was trained).
# lr and epochs were chosen on a held-out slice of the training split (see qkit/results/prune.py).
FINETUNE = {"epochs": 8, "lr": 1e-2, "batch_size": 64, "schedule": "cosine", "weight_decay": 0.0}


def finetune(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int = FINETUNE["epochs"],
             lr: float = FINETUNE["lr"], seed: int = 0, masks: dict[str, torch.Tensor] | None = None,
             progress: bool = True, on_step: Callable[[int, float], None] | None = None,
             **fit_keywords) -> list[float]:
    """Train a pruned ``model`` in place with :func:`qkit.train.fit`, its zeros kept at exactly 0.

    Args:
        model: a pruned model (e.g. from :func:`qkit.prune.magnitude`).
        X, y: training images (N, 1, 8, 8) float32 and labels (N,) int64.
        epochs, lr, seed: as :func:`qkit.train.fit` (defaults: :data:`FINETUNE`).
        masks: ``{layer name: bool mask}``; default: the model's zeros now.
        progress: a progress bar over the epochs.
        on_step: an extra ``on_step(step, loss)`` hook, called after the masks are re-applied.
        **fit_keywords: any other keyword of :func:`qkit.train.fit` (batch_size, schedule, augment …).

    Returns:
        The mean training loss of each epoch.
    """
    check_int("epochs", epochs, low=1)
    keep = keep_masks(model, masks)

    def step(t: int, loss: float) -> None:
        keep(t, loss)
        if on_step is not None:
            on_step(t, loss)

    keywords = {"batch_size": FINETUNE["batch_size"], "schedule": FINETUNE["schedule"],
                "weight_decay": FINETUNE["weight_decay"], "augment": shift_pixels, **fit_keywords}
    return fit(model, X, y, epochs=epochs, lr=lr, seed=seed, progress=progress, on_step=step, **keywords)
