"""Lesson 08's grid: magnitude pruning of the zoo's resnet, before and after fine-tuning, one-shot and gradual.

Every point is one of seven kinds (all accuracies on the digits test split unless said):

* ``oneshot``: ``sparsity`` × ``scope`` (global / layer): test accuracy right after
  :func:`qkit.prune.magnitude`, no training (deterministic: no seed); each layer's sparsity, and the
  real file sizes (``qkit.measure.model_size``) of the model stored sparse (:func:`qkit.prune.to_sparse`)
  and dense, in float32 and as an int8 model (``qkit.ptq.convert``, the first 256 training images);
* ``finetuned``: ``sparsity`` × ``seed``: global magnitude pruning, then
  :func:`qkit.prune.finetune` (``epochs``, ``lr``; the random seed draws the batch order and shifts);
* ``gradual``: ``sparsity`` × ``seed``: :func:`qkit.prune.gradual` from the dense model over
  the same ``epochs`` and recipe (sparsity rises over the first ``prune_fraction`` of the steps,
  a pruning step every ``dt`` optimizer steps);
* ``sensitivity``: one point, :func:`qkit.prune.sensitivity` (each layer pruned alone, no
  fine-tuning) — a diagnosis, no choice is made from it;
* ``choose``: the fine-tuning recipe's choice (``lr`` × ``epochs``, one-shot at ``choose_sparsity``):
  fine-tuned on the training split without its last ``holdout`` images, measured on those (mean
  over ``seeds``). At 90 % every recipe gets all of them right, so the choice is made at 95 %. The
  zoo model was trained on the whole training split, so these images are not unseen by it: only
  kept apart from the test split. The recipe in :data:`qkit.prune.FINETUNE` is the best of these
  (ties: fewer epochs, then smaller lr);
* ``choose_gradual``: the schedule's choice (``prune_fraction`` × ``dt``), with that recipe, the same
  way; ``ARGS["prune_fraction"]`` and ``ARGS["dt"]`` are the best (ties: the first in ``ARGS`` order);
* ``zoo``: ``model`` × ``seed``, every other zoo model at ``zoo_sparsity``: the dense accuracy,
  one-shot + fine-tune and gradual pruning, both with resnet's recipe above (chosen for resnet, not for
  that model): how far the resnet comparison carries.
"""

from __future__ import annotations

import torch

ARGS = {
    "model": "resnet",
    "sparsities": [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99],
    "gradual": [0.9, 0.95, 0.97, 0.99],
    "seeds": [0, 1, 2],
    "epochs": 8,
    "lr": 1e-2,
    "sensitivity": [0.5, 0.7, 0.8, 0.9, 0.95, 0.99],
    "prune_fraction": 0.25,
    "dt": 2,
    "choose_sparsity": 0.95,
    "choose_lr": [1e-3, 3e-3, 1e-2, 3e-2],
    "choose_epochs": [4, 8],
    "choose_prune_fraction": [0.25, 0.5, 0.75],
    "choose_dt": [2, 10],
    "holdout": 359,
    "zoo": ["inception", "mlp", "mobilenet_v1", "mobilenet_v2", "wide_mlp"],
    "zoo_sparsity": 0.95,
}


def points(args: dict) -> list[dict]:
    pts = [{"kind": "oneshot", "sparsity": s, "scope": sc} for sc in ("global", "layer") for s in args["sparsities"]]
    pts += [{"kind": "finetuned", "sparsity": s, "seed": seed} for s in args["sparsities"] for seed in args["seeds"]]
    pts += [{"kind": "gradual", "sparsity": s, "seed": seed} for s in args["gradual"] for seed in args["seeds"]]
    pts += [{"kind": "sensitivity"}]
    pts += [{"kind": "choose", "lr": lr, "epochs": e} for lr in args["choose_lr"] for e in args["choose_epochs"]]
    pts += [{"kind": "choose_gradual", "prune_fraction": f, "dt": dt}
            for f in args["choose_prune_fraction"] for dt in args["choose_dt"]]
    pts += [{"kind": "zoo", "model": m, "seed": seed} for m in args["zoo"] for seed in args["seeds"]]
    return pts


