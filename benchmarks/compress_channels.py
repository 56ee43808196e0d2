"""Structured (channel) pruning of the zoo's CNNs: issue 10's channel budgets, measured.

Run: ``python benchmarks/compress_channels.py [--quick]`` (or ``bench_compress.py --parts channels``).

For each model (resnet, the lesson's, and mobilenet_v1), half the channels of every prunable
group removed (:func:`qkit.prune.channels`, ``amount=0.5``, the criterion chosen for the model),
then :func:`qkit.prune.finetune` with the model's recipe (``qkit.results.channels.ARGS["recipe"]``:
criterion, learning rate, epochs and whether the loss distils from the dense model, chosen on the
last 359 training images, never on the test split):

* **accuracy**: mean test accuracy over 3 seeds at most 1 point below the dense model's;
* **speed**: torch fp32 at batch 256, one thread, median of 30 round-robin calls, dense / pruned
  measured in this run: at least 1.5× faster;
* **file**: ``qkit.measure.model_size`` (the ``torch.save`` file), dense / pruned: at least 2.5× smaller.

Without ``--quick`` the fine-tunes run here (3 per model); with ``--quick`` their accuracies come
from the stored grid ``qkit/results/channels.json`` (the same function: ``python -m qkit.results.make
channels``). Speeds and files are measured in every run.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from qkit import data, measure, models, prune, results  # noqa: E402
from qkit.results import channels as grid  # noqa: E402
from qkit.results.make import compute_point  # noqa: E402
from qkit.train import evaluate  # noqa: E402

MODELS = ("resnet", "mobilenet_v1")
AMOUNT = 0.5


def _accuracies(name: str, seeds, quick: bool) -> list[float]:
    """Test accuracies after channel pruning + fine-tune, one per seed: stored (quick) or measured now."""
    point = {"kind": "structured", "model": name, "amount": AMOUNT}
    if quick:
        rows = results.load("channels")["rows"]
        return [results.lookup(rows, **point, seed=s)["acc"] for s in seeds]
    return [compute_point("channels", {**point, "seed": s})["acc"] for s in seeds]


def budgets(quick: bool = False) -> list[dict]:
    """Issue 10's structured-pruning budgets as rows ``{name, value, budget, passed, detail}``."""
    torch.set_num_threads(1)
    Xt, yt = data.digits("test")
    seeds = grid.ARGS["seeds"]
    source = "stored grid" if quick else "measured now"
    rows = []
    for name in MODELS:
        recipe = grid.ARGS["recipe"][name]
        dense = models.load(name)
        small = prune.channels(dense, AMOUNT, criterion=recipe["criterion"])
        dense_acc = evaluate(dense, Xt, yt)
        accs = _accuracies(name, seeds, quick)
        drop = 100 * (dense_acc - statistics.mean(accs))
        rows.append(dict(name=f"{name}: half the channels, drop after fine-tune", value=drop, budget="<= 1 point",
                         passed=drop <= 1.0,
                         detail=f"dense {dense_acc:.2%}, pruned {statistics.mean(accs):.2%} (seeds "
                                f"{min(accs):.2%}-{max(accs):.2%}; {recipe['criterion']}, lr {recipe['lr']:g}, "
                                f"{recipe['epochs']} epochs{', distilled from the dense model' if recipe['distill'] else ''}; "
                                f"{source})"))
        t = grid.latency(name, AMOUNT, batch=grid.ARGS["batch"], repeat=grid.ARGS["repeat"],
                         criterion=recipe["criterion"])
        rows.append(dict(name=f"{name}: half the channels, x faster (fp32)", value=t["speedup"], budget=">= 1.5x",
                         passed=t["speedup"] >= 1.5,
                         detail=f"{t['dense_ms']:.2f} -> {t['structured_ms']:.2f} ms per batch of {t['batch']}, "
                                f"{t['threads']} thread; unstructured at the same sparsity {t['unstructured_ms']:.2f} ms"))
        big, little = measure.model_size(dense), measure.model_size(small)
        rows.append(dict(name=f"{name}: half the channels, x smaller file", value=big / little, budget=">= 2.5x",
                         passed=big / little >= 2.5,
                         detail=f"{little:,} B vs {big:,} B; params {sum(p.numel() for p in small.parameters()):,} "
                                f"vs {sum(p.numel() for p in dense.parameters()):,}"))
    return rows


def main() -> None:
    from bench_compress import run_part

    run_part(__doc__, budgets, "accuracies from the stored grid (no fine-tunes)")


if __name__ == "__main__":
    main()
