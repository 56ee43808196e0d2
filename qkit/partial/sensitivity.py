"""Partial quantization, part 2: how much accuracy each layer loses when it alone is quantized.

Simulated quantization (float arithmetic, grid values, as :mod:`qkit.simulate`)
on the BN-folded copy of the model. Quantizing layer ``l`` at ``b`` bits means:

1. its weights: per output channel, symmetric narrow grid
   (``qkit.weight_qparams(w, b, narrow=True)``: ``w ≈ scale[c] * q``, ``q`` in
   ``[-(2^(b-1) - 1), 2^(b-1) - 1]``; b = 2 is ternary {-1, 0, 1}·scale),
   fake-quantized; b = 32 leaves them float;
2. its output activation (at its activation point, see :mod:`qkit.partial.sizes`):
   a min-max grid ``x ≈ scale * (q - zero_point)`` observed on the calibration
   batch *after* step 1 (the model as it will be evaluated, as :func:`qkit.simulate.simulate`
   does), unsigned when the observed minimum is >= 0, fake-quantized by a forward hook.

The layer's **drop** is ``100 · (acc_float - acc_quantized)`` percentage points on
``(X, y)``, every other layer float. One calibration pass and one evaluation
per layer (and per bit-width); weights are swapped in and out of one folded copy
(:func:`qkit.graph.swapped_weight`), never copied.
"""

from __future__ import annotations

import torch
from torch import nn

from qkit._checks import check_int
from qkit.activations import quantized_output
from qkit.graph import get_module, swapped_weight
from qkit.observers import MinMaxObserver
from qkit.partial.sizes import (FLOAT_BITS, Folded, check_bits_map, check_calibration, check_choices,
                                check_data, check_model, fold)
from qkit.qparams import QParams, weight_qparams
from qkit.quant import fake_quantize
from qkit.train import _progress, evaluate


def quantized_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """``w`` on its per-channel symmetric narrow ``bits``-bit grid (``bits == 32``: ``w`` itself).

    Example:
        >>> w = torch.tensor([[-1.0, 0.2, 0.6], [0.1, 0.3, -0.4]])
        >>> quantized_weight(w, 2)                  # ternary: {-1, 0, 1} · max|w[c]|
        tensor([[-1.0000,  0.0000,  1.0000],
                [ 0.0000,  0.4000, -0.4000]])
    """
    if bits == FLOAT_BITS:
        return w
    return fake_quantize(w, weight_qparams(w, bits, narrow=True))  # (out, ...) float32


@torch.no_grad()
def observe(gm: nn.Module, points: list[str], calibration: torch.Tensor) -> dict[str, MinMaxObserver]:
    """Run ``calibration`` through ``gm`` once; a min-max observer of each module in ``points``' output."""
    observers = {p: MinMaxObserver() for p in points}

    def record(p: str):
        def hook(module, inputs, out) -> None:  # returns None: the output is left alone
            observers[p].update(out)
        return hook

    handles = [get_module(gm, p).register_forward_hook(record(p)) for p in observers]
    try:
        gm.eval()(calibration)
    finally:
        for h in handles:
            h.remove()
    return observers


def activation_grid(observer: MinMaxObserver, bits: int) -> QParams:
    """The observed range on an affine ``bits``-bit grid: unsigned if its minimum is >= 0, else signed."""
    lo, _ = observer.range()
    return observer.qparams(bits, signed=bool(lo < 0))


