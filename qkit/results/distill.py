"""Lesson 09's grid: a small student distilled from the zoo's resnet vs the same student from scratch.

Teacher: ``qkit.models.load("resnet")`` (77,754 parameters, trained on all 1,438 training
images). Student: ``qkit.distill.student(hidden)``, a 64 → 32 → 10 perceptron (2,410
parameters). The student learns from a *small labelled set*: the first ``per_class`` images
of each digit among the first 1,079 training images (:func:`qkit.distill.per_class`), no
augmentation. A scratch run (``alpha = 0``: cross-entropy only, :func:`qkit.train.fit`) and a
distilled run (:func:`qkit.distill.train`) with the same seed start from the same weights and
see the same batches in the same order; both train for the same ``steps`` optimizer steps
(:func:`qkit.distill.epochs_for`), whatever the set's size.

Every point is one run: ``per_class`` × ``T`` × ``alpha`` × ``seed``; it stores the accuracy on
the held-out last 359 training images (``val``, where ``T`` and ``alpha`` are chosen) and on
the test split (``test``, reported). Two experiments:

* ``"sweep"``: at ``sweep_per_class`` images a class, every ``T`` × ``alpha`` of ``ARGS`` and
  the scratch run (``alpha = 0``, stored with ``T = 1``);
* ``"sizes"``: at every ``sizes`` entry (``0`` = all 1,079), scratch, the ``chosen`` (T, alpha) —
  the pair with the best mean validation accuracy in the sweep (a test checks it is) — and the
  chosen T with each of ``size_alphas`` (the labels kept in the loss).

Make it with ``nice -n 10 python -m qkit.results.make distill --jobs 1``; the JSON is committed.
"""

from __future__ import annotations

import torch

ARGS = {
    "teacher": "resnet",
    "hidden": 32,
    "val": 359,  # the last training images: T and alpha are chosen on them, never on test
    "steps": 800,  # optimizer steps of every run (epochs_for)
    "lr": 3e-3, "batch_size": 32, "weight_decay": 1e-4,  # the zoo mlp's recipe
    "seeds": [0, 1, 2, 3, 4, 5, 6, 7],
    "sweep_per_class": 10,
    "Ts": [1.0, 2.0, 4.0, 8.0, 16.0],
    "alphas": [0.25, 0.5, 0.75, 1.0],
    "sizes": [5, 20, 50, 0],  # images a class; 0 = every one of the 1,079
    "chosen": {"T": 8.0, "alpha": 1.0},  # best(): the highest mean validation accuracy of the sweep
    "size_alphas": [0.5],  # at every other size also the chosen T with these alphas (labels kept)
}


def points(args: dict) -> list[dict]:
    """The sweep (scratch first), then scratch and the chosen pair at every other size; each over every seed."""
    k = args["sweep_per_class"]
    runs = [(k, 1.0, 0.0)] + [(k, T, a) for T in args["Ts"] for a in args["alphas"]]
    T, a = args["chosen"]["T"], args["chosen"]["alpha"]
    runs += [(n, t, al) for n in args["sizes"] if n != k
             for t, al in ((1.0, 0.0), (T, a), *((T, extra) for extra in args["size_alphas"]))]
    return [{"per_class": n, "T": t, "alpha": al, "seed": s} for n, t, al in runs for s in args["seeds"]]


def data(args: dict = ARGS, per_class: int = 10):
    """``(labelled set, validation set, test set)``, each ``(X, y)``, as every point uses them."""
    from qkit import data as qdata
    from qkit.distill import per_class as first_per_class

    X, y = qdata.digits("train")
    n = args["val"]
    pool = (X[:-n], y[:-n])
    labelled = pool if per_class == 0 else first_per_class(*pool, per_class)
    return labelled, (X[-n:], y[-n:]), qdata.digits("test")


def run(point: dict, args: dict = ARGS, teacher=None) -> torch.nn.Module:
    """Train the student of one point (scratch if ``alpha == 0``) and return it."""
    from qkit import distill, models
    from qkit.train import fit

    (X, y), _, _ = data(args, point["per_class"])
    kw = dict(epochs=distill.epochs_for(len(X), args["steps"], args["batch_size"]), lr=args["lr"],
              batch_size=args["batch_size"], weight_decay=args["weight_decay"], seed=point["seed"], progress=False)
    torch.manual_seed(point["seed"])  # the initial weights: the same for scratch and distilled
    student = distill.student(args["hidden"])
    if point["alpha"] == 0:
        fit(student, X, y, **kw)
    else:
        teacher = teacher if teacher is not None else models.load(args["teacher"])
        distill.train(student, teacher, X, y, T=point["T"], alpha=point["alpha"], **kw)
    return student


def compute(point: dict) -> dict:
    from qkit.train import evaluate

    student = run(point)
    (X, _), (Xv, yv), (Xt, yt) = data(ARGS, point["per_class"])
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    return {"images": len(X), "val": evaluate(student, Xv, yv), "test": evaluate(student, Xt, yt),
            "capability": float_path()}


def runs(rows: list[dict], per_class: int, T: float, alpha: float) -> dict[str, list[float]]:
    """One setting's accuracies, seed by seed (ascending): ``{"seed": [...], "val": [...], "test": [...]}``.

    Scratch runs are stored with ``T = 1``; pass any ``T`` with ``alpha = 0``.

    Example:
        >>> rows = [{"per_class": 10, "T": 1.0, "alpha": 0.0, "seed": s, "val": 0.5 + s / 10, "test": 0.4}
        ...         for s in (1, 0)]
        >>> runs(rows, 10, 8.0, 0.0)["val"]
        [0.5, 0.6]
    """
    T = 1.0 if alpha == 0 else T
    found = sorted((r for r in rows if r["per_class"] == per_class and r["T"] == T and r["alpha"] == alpha),
                   key=lambda r: r["seed"])
    if not found:
        raise ValueError(f"no runs with per_class={per_class}, T={T}, alpha={alpha} in the grid")
    return {k: [r[k] for r in found] for k in ("seed", "val", "test")}


def best(rows: list[dict], args: dict = ARGS) -> tuple[float, float]:
    """The sweep's (T, alpha) with the highest mean *validation* accuracy (the first of ties, in ARGS order)."""
    k = args["sweep_per_class"]
    pairs = [(T, a) for T in args["Ts"] for a in args["alphas"]]
    means = [sum(v := runs(rows, k, T, a)["val"]) / len(v) for T, a in pairs]
    return pairs[means.index(max(means))]
