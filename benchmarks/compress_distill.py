"""Knowledge distillation on the digits: the distilled student against the same student from scratch.

Run: ``python benchmarks/compress_distill.py [--quick]`` (or as part of ``bench_compress.py``).

Measured live here (not read from the grid): lesson 09's setting, ``qkit.results.distill.ARGS``
— the zoo's resnet teaches a 64 → 32 → 10 perceptron that learns from 10 labelled images of
each digit; scratch and distilled runs share each seed (initial weights, batch order) and
train for the same optimizer steps; T and alpha are the pair chosen on the held-out last 359
training images. Budgets (issue 10): the mean paired gain in test accuracy over the seeds
exceeds twice the standard error of the paired differences; the student's file is at most a
tenth of the teacher's (``qkit.measure.model_size``).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))


def budgets(quick: bool = False) -> list[dict]:
    """The rows: paired gain against twice its standard error; student vs teacher file size."""
    from qkit import measure, models
    from qkit.distill import paired_gain
    from qkit.results import distill as grid
    from qkit.train import evaluate

    torch.set_num_threads(1)
    args = grid.ARGS
    seeds = args["seeds"][:3] if quick else args["seeds"]
    T, alpha, k = args["chosen"]["T"], args["chosen"]["alpha"], args["sweep_per_class"]
    teacher = models.load(args["teacher"])
    _, _, (Xt, yt) = grid.data(args, k)
    acc = {"scratch": [], "distilled": []}
    start = time.perf_counter()
    for seed in seeds:
        for kind, a in (("scratch", 0.0), ("distilled", alpha)):
            student = grid.run({"per_class": k, "T": T, "alpha": a, "seed": seed}, args, teacher)
            acc[kind].append(evaluate(student, Xt, yt))
    seconds = time.perf_counter() - start
    gain, se = paired_gain(acc["distilled"], acc["scratch"])
    teacher_bytes, student_bytes = measure.model_size(teacher), measure.model_size(student)
    return [
        dict(name="distilled - scratch, test (points, paired)", value=round(100 * gain, 2),
             budget=f"> 2 x paired SE = {200 * se:.2f}", passed=gain > 2 * se,
             detail=f"{len(seeds)} seeds, T={T:g}, alpha={alpha:g}, {k} images/class; scratch "
                    f"{100 * statistics.fmean(acc['scratch']):.1f} %, distilled "
                    f"{100 * statistics.fmean(acc['distilled']):.1f} %, teacher {100 * evaluate(teacher, Xt, yt):.1f} %"
                    f" ({seconds:.0f} s)"),
        dict(name="student file / teacher file", value=round(student_bytes / teacher_bytes, 4), budget="<= 0.1",
             passed=student_bytes <= 0.1 * teacher_bytes,
             detail=f"{student_bytes:,} B vs {args['teacher']} {teacher_bytes:,} B"),
    ]


def main() -> None:
    from bench_compress import run_part

    run_part(__doc__, budgets, "3 seeds instead of 8 (a smoke run)")


if __name__ == "__main__":
    main()
