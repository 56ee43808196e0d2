"""Unstructured pruning of the zoo's resnet: issue 10's pruning budgets, measured.

Run: ``python benchmarks/compress_prune.py [--quick]`` (or through ``bench_compress.py --parts prune``).

* **90 % sparsity**: global magnitude pruning (:func:`qkit.prune.magnitude`), then
  :func:`qkit.prune.finetune` (the kit's recipe, :data:`qkit.prune.FINETUNE`); the mean test
  accuracy over 3 seeds must be at most 1 point below the dense model's.
* **95 %, gradual vs one-shot**: Zhu & Gupta's schedule (:func:`qkit.prune.gradual`) against
  one-shot pruning followed by the same fine-tune (same epochs, learning rate, seeds); the gradual
  mean must be at least 1 point above. The same comparison also runs on every other zoo model with
  resnet's recipe (the grid's ``zoo`` points, about 80 s), to show how far the verdict carries.
* **files**: ``qkit.measure.model_size`` of the 90 % sparse model stored as bitmask + values
  (:func:`qkit.prune.to_sparse`), float32 and int8 (``qkit.ptq.convert(..., "int8")`` of the
  pruned, fine-tuned model), against the dense files.

Without ``--quick`` every accuracy is measured here (9 fine-tunes of about 2 s each on one
thread); with ``--quick`` the accuracies come from the stored grid ``qkit/results/prune.json``
(made by the same functions: ``python -m qkit.results.make prune``). The recipe was chosen on the
last 359 training images, never on the test split (the grid's ``choose`` points).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from qkit import data, measure, models, prune, ptq, results  # noqa: E402
from qkit.results.make import compute_point  # noqa: E402
from qkit.train import evaluate  # noqa: E402

MODEL = "resnet"


def _accuracies(kind: str, sparsity: float, seeds, quick: bool) -> list[float]:
    """Test accuracies of grid points ``kind`` at ``sparsity``, one per seed: stored (quick) or measured now."""
    if quick:
        rows = results.load("prune")["rows"]
        return [results.lookup(rows, kind=kind, sparsity=sparsity, seed=s)["acc"] for s in seeds]
    return [compute_point("prune", {"kind": kind, "sparsity": sparsity, "seed": s})["acc"] for s in seeds]


def _files(X: torch.Tensor, y: torch.Tensor, Xt: torch.Tensor, yt: torch.Tensor, sparsity: float) -> dict:
    """Bytes of the dense and the sparse files, float32 and int8, and the int8 accuracies."""
    torch.set_num_threads(1)
    dense = models.load(MODEL)
    pruned = prune.magnitude(dense, sparsity)
    prune.finetune(pruned, X, y, seed=0, progress=False)
    calib = X[:256]
    int8_dense, int8_pruned = ptq.convert(dense, "int8", calib), ptq.convert(pruned, "int8", calib)
    return {"fp32": measure.model_size(dense), "fp32_sparse": measure.model_size(prune.to_sparse(pruned)),
            "int8": measure.model_size(int8_dense), "int8_sparse": measure.model_size(prune.to_sparse(int8_pruned)),
            "int8_acc": evaluate(int8_dense, Xt, yt), "int8_sparse_acc": evaluate(int8_pruned, Xt, yt)}


def _zoo_at_95(seeds, quick: bool) -> list[dict]:
    """The 95 % comparison on every other zoo model (the grid's ``zoo`` points: resnet's recipe).

    The recipe was chosen for resnet, so these rows say how far the budget's verdict carries, not
    what each model could reach with a recipe of its own.
    """
    stored = results.load("prune")
    rows = []
    for name in stored["args"]["zoo"]:
        pts = [{"kind": "zoo", "model": name, "seed": s} for s in seeds]
        got = ([results.lookup(stored["rows"], **p) for p in pts] if quick
               else [compute_point("prune", p) for p in pts])
        one, grad = [r["oneshot"] for r in got], [r["gradual"] for r in got]
        gain = 100 * (statistics.mean(grad) - statistics.mean(one))
        rows.append(dict(name=f"{name}, 95 %: gradual - one-shot", value=gain, budget=">= 1 point",
                         passed=gain >= 1.0,
                         detail=f"gradual {statistics.mean(grad):.2%}, one-shot {statistics.mean(one):.2%}, dense "
                                f"{got[0]['dense']:.2%} ({len(seeds)} seeds; {MODEL}'s recipe; "
                                f"{'stored grid' if quick else 'measured now'})"))
    return rows


def budgets(quick: bool = False) -> list[dict]:
    """Issue 10's pruning budgets as rows ``{name, value, budget, passed, detail}``."""
    torch.set_num_threads(1)
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    seeds = results.load("prune")["args"]["seeds"]
    dense = evaluate(models.load(MODEL), Xt, yt)
    source = "stored grid" if quick else "measured now"
    rows = []

    ft90 = _accuracies("finetuned", 0.9, seeds, quick)
    drop = 100 * (dense - statistics.mean(ft90))
    rows.append(dict(name="90 % unstructured + fine-tune: drop vs dense", value=drop, budget="<= 1 point",
                     passed=drop <= 1.0,
                     detail=f"{MODEL} dense {dense:.2%}, pruned {statistics.mean(ft90):.2%} "
                            f"(seeds {min(ft90):.2%}-{max(ft90):.2%}; {source})"))

    one = _accuracies("finetuned", 0.95, seeds, quick)
    grad = _accuracies("gradual", 0.95, seeds, quick)
    gain = 100 * (statistics.mean(grad) - statistics.mean(one))
    stored = results.load("prune")
    grid = stored["rows"]
    others = []
    for s in stored["args"]["gradual"]:
        if s != 0.95:
            g = statistics.mean(r["acc"] for r in grid if r["kind"] == "gradual" and r["sparsity"] == s)
            o = statistics.mean(r["acc"] for r in grid if r["kind"] == "finetuned" and r["sparsity"] == s)
            others.append(f"{100 * s:g} %: {100 * (g - o):+.2f}")
    rows.append(dict(name="95 %: gradual - (one-shot + fine-tune)", value=gain, budget=">= 1 point",
                     passed=gain >= 1.0,
                     detail=f"gradual {statistics.mean(grad):.2%}, one-shot {statistics.mean(one):.2%} "
                            f"({len(seeds)} seeds, {prune.FINETUNE['epochs']} epochs each; {source}); room above "
                            f"one-shot to the dense model {100 * (dense - statistics.mean(one)):+.2f} points; "
                            f"gain at the grid's other sparsities: {', '.join(others)}"))

    rows += _zoo_at_95(seeds, quick)

    f = _files(X, y, Xt, yt, 0.9)
    rows.append(dict(name="90 % sparse fp32 file vs dense fp32", value=f["fp32"] / f["fp32_sparse"],
                     budget="> 1 (x smaller)", passed=f["fp32_sparse"] < f["fp32"],
                     detail=f"{f['fp32_sparse']:,} B vs {f['fp32']:,} B"))
    rows.append(dict(name="90 % sparse int8 file vs dense int8", value=f["int8"] / f["int8_sparse"],
                     budget="> 1 (x smaller)", passed=f["int8_sparse"] < f["int8"],
                     detail=f"{f['int8_sparse']:,} B vs {f['int8']:,} B; int8 acc {f['int8_sparse_acc']:.2%} "
                            f"vs {f['int8_acc']:.2%}"))
    rows.append(dict(name="90 % sparse int8 file vs dense fp32", value=f["fp32"] / f["int8_sparse"],
                     budget="> 1 (x smaller)", passed=f["int8_sparse"] < f["fp32"],
                     detail=f"{f['int8_sparse']:,} B vs {f['fp32']:,} B"))
    return rows


def main() -> None:
    from bench_compress import run_part

    run_part(__doc__, budgets, "accuracies from the stored grid (no fine-tunes)")


if __name__ == "__main__":
    main()
