"""Choose ``bench_qat.py``'s QAT recipes on a validation split, never on the test split.

Run: ``python benchmarks/validate_recipes.py [--configs W4A8,mixed,"mixed ends",W2A8,W1A8,W2A2] [--seeds N] [--jobs 2]
[--results FILE]`` (about 80 minutes on 2 cores for everything).

The zoo models were trained on the whole digits train split, so scoring a recipe on any of
those images would flatter the recipes that move the weights least. Instead every zoo CNN is
retrained with its own zoo recipe (``qkit.zoo.make.RECIPES``) on the train split minus 359
held-out images (a fixed random draw, as many as the test split); each candidate recipe then
fine-tunes that model's QAT copy on the same reduced split, and the converted integer model is
scored on the held-out images. The test split is never read.

Folds: one held-out draw of 359 images at 99 % accuracy is about 3 errors, too few to rank
recipes that differ by a fraction of a point, and W4A8's candidates all tied on it. The short
W4A8 recipes are cheap, so they are scored on four folds and four seeds (``FOLDS``, ``SEEDS``: the
train split cut into four held-out sets of 359, each with its own retrained zoo, every training
image held out once but two); the long recipes below 4 bits on fold 0 alone, with 2 seeds
(``--seeds N`` sets every configuration's seeds).

``mixed``: the recipe of ``bench_qat``'s mixed-precision model (``bench_qat.MIXED``), the
allocation at the size of uniform 4-bit weights (``bench_qat.mixed_bits``, measured on training
images) fine-tuned with W4A8's candidates, on four folds and four seeds. Its layers run from 2 to
8 bits, so the 4-bit winner need not be its winner. ``mixed ends``: the same with the greedy holding
the first and last layer at 8 bits (``bench_qat.mixed_bits(ends=True)``), fine-tuned with
``bench_qat.MIXED``; ``bench_qat.MIXED_ENDS`` should say whether its mean drop beats the free
allocation's with the same recipe by more than :func:`tie` (a tie keeps the free allocation).

Rule: per configuration, the candidate with the smallest mean drop below fp32 (held-out
accuracy, over the four CNNs, the folds and the seeds) wins. Candidates count as tied only when
their means differ by less than one held-out image in one of the runs pooled into them
(:func:`tie`: 100 / (359 · runs) points, 0.035 for one fold and two seeds, 0.0044 for four folds
and four seeds): the mean cannot tell them apart. A tie goes to fewer epochs, then to no
teacher, then to the smaller worst-model drop. The script says whether ``bench_qat.CONFIGS``
holds the winners.

(Until the W4A8 runs had four folds and four seeds, ties were any two means within a fixed
0.1 point, a third of one image on a single held-out fold; pooled over 32 runs that is
about three images' worth, which made a tie of what the folds had resolved.)

``--results FILE``: append each fine-tune to a JSON-lines file and skip the ones already in it
(a rerun resumes). The retrained models are kept in ``build/validation-zoo/fold<k>/``.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from bench_qat import CNNS, CONFIGS, MIXED, MIXED_ENDS, SPAWN, mixed_bits  # noqa: E402

from qkit import data, models, qat, train  # noqa: E402
from qkit.kernels.bench import machine_line  # noqa: E402
from qkit.zoo.make import train_model  # noqa: E402

ZOO_DIR = Path(__file__).resolve().parent.parent / "build" / "validation-zoo"
HELD_OUT = 359
W4A8_CANDIDATES = [("minmax", 5, 1e-4, False), ("minmax", 5, 3e-4, False), ("minmax", 5, 3e-4, True),
                   ("minmax", 10, 1e-4, True), ("minmax", 10, 3e-4, True), ("minmax", 20, 3e-4, True),
                   ("lsq", 10, 3e-4, True), ("lsq", 10, 1e-3, True)]
# configuration -> (w_bits, a_bits, keep_ends, candidates: (method, epochs, lr, teacher)); w_bits "mixed":
# bench_qat.mixed_bits, the allocation at the size of uniform 4-bit weights, measured on 359 training images
CANDIDATES = {
    "W4A8": (4, 8, None, W4A8_CANDIDATES),
    "mixed": ("mixed", 8, None, W4A8_CANDIDATES),
    "mixed ends": ("mixed ends", 8, None, [MIXED]),
    "W2A8": (2, 8, 8, [("lsq", 20, 1e-3, False), ("lsq", 20, 1e-3, True), ("lsq", 40, 1e-3, True),
                       ("lsq", 40, 3e-3, True), ("lsq", 80, 1e-3, True), ("lsq", 80, 3e-3, True)]),
    "W1A8": (1, 8, 8, [("lsq", 20, 1e-3, False), ("lsq", 20, 1e-3, True), ("lsq", 40, 1e-3, True),
                       ("lsq", 40, 3e-3, True), ("lsq", 80, 1e-3, True), ("lsq", 80, 3e-3, True)]),
    "W2A2": (2, 2, 8, [("lsq", 20, 1e-3, False), ("lsq", 20, 1e-3, True), ("lsq", 40, 1e-3, True),
                       ("lsq", 40, 3e-3, True), ("lsq", 80, 1e-3, True)]),
}
FOLDS = {"W4A8": 4, "mixed": 4, "mixed ends": 4}  # held-out folds per configuration (default 1: fold 0)
SEEDS = {"W4A8": 4, "mixed": 4, "mixed ends": 4}  # fine-tune seeds per configuration (default 2)
BENCH_NAME = {"W2A2": "W2A2 lsq"}  # the bench's row the W2A2 choice is for (min-max and LSQ+ share its recipe)


def folds_of(config: str) -> int:
    """How many held-out folds ``config``'s candidates are scored on (:data:`FOLDS`, default 1)."""
    return FOLDS.get(config, 1)


