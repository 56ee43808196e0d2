"""Quantization-aware training on the zoo CNNs: accuracy over seeds, file sizes, mixed precision — issue 9's budgets.

Run: ``python benchmarks/bench_qat.py [--seeds 3] [--jobs 2] [--quick] [--parts qat,control,kd,sizes,mixed] [--configs "W2A2 lsq,W2A2 minmax"]``
(``kd``: the ablation, the same fine-tunes with distillation from the float model,
``qat.finetune(teacher=...)``, switched on where the recipe has it off and off where it has it on).

Every accuracy is the digits test split (359 images), the mean over ``--seeds``
fine-tunes (seed = batch order and pixel shifts) with the spread (min–max) beside it;
"PTQ" is the same grids before any fine-tuning (``qat.convert(qat.prepare(...))``:
calibrated on 256 training images), "QAT" after :func:`qkit.qat.finetune` (the
kit's recipe, with each configuration's epochs, learning rate and teacher: table ``CONFIGS``,
chosen on a validation split by ``validate_recipes.py``), both measured on the converted integer model. Below 4 bits the two
ends of the network stay at 8 bits (``keep_ends=8``: first and last layer's weights,
the input and the logits), as Rastegari et al. 2016 and Esser et al. 2019 do. File sizes are ``qkit.measure.model_size`` of the
converted models (weights below 8 bits bit-packed).

The control (``--parts control``, with ``qat``): the float model fine-tuned with each budgeted
recipe and no fake quant at all. A fine-tune moves a converged model, so the drop below
fp32 has two parts: what the fine-tune alone costs (the control's drop) and what the
quantization adds on top of it. Each budget line prints both.

Budgets (issue 9): W4A8 QAT <= 0.5 point below fp32 on every zoo CNN; W2A8 (ternary)
<= 1.5; W1A8 (binary) <= 3; W2A2: LSQ >= min-max QAT + 2 points on every CNN and
<= 3 points below fp32 on resnet and mobilenet_v2; mixed precision at the size of
uniform 4-bit weights >= uniform 4-bit (PTQ, and after QAT, mean over the seeds; each fine-tuned with
its validated recipe: uniform 4-bit with the W4A8 row, the mixed model with ``MIXED``); greedy allocation
(the measured greedy of lesson 07, choosing on training images) within 0.3 point of the
enumerated optimum on the mlp; resnet files vs fp32: 4-bit <= 1/6,
2-bit <= 1/10, 1-bit <= 1/16.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from qkit import data, distill, measure, models, partial, qat
from qkit.graph import fold_batchnorm
from qkit.kernels.bench import machine_line
from qkit.train import evaluate, fit, shift_pixels

# spawn, not fork: a forked worker can hang on thread pools the parent already started
# (the kernel probe runs ONNX Runtime and torch matmuls before any pool exists)
SPAWN = multiprocessing.get_context("spawn")

CNNS = ("mobilenet_v1", "mobilenet_v2", "resnet", "inception")
W2A2_FP32_BUDGET = ("resnet", "mobilenet_v2")  # the CNNs whose W2A2 LSQ has a budget below fp32 (<= 3 points)
# name: (w_bits, a_bits, method, keep_ends, epochs, lr, teacher, budget: max points below fp32 or None)
# Recipes chosen on a validation split, never on the test split: ``validate_recipes.py``
# (zoo models retrained without 359 held-out training images; candidates scored on those).
CONFIGS = {
    "W4A8": (4, 8, "minmax", None, 10, 3e-4, True, 0.5),
    "W2A8": (2, 8, "lsq", 8, 80, 3e-3, True, 1.5),
    "W1A8": (1, 8, "lsq", 8, 80, 3e-3, True, 3.0),
    "W2A2 lsq": (2, 2, "lsq", 8, 80, 1e-3, True, None),
    "W2A2 minmax": (2, 2, "minmax", 8, 80, 1e-3, True, None),
    "W2A2 lsq+": (2, 2, "lsq+", 8, 80, 1e-3, True, None),
}
# the mixed-precision model's QAT (method, epochs, lr, teacher), chosen like CONFIGS ("mixed" in validate_recipes.py);
# uniform 4-bit, the model it is compared with, is fine-tuned with the W4A8 row
MIXED = ("minmax", 20, 3e-4, True)
MIXED_CHOICES = (2, 3, 4, 8)


MIXED_ENDS = True  # the greedy holds the first and last layer at 8 bits ("mixed ends" in validate_recipes.py)


def mixed_bits(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor,
               ends: bool | None = None) -> tuple[dict[str, int], int]:
    """The mixed-precision allocation at the size of uniform 4-bit weights, measured on training images ``X, y``.

    Returns ``({layer: bits}, budget bytes)``: :func:`qkit.partial.greedy_measured` over :data:`MIXED_CHOICES`,
    with the first and last layer held at 8 bits if ``ends`` (default :data:`MIXED_ENDS`)."""
    names = partial.layers(model)
    budget = partial.weight_bytes(model, {l: 4 for l in names})
    fixed = {names[0]: 8, names[-1]: 8} if (MIXED_ENDS if ends is None else ends) else None
    return partial.greedy_measured(model, None, X, y, budget_bytes=budget, choices=MIXED_CHOICES, fixed=fixed), budget


def run(job: tuple) -> tuple:
    """One fine-tune: (model, config, seed, flip) -> (ptq accuracy, qat accuracy, seconds).

    The recipe's ``teacher`` flag says whether the float model teaches its QAT copy
    (``qat.finetune(teacher=...)``, :data:`qkit.qat.TEACHER`); ``flip`` inverts it (the ablation)."""
    name, config, seed, flip = job
    torch.set_num_threads(1)
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    w_bits, a_bits, method, ends, epochs, lr, distill, _ = CONFIGS[config]
    model = models.load(name)
    start = time.perf_counter()
    qm = qat.prepare(model, w_bits=w_bits, a_bits=a_bits, method=method.rstrip("+"), keep_ends=ends,
                     learn_zero_point=method.endswith("+"), calibration=X[:256])
    before = evaluate(qat.convert(qm), Xt, yt)
    teacher = models.load(name) if distill != flip else None
    qat.finetune(qm, X, y, epochs=epochs, lr=lr, seed=seed, progress=False, teacher=teacher)
    after = evaluate(qat.convert(qm), Xt, yt)
    return job, before, after, time.perf_counter() - start


def control(job: tuple) -> tuple:
    """The float model fine-tuned with a recipe and no fake quant: (job, test accuracy).

    ``job = (model, epochs, lr, teacher, seed)``; the same BatchNorm folding before training
    (``qkit.graph.fold_batchnorm``, as ``qat.prepare`` does), optimizer, schedule, batches, shifts
    and distillation as :func:`qkit.qat.finetune`, so the accuracy says what the fine-tune alone costs."""
    name, epochs, lr, teacher, seed = job
    torch.set_num_threads(1)
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    model = fold_batchnorm(models.load(name))  # as qat.prepare: no BatchNorm statistics move during the fine-tune
    recipe = dict(epochs=epochs, lr=lr, batch_size=qat.FINETUNE["batch_size"], seed=seed, progress=False,
                  schedule=qat.FINETUNE["schedule"], augment=shift_pixels)
    if teacher:
        distill.train(model, models.load(name), X, y, T=qat.TEACHER["T"], alpha=qat.TEACHER["alpha"],
                      weight_decay=0.0, **recipe)
    else:
        fit(model, X, y, **recipe)
    return job, evaluate(model.eval(), Xt, yt)


def mean_spread(values: list[float]) -> str:
    v = [100 * x for x in values]
    return f"{statistics.mean(v):6.2f} ({min(v):.1f}–{max(v):.1f})"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    ap.add_argument("--quick", action="store_true", help="resnet only, one seed")
    ap.add_argument("--parts", default="qat,control,kd,sizes,mixed",
                    help="comma-separated: qat, control (with qat: the float model fine-tuned with each budgeted "
                         "recipe, no fake quant), kd (distillation switched on/off against the recipe), sizes, mixed")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated rows of CONFIGS to fine-tune")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    args.configs = [c.strip() for c in args.configs.split(",")]
    for c in args.configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration {c!r}; expected some of {', '.join(CONFIGS)}")
    print(machine_line())
    cnns = ("resnet",) if args.quick else CNNS
    seeds = range(1 if args.quick else args.seeds)
    Xt, yt = data.digits("test")
    X, y = data.digits("train")
    if "qat" in parts:
        fine_tunes(cnns, seeds, args, Xt, yt, with_control="control" in parts)
    if "kd" in parts:
        print(f"\nablation: the same fine-tunes with distillation from the float model (qat.finetune(teacher=...), "
              f"{qat.TEACHER}) switched on where the recipe has it off, and off where it has it on")
        fine_tunes(cnns, seeds, args, Xt, yt, flip=True)
    if "sizes" in parts:
        sizes(X)
    if "mixed" in parts:
        mixed(X, y, Xt, yt, args)


def fine_tunes(cnns, seeds, args, Xt, yt, flip: bool = False, with_control: bool = False) -> None:
    fp32 = {n: evaluate(models.load(n), Xt, yt) for n in cnns}
    configs = {c: CONFIGS[c] for c in args.configs}
    jobs = [(n, c, s, flip) for n in cnns for c in configs for s in seeds]
    recipe = {c: (e, lr, t != flip) for c, (_, _, _, _, e, lr, t, _) in configs.items()}  # epochs, lr, teacher
    budgeted = {(n, c) for n in cnns for c in configs  # the (model, row) pairs a budget line is printed for
                if configs[c][-1] is not None or (c == "W2A2 lsq" and n in W2A2_FP32_BUDGET)}
    controls = sorted({(n, *recipe[c], s) for n, c in budgeted for s in seeds}) if with_control else []
    results: dict = {}
    floats: dict = {}
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=SPAWN) as pool:
        pending = [pool.submit(control, job) for job in controls]
        for job, before, after, _ in pool.map(run, jobs):
            results.setdefault(job[:2], []).append((before, after))
        for f in pending:
            job, acc = f.result()
            floats.setdefault(job[:4], []).append(acc)
    print(f"{len(jobs)} fine-tunes" + (f" and {len(controls)} float controls" if controls else "")
          + f" in {time.perf_counter() - start:.0f} s ({args.jobs} workers); "
          f"accuracy % = mean (min–max) over {len(seeds)} seed(s)")
    print("recipes: " + "; ".join(f"{c}: {m}, {e} epochs, lr {lr:g}" + (f", ends at {k} bits" if k else "")
                                  + (", distilled" if t != flip else "")
                                  for c, (_, _, m, k, e, lr, t, _) in configs.items()) + "\n")
    print(f"{'model':13s} {'fp32':>6s}  " + "  ".join(f"{c + ' PTQ → QAT':>34s}" for c in configs))
    lines = []
    for n in cnns:
        cells = []
        for c in configs:
            r = results[(n, c)]
            cells.append(f"{mean_spread([b for b, _ in r])} → {mean_spread([a for _, a in r])}")
        print(f"{n:13s} {100 * fp32[n]:6.2f}  " + "  ".join(f"{cell:>34s}" for cell in cells))

    def alone(n: str, c: str) -> str:  # what the same fine-tune costs the float model
        if not floats:
            return ""
        return f"; float fine-tune alone: {100 * (fp32[n] - statistics.mean(floats[(n, *recipe[c])])):+.2f}"

    print("\nbudgets" + (" (after ';': the control, the float model's drop after the same fine-tune with no fake "
                         "quant, mean over the seeds)" if floats else ""))
    for n in cnns:
        qat_mean = {c: statistics.mean(a for _, a in results[(n, c)]) for c in configs}
        for c, (*_, budget) in configs.items():
            if budget is not None:
                drop = 100 * (fp32[n] - qat_mean[c])
                lines.append(f"{verdict(drop <= budget)}  {n:13s} {c} QAT {drop:+.2f} points below fp32 (<= {budget})"
                             + alone(n, c))
        if "W2A2 lsq" in qat_mean and "W2A2 minmax" in qat_mean:
            gain = 100 * (qat_mean["W2A2 lsq"] - qat_mean["W2A2 minmax"])
            lines.append(f"{verdict(gain >= 2)}  {n:13s} W2A2 LSQ − min-max QAT = {gain:+.2f} points (>= 2)")
        if n in W2A2_FP32_BUDGET and "W2A2 lsq" in qat_mean:
            drop = 100 * (fp32[n] - qat_mean["W2A2 lsq"])
            lines.append(f"{verdict(drop <= 3)}  {n:13s} W2A2 LSQ {drop:+.2f} points below fp32 (<= 3)"
                         + alone(n, "W2A2 lsq"))
    print("\n".join(lines))


def sizes(X) -> None:
    resnet = models.load("resnet")
    fp32 = measure.model_size(resnet)
    print(f"\nresnet file sizes (fp32 {measure.format_bytes(fp32)})")
    for b, limit in ((8, 1 / 3.5), (4, 1 / 6), (2, 1 / 10), (1, 1 / 16)):
        size = measure.model_size(qat.convert(qat.prepare(resnet, w_bits=b, keep_ends=8 if b == 1 else None,
                                                          calibration=X[:256])))
        print(f"{verdict(size <= limit * fp32)}  {b}-bit weights: {measure.format_bytes(size)} = 1/{fp32 / size:.1f} of fp32 "
              f"(<= 1/{1 / limit:g})")


def mixed_run(job: tuple) -> tuple:
    """One arm of the mixed-precision comparison: (model, {layer: bits} as pairs, or 4, seed) -> (job, PTQ, QAT acc).

    PTQ: the observed (min-max) grids. Uniform 4-bit is fine-tuned with the W4A8 row of :data:`CONFIGS`,
    the mixed model with :data:`MIXED`: each with the recipe validated for it."""
    name, bits, seed = job
    torch.set_num_threads(1)
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    method, epochs, lr, teach = MIXED if isinstance(bits, tuple) else (CONFIGS["W4A8"][2], *CONFIGS["W4A8"][4:7])
    model = models.load(name)
    w_bits = dict(bits) if isinstance(bits, tuple) else bits
    ptq_acc = evaluate(qat.convert(qat.prepare(model, w_bits=w_bits, calibration=X[:256])), Xt, yt)  # observed grids
    qm = qat.prepare(model, w_bits=w_bits, method=method, calibration=X[:256])
    qat.finetune(qm, X, y, epochs=epochs, lr=lr, seed=seed, progress=False, teacher=models.load(name) if teach else None)
    return job, ptq_acc, evaluate(qat.convert(qm), Xt, yt)


def recipe_label(method: str, epochs: int, lr: float, teacher: bool) -> str:
    return f"{method}, {epochs} epochs, lr {lr:g}" + (", distilled" if teacher else "")


def mixed(X, y, Xt, yt, args) -> None:
    """Mixed precision at the size of uniform 4-bit weights, vs uniform 4-bit: PTQ and after QAT."""
    seeds = range(1 if args.quick else args.seeds)
    w4 = (CONFIGS["W4A8"][2], *CONFIGS["W4A8"][4:7])
    print(f"\nmixed precision at the size of uniform 4-bit weights (measured greedy, choices "
          f"{', '.join(map(str, MIXED_CHOICES))} bits{', ends at 8' if MIXED_ENDS else ''}; W*A8); QAT: mixed {recipe_label(*MIXED)}, uniform 4-bit "
          f"{recipe_label(*w4)} (the W4A8 row); mean (min–max) over {len(seeds)} seed(s)")
    held_X, held_y = X[-359:], y[-359:]  # allocation chooses on training images, never on the test split
    cnns = CNNS if not args.quick else ("resnet",)
    allocs = {n: mixed_bits(models.load(n), held_X, held_y) for n in cnns}
    jobs = [(n, arm, s) for n in cnns for arm in (4, tuple(allocs[n][0].items())) for s in seeds]
    runs: dict = {}
    with ProcessPoolExecutor(args.jobs, mp_context=SPAWN) as pool:
        for (n, arm, _), ptq_acc, qat_acc in pool.map(mixed_run, jobs):
            runs.setdefault((n, "uniform 4-bit" if arm == 4 else "mixed"), []).append((ptq_acc, qat_acc))
    for n in cnns:
        alloc, budget = allocs[n]
        u, m = runs[(n, "uniform 4-bit")], runs[(n, "mixed")]
        hist = {b: sum(1 for v in alloc.values() if v == b) for b in (2, 3, 4, 8)}
        print(f"{n}: layers at 2/3/4/8 bits = {hist[2]}/{hist[3]}/{hist[4]}/{hist[8]}, "
              f"{partial.weight_bytes(models.load(n), alloc)} <= {budget} bytes")
        for k, label in ((0, "PTQ"), (1, "QAT")):
            mu, um = (statistics.mean(r[k] for r in v) for v in (m, u))
            print(f"{verdict(mu >= um)}  {n:13s} {label:5s} mixed {mean_spread([r[k] for r in m])} vs uniform 4-bit "
                  f"{mean_spread([r[k] for r in u])}")
    mlp = models.load("mlp")
    names = partial.layers(mlp)
    for b in (8, 4, 3):
        budget = partial.weight_bytes(mlp, {l: b for l in names})
        g = partial.greedy_measured(mlp, None, held_X, held_y, budget_bytes=budget, choices=(2, 4, 8, 32))
        best = partial.optimal(mlp, X[:256], held_X, held_y, budget_bytes=budget, choices=(2, 4, 8, 32))
        best_acc = evaluate(partial.simulate_bits(mlp, best, act_bits=None), held_X, held_y)
        g_acc = evaluate(partial.simulate_bits(mlp, g, act_bits=None), held_X, held_y)
        gap = 100 * (best_acc - g_acc)
        print(f"{verdict(gap <= 0.3)}  mlp greedy vs enumerated optimum at the size of uniform {b}-bit: "
              f"{gap:.2f} points (<= 0.3)")


if __name__ == "__main__":
    main()
