"""Grid ``qat`` (lesson 05): PTQ vs QAT accuracy of the zoo CNNs from 8 down to 1 weight bit.

One point is ``(model, w_bits, seed)``; its values hold the accuracy after each
fine-tuning length in ``ARGS["epochs"]`` (0 = no training: the calibrated grids
alone, i.e. post-training quantization on the very grids QAT starts from).

**One run per point, evaluated between epochs.** :func:`qkit.qat.finetune`'s
cosine learning rate depends on the total number of epochs, so calling it
epoch by epoch would train a different model. :func:`train` is its loop written
out (same keywords, :data:`qkit.qat.FINETUNE`; same seeded generator, shifts and
penalty as :func:`qkit.train.fit`) with an evaluation after the listed epochs:
the last one is exactly ``finetune(epochs=max)``; an earlier one is that run
stopped part-way (the learning rate not yet decayed), which is cheaper than
separate runs and slightly pessimistic for them. The longest run is 6 epochs, not
the recipe's default 10: the 60 points must compute in 8 minutes on one core.

``w_bits=1`` keeps the first and last layer at 8 bits, as the binary-network
literature does (Rastegari et al. 2016; Zhou et al. 2016). Activations
are 8-bit throughout. The random seed picks both the calibration batch (256 training
images) and the batch order, so even the PTQ points have a spread.

>>> [p for p in points(ARGS)][:2]
[{'model': 'mobilenet_v1', 'w_bits': 8, 'seed': 0}, {'model': 'mobilenet_v1', 'w_bits': 8, 'seed': 1}]
"""

from __future__ import annotations


import torch
from torch import nn

ARGS = {"models": ["mobilenet_v1", "mobilenet_v2", "resnet", "inception"], "w_bits": [8, 4, 3, 2, 1],
        "seeds": [0, 1, 2], "epochs": [0, 1, 2, 4, 6], "a_bits": 8, "calibration": 256}


def points(args: dict) -> list[dict]:
    """Every ``(model, w_bits, seed)`` of the grid."""
    return [{"model": m, "w_bits": b, "seed": s} for m in args["models"] for b in args["w_bits"]
            for s in args["seeds"]]


def w_bits_of(model: nn.Module, bits: int):
    """What ``prepare`` gets for ``bits``: the int, or for 1 bit a dict keeping the first and last layer at 8.

    >>> from qkit import models
    >>> spec = w_bits_of(models.load("resnet"), 1)
    >>> spec["stem.conv"], spec["fc"], sorted(set(spec.values()))
    (8, 8, [1, 8])
    """
    if bits != 1:
        return bits
    from qkit.graph import fold_batchnorm  # noqa: PLC0415
    from qkit.ptq import layer_names  # noqa: PLC0415
    from qkit.qat import with_ends  # noqa: PLC0415

    return with_ends(1, layer_names(fold_batchnorm(model)), 8)  # as prepare(..., keep_ends=8) sets the weights


def calibration_batch(X: torch.Tensor, seed: int) -> torch.Tensor:
    """The ``ARGS["calibration"]`` training images that calibrate the grids of seed ``seed``'s points."""
    pick = torch.randperm(len(X), generator=torch.Generator().manual_seed(1000 + seed))  # (N,)
    return X[pick[: ARGS["calibration"]]]


def train(qat_model, X: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int, every=(), on_epoch=None):
    """:func:`qkit.qat.finetune`, calling ``on_epoch(e)`` after each epoch ``e`` in ``every``."""
    from qkit.qat import finetune  # noqa: PLC0415

    def hook(e: int) -> None:
        if on_epoch is not None and e in every:
            on_epoch(e)

    finetune(qat_model, X, y, epochs=epochs, seed=seed, progress=False, on_epoch=hook)


def compute(point: dict) -> dict:
    """Accuracy (QAT model and its integer conversion), argmax agreement and packed size after each epoch count."""
    from qkit import data, measure, models, qat  # noqa: PLC0415
    from qkit.train import evaluate, outputs  # noqa: PLC0415

    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    float_model = models.load(point["model"])
    seed = point["seed"]
    qm = qat.prepare(float_model, w_bits=w_bits_of(float_model, point["w_bits"]), a_bits=ARGS["a_bits"],
                     calibration=calibration_batch(X, seed))
    out = {"epochs": [], "qat_accuracy": [], "int_accuracy": [], "agreement": []}

    def record(e: int) -> None:
        int_model = qat.convert(qm)
        fake, real = outputs(qm, Xt).argmax(1), outputs(int_model, Xt).argmax(1)  # (N,) each
        out["epochs"].append(e)
        out["qat_accuracy"].append(evaluate(qm, Xt, yt))
        out["int_accuracy"].append((real == yt).sum().item() / len(yt))
        out["agreement"].append((fake == real).sum().item() / len(yt))
        out["int_bytes"] = measure.model_size(int_model)

    record(0)
    every = [e for e in ARGS["epochs"] if e > 0]
    train(qm, X, y, epochs=max(every), seed=seed, every=every, on_epoch=record)
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    return {**out, "float_accuracy": evaluate(float_model, Xt, yt), "float_bytes": measure.model_size(float_model),
            "cpu": float_path()}


def table(rows: list[dict]) -> list[dict]:
    """One flat row per ``(model, w_bits, seed, epochs)`` from the stored rows (what the lesson plots).

    >>> table([{"model": "m", "w_bits": 4, "seed": 0, "epochs": [0, 2], "qat_accuracy": [0.5, 0.9],
    ...         "int_accuracy": [0.5, 0.875], "agreement": [1.0, 0.99]}])[1]
    {'model': 'm', 'w_bits': 4, 'seed': 0, 'epochs': 2, 'qat_accuracy': 0.9, 'int_accuracy': 0.875, 'agreement': 0.99}
    """
    flat = []
    for r in rows:
        for i, e in enumerate(r["epochs"]):
            flat.append({"model": r["model"], "w_bits": r["w_bits"], "seed": r["seed"], "epochs": e,
                         "qat_accuracy": r["qat_accuracy"][i], "int_accuracy": r["int_accuracy"][i],
                         "agreement": r["agreement"][i]})
    return flat