def seeds_of(config: str, seeds: int | None = None) -> int:
    """How many seeds ``config``'s candidates are fine-tuned with: ``seeds`` if given, else :data:`SEEDS` (default 2)."""
    return SEEDS.get(config, 2) if seeds is None else seeds


def split(fold: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(X_train, y_train, X_held, y_held): the digits train split with fold ``fold``'s 359 images held out.

    One fixed random order of the 1438 training images; fold k holds out places 359·k to 359·(k+1)."""
    X, y = data.digits("train")
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(12345))  # (1438,) int64
    held = perm[fold * HELD_OUT:(fold + 1) * HELD_OUT]  # (359,) int64
    rest = torch.cat([perm[:fold * HELD_OUT], perm[(fold + 1) * HELD_OUT:]])  # (1079,) int64
    return X[rest], y[rest], X[held], y[held]


def retrain(job: tuple[str, int]) -> tuple[tuple[str, int], float]:
    """Retrain ``name`` without fold ``fold``'s held-out images (cached on disk); its held-out accuracy."""
    name, fold = job
    torch.set_num_threads(1)
    Xtr, ytr, Xh, yh = split(fold)
    path = ZOO_DIR / f"fold{fold}" / f"{name}.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(train_model(name, X=Xtr, y=ytr).state_dict(), path)
    return job, train.evaluate(load(name, fold), Xh, yh)


def load(name: str, fold: int) -> torch.nn.Module:
    model = models.build(name)
    model.load_state_dict(torch.load(ZOO_DIR / f"fold{fold}" / f"{name}.pt", weights_only=True))
    return model.eval()


@functools.cache
def allocation(name: str, fold: int, ends: bool) -> tuple[tuple[str, int], ...]:
    """As ``bench_qat.mixed``: the greedy at the size of uniform 4-bit weights, on the fold's last 359 training
    images; ``ends``: the first and last layer held at 8 bits."""
    Xtr, ytr, _, _ = split(fold)
    bits, _ = mixed_bits(load(name, fold), Xtr[-HELD_OUT:], ytr[-HELD_OUT:], ends=ends)
    return tuple(bits.items())


def run(job: tuple) -> dict:
    """One candidate fine-tune, scored on the held-out images."""
    name, config, candidate, fold, seed = job
    method, epochs, lr, teacher = candidate
    w_bits, a_bits, ends, _ = CANDIDATES[config]
    torch.set_num_threads(1)
    Xtr, ytr, Xh, yh = split(fold)
    start = time.perf_counter()
    if w_bits in ("mixed", "mixed ends"):
        w_bits = dict(allocation(name, fold, w_bits == "mixed ends"))
    qm = qat.prepare(load(name, fold), w_bits=w_bits, a_bits=a_bits, method=method, keep_ends=ends,
                     calibration=Xtr[:256])
    qat.finetune(qm, Xtr, ytr, epochs=epochs, lr=lr, seed=seed, progress=False,
                 teacher=load(name, fold) if teacher else None)
    return {"name": name, "config": config, "variant": list(candidate), "fold": fold, "seed": seed,
            "val": train.evaluate(qat.convert(qm), Xh, yh), "s": time.perf_counter() - start}


def tie(runs: int) -> float:
    """Points within which two candidates' means tie: one held-out image in one of ``runs`` pooled runs.

    Example:
        >>> round(tie(4 * 4 * 4), 4)  # four CNNs, four folds, four seeds
        0.0044
    """
    return 100 / (HELD_OUT * runs)


def choose(drops: dict[tuple, dict[str, float]], runs: int) -> tuple:
    """The winning candidate by the rule in the module docstring; ``drops[candidate][model]`` in points,
    each the mean of ``runs / len(CNNS)`` runs (folds × seeds)."""
    mean = {c: statistics.mean(d.values()) for c, d in drops.items()}
    best = min(mean.values())
    tied = [c for c in drops if mean[c] < best + tie(runs)]
    return min(tied, key=lambda c: (c[1], c[3], max(drops[c].values())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CANDIDATES))
    ap.add_argument("--seeds", type=int, help="seeds for every configuration (default: SEEDS, else 2)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--results", type=Path, help="JSON-lines file to append to and resume from")
    args = ap.parse_args()
    configs = args.configs.split(",")
    for c in configs:
        if c not in CANDIDATES:
            raise SystemExit(f"unknown configuration {c!r}; expected some of {', '.join(CANDIDATES)}")
    print(machine_line())
    folds = range(max(folds_of(c) for c in configs))
    with ProcessPoolExecutor(args.jobs, mp_context=SPAWN) as pool:
        fp32 = dict(pool.map(retrain, [(n, f) for f in folds for n in CNNS]))
    for f in folds:
        print(f"fold {f}: fp32 held-out accuracy (retrained without them): "
              + ", ".join(f"{n} {100 * fp32[(n, f)]:.2f} %" for n in CNNS))
    done = []
    if args.results and args.results.exists():
        done = [{"fold": 0, **json.loads(line)} for line in args.results.read_text().splitlines() if line.strip()]
    # rows written before there were folds are fold 0's
    have = {(r["name"], r["config"], tuple(r["variant"]), r["fold"], r["seed"]) for r in done}
    jobs = [(n, c, cand, f, s) for c in configs for cand in CANDIDATES[c][3] for n in CNNS
            for f in range(folds_of(c)) for s in range(seeds_of(c, args.seeds)) if (n, c, cand, f, s) not in have]
    print(f"{len(jobs)} fine-tunes to run ({len(have)} read from {args.results})" if args.results
          else f"{len(jobs)} fine-tunes to run")
    out = args.results.open("a") if args.results else None
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=SPAWN) as pool:
        for r in pool.map(run, jobs):
            done.append(r)
            if out:
                out.write(json.dumps(r) + "\n")
                out.flush()
    if out:
        out.close()
    print(f"done in {time.perf_counter() - start:.0f} s; drop = fp32 − QAT held-out accuracy, points, mean over "
          "the folds and the seeds\n")
    report(configs, fp32, done, args.seeds)


