"""Lesson 10's grid: every architecture of ``qkit.nas.SPACE`` evaluated once, and the found models retrained.

Three kinds of points:

* ``arch`` (all 120): parameter count, measured latency (``qkit.nas.measure_latency``: the fastest
  of 20 passes of a batch of 256 on one thread) and the proxy ``estimate`` (``qkit.nas.quick_accuracy``: 3
  epochs on the first 1079 training images, scored on the last 359 — the held-out slice). With
  these stored, any search is a table lookup: the notebook's panels run hundreds of searches
  from them in a second, and they are the same on every machine (the latencies are the stored ones);
* ``full`` (a seeded sample of ``full_sample`` architectures): held-out accuracy after the full
  training (``qkit.nas.FULL``, the zoo's recipe) on the same images, for the proxy's rank
  correlation;
* ``found``: a ``strategy`` search (``trials`` trials, ``max_params``, seed 0, the proxy as its
  estimate), then its best architecture retrained with the full recipe on the whole training
  split (seed ``seed``) and measured on the test split: accuracy, parameters, file bytes
  (``qkit.measure.model_size``) and latency (the fastest of 20 passes of 256 test images).

Nothing here touches the test split except the ``found`` points' final measurement.
"""

from __future__ import annotations

import torch

ARGS = {
    "full_sample": 20,  # architectures trained fully (a seeded sample of the space)
    "sample_seed": 0,
    "trials": 20,  # the notebook's trial budget
    "max_params": 9000,  # below the smallest zoo model (mlp, 9 610 parameters)
    "strategies": ["evolution", "random"],
    "retrain_seeds": [0, 1, 2],
    "latency_batch": 256,
    "latency_repeat": 20,
}


def full_sample(args: dict) -> list[str]:
    """Keys of the architectures trained fully: a seeded permutation's first ``full_sample``."""
    from qkit.nas import SPACE

    archs = SPACE.archs()
    perm = torch.randperm(len(archs), generator=torch.Generator().manual_seed(args["sample_seed"])).tolist()
    return [archs[i].key for i in perm[: args["full_sample"]]]


def points(args: dict) -> list[dict]:
    from qkit.nas import SPACE

    return ([{"kind": "arch", "arch": a.key} for a in SPACE.archs()]
            + [{"kind": "full", "arch": k} for k in full_sample(args)]
            + [{"kind": "found", "strategy": s, "seed": seed} for s in args["strategies"]
               for seed in args["retrain_seeds"]])


def found_search(args: dict, estimate=None):
    """The ``found`` points' search (its trials); ``estimate`` defaults to the (cached) proxy."""
    from qkit import nas

    return {s: nas.search(nas.SPACE, strategy=s, trials=args["trials"], max_params=args["max_params"], seed=0,
                          estimate=estimate, latency=lambda a: 0.0) for s in args["strategies"]}


def compute(point: dict) -> dict:
    from qkit import data, measure, nas
    from qkit.train import evaluate

    args = ARGS
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    out: dict = {"capability": float_path()}
    if point["kind"] == "arch":
        arch = nas.Arch.parse(point["arch"])
        return {**out, "params": nas.count_params(arch), "estimate": nas.quick_accuracy(arch),
                "latency_ms": nas.measure_latency(arch, batch=args["latency_batch"], repeat=args["latency_repeat"])}
    if point["kind"] == "full":
        return {**out, "full": nas.full_accuracy(nas.Arch.parse(point["arch"]))}
    trials = found_search(args)[point["strategy"]]
    best = max(trials, key=lambda t: (t.estimate, -t.index))
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    model = nas.train_arch(best.arch, X, y, nas.FULL, seed=point["seed"]).eval()
    return {**out, "arch": best.arch.key, "estimate": best.estimate, "params": best.params,
            "accuracy": evaluate(model, Xt, yt), "file_bytes": measure.model_size(model),
            "latency_ms": nas.estimate.fastest_ms(model, Xt[: args["latency_batch"]], repeat=args["latency_repeat"])}
