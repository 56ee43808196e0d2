"""Quantization-aware training (lessons 05–06): train through the rounding the integer model will do.

Fake quantization ``x_hat = scale * (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point)``
is inserted wherever the integer model of :func:`qkit.ptq.convert` requantizes,
and on every conv/linear weight; gradients cross the rounding by the
straight-through estimator (or LSQ's and PACT's own rules). After a short
fine-tune, :func:`convert` builds the integer model on the grids training
used, with weights below 8 bits bit-packed.

>>> from qkit import data, models
>>> from qkit.train import evaluate, fit
>>> X, y = data.digits("train"); Xt, yt = data.digits("test")
>>> qat_model = prepare(models.load("mlp"), w_bits=4, a_bits=8, calibration=X[:256])
>>> _ = fit(qat_model, X, y, epochs=1, lr=1e-3, progress=False)
>>> int_model = convert(qat_model)
>>> evaluate(int_model, Xt, yt) > 0.9
True
"""

from __future__ import annotations

import torch
from torch import nn

from qkit._checks import check_bool, check_int
from qkit.ptq import check_skip
from qkit.ptq.calibrate import check_calibration
from qkit.qat.convert import convert_qat
from qkit.qat.functions import lsq_quantize, pact
from qkit.qat.prepare import QATModel, build
from qkit.qat.quantizers import METHODS
from qkit.graph import fold_batchnorm
from qkit.kernels import BACKENDS
from qkit.train import fit, shift_pixels


def _check_w_bits(w_bits, layers: list[str]):
    if isinstance(w_bits, dict):
        unknown = [k for k in w_bits if k not in layers]
        if unknown:
            raise ValueError(f"w_bits names no conv/linear layer of the BN-folded model: {unknown}; its layers "
                             f"are {layers}")
        return {k: check_int(f"w_bits[{k!r}]", v, low=1, high=8) for k, v in w_bits.items()}
    return check_int("w_bits", w_bits, low=1, high=8)


def with_ends(w_bits, layers: list[str], ends: int) -> dict[str, int]:
    """``w_bits`` (an int, or ``{layer: bits}`` with 8 for the others) as a dict over ``layers``, the first
    and the last layer at ``ends`` bits: the weights ``keep_ends`` gives.

    Example:
        >>> with_ends(1, ["stem", "mid", "fc"], 8)
        {'stem': 8, 'mid': 1, 'fc': 8}
    """
    given = w_bits if isinstance(w_bits, dict) else {}
    default = 8 if isinstance(w_bits, dict) else w_bits
    return {name: given.get(name, default) for name in layers} | {layers[0]: ends, layers[-1]: ends}