def report(configs: list[str], fp32: dict[tuple[str, int], float], done: list[dict], seeds: int | None) -> None:
    """Per configuration: every candidate's drop per model (mean over its folds and seeds), the winner marked."""
    means: dict[str, dict[tuple, float]] = {}  # configuration -> candidate -> mean drop over the CNNs, points
    for c in configs:
        n_seeds = seeds_of(c, seeds)
        drop_runs: dict[tuple, dict[str, list[float]]] = {}  # candidate -> model -> drops of its runs, points
        for r in done:
            if r["config"] == c and r["seed"] < n_seeds and r["fold"] < folds_of(c):
                drop = 100 * (fp32[(r["name"], r["fold"])] - r["val"])
                drop_runs.setdefault(tuple(r["variant"]), {}).setdefault(r["name"], []).append(drop)
        full = n_seeds * folds_of(c)  # runs per candidate and model
        drops = {cand: {n: statistics.mean(d[n]) for n in CNNS}
                 for cand, d in drop_runs.items() if all(len(d.get(n, [])) == full for n in CNNS)}
        winner = choose(drops, full * len(CNNS))
        means[c] = {cand: statistics.mean(d.values()) for cand, d in drops.items()}
        print(f"{c:5s} {'candidate':38s} " + " ".join(f"{n:>13s}" for n in CNNS) + f" {'mean':>6s}"
              + f"   ({folds_of(c)} fold(s) × {n_seeds} seed(s))")
        for cand, d in drops.items():
            method, epochs, lr, teacher = cand
            label = f"{method}, {epochs} epochs, lr {lr:g}" + (", teacher" if teacher else "")
            print(f"{'→' if cand == winner else ' ':5s} {label:38s} " + " ".join(f"{d[n]:+13.2f}" for n in CNNS)
                  + f" {statistics.mean(d.values()):+6.2f}")
        if c.startswith("mixed"):
            where, (method, epochs, lr, teacher) = "bench_qat.MIXED", MIXED
        else:
            where = f"bench_qat.CONFIGS[{BENCH_NAME.get(c, c)!r}]"
            _, _, method, _, epochs, lr, teacher, _ = CONFIGS[BENCH_NAME.get(c, c)]
        agrees = (method.rstrip("+"), epochs, lr, teacher) == winner
        print(f"{where} = {method}, {epochs} epochs, lr {lr:g}"
              f"{', teacher' if teacher else ''}: {'the winner' if agrees else 'NOT the winner (→ above)'}\n")
    if "mixed" in configs and "mixed ends" in configs and MIXED in means["mixed"] and MIXED in means["mixed ends"]:
        free, ends = means["mixed"][MIXED], means["mixed ends"][MIXED]
        better = ends < free - tie(folds_of("mixed") * seeds_of("mixed", seeds) * len(CNNS))
        print(f"allocation, fine-tuned with bench_qat.MIXED: free {free:+.2f}, first and last layer at 8 bits "
              f"{ends:+.2f} → {'ends at 8' if better else 'free'}; bench_qat.MIXED_ENDS = {MIXED_ENDS}: "
              f"{'agrees' if MIXED_ENDS == better else 'DISAGREES'}")


if __name__ == "__main__":
    main()
