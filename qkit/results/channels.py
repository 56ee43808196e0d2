"""Lesson 08's structured-pruning grid: channels removed from zoo CNNs, against magnitude pruning at equal sparsity.

Every point is one of six kinds (accuracies on the digits test split unless said):

* ``dense``: ``model``: the zoo model as shipped (accuracy, parameters, file bytes);
* ``oneshot``: ``model`` × ``amount`` × ``criterion``: accuracy right after
  :func:`qkit.prune.channels` (no training, deterministic);
* ``structured``: ``model`` × ``amount`` × ``seed``: :func:`qkit.prune.channels` with the
  model's chosen criterion, then :func:`qkit.prune.finetune` with its chosen ``lr`` and
  ``epochs``, the loss distilled from the dense model if ``distill`` (Hinton et al. 2015,
  :func:`qkit.distill.loss` with ``ARGS["teacher"]``'s T and alpha) (the random seed draws the batch
  order and the pixel shifts);
* ``unstructured``: the same ``model`` × ``amount`` × ``seed``: :func:`qkit.prune.magnitude`
  (global) at the conv/linear weight sparsity the structured model has (``sparsity``: the fraction
  of those weights it removed), then the same fine-tune; its tensors keep their shapes;
* ``choose``: ``model`` × ``criterion`` × ``lr`` × ``epochs`` × ``distill`` at ``choose_amount``: fine-tuned
  on the training split without its last ``holdout`` images, measured on those (``holdout_acc``).
  The zoo models saw those images in training, so they are not unseen: only kept apart from
  the test split, which no choice here reads. ``ARGS["recipe"]`` is :func:`best_recipe` of
  these rows (a test checks it);
* ``latency``: ``model`` × ``amount``: median ms of torch fp32 at batch ``batch`` of the dense,
  the structured and the unstructured model, timed round-robin on the machine that made the
  grid (``cpu`` names its float path: capability and CPU model): that machine's values only; the benchmark
  (``benchmarks/compress_channels.py``) measures them again where it runs.
"""

from __future__ import annotations

import torch

ARGS = {
    "models": ["resnet", "mobilenet_v1"],
    "amounts": [0.25, 0.5, 0.75],
    "criteria": ["l1", "bn"],
    "seeds": [0, 1, 2],
    "holdout": 359,
    "choose_amount": 0.5,
    "choose_lr": [3e-3, 1e-2],
    "choose_epochs": [8, 16, 32],
    "choose_distill": [False, True],
    "teacher": {"T": 2.0, "alpha": 0.7},  # Hinton et al. 2015's loss, as qkit.qat.TEACHER
    # best_recipe() of the "choose" rows (tests/test_channels_grid.py checks it)
    "recipe": {
        "resnet": {"criterion": "bn", "lr": 3e-3, "epochs": 8, "distill": False},
        "mobilenet_v1": {"criterion": "l1", "lr": 1e-2, "epochs": 32, "distill": True},
    },
    "batch": 256,
    "repeat": 30,
}


def points(args: dict) -> list[dict]:
    pts = [{"kind": "choose", "model": m, "criterion": c, "lr": lr, "epochs": e, "distill": d}
           for m in args["models"] for c in args["criteria"] for lr in args["choose_lr"] for e in args["choose_epochs"]
           for d in args["choose_distill"]]
    pts += [{"kind": "dense", "model": m} for m in args["models"]]
    pts += [{"kind": "oneshot", "model": m, "amount": a, "criterion": c}
            for m in args["models"] for a in args["amounts"] for c in args["criteria"]]
    for kind in ("structured", "unstructured"):
        pts += [{"kind": kind, "model": m, "amount": a, "seed": s}
                for m in args["models"] for a in args["amounts"] for s in args["seeds"]]
    pts += [{"kind": "latency", "model": m, "amount": a} for m in args["models"] for a in args["amounts"]]
    return pts


