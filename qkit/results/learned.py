"""Lesson 06's grid: learned (LSQ, PACT) against observed (min-max) QAT ranges at 2–4 bits; LSQ's init.

Two experiments, each point one :func:`qkit.qat.prepare` + :func:`qkit.qat.finetune` (the kit's
recipe) on the digits, measured on the test set:

* ``"compare"``: ``model`` × ``method`` × ``bits`` (weights and activations alike, W=A) × ``seed``
  (the fine-tune's batch order and shifts). Values: float, before and after fine-tuning accuracy.
  The network's two ends (first and last layer, its input and logits) stay at 8 bits, as in
  Esser et al. 2019 (``keep_ends``): four 2-bit logit levels would tie between classes.
* ``"init"``: LSQ on ``model`` at ``bits`` with every learned step (activation and weight
  quantizers) multiplied by ``k`` after ``prepare``: accuracy before and after a short fine-tune
  (``ARGS["init_epochs"]`` epochs).

Make it with ``python -m qkit.results.make learned`` (one thread); the JSON is committed.
"""

from __future__ import annotations

import torch

ARGS = {
    "compare_models": ["resnet", "mobilenet_v2"],
    "methods": ["minmax", "lsq", "pact"],
    "bits": {"resnet": [2, 3, 4], "mobilenet_v2": [2, 4]},  # mobilenet_v2 costs 4× resnet: 8-minute budget
    "seeds": [0, 1, 2],
    "calibration": 256,
    "init_model": "resnet",
    "init_bits": [2, 3, 4],
    "init_factors": [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
    "init_epochs": 3,
    "keep_ends": 8,  # first/last layer, input and logits at 8 bits (Esser et al. 2019 do the same)
}


def points(args: dict) -> list[dict]:
    """Every point: the comparison first, then the initialisation sweep."""
    out = [{"experiment": "compare", "model": m, "method": meth, "bits": b, "seed": s}
           for m in args["compare_models"] for b in args["bits"][m] for meth in args["methods"]
           for s in args["seeds"]]
    out += [{"experiment": "init", "model": args["init_model"], "method": "lsq", "bits": b, "k": k, "seed": 0}
            for b in args["init_bits"] for k in args["init_factors"]]
    return out


def scale_init(qat_model, k: float) -> int:
    """Multiply every learned LSQ step (``.scale`` of each ActQuant and WeightQuant) by ``k`` in place;
    return how many parameters were scaled.

    Example:
        >>> from qkit import data, models, qat
        >>> X, _ = data.digits("train")
        >>> m = qat.prepare(models.load("mlp"), w_bits=4, a_bits=4, method="lsq", calibration=X[:64])
        >>> before = m.act_quantizers()["relu"].scale.item()
        >>> scale_init(m, 2.0), m.act_quantizers()["relu"].scale.item() == 2 * before
        (5, True)
    """
    quantizers = [*qat_model.act_quantizers().values(), *qat_model.weight_quantizers().values()]
    n = 0
    with torch.no_grad():
        for q in quantizers:
            if getattr(q, "method", None) == "lsq" and isinstance(getattr(q, "scale", None), torch.nn.Parameter):
                q.scale.mul_(k)
                n += 1
    return n


def compute(point: dict) -> dict:
    """One point's accuracies (fractions in [0, 1]) and what ran it."""
    from qkit import data, models, qat  # noqa: PLC0415
    from qkit.train import evaluate  # noqa: PLC0415

    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    model = models.load(point["model"])
    b = point["bits"]
    qm = qat.prepare(model, w_bits=b, a_bits=b, method=point["method"], keep_ends=ARGS["keep_ends"],
                     calibration=X[:ARGS["calibration"]])
    if point["experiment"] == "init":
        scale_init(qm, point["k"])
        epochs = ARGS["init_epochs"]
    else:
        epochs = qat.FINETUNE["epochs"]
    before = evaluate(qm, Xt, yt)
    qat.finetune(qm, X, y, epochs=epochs, seed=point["seed"], progress=False)
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    return {"float_acc": evaluate(model, Xt, yt), "before_acc": before, "acc": evaluate(qm, Xt, yt),
            "epochs": epochs, "finetune": dict(qat.FINETUNE, epochs=epochs),
            "cpu": float_path()}
