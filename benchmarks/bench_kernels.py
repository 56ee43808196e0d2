"""int8 linear throughput: qkit's fast/eager kernels vs float32, numpy and torch's own int8 linear.

Run: ``python benchmarks/bench_kernels.py [--repeat N] [--threads T] [--small]``.
The first line is the CPU's capability and the exact int8 matmul path
:mod:`qkit.kernels.engine` chose (``QKIT_INT8_MATMUL`` forces one). Then which
int8 path runs on this CPU and why, then, per size, the best time
per call over N rounds (every backend once per round, after a warm-up call),
throughput in GOPS (2·N·K·M operations; none for the epilogue, which does no
matmul), ``speed vs fp32 = t_fp32 / t`` (> 1: faster than torch's float32
``F.linear`` measured in the same rounds), the split of the fast path into its
matmul and its epilogue, and the budget of issue 8 at 1024³ and 1024×4096×1024:
fast int8 linear >= 2.5× float32 (aim 3.5×) on a CPU with int8 dot-product units
that torch uses (VNNI / AMX: torch capability AVX512 and a VNNI/AMX flag), >= 1.5× on
others (AVX2). torch's own int8 linear (``torch.ao.nn.quantized.Linear``, fbgemm/x86
with a prepacked weight; deprecated API) is printed next to it as a yardstick, not a budget.
A last table times every exact matmul path this machine can run (each forced in
turn): the matmul alone and the whole int8 linear, against fp32 in the same rounds.
``numpy int32`` is a plain integer matmul without requantization: numpy has
no BLAS for integers. All kernels include requantization unless named "only".
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from qkit import measure
from qkit.kernels import engine, fast
from qkit.kernels import matmul as candidates
from qkit.kernels.bench import format_table, machine_line, path_report, time_linear_backends

BIG = [(1024, 1024, 1024), (1024, 4096, 1024)]
SMALL = [(64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512)]
AIM = 3.5


def budget(info) -> tuple[float, str]:
    """The linear budget for this CPU: 2.5× with int8 dot-product units torch uses, else 1.5×."""
    if info.capability.startswith("AVX512") and info.int8_units:
        return 2.5, "VNNI"
    return 1.5, info.capability


def compile_warmup_seconds() -> float:
    """Wall time of the first fused call in this process (torch.compile of the epilogue)."""
    fast._Compiled.fn, fast._Compiled.seen = None, set()
    start = time.perf_counter()
    time_linear_backends([(64, 64, 64)], repeat=1, backends=("qkit fast",))
    return time.perf_counter() - start


def per_path_rows(sizes, repeat: int) -> list[dict]:
    """fp32 vs each runnable exact matmul path (forced in turn): matmul only and the whole int8 linear."""
    saved, rows = os.environ.get(engine.ENV), []
    try:
        exact = {c.name for c in engine.info().candidates if c.exact}  # a path wrong here is never timed
        for name in candidates.CANDIDATES:
            if name not in exact:
                continue
            os.environ[engine.ENV] = name
            engine.reset()
            for r in time_linear_backends(sizes, repeat=repeat, backends=("qkit fast", "fast: _int_mm only")):
                rows.append(dict(r, path=name))
    finally:
        if saved is None:
            os.environ.pop(engine.ENV, None)
        else:
            os.environ[engine.ENV] = saved
        engine.reset()
    return rows


def format_per_path(rows) -> str:
    """One line per (size, path): fp32, the matmul alone and the whole int8 linear (vs fp32 = t_fp32 / t)."""
    lines = []
    for (n, k, m), name in sorted({((r["N"], r["K"], r["M"]), r["path"]) for r in rows}):
        by = {r["backend"]: r for r in rows if (r["N"], r["K"], r["M"], r["path"]) == (n, k, m, name)}
        fp, mm, lin = by["torch fp32"], by["fast: _int_mm only"], by["qkit fast"]
        lines.append({"size": f"{n}×{k}×{m}", "path": name, "fp32": fp["seconds"] * 1e3,
                      "matmul": mm["seconds"] * 1e3, "matmul_x": mm["speed_vs_fp32"],
                      "linear": lin["seconds"] * 1e3, "linear_x": lin["speed_vs_fp32"]})
    times = lambda v: f"{v:.2f}×"  # noqa: E731
    return measure.format_table(lines, [("size", "N×K×M", "s"), ("path", "path", "s"), ("fp32", "fp32 ms", ".2f"),
                                        ("matmul", "matmul ms", ".2f"), ("matmul_x", "vs fp32", times),
                                        ("linear", "linear ms", ".2f"), ("linear_x", "vs fp32", times)]) \
        + "\n(vs fp32 = t_fp32 / t, > 1 faster)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15, help="timed rounds per size")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--small", action="store_true", help="also the small sizes (for notebook 03's plot)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = engine.info()
    print(machine_line())
    floor, cpu = budget(info)
    print(info)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"({'set' if args.threads else 'default'}) on {os.cpu_count()} CPUs, {args.repeat} rounds, best; "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews every number)")
    print(path_report())
    print(f"compile warm-up (first fused call, incl. inductor's on-disk cache if warm): "
          f"{compile_warmup_seconds():.1f} s")
    rows = time_linear_backends((SMALL if args.small else []) + BIG, repeat=args.repeat)
    print("\n" + format_table(rows))
    short = sorted({f"{r['N']}x{r['K']}x{r['M']} {r['backend']}" for r in rows if r["runs"] < args.repeat})
    if short:
        print(f"fewer rounds (one call took over the slow limit): {', '.join(short)}")
    print(f"load average now {os.getloadavg()[0]:.2f}\n")
    for n, k, m in BIG:
        by = {r["backend"]: r for r in rows if (r["N"], r["K"], r["M"]) == (n, k, m)}
        fast_row, ao = by["qkit fast"], by.get("torch int8 (ao)")
        mm, epi = by["fast: _int_mm only"]["seconds"], by["fast: epilogue only"]["seconds"]
        ok = fast_row["speed_vs_fp32"] >= floor
        print(f"{n}x{k}x{m}: fast = {fast_row['speed_vs_fp32']:.2f}x fp32's speed (budget {floor}x on {cpu}"
              + (f", aim {AIM}x" if cpu == "VNNI" else "") + f": {'PASS' if ok else 'FAIL'}"
              + (" (aim met)" if cpu == "VNNI" and fast_row["speed_vs_fp32"] >= AIM else "")
              + f"); split: matmul {mm * 1e3:.2f} ms + epilogue {epi * 1e3:.2f} ms ({epi / (mm + epi):.0%})")
        if ao is not None:
            print(f"    vs torch int8 (ao): {ao['seconds'] / fast_row['seconds']:.2f}x its speed "
                  "(a yardstick, not a budget)")
        else:
            print("    torch int8 (ao) yardstick unavailable in this torch")
    print(f"\nevery exact int8 matmul path on this machine, forced in turn ({max(3, args.repeat // 3)} rounds, best):")
    print(format_per_path(per_path_rows(BIG, max(3, args.repeat // 3))))


if __name__ == "__main__":
    main()