def prepare(model: nn.Module, *, w_bits=8, a_bits: int = 8, method: str = "minmax", per_channel: bool = True,
            skip=(), calibration=None, keep_ends: int | None = None, learn_zero_point: bool = False,
            ema_steps: int = 50, pact_decay: float = 1e-4) -> QATModel:
    """A trainable copy of ``model`` that simulates its integer deployment; ``model`` is not touched.

    Args:
        model: a trained float model (traceable by ``torch.fx``, as for ``ptq.convert``).
        w_bits: weight bits, 1..8 (1: binary, 2: ternary), or ``{layer name: bits}`` (the others 8):
            mixed precision; names as in :func:`qkit.ptq.layer_names`.
        a_bits: activation bits at every requantization point, 2..8.
        method: ``"minmax"``, ``"lsq"`` or ``"pact"`` (:mod:`qkit.qat.quantizers`).
        per_channel: one weight scale per output channel (default) or one per layer.
        skip: layers kept in float (as in ``ptq.convert``).
        calibration: a batch of training inputs that initialises the grids; needed by ``"lsq"``
            and ``"pact"``; for ``"minmax"`` the first training batch does it if omitted.
        keep_ends: bits for the two ends of the network — the first and last conv/linear weights,
            the model's input and its logits — or None (``w_bits``/``a_bits`` everywhere). Most of the
            low-bit literature keeps them at 8 (Rastegari et al. 2016, Esser et al. 2019): the input
            layer has few weights and the logits decide the class (4 levels of 2-bit logits tie often).
        learn_zero_point: ``"lsq"``/``"pact"``: activations that can be negative also learn a zero
            point (LSQ+, Bhalgat et al. 2020); others keep zero point 0 (or their ReLU's 0).
        ema_steps: ``"minmax"``: training batches over which activation ranges move, then freeze.
        pact_decay: ``"pact"``: λ of the L2 penalty ``λ·Σα²`` (:meth:`QATModel.penalty`).

    Returns:
        A :class:`~qkit.qat.prepare.QATModel` in train mode, float in, float out.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    check_bool("per_channel", per_channel)
    check_bool("learn_zero_point", learn_zero_point)
    a_bits = check_int("a_bits", a_bits, low=2, high=8)
    ema_steps = check_int("ema_steps", ema_steps, low=1)
    if not isinstance(pact_decay, (int, float)) or isinstance(pact_decay, bool) or pact_decay < 0:
        raise ValueError(f"pact_decay must be a number >= 0; got {pact_decay!r}")
    from qkit.ptq import layer_names  # noqa: PLC0415 (one fold only to read the names)
    layers = layer_names(fold_batchnorm(model))
    w_bits = _check_w_bits(w_bits, layers)
    if keep_ends is not None:
        keep_ends = check_int("keep_ends", keep_ends, low=2, high=8)
        w_bits = with_ends(w_bits, layers, keep_ends)
    skip = check_skip(fold_batchnorm(model), skip)
    if calibration is None and method != "minmax":
        raise ValueError(f"method={method!r} learns its grids from an initial value: pass calibration=X, a batch "
                         "of training inputs (e.g. 256 images)")
    x = None if calibration is None else check_calibration(calibration)
    config = {"w_bits": w_bits, "a_bits": a_bits, "keep_ends": keep_ends, "learn_zero_point": learn_zero_point,
              "method": method,
              "per_channel": per_channel, "skip": skip,
              "ema_steps": ema_steps, "pact_decay": float(pact_decay)}
    return build(model, config, x)


FINETUNE = {"epochs": 10, "lr": 3e-4, "grid_lr_factor": 10.0, "batch_size": 64, "schedule": "cosine"}
TEACHER = {"T": 2.0, "alpha": 0.7}  # finetune(teacher=...)'s distillation; its effect: bench_qat --parts kd


def _distill_from(teacher: nn.Module, T: float, alpha: float):
    """``loss_fn(logits, labels, inputs)`` for :func:`qkit.train.fit`: distillation from ``teacher`` (kept in eval mode)."""
    from qkit import distill  # noqa: PLC0415  (distill does not import qat; imported late all the same)

    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module (the float model); got {type(teacher).__name__}")
    distill.loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.int64), T=T, alpha=alpha)  # checks T, alpha
    teacher.eval()

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = teacher(inputs)  # (N, classes) float, the same shifted batch
        return distill.loss(logits, soft, labels, T=T, alpha=alpha)

    return loss_fn


def finetune(qat_model: QATModel, X: torch.Tensor, y: torch.Tensor, *, epochs: int = FINETUNE["epochs"],
             lr: float = FINETUNE["lr"], seed: int = 0, progress: bool = True, teacher: nn.Module | None = None,
             T: float = TEACHER["T"], alpha: float = TEACHER["alpha"], **hooks) -> list[float]:
    """The kit's QAT fine-tuning recipe (:data:`FINETUNE`); returns the mean loss of each epoch.

    Adam with a cosine learning rate, ±1-pixel shifts (as the zoo was trained), PACT's
    penalty added to the loss. The grids' own parameters (LSQ steps, PACT clips) learn at
    ``grid_lr_factor × lr``: Adam moves every parameter by about its learning rate per step
    whatever its gradient's size (so LSQ's gradient scale cancels out under Adam), and a step
    of 0.05 moving by 3e-4 a step would barely move in a short fine-tune. ``hooks``:
    ``on_step`` / ``on_epoch`` of :func:`qkit.train.fit`.

    ``teacher`` (optional, usually the float model the QAT model came from): the loss becomes
    :func:`qkit.distill.loss` of the QAT model's logits against the teacher's on the same
    shifted batch (temperature ``T``, weight ``alpha`` of the soft term), the float network
    teaching its own quantized copy (Mishra & Marr 2018, "Apprentice"; Polino et al. 2018).
    ``benchmarks/bench_qat.py``'s recipes below 4 bits distil (chosen on held-out training
    images by ``benchmarks/validate_recipes.py``); ``--parts kd`` measures what it adds.
    """
    if not isinstance(qat_model, QATModel):
        raise TypeError(f"expected the model qkit.qat.prepare returned; got {type(qat_model).__name__}")
    if teacher is not None:
        if "loss_fn" in hooks:
            raise ValueError("give either teacher= (distillation) or loss_fn=, not both")
        hooks["loss_fn"] = _distill_from(teacher, T, alpha)
    if qat_model.example is None:  # minmax without calibration: the points appear on the first batch,
        qat_model(X[:FINETUNE["batch_size"]])  # before the optimizer takes the parameters
    groups = qat_model.param_groups(lr, lr * FINETUNE["grid_lr_factor"])
    return fit(qat_model, X, y, epochs=epochs, lr=lr, batch_size=FINETUNE["batch_size"], seed=seed,
               progress=progress, schedule=FINETUNE["schedule"], augment=shift_pixels, penalty=qat_model.penalty,
               params=groups, **hooks)


def convert(qat_model: QATModel, *, backend: str = "fast") -> nn.Module:
    """The integer-only model (float in/out, same family as ``ptq.convert(..., "int8")``) on the learned grids.

    Weights below 8 bits are stored bit-packed, so ``qkit.measure.model_size`` shrinks for real.
    """
    if not isinstance(qat_model, QATModel):
        raise TypeError(f"expected the model qkit.qat.prepare returned; got {type(qat_model).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    return convert_qat(qat_model, backend=backend)


__all__ = ["FINETUNE", "METHODS", "TEACHER", "QATModel", "convert", "finetune", "lsq_quantize", "pact", "prepare", "with_ends"]
