"""Post-training quantization of every zoo model: accuracy, size and latency, fp32 vs fp16 / dynamic / int8.

Run: ``python benchmarks/bench_ptq.py [--repeat N] [--threads T] [--batch B] [--observer NAME]``.

TensorFlow Lite's CNN table (its documentation's quantized-model figures) with its PTQ columns, measured on our zoo: top-1 accuracy
on the digits test split (359 images), ``model_size`` (bytes of
``torch.save(state_dict)``; the container's ~1.2 KiB + ~270 B per tensor
included, so tiny models fall short of the weights' 4×; "payload" is the
tensors alone), and latency of one batch of ``B`` test images (default 256):
the median over N rounds, every variant once per round (a background load hits
them all alike), after warm-up calls (which also compile the int8 epilogue).
int8 uses 256 calibration images from the train split. Measuring is
:func:`qkit.measure.compare`, layout :func:`qkit.measure.format_table`.

Budgets (the issue of lesson 04): int8 accuracy drop <= 1 point (aim 0.5),
fp16 drop <= 0.5 point, int8 >= 3.5× smaller than fp32 and fp16 >= 1.9×
(for models whose fp32 file is >= 300 KB: below that the container dominates),
int8 faster than fp32 for the largest zoo model at batch 256 (aim 1.5×); and issue 8's
speed budgets, on any CPU: every zoo model in qkit int8 at most 3× torch fp32's latency
(aim 1×), ``wide_mlp`` at least 1.5× faster than fp32. The first line names the CPU
capability and the exact int8 matmul and conv paths qkit chose on it.
"""

from __future__ import annotations

import argparse
import os

import torch

from qkit import data, measure, models, ptq
from qkit.kernels import fast
from qkit.kernels.bench import machine_line

MODES = ("fp32", "fp16", "dynamic", "int8")
BIG_ENOUGH = 300_000  # bytes of fp32 file from which the size budgets apply


def convert_all(name: str, calibration: torch.Tensor, observer: str) -> dict:
    model = models.load(name)
    out = {"fp32": model}
    for mode in MODES[1:]:
        out[mode] = ptq.convert(model, mode, calibration=calibration, observer=observer)
    return out


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
    print(machine_line())
    X, _ = data.digits("train")
    Xt, yt = data.digits("test")
    cal = X[:256]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} CPUs; batch "
          f"{min(args.batch, len(Xt))}, {args.repeat} rounds, median; observer {args.observer}; load average "
          f"{os.getloadavg()[0]:.2f}")
    results = {name: measure.compare(convert_all(name, cal, args.observer), Xt, yt, args.batch,
                                     repeat=args.repeat) for name in models.names()}
    print(f"load average now {os.getloadavg()[0]:.2f}\n")
    by_mode = {name: {r["name"]: r for r in rows} for name, rows in results.items()}

    print("Top-1 accuracy (digits test, 359 images) and latency (ms per batch)")
    table = [{"model": name, **{m: r[m]["accuracy"] for m in MODES}, **{f"ms {m}": r[m]["latency_ms"] for m in MODES},
              "int8 speedup": r["int8"]["speedup"]} for name, r in by_mode.items()]
    print(measure.format_table(table, [("model", "model", "s")] + [(m, m, ".4f") for m in MODES]
                               + [(f"ms {m}", f"ms {m}", ".2f") for m in MODES]
                               + [("int8 speedup", "int8 vs fp32", ".2f")]))

    print("\nSize: model_size (torch.save of the state_dict) and ratio to fp32; payload = tensors alone")
    table = [{"model": name, **{m: r[m]["size"] for m in MODES}, "fp16 x": r["fp16"]["size_ratio"],
              "int8 x": r["int8"]["size_ratio"], "payload fp16 x": r["fp16"]["payload_ratio"],
              "payload int8 x": r["int8"]["payload_ratio"]} for name, r in by_mode.items()]
    print(measure.format_table(table, [("model", "model", "s")] + [(m, m, measure.format_bytes) for m in MODES]
                               + [(k, k, ".2f") for k in ("fp16 x", "int8 x", "payload fp16 x", "payload int8 x")]))

    print("\nBudgets")
    for name, r in by_mode.items():
        d8, d16 = r["int8"]["accuracy_drop"], r["fp16"]["accuracy_drop"]
        line = (f"{name:<13} int8 drop {d8:+.2f} pt (<= 1, aim 0.5): {verdict(d8 <= 1)}"
                f"{' (aim met)' if d8 <= 0.5 else ''};  fp16 drop {d16:+.2f} pt (<= 0.5): {verdict(d16 <= 0.5)}")
        if r["fp32"]["size"] >= BIG_ENOUGH:
            r8, r16 = r["int8"]["size_ratio"], r["fp16"]["size_ratio"]
            line += (f";  size int8 {r8:.2f}x (>= 3.5): {verdict(r8 >= 3.5)}, "
                     f"fp16 {r16:.2f}x (>= 1.9): {verdict(r16 >= 1.9)}")
        else:
            line += (f";  size budgets n/a (fp32 file {measure.format_bytes(r['fp32']['size'])} < 300 KB: "
                     "container dominates)")
        print(line)
    print(f"int8 epilogue: {fast._Compiled.mode}")
    for name, r in by_mode.items():
        slower = r["int8"]["latency_ms"] / r["fp32"]["latency_ms"]
        print(f"{name:<13} int8 latency {slower:.2f}x fp32's (budget <= 3: {verdict(slower <= 3)}; aim <= 1: "
              f"{'met' if slower <= 1 else 'not met'})")
    wide = by_mode["wide_mlp"]["int8"]["speedup"]
    print(f"wide_mlp      int8 {wide:.2f}x faster than fp32 (budget >= 1.5: {verdict(wide >= 1.5)})")
    largest = max(models.names(), key=lambda n: models.describe(n)["macs"])
    speed = by_mode[largest]["int8"]["speedup"]
    print(f"{largest} (most MACs per image): int8 {speed:.2f}x the speed of fp32 at batch "
          f"{by_mode[largest]['int8']['batch']} (budget > 1: {verdict(speed > 1)}; "
          f"aim 1.5x: {'met' if speed >= 1.5 else 'not met'})")


if __name__ == "__main__":
    main()
