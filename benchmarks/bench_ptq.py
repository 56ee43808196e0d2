"""Post-training quantization of every zoo model: accuracy, size and latency, fp32 vs fp16 / dynamic / int8.

Run: ``python benchmarks/bench_ptq.py [--repeat N] [--threads T] [--batch B] [--observer NAME]``.

TensorFlow Lite's CNN table (its documentation's quantized-model figures) with its PTQ columns, measured on our zoo: top-1 accuracy
on the digits test split (359 images), ``model_size`` (bytes of
``torch.save(state_dict)``; the container's ~1.2 KiB + ~270 B per tensor
included, so tiny models fall short of the weights' 4×; "payload" is the
tensors alone), and latency of one batch of ``B`` test images (default 256):
the median over N rounds, every model once per round (a background load hits
them all alike), after warm-up calls (which also compile the int8 epilogue).
int8 uses 256 calibration images from the train split.

Budgets (the issue of lesson 04): int8 accuracy drop <= 1 point (aim 0.5),
fp16 drop <= 0.5 point, int8 >= 3.5× smaller than fp32 and fp16 >= 1.9×
(for models whose fp32 file is >= 300 KB: below that the container dominates),
int8 faster than fp32 for the largest zoo model at batch 256 (aim 1.5×).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from qkit import data, measure, models, ptq
from qkit.train import evaluate

MODES = ("fp32", "fp16", "dynamic", "int8")
BIG_ENOUGH = 300_000  # bytes of fp32 file from which the size budgets apply


def convert_all(name: str, calibration: torch.Tensor, observer: str) -> dict:
    model = models.load(name)
    out = {"fp32": model}
    for mode in MODES[1:]:
        out[mode] = ptq.convert(model, mode, calibration=calibration, observer=observer)
    return out


def time_round_robin(variants: dict, x: torch.Tensor, repeat: int) -> dict:
    """Median and p95 ms of ``model(x)`` per variant; each round calls every variant once."""
    times = {k: [] for k in variants}
    with torch.inference_mode():
        for m in variants.values():  # warm-up: compile, caches, page faults
            m(x), m(x), m(x)
        for _ in range(repeat):
            for k, m in variants.items():
                start = time.perf_counter()
                m(x)
                times[k].append((time.perf_counter() - start) * 1e3)
    return {k: (statistics.median(v), float(np.percentile(v, 95))) for k, v in times.items()}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="timed rounds (median over them)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--batch", type=int, default=256, help="images per timed forward pass")
    ap.add_argument("--observer", default="minmax", help="activation observer for int8")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, _ = data.digits("train")
    Xt, yt = data.digits("test")
    cal, xb = X[:256], Xt[: args.batch]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} CPUs; batch "
          f"{len(xb)}, {args.repeat} rounds, median; observer {args.observer}; load average "
          f"{os.getloadavg()[0]:.2f}")
    results = {}
    for name in models.names():
        variants = convert_all(name, cal, args.observer)
        acc = {k: evaluate(m, Xt, yt) for k, m in variants.items()}
        size = {k: measure.model_size(m) for k, m in variants.items()}
        payload = {k: measure.tensor_bytes(m) for k, m in variants.items()}
        lat = time_round_robin({k: variants[k] for k in ("fp32", "dynamic", "int8")}, xb, args.repeat)
        results[name] = dict(acc=acc, size=size, payload=payload, lat=lat)
    print(f"load average now {os.getloadavg()[0]:.2f}\n")

    print("Top-1 accuracy (digits test, 359 images) and latency (ms per batch)")
    head = (f"{'model':<13}{'fp32':>7}{'fp16':>7}{'dynamic':>8}{'int8':>7}  {'ms fp32':>8}{'dynamic':>9}"
            f"{'int8':>8}{'int8 vs fp32':>13}")
    print(head + "\n" + "-" * len(head))
    for name, r in results.items():
        a, lat = r["acc"], r["lat"]
        print(f"{name:<13}" + "".join(f"{a[k]:{w}.4f}" for k, w in zip(MODES, (7, 7, 8, 7)))
              + f"  {lat['fp32'][0]:8.2f}{lat['dynamic'][0]:9.2f}{lat['int8'][0]:8.2f}"
              + f"{lat['fp32'][0] / lat['int8'][0]:12.2f}x")

    print("\nSize: model_size (torch.save of the state_dict) and ratio to fp32; payload = tensors alone")
    head = (f"{'model':<13}{'fp32':>10}{'fp16':>10}{'dynamic':>10}{'int8':>10}  {'fp16 x':>7}{'int8 x':>7}"
            f"  {'payload fp16 x':>15}{'int8 x':>7}")
    print(head + "\n" + "-" * len(head))
    for name, r in results.items():
        s, p = r["size"], r["payload"]
        print(f"{name:<13}" + "".join(f"{measure.format_bytes(s[k]):>10}" for k in MODES)
              + f"  {s['fp32'] / s['fp16']:6.2f}x{s['fp32'] / s['int8']:6.2f}x"
              + f"  {p['fp32'] / p['fp16']:14.2f}x{p['fp32'] / p['int8']:6.2f}x")

    print("\nBudgets")
    for name, r in results.items():
        a, s = r["acc"], r["size"]
        d8, d16 = 100 * (a["fp32"] - a["int8"]), 100 * (a["fp32"] - a["fp16"])
        line = (f"{name:<13} int8 drop {d8:+.2f} pt (<= 1, aim 0.5): {verdict(d8 <= 1)}"
                f"{' (aim met)' if d8 <= 0.5 else ''};  fp16 drop {d16:+.2f} pt (<= 0.5): {verdict(d16 <= 0.5)}")
        if s["fp32"] >= BIG_ENOUGH:
            r8, r16 = s["fp32"] / s["int8"], s["fp32"] / s["fp16"]
            line += (f";  size int8 {r8:.2f}x (>= 3.5): {verdict(r8 >= 3.5)}, "
                     f"fp16 {r16:.2f}x (>= 1.9): {verdict(r16 >= 1.9)}")
        else:
            line += f";  size budgets n/a (fp32 file {measure.format_bytes(s['fp32'])} < 300 KB: container dominates)"
        print(line)
    largest = max(models.names(), key=lambda n: models.describe(n)["macs"])
    lat = results[largest]["lat"]
    speed = lat["fp32"][0] / lat["int8"][0]
    print(f"{largest} (most MACs per image): int8 {speed:.2f}x the speed of fp32 at batch {len(xb)} "
          f"(budget > 1: {verdict(speed > 1)}; aim 1.5x: {'met' if speed >= 1.5 else 'not met'})")


if __name__ == "__main__":
    main()