def best_recipe(rows: list[dict], model: str, args: dict = ARGS) -> dict:
    """The ``choose`` row of ``model`` with the best held-out accuracy; ties: fewer epochs, smaller lr, criteria order,
    no distillation.

    Example:
        >>> rows = [{"kind": "choose", "model": "m", "criterion": "bn", "lr": 0.01, "epochs": 8, "distill": True,
        ...          "holdout_acc": 0.9},
        ...         {"kind": "choose", "model": "m", "criterion": "l1", "lr": 0.001, "epochs": 16, "distill": False,
        ...          "holdout_acc": 0.9}]
        >>> best_recipe(rows, "m")
        {'criterion': 'bn', 'lr': 0.01, 'epochs': 8, 'distill': True}
    """
    found = [r for r in rows if r["kind"] == "choose" and r["model"] == model]
    if not found:
        raise ValueError(f"no 'choose' rows for model {model!r}")
    best = min(found, key=lambda r: (-r["holdout_acc"], r["epochs"], r["lr"], args["criteria"].index(r["criterion"]),
                                     r["distill"]))
    return {"criterion": best["criterion"], "lr": best["lr"], "epochs": best["epochs"], "distill": best["distill"]}


def teacher_loss(teacher, T: float = ARGS["teacher"]["T"], alpha: float = ARGS["teacher"]["alpha"]):
    """``loss_fn(logits, labels, inputs)`` for :func:`qkit.train.fit`: distil from ``teacher`` (the dense model).

    :func:`qkit.distill.loss` of the student's logits against the teacher's on the same (shifted)
    batch: ``alpha · T² · KL(soft teacher ‖ soft student) + (1 - alpha) · cross-entropy``.
    """
    from qkit import distill

    teacher.eval()

    def loss_fn(logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = teacher(inputs)  # (N, classes) float32
        return distill.loss(logits, soft, labels, T=T, alpha=alpha)

    return loss_fn


def finetune(pruned, dense, X: torch.Tensor, y: torch.Tensor, recipe: dict, seed: int) -> None:
    """:func:`qkit.prune.finetune` of ``pruned`` with ``recipe`` (lr, epochs; distilled from ``dense`` if it says so)."""
    from qkit import prune

    extra = {"loss_fn": teacher_loss(dense)} if recipe["distill"] else {}
    prune.finetune(pruned, X, y, epochs=recipe["epochs"], lr=recipe["lr"], seed=seed, progress=False, **extra)


def weight_count(model) -> int:
    """Number of conv/linear weights (what magnitude pruning's sparsity counts)."""
    from qkit import prune

    return sum(m.weight.numel() for m in prune.prunable(model).values())


def structured_sparsity(name: str, amount: float, criterion: str) -> float:
    """Fraction of the conv/linear weights that :func:`qkit.prune.channels` removes from zoo model ``name``."""
    from qkit import models, prune

    dense = models.load(name)
    return 1 - weight_count(prune.channels(dense, amount, criterion=criterion)) / weight_count(dense)


def latency(name: str, amount: float, *, batch: int = 256, repeat: int = 30, criterion: str | None = None) -> dict:
    """Median ms of torch fp32 ``model(x)`` at ``batch`` test images: dense, structured, unstructured, timed round-robin.

    The structured model is :func:`qkit.prune.channels` at ``amount`` (``criterion``: the recipe's); the
    unstructured one is magnitude pruning at the same weight sparsity (same shapes as the dense
    model, so the same dense kernels). Weights are not fine-tuned: speed does not depend on their values.

    Returns:
        ``{"dense_ms", "structured_ms", "unstructured_ms", "speedup", "batch", "threads"}``;
        ``speedup`` = dense / structured, both from this one run.
    """
    from qkit import data, measure, models, prune

    criterion = criterion or ARGS["recipe"][name]["criterion"]
    Xt, yt = data.digits("test")
    dense = models.load(name)
    small = prune.channels(dense, amount, criterion=criterion).eval()
    zeros = prune.magnitude(dense, structured_sparsity(name, amount, criterion)).eval()
    rows = measure.compare({"dense": dense, "structured": small, "unstructured": zeros}, Xt, yt,
                           batch=batch, repeat=repeat)
    ms = {f"{r['name']}_ms": r["latency_ms"] for r in rows}
    return {**ms, "speedup": ms["dense_ms"] / ms["structured_ms"], "batch": min(batch, len(Xt)),
            "threads": torch.get_num_threads()}


def summary(rows: list[dict], model: str = "resnet", latencies: dict | None = None) -> list[dict]:
    """One entry per method and amount of ``model``: accuracy mean and spread over the random seeds, size, speed.

    Args:
        rows: the grid's rows (``qkit.results.load("channels")["rows"]``).
        model: a zoo model of the grid.
        latencies: ``{amount: latency(...) dict}`` measured now; default: the grid's ``latency``
            rows (the machine that made the grid).

    Returns:
        Dicts ``method`` (``"dense"``, ``"unstructured"``, ``"structured"``), ``amount`` (channels
        removed from every prunable group; 0 for dense), ``sparsity`` (conv/linear weights removed or
        zeroed), ``acc`` and ``acc_std`` (mean and sample standard deviation over the random seeds, as
        fractions), ``seeds``, ``params`` (non-zero parameters), ``bytes`` (``torch.save`` file),
        ``sparse_bytes`` (unstructured: bitmask + values, :func:`qkit.prune.to_sparse`), ``ms``
        (median at the grid's batch) and ``speedup`` (dense ms / this ms, from the same run).
    """
    import statistics

    dense = next((r for r in rows if r["kind"] == "dense" and r["model"] == model), None)
    if dense is None:
        raise ValueError(f"the grid has no model {model!r}; it has {sorted({r['model'] for r in rows})}")
    if latencies is None:
        latencies = {r["amount"]: r for r in rows if r["kind"] == "latency" and r["model"] == model}
    dense_ms = statistics.median(t["dense_ms"] for t in latencies.values()) if latencies else None
    out = [{"method": "dense", "amount": 0.0, "sparsity": 0.0, "acc": dense["acc"], "acc_std": 0.0, "seeds": 0,
            "params": dense["params"], "bytes": dense["bytes"], "sparse_bytes": None, "ms": dense_ms,
            "speedup": 1.0 if latencies else None}]
    amounts = sorted({r["amount"] for r in rows if r["kind"] == "structured" and r["model"] == model})
    for amount in amounts:
        for method in ("unstructured", "structured"):
            found = [r for r in rows if r["kind"] == method and r["model"] == model and r["amount"] == amount]
            accs = [r["acc"] for r in found]
            t = latencies.get(amount)
            ms = None if t is None else t[f"{method}_ms"]
            sparsity = found[0].get("sparsity", 1 - found[0]["weights"] / dense["weights"])
            out.append({"method": method, "amount": amount, "sparsity": sparsity, "acc": statistics.mean(accs),
                        "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "seeds": len(accs),
                        "params": found[0]["params"], "bytes": found[0]["bytes"],
                        "sparse_bytes": found[0].get("sparse_bytes"), "ms": ms,
                        "speedup": None if t is None else t["dense_ms"] / ms})
    return out


def _nonzero(model) -> int:
    return sum(int((p != 0).sum()) for p in model.parameters())


def compute(point: dict) -> dict:
    from qkit import data, measure, models, prune
    from qkit.train import evaluate

    args = ARGS
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    name, kind = point["model"], point["kind"]
    dense = models.load(name)
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    out = {"cpu": float_path()}
    recipe = args["recipe"][name]
    if kind == "dense":
        out.update(acc=evaluate(dense, Xt, yt), params=_nonzero(dense), weights=weight_count(dense),
                   bytes=measure.model_size(dense))
    elif kind == "oneshot":
        small = prune.channels(dense, point["amount"], criterion=point["criterion"])
        out.update(acc=evaluate(small, Xt, yt), params=_nonzero(small), weights=weight_count(small),
                   bytes=measure.model_size(small))
    elif kind in ("structured", "unstructured"):
        if kind == "structured":
            pruned = prune.channels(dense, point["amount"], criterion=recipe["criterion"])
        else:
            sparsity = structured_sparsity(name, point["amount"], recipe["criterion"])
            pruned = prune.magnitude(dense, sparsity)
            out.update(sparsity=sparsity)
        finetune(pruned, dense, X, y, recipe, point["seed"])
        pruned.eval()
        out.update(acc=evaluate(pruned, Xt, yt), params=_nonzero(pruned), weights=weight_count(pruned),
                   bytes=measure.model_size(pruned))
        if kind == "unstructured":
            out.update(sparse_bytes=measure.model_size(prune.to_sparse(pruned)))
    elif kind == "choose":
        h = args["holdout"]
        pruned = prune.channels(dense, args["choose_amount"], criterion=point["criterion"])
        finetune(pruned, dense, X[:-h], y[:-h], point, 0)
        out.update(holdout_acc=evaluate(pruned.eval(), X[-h:], y[-h:]))
    elif kind == "latency":
        out.update(latency(name, point["amount"], batch=args["batch"], repeat=args["repeat"]))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return out