def _files(model, calibration) -> dict:
    """Bytes of ``model``'s files: float32 and int8, dense and stored sparse (bitmask + non-zero values)."""
    from qkit import prune, ptq
    from qkit.measure import model_size

    int8 = ptq.convert(model, "int8", calibration)
    return {"file_fp32": model_size(prune.to_sparse(model)), "file_fp32_dense": model_size(model),
            "file_int8": model_size(prune.to_sparse(int8)), "file_int8_dense": model_size(int8)}


def compute(point: dict) -> dict:
    import copy

    from qkit import data, models, prune
    from qkit.train import evaluate

    args = ARGS
    model = models.load(args["model"])
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    out = {"cpu": float_path()}
    kind = point["kind"]
    if kind == "oneshot":
        pruned = prune.magnitude(model, point["sparsity"], scope=point["scope"])
        out.update(acc=evaluate(pruned, Xt, yt), measured_sparsity=prune.sparsity(pruned),
                   layers=prune.layer_sparsity(pruned), **_files(pruned, X[:256]))
    elif kind == "finetuned":
        pruned = prune.magnitude(model, point["sparsity"])
        prune.finetune(pruned, X, y, epochs=args["epochs"], lr=args["lr"], seed=point["seed"], progress=False)
        out.update(acc=evaluate(pruned, Xt, yt), measured_sparsity=prune.sparsity(pruned))
    elif kind == "gradual":
        g = copy.deepcopy(model)
        record: list = []
        prune.gradual(g, X, y, sparsity=point["sparsity"], epochs=args["epochs"], lr=args["lr"], seed=point["seed"],
                      prune_fraction=args["prune_fraction"], dt=args["dt"], progress=False, record=record)
        out.update(acc=evaluate(g, Xt, yt), measured_sparsity=prune.sparsity(g),
                   schedule=[[t, round(s, 6)] for t, s in record])
    elif kind == "sensitivity":
        out.update(sparsities=args["sensitivity"], dense=evaluate(model, Xt, yt),
                   layers=prune.sensitivity(model, Xt, yt, args["sensitivity"]),
                   sizes={n: m.weight.numel() for n, m in prune.prunable(model).items()})
    elif kind == "choose":
        h, accs = args["holdout"], []
        for seed in args["seeds"]:
            pruned = prune.magnitude(model, args["choose_sparsity"])
            prune.finetune(pruned, X[:-h], y[:-h], epochs=point["epochs"], lr=point["lr"], seed=seed, progress=False)
            accs.append(evaluate(pruned, X[-h:], y[-h:]))
        out.update(holdout_accs=accs, holdout_acc=sum(accs) / len(accs))
    elif kind == "choose_gradual":
        h, accs = args["holdout"], []
        for seed in args["seeds"]:
            g = copy.deepcopy(model)
            prune.gradual(g, X[:-h], y[:-h], sparsity=args["choose_sparsity"], epochs=args["epochs"], lr=args["lr"],
                          seed=seed, prune_fraction=point["prune_fraction"], dt=point["dt"], progress=False)
            accs.append(evaluate(g, X[-h:], y[-h:]))
        out.update(holdout_accs=accs, holdout_acc=sum(accs) / len(accs))
    elif kind == "zoo":
        other = models.load(point["model"])
        s, seed = args["zoo_sparsity"], point["seed"]
        pruned = prune.magnitude(other, s)
        prune.finetune(pruned, X, y, epochs=args["epochs"], lr=args["lr"], seed=seed, progress=False)
        g = copy.deepcopy(other)
        prune.gradual(g, X, y, sparsity=s, epochs=args["epochs"], lr=args["lr"], seed=seed,
                      prune_fraction=args["prune_fraction"], dt=args["dt"], progress=False)
        out.update(dense=evaluate(other, Xt, yt), oneshot=evaluate(pruned, Xt, yt), gradual=evaluate(g, Xt, yt),
                   measured_sparsity=prune.sparsity(g))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return out
