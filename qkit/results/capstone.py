"""Lesson 11's grid: the whole pipeline (distill → prune → QAT → pack → ONNX) over seeds and recipes.

One point is one recipe (:data:`qkit.compose.RECIPE` with ``sparsity`` and ``w_bits``
changed) run with one seed by :func:`qkit.compose.run`; its values are the rows of
:func:`qkit.compose.stage_rows` for every stage — test accuracy, size in bytes
(:func:`qkit.measure.model_size`, the ONNX file's bytes for ``onnx``), size ratio to
the float32 teacher, sparsity, ONNX Runtime's agreement with qkit's integer kernels
and the latency (ms, median, batch 256, one thread: machine-dependent, stored with
the float path, ``engine.float_path()``; the tests compare everything else).

The main recipe's seed-0 final model is stored too (``final_state``: its
``state_dict`` saved by ``torch.save``, base64), so the notebook can load the very
model whose numbers the table shows, export it and time it live.

Stages run in one process share their prefix (the student of a seed is distilled
once, each sparsity pruned once): ``functools.cache`` on the training stages.
"""

from __future__ import annotations

import base64
import functools
import io

import torch

ARGS = {
    "seeds": [0, 1, 2],
    "recipes": [  # (sparsity, w_bits); the first is qkit.compose.RECIPE's
        [0.75, 4], [0.5, 4], [0.9, 4], [0.75, 8], [0.75, 2],
    ],
    "latency_batch": 256,
    "latency_repeat": 20,
}


def points(args: dict) -> list[dict]:
    return [{"seed": s, "sparsity": sp, "w_bits": b} for sp, b in args["recipes"] for s in args["seeds"]]


@functools.cache
def _data():
    from qkit import data

    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    return X, y, Xt, yt


@functools.cache
def _teacher():
    from qkit import compose, models

    return models.load(compose.RECIPE["teacher"]).eval()


@functools.cache
def _student(seed: int):
    from qkit import compose

    X, y, _, _ = _data()
    return compose.distill_stage(_teacher(), X, y, compose.RECIPE, seed=seed)


@functools.cache
def _pruned(seed: int, sparsity: float):
    from qkit import compose

    X, y, _, _ = _data()
    return compose.prune_stage(_student(seed), _teacher(), X, y, compose.recipe(sparsity=sparsity), seed=seed)


def compute(point: dict) -> dict:
    from qkit import compose

    seed, sparsity, w_bits = point["seed"], point["sparsity"], point["w_bits"]
    r = compose.recipe(sparsity=sparsity, w_bits=w_bits)
    X, y, Xt, yt = _data()
    quantized = compose.quantize_stage(_pruned(seed, sparsity), _teacher(), X, y, r, seed=seed)
    stages = compose.assemble(_teacher(), _student(seed), _pruned(seed, sparsity), quantized, Xt[:1])
    packed = stages["packed"]
    rows = compose.stage_rows(stages, Xt, yt, batch=ARGS["latency_batch"], repeat=ARGS["latency_repeat"])
    keep = ("stage", "accuracy", "size", "size_ratio", "accuracy_drop", "sparsity", "latency_ms", "agreement")
    from qkit.kernels.engine import float_path  # noqa: PLC0415
    out = {"capability": float_path(), "recipe": r,
           "stages": [{k: row.get(k) for k in keep} for row in rows]}
    if [sparsity, w_bits] == ARGS["recipes"][0] and seed == ARGS["seeds"][0]:
        buf = io.BytesIO()
        torch.save(packed.state_dict(), buf)
        out["final_state"] = base64.b64encode(buf.getvalue()).decode("ascii")
    return out


def final_state(grid: dict) -> dict:
    """The stored seed-0 final model's ``state_dict`` (load it with :func:`qkit.compose.load_final`)."""
    for row in grid["rows"]:
        if "final_state" in row:
            return torch.load(io.BytesIO(base64.b64decode(row["final_state"])), weights_only=True)
    raise ValueError("the capstone grid stores no final model: remake it with `python -m qkit.results.make capstone`")


def summary(grid: dict) -> dict:
    """``{(sparsity, w_bits): {stage: {accuracy, low, high, size, ratio, latency_ms, agreement}}}``, random seeds pooled.

    ``accuracy`` is the mean over seeds, ``low``/``high`` the worst and best seed; ``size`` the
    largest file of the random seeds (bytes) and ``ratio`` the smallest size ratio to the teacher;
    ``latency_ms`` the median of the random seeds' medians; ``agreement`` the least (ONNX only).
    """
    import statistics

    runs: dict = {}
    for row in grid["rows"]:
        runs.setdefault((row["sparsity"], row["w_bits"]), []).append({s["stage"]: s for s in row["stages"]})
    out: dict = {}
    for key, seeds in runs.items():
        out[key] = {}
        for stage in seeds[0]:
            rows = [s[stage] for s in seeds]
            accs = [r["accuracy"] for r in rows]
            lat = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
            agree = [r["agreement"] for r in rows if r.get("agreement") is not None]
            out[key][stage] = {"accuracy": statistics.mean(accs), "low": min(accs), "high": max(accs),
                               "size": max(r["size"] for r in rows), "ratio": min(r["size_ratio"] for r in rows),
                               "sparsity": rows[0]["sparsity"], "seeds": len(rows),
                               "latency_ms": statistics.median(lat) if lat else None,
                               "agreement": min(agree) if agree else None}
    return out
