"""Look at and quantize a network's activations: the outputs of one of its layers.

Weights are known before inference; activations only exist while data flows.
Calibration therefore runs a *representative sample* through the float model,
records what a layer outputs (:func:`capture`), and picks a grid for it; the
effect of that grid on accuracy is measured by fake-quantizing the layer's
output during evaluation (:func:`quantized_output`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from qkit.graph.weights import get_module
from qkit.qparams import QParams
from qkit.quant import fake_quantize


@torch.no_grad()
def capture(model: nn.Module, layer: str, X: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Run ``X`` through ``model`` and return what ``layer`` outputs, all batches concatenated.

    Example:
        >>> from qkit import data, models
        >>> X, _ = data.digits("test")
        >>> capture(models.load("mlp"), "relu", X[:10]).shape
        torch.Size([10, 128])
    """
    module = get_module(model, layer)
    outputs: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda m, i, out: outputs.append(out.detach().clone()))
    was_training = model.training
    try:
        model.eval()
        for i in range(0, len(X), batch_size):
            model(X[i : i + batch_size])
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(outputs)


@contextmanager
def quantized_output(model: nn.Module, layer: str, qp: QParams) -> Iterator[nn.Module]:
    """Within the ``with`` block, ``layer``'s output is fake-quantized on grid ``qp``.

    Example:
        >>> from qkit import data, models, choose_qparams
        >>> from qkit.train import evaluate
        >>> X, y = data.digits("test")
        >>> model = models.load("mlp")
        >>> with quantized_output(model, "relu", choose_qparams(0.0, 4.0, bits=2, signed=False)):
        ...     low = evaluate(model, X, y)
        >>> low < evaluate(model, X, y)          # 2 bits hurt; outside the block all is float again
        True
    """
    module = get_module(model, layer)
    handle = module.register_forward_hook(lambda m, i, out: fake_quantize(out, qp))
    try:
        yield model
    finally:
        handle.remove()