@torch.no_grad()
def layer_accuracy(folded: Folded, layer: str, w_bits: int, act_bits: int | None,
                   calibration: torch.Tensor | None, X: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy with only ``layer`` quantized: weights at ``w_bits``, its activation at ``act_bits`` (None: float)."""
    gm, point = folded.gm, folded.points[layer]
    w = get_module(gm, layer).weight.detach()
    with swapped_weight(gm, layer, quantized_weight(w, w_bits)):
        if act_bits is None:
            return evaluate(gm, X, y)
        grid = activation_grid(observe(gm, [point], calibration)[point], act_bits)
        with quantized_output(gm, point, grid):
            return evaluate(gm, X, y)


def sensitivity_table(model: nn.Module, calibration, X, y, *, choices=(2, 4, 8, 32),
                      act_bits: int | None = None, progress: bool = False) -> dict[str, dict[int, float]]:
    """``{layer: {bits: drop}}``: each layer alone at each weight bit-width (drop in points; 32 → 0.0).

    Args:
        model: a float classifier (left unchanged); layers are those of :func:`qkit.partial.layers`.
        calibration: representative inputs for the activation grid (unused if ``act_bits`` is None).
        X, y: evaluation inputs and labels.
        choices: weight bit-widths, each 2..16 or 32 (float, drop 0 by definition).
        act_bits: also quantize the layer's output activation at this width; None: float.
        progress: show a progress bar over the layers.

    Example:
        >>> from qkit import data, models
        >>> Xc, _ = data.digits("train")
        >>> X, y = data.digits("test")
        >>> table = sensitivity_table(models.load("mlp"), Xc[:256], X, y, choices=(2, 32))
        >>> table["fc1"][32], table["fc1"][2] > 1.0   # ternary fc1 costs more than a point
        (0.0, True)
    """
    folded = fold(model)
    choices = check_choices(choices)
    X, y = check_data(X, y)
    if act_bits is not None:
        act_bits = check_int("act_bits", act_bits, low=2, high=16)
        calibration = check_calibration(calibration)
    base = evaluate(folded.gm, X, y)
    table: dict[str, dict[int, float]] = {}
    for layer in _bar(folded.layers, progress):
        table[layer] = {b: 0.0 if b == FLOAT_BITS and act_bits is None else
                        100.0 * (base - layer_accuracy(folded, layer, b, act_bits, calibration, X, y))
                        for b in choices}
    return table


def sensitivity(model: nn.Module, calibration, X, y, *, bits: int = 8,
                progress: bool = False) -> dict[str, float]:
    """Accuracy drop (percentage points) per layer when only that layer is quantized at ``bits``.

    "Quantized" means its weights (per-channel symmetric grid) and its output
    activation (min-max grid from ``calibration``, after the ReLU that reads it
    if there is one), see the module docstring; the baseline is the BN-folded
    float model. A negative drop means quantizing that layer happened to help.

    Args:
        model: a float classifier (left unchanged).
        calibration: representative input batch (e.g. 256 training images).
        X, y: evaluation inputs (N, ...) and labels (N,).
        bits: 2..16, for the weights and the activation.
        progress: show a progress bar over the layers.

    Returns:
        ``{layer: drop}`` in graph order; layer names of the BN-folded graph
        (``"stem.conv"``, ``"blocks.0.conv1"``, ``"fc"``).

    Example:
        >>> from qkit import data, models
        >>> Xc, _ = data.digits("train")
        >>> X, y = data.digits("test")
        >>> drops = sensitivity(models.load("mlp"), Xc[:256], X, y, bits=2)
        >>> list(drops), max(drops.values()) > 1.0
        (['fc1', 'fc2'], True)
        >>> max(abs(d) for d in sensitivity(models.load("mlp"), Xc[:256], X, y, bits=16).values()) < 0.5
        True
    """
    check_model(model)
    bits = check_int("bits", bits, low=2, high=16)
    table = sensitivity_table(model, calibration, X, y, choices=(bits,), act_bits=bits, progress=progress)
    return {layer: drops[bits] for layer, drops in table.items()}


@torch.no_grad()
def simulate_bits(model: nn.Module, bits: dict[str, int], calibration=None, *,
                  act_bits: int | None = 8) -> nn.Module:
    """The BN-folded copy with each layer's weights on its own grid and every activation point at ``act_bits``.

    Args:
        model: a float model (left unchanged).
        bits: ``{layer: weight bits}``, 2..16 or 32 (float); a layer left out stays float.
        calibration: representative inputs; needed unless ``act_bits`` is None.
        act_bits: width of every layer's output activation (after its ReLU, see
            :mod:`qkit.partial.sizes`), calibrated once after the weights are quantized;
            None leaves activations float. Adds, pools and concatenations stay float.

    Returns:
        The simulated model (a ``torch.fx.GraphModule``), eval mode.

    Example:
        >>> from qkit import data, models
        >>> from qkit.train import _progress, evaluate
        >>> X, y = data.digits("test")
        >>> mlp = models.load("mlp")
        >>> sim = simulate_bits(mlp, {"fc1": 2}, X[:64])     # fc2 float, activations 8-bit
        >>> sim.fc1.weight[0].unique().numel() <= 3, bool(torch.equal(sim.fc2.weight, mlp.fc2.weight))
        (True, True)
        >>> evaluate(sim, X, y) < evaluate(mlp, X, y)
        True
    """
    folded = fold(model)
    bits = check_bits_map(folded.layers, bits)
    if act_bits is not None:
        act_bits = check_int("act_bits", act_bits, low=2, high=16)
        calibration = check_calibration(calibration)
    gm = folded.gm
    for layer, b in bits.items():
        w = get_module(gm, layer).weight
        w.copy_(quantized_weight(w.detach(), b))
    if act_bits is None:
        return gm.eval()
    points = list(dict.fromkeys(folded.points[n] for n in folded.layers))
    grids = {p: activation_grid(obs, act_bits) for p, obs in observe(gm, points, calibration).items()}
    for p, qp in grids.items():
        get_module(gm, p).register_forward_hook(lambda m, i, out, qp=qp: fake_quantize(out, qp))
    return gm.eval()


def _bar(it, show: bool):
    return _progress(it, show, desc="layers", unit="layer")
