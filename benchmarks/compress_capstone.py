"""The capstone pipeline (distill → prune → QAT → pack → ONNX) on the zoo's resnet: issue 10's lesson-11 budgets.

Run: ``python benchmarks/compress_capstone.py [--quick]`` (or through ``bench_compress.py --parts capstone``).

The recipe is :data:`qkit.compose.RECIPE` (student: the resnet with half its channels,
distilled from it; 75 % global magnitude pruning; 4-bit weights, 8-bit activations;
the teacher teaches at every training stage). Over the grid's 3 seeds:

* **size**: ``qkit.measure.model_size`` of the final integer model (bitmask + 4-bit packed
  non-zeros, :func:`qkit.compose.to_sparse_packed`) at least 20× below the float32 teacher's;
* **accuracy**: the mean test accuracy of that model at most 1.5 points below the teacher's;
* **two runtimes**: the final model exported (:func:`qkit.export.to_onnx`) and run in ONNX
  Runtime predicts the class qkit's integer kernels predict on ≥ 99.5 % of the test images;
* reported, no budget: the ONNX file's size (ONNX holds int8 weights, not packed bits, and no
  sparse format) and the latency of the final model in both runtimes against the teacher's.

Without ``--quick`` the three seeds' pipelines run here (about a minute each on one thread);
with ``--quick`` the rows come from the stored grid ``qkit/results/capstone.json``
(made by the same function: ``python -m qkit.results.make capstone``).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from qkit import compose, results  # noqa: E402
from qkit.results.make import compute_point  # noqa: E402


def _runs(quick: bool) -> list[dict]:
    """``{stage: row}`` of the main recipe, one per seed: stored (quick) or measured now."""
    grid = results.load("capstone")
    sparsity, w_bits = grid["args"]["recipes"][0]
    points = [{"seed": s, "sparsity": sparsity, "w_bits": w_bits} for s in grid["args"]["seeds"]]
    if quick:
        found = [results.lookup(grid["rows"], **p) for p in points]
    else:
        found = [compute_point("capstone", p) for p in points]
    return [{r["stage"]: r for r in row["stages"]} for row in found]


def budgets(quick: bool = False) -> list[dict]:
    """Lesson 11's budgets as rows ``{name, value, budget, passed, detail}``."""
    torch.set_num_threads(1)
    runs = _runs(quick)
    source = "stored grid" if quick else "measured now"
    n = len(runs)
    original = runs[0]["original"]
    finals = [r["packed"] for r in runs]
    rows = []

    ratio = min(original["size"] / f["size"] for f in finals)
    rows.append(dict(name="final file vs float32 teacher (x smaller)", value=ratio, budget=">= 20", passed=ratio >= 20,
                     detail=f"{max(f['size'] for f in finals):,} B vs {original['size']:,} B "
                            f"(model_size; the smallest ratio of {n} seeds; {source})"))

    accs = [f["accuracy"] for f in finals]
    drop = 100 * (original["accuracy"] - statistics.mean(accs))
    rows.append(dict(name="final accuracy drop vs teacher (mean of seeds)", value=drop, budget="<= 1.5 points",
                     passed=drop <= 1.5,
                     detail=f"teacher {original['accuracy']:.2%}, final {statistics.mean(accs):.2%} "
                            f"(seeds {min(accs):.2%}-{max(accs):.2%}; {source})"))

    agree = min(r["onnx"]["agreement"] for r in runs)
    rows.append(dict(name="ONNX Runtime vs qkit integer kernels: same class", value=100 * agree,
                     budget=">= 99.5 %", passed=agree >= 0.995,
                     detail=f"the final model's ONNX file, the least of {n} seeds ({source})"))

    onnx = max(r["onnx"]["size"] for r in runs)
    rows.append(dict(name="ONNX file vs float32 teacher (x smaller)", value=original["size"] / onnx,
                     budget="reported", passed=True,
                     detail=f"{onnx:,} B: int8 weights, dense (ONNX has no packed or sparse int4 here)"))

    r0 = runs[0]
    if all(r0[s]["latency_ms"] is not None for s in ("original", "packed", "onnx")):
        rows.append(dict(name="latency of the final model, qkit kernels (ms)", value=r0["packed"]["latency_ms"],
                         budget="reported", passed=True,
                         detail=f"teacher {r0['original']['latency_ms']:.2f} ms, final in ONNX Runtime "
                                f"{r0['onnx']['latency_ms']:.2f} ms (batch 256, one thread, seed 0; {source})"))
    return rows


def main() -> None:
    from bench_compress import run_part

    run_part(__doc__, budgets, "rows from the stored grid (no training)", after=f"recipe: {compose.RECIPE}")


if __name__ == "__main__":
    main()
