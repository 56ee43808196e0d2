"""Lesson 07's grid: mixed precision of mobilenet_v1's weights under a size budget.

Every point is one of three kinds (weights only: activations stay float in the
simulated points; the ``deploy`` points are real integer models with 8-bit activations):

* ``uniform``: every layer at ``bits`` (32 = float) — test accuracy, weight bytes;
* ``budget``: at ``budget`` bytes of weights, four allocations — the plain greedy
  (:func:`qkit.partial.allocate`, single-layer drops), the measured greedy
  (:func:`qkit.partial.greedy_measured`), and ``seeds`` random allocations
  (:func:`qkit.partial.random_allocation`) — each with its bits, bytes and test accuracy;
* ``deploy``: an allocation at the size of uniform 4-bit weights built as an integer
  model, ``qkit.qat.convert(qkit.qat.prepare(model, w_bits=..., skip=float layers))``,
  before ("PTQ") and after a short QAT fine-tune (``qkit.qat.finetune``, ``qat_epochs``
  epochs); test accuracy and the real file size (``qkit.measure.model_size``).

Choosing never sees the test split: the greedy allocations are chosen on the last
``choose`` images of the training split (the zoo was trained on the whole training
split, so they are not unseen: only kept apart from the test split, which every
reported accuracy is measured on). Calibration: the first ``calibration`` training images.
"""

from __future__ import annotations

import torch

ARGS = {
    "model": "mobilenet_v1",
    "choices": [2, 3, 4, 8, 32],
    "calibration": 256,  # the first training images
    "choose": 359,  # the last training images: the greedy allocations are chosen on them
    "seeds": 5,  # random allocations per budget
    "uniform": [2, 3, 4, 8, 32],
    "fractions": [0.09, 0.1, 0.11, 0.13, 0.16, 0.18, 0.21, 0.24, 0.3, 0.4, 0.55, 0.75],  # of fp32 weight bytes
    "qat_epochs": 2,
    "deploy": ["uniform4", "greedy", "greedy_no_float"],
}


def _setup(args: dict):
    from qkit import data, models, partial

    model = models.load(args["model"])
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    names = partial.layers(model)
    return model, names, (X, y), (Xt, yt)


def budgets(args: dict) -> list[int]:
    """Bytes of every budget: the uniform widths' sizes (2..8 bits, float) and fractions of float's."""
    from qkit import partial

    model, names, _, _ = _setup(args)
    fp32 = partial.weight_bytes(model, {})
    uniform = {partial.weight_bytes(model, {n: b for n in names}) for b in args["uniform"]}
    least = partial.weight_bytes(model, {n: min(args["choices"]) for n in names})
    return sorted(uniform | {round(f * fp32) for f in args["fractions"] if f * fp32 >= least})


def points(args: dict) -> list[dict]:
    return ([{"kind": "uniform", "bits": b} for b in args["uniform"]]
            + [{"kind": "budget", "budget": b} for b in budgets(args)]
            + [{"kind": "deploy", "allocation": a} for a in args["deploy"]])


def _test_accuracy(model, bits, Xt, yt) -> float:
    from qkit import partial
    from qkit.train import evaluate

    return evaluate(partial.simulate_bits(model, bits, None, act_bits=None), Xt, yt)


def _greedy(model, names, train, budget: int, choices) -> dict[str, int]:
    from qkit import partial

    X, y = train
    n = ARGS["choose"]
    return partial.greedy_measured(model, None, X[-n:], y[-n:], budget_bytes=budget, choices=tuple(choices))


def compute(point: dict) -> dict:
    from qkit import measure, partial, qat
    from qkit.train import evaluate

    args = ARGS
    model, names, train, (Xt, yt) = _setup(args)
    X, y = train
    choices = tuple(args["choices"])
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    out: dict = {"capability": float_path()}
    if point["kind"] == "uniform":
        bits = {n: point["bits"] for n in names}
        return {**out, "bits_map": bits, "bytes": partial.weight_bytes(model, bits),
                "accuracy": _test_accuracy(model, bits, Xt, yt)}
    if point["kind"] == "budget":
        budget, n = point["budget"], args["choose"]
        table = partial.sensitivity_table(model, None, X[-n:], y[-n:], choices=choices)
        found = {"greedy": _greedy(model, names, train, budget, choices),
                 "plain": partial.allocate(model, None, None, None, budget_bytes=budget, choices=choices, table=table)}
        for seed in range(args["seeds"]):
            found[f"random{seed}"] = partial.random_allocation(model, budget, choices, seed)
        for key, bits in found.items():
            out[key] = {"bits_map": bits, "bytes": partial.weight_bytes(model, bits),
                        "accuracy": _test_accuracy(model, bits, Xt, yt)}
        return out
    uniform4 = partial.weight_bytes(model, {n: 4 for n in names})
    bits = {"uniform4": lambda: {n: 4 for n in names},
            "greedy": lambda: _greedy(model, names, train, uniform4, choices),
            "greedy_no_float": lambda: _greedy(model, names, train, uniform4, [c for c in choices if c != 32]),
            }[point["allocation"]]()
    w_bits = {k: b for k, b in bits.items() if b != 32}
    skip = tuple(k for k, b in bits.items() if b == 32)
    torch.manual_seed(0)
    qat_model = qat.prepare(model, w_bits=w_bits, skip=skip, calibration=X[:args["calibration"]])
    ptq_model = qat.convert(qat_model)
    out.update(bits_map=bits, bytes=partial.weight_bytes(model, bits), ptq_accuracy=evaluate(ptq_model, Xt, yt),
               ptq_file=measure.model_size(ptq_model))
    qat.finetune(qat_model, X, y, epochs=args["qat_epochs"], seed=0, progress=False)
    qat_int = qat.convert(qat_model)
    out.update(qat_accuracy=evaluate(qat_int, Xt, yt), qat_file=measure.model_size(qat_int),
               float_file=measure.model_size(model), float_accuracy=evaluate(model, Xt, yt))
    return out
