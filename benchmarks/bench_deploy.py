"""Deployed in ONNX Runtime: every zoo model in torch fp32, qkit int8, ONNX Runtime fp32 and ONNX Runtime int8.

Run: ``python benchmarks/bench_deploy.py [--repeat N] [--threads T] [--batch B]``.

The first line says which CPU this is (torch's capability, the int8
dot-product instructions /proc/cpuinfo lists) and which exact int8 matmul qkit
chose on it (:func:`qkit.kernels.info`). Then per zoo model: latency of one
batch of ``B`` test images (default 256) — the median over N rounds, all the
versions run in turns within each round (:func:`qkit.measure.compare`, so a
background load hits them all alike) — the ratio ONNX Runtime int8 / fp32,
the argmax agreement of ONNX Runtime int8 with qkit's integer model and of
ONNX Runtime fp32 with torch on the 359 test images, and the sizes: the ONNX
files (:func:`qkit.export.file_size`) next to :func:`qkit.measure.model_size`.
Last, the price of the portable encoding: the same int8 model written with
int8 weights (``to_onnx(..., weights="int8")``), its time and whether its outputs
equal the uint8 file's on this CPU.

Both ONNX files are written by :func:`qkit.export.to_onnx` (int8: uint8
weights with zero point 128, exact on AVX2 and VNNI alike; see its docstring).
ONNX Runtime's uint8 × uint8 kernels do at most about twice float32's
multiply-adds per instruction (16-bit ``vpmaddwd`` against 32-bit FMA), so int8
pays off where the GEMMs are large; on the tiny convolutions of this zoo the
fixed costs per operator dominate. The ratio column says which holds here.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

from qkit import data, kernels, measure, models, ptq
from qkit.export import OnnxModel, file_size, to_onnx
from qkit.kernels.bench import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="timed rounds (median over them)")
    ap.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)")
    ap.add_argument("--batch", type=int, default=256, help="images per timed forward pass")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_line())
    print(f"why: {kernels.info().reason}")
    X, _ = data.digits("train")
    Xt, yt = data.digits("test")
    cal = X[:256]
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {min(args.batch, len(Xt))}, "
          f"{args.repeat} rounds, median; load average {os.getloadavg()[0]:.2f}\n")
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models.names():
            model = models.load(name)
            q = ptq.convert(model, "int8", cal)
            p32 = to_onnx(model, os.path.join(tmp, f"{name}_fp32.onnx"), cal[:1])
            p8 = to_onnx(q, os.path.join(tmp, f"{name}_int8.onnx"), cal[:1])
            ps8 = to_onnx(q, os.path.join(tmp, f"{name}_int8_s8.onnx"), cal[:1], weights="int8")
            ort32, ort8, ort_s8 = OnnxModel(p32), OnnxModel(p8), OnnxModel(ps8)
            rows = {r["name"]: r for r in measure.compare({"torch fp32": model, "qkit int8": q, "ORT fp32": ort32,
                                                           "ORT int8": ort8, "ORT int8 s8": ort_s8}, Xt, yt,
                                                          args.batch, repeat=args.repeat)}
            with torch.no_grad():
                agree8 = (ort8(Xt).argmax(1) == q(Xt).argmax(1)).float().mean().item()
                agree32 = (ort32(Xt).argmax(1) == model(Xt).argmax(1)).float().mean().item()
                s8_same = torch.equal(ort_s8(Xt), ort8(Xt))
            table.append({"model": name, **{k: r["latency_ms"] for k, r in rows.items()},
                          "ratio": rows["ORT fp32"]["latency_ms"] / rows["ORT int8"]["latency_ms"],
                          "s8": rows["ORT int8"]["latency_ms"] / rows["ORT int8 s8"]["latency_ms"],
                          "s8_same": "yes" if s8_same else "NO",
                          "agree8": agree8, "agree32": agree32, "onnx32": file_size(p32), "onnx8": file_size(p8),
                          "pt32": measure.model_size(model), "pt8": measure.model_size(q)})
    ms = [(k, f"ms {k}", ".2f") for k in ("torch fp32", "qkit int8", "ORT fp32", "ORT int8")]
    print(measure.format_table(table, [("model", "model", "s")] + ms + [
        ("ratio", "ORT int8 × faster than ORT fp32", ".2f"), ("agree8", "ORT int8 = qkit int8", ".2%"),
        ("agree32", "ORT fp32 = torch", ".2%")]))
    print("\nThe price of exactness on every CPU: the same int8 model with int8 (signed) weights, weights='int8'")
    print(measure.format_table(table, [("model", "model", "s"), ("ORT int8 s8", "ms ORT int8, s8 weights", ".2f"),
                                       ("s8", "× faster than the uint8 file", ".2f"),
                                       ("s8_same", "same outputs here", "s")]))
    print("(s8 weights run on VNNI's u8×s8 dot product where the CPU has it; without VNNI, ONNX Runtime's u8×s8 "
          "kernels saturate int16 pair sums: outputs can differ unless the session sets session.x64quantprecision)")
    print("\nSizes: ONNX files (qkit.export.file_size) and torch.save files (qkit.measure.model_size)")
    print(measure.format_table(table, [("model", "model", "s")] + [
        (k, h, measure.format_bytes) for k, h in (("onnx32", "ONNX fp32"), ("onnx8", "ONNX int8"),
                                                  ("pt32", "torch fp32"), ("pt8", "qkit int8"))]))
    print(f"\nload average now {os.getloadavg()[0]:.2f}")
    worst = min(r["agree8"] for r in table)
    print(f"{'PASS' if worst >= 0.995 else 'FAIL'} ONNX Runtime int8 agrees with qkit's integer model on >= 99.5 % "
          f"of answers for every model (lowest {worst:.2%})")


if __name__ == "__main__":
    main()
