"""Timing of the int8 linear backends against float32, for ``benchmarks/`` and notebook 03.

Equation: ``x ≈ scale * (q - zero_point)``. One convention for every ratio:

    speed vs fp32 = t_fp32 / t_path      (> 1: faster than float32, < 1: slower)

with ``t_fp32`` the float32 ``F.linear`` timed in the same rounds. Throughput
counts the ``2·N·K·M`` operations of the matrix multiply (one multiply, one
add per product), in GOPS = 1e9 operations/s, for every path that does that
multiply; ``"fast: epilogue only"`` does none (it requantizes the int32
output), so it gets a time and its share of the fast path, no GOPS.

Every backend runs once per round, round after round (so a background load
hits them all alike), after a warm-up call each (which also compiles the fused
epilogue and fills the per-weight cache). A round calls a fast backend often
enough to last about ``ROUND_SECONDS`` and reports the time per call; the
**best** round is kept, as Python's ``timeit`` advises: other work on the
machine only ever adds time, so the minimum is the least disturbed number.
Each round starts with one untimed call: the backend before it (numpy's
single-threaded 0.4 s matmul, say) leaves torch's worker threads asleep and the
caches full of its own data, and a 1 ms kernel timed cold right after it ran at
half its speed here.

>>> rows = time_linear_backends([(8, 16, 8)], repeat=1, backends=("torch fp32", "qkit fast"))
>>> [(r["backend"], r["N"], r["K"], r["M"], r["speed_vs_fp32"] > 0) for r in rows]
[('torch fp32', 8, 16, 8, True), ('qkit fast', 8, 16, 8, True)]
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from qkit.kernels import conv_engine, engine, fast, int8_linear
from qkit.qparams import QParams, choose_qparams, tensor_range, weight_qparams
from qkit.quant import quantize

#: Names of the timed variants, in table order.
BACKENDS = ("torch fp32", "numpy int32", "torch int8 (ao)", "qkit fast", "qkit eager",
            "fast: _int_mm only", "fast: epilogue only")
PARTS = ("fast: _int_mm only", "fast: epilogue only")  # the two halves of "qkit fast"
ROUND_SECONDS = 0.01  # one timed round of a backend lasts at least this (many calls if fast)


def _problem(n: int, k: int, m: int, seed: int) -> dict:
    """Random float layer and its int8 version: per-tensor affine x, per-channel scale w."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=g).clamp(min=-1.0) * 0.5 + 0.2  # (N, K) shifted: non-zero zero_point
    w = torch.randn(m, k, generator=g) / k**0.5  # (M, K)
    b = torch.randn(m, generator=g) * 0.1  # (M,)
    x_qp = choose_qparams(*tensor_range(x))
    w_qp = weight_qparams(w, narrow=True)
    y_qp = choose_qparams(*tensor_range(F.linear(x, w, b)))
    return dict(x=x, w=w, b=b, x_qp=x_qp, w_qp=w_qp, y_qp=y_qp,
                q_x=quantize(x, x_qp), q_w=quantize(w, w_qp))


def _ao_linear(p: dict):
    """torch's own int8 linear (fbgemm/x86, prepacked weight); deprecated, a yardstick only."""
    import torch.ao.nn.quantized as nnq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m, k = p["w"].shape
        layer = nnq.Linear(k, m, dtype=torch.qint8)
        w_qp: QParams = p["w_qp"]
        zeros = torch.zeros(m, dtype=torch.long)
        qw = torch.quantize_per_channel(p["w"], w_qp.scale.double(), zeros, 0, torch.qint8)
        layer.set_weight_bias(qw, p["b"])
        layer.scale, layer.zero_point = float(p["y_qp"].scale), int(p["y_qp"].zero_point) + 128
        x_qp: QParams = p["x_qp"]  # fbgemm wants uint8 activations: the same grid shifted by 128
        qx = torch.quantize_per_tensor(p["x"], float(x_qp.scale), int(x_qp.zero_point) + 128, torch.quint8)
        layer(qx)
    return lambda: layer(qx)


def _runners(p: dict, backends) -> dict:
    """name -> zero-argument callable; "fast: epilogue only" takes the matmul's fresh output."""
    args = (p["q_x"], p["x_qp"], p["q_w"], p["w_qp"], p["b"], p["y_qp"])
    prepared = fast.prepare(p["q_w"], p["w_qp"], p["b"], p["x_qp"], p["y_qp"])
    a32, w32 = p["q_x"].numpy().astype(np.int32), p["q_w"].numpy().astype(np.int32)
    table = {
        "numpy int32": lambda: a32 @ w32.T,
        "torch fp32": lambda: F.linear(p["x"], p["w"], p["b"]),
        "qkit fast": lambda: int8_linear(*args, backend="fast"),
        "qkit eager": lambda: int8_linear(*args, backend="eager"),
        "fast: _int_mm only": lambda: fast.int8_matmul(p["q_x"], p["q_w"].T),
        "fast: epilogue only": lambda acc: fast.requantize(acc, prepared),
    }
    if "torch int8 (ao)" in backends:
        try:
            table["torch int8 (ao)"] = _ao_linear(p)
        except Exception as err:  # noqa: BLE001 - a missing yardstick is reported, not fatal
            warnings.warn(f"torch.ao quantized Linear unavailable: {err}", UserWarning)
    return {b: table[b] for b in backends if b in table}


def _once(name: str, fn, p: dict, calls: int = 1, warm: bool = False) -> float:
    """Seconds per call over ``calls`` calls; the epilogue gets the int32 output of a matmul just run."""
    arg = (fast.int8_matmul(p["q_x"], p["q_w"].T),) if name == "fast: epilogue only" else ()  # (N, M) int32
    if warm:
        fn(*arg)  # untimed: wakes the threads, brings this backend's data back into the caches
    start = time.perf_counter()
    for _ in range(calls):
        fn(*arg)
    return (time.perf_counter() - start) / calls


def time_linear_backends(sizes, repeat: int = 7, *, backends=BACKENDS, seed: int = 0,
                         slow_limit: float = 2.0, numpy_max_ops: float | None = None,
                         progress: bool = False) -> list[dict]:
    """Best-of-``repeat`` wall time per call of each backend on each ``(N, K, M)`` size.

    Args:
        sizes: iterable of ``(N, K, M)``.
        repeat: rounds per size (the fastest round counts).
        backends: names from :data:`BACKENDS`; ``"torch fp32"`` is always timed (every
            ratio needs it).
        seed: data seed.
        slow_limit: a backend whose single call takes longer than this many
            seconds stops after that call.
        numpy_max_ops: numpy's integer matmul (no BLAS, a few GOPS) runs only where
            ``2·N·K·M`` is at most this; at larger sizes its row is an **estimate**,
            ``2·N·K·M`` divided by the GOPS it reached at the largest size it ran
            (``estimated=True``). None: numpy runs everywhere.
        progress: show a tqdm progress bar (one step per size and round).

    Returns:
        One dict per (size, backend): ``N, K, M, backend, seconds``; ``gops``
        (None for the epilogue, which does no matmul); ``speed_vs_fp32``
        (``t_fp32 / seconds``; None for the epilogue); ``share_of_fast`` (the
        two parts: ``seconds / (t_int_mm + t_epilogue)``, else None); ``runs``,
        ``threads`` (``torch.get_num_threads()``) and ``estimated``.
    """
    sizes = [tuple(int(v) for v in s) for s in sizes]
    backends = ["torch fp32"] + [b for b in backends if b != "torch fp32"]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"backends must be names from {BACKENDS}; got {unknown}")
    bar = tqdm(total=len(sizes) * (repeat + 1), desc="timing", unit="round", disable=not progress)
    rows, numpy_gops = [], None
    for n, k, m in sizes:
        ops = 2 * n * k * m
        here = [b for b in backends if b != "numpy int32" or numpy_max_ops is None or ops <= numpy_max_ops]
        p = _problem(n, k, m, seed)
        runs = _runners(p, here)
        times: dict[str, list[float]] = {b: [] for b in runs}
        calls, warm = {}, {}
        for b, fn in runs.items():  # warm-up: compile, caches, page faults; then calls per round
            first = _once(b, fn, p)
            one = _once(b, fn, p) if first < slow_limit else first
            calls[b] = max(1, min(1000, int(ROUND_SECONDS / max(one, 1e-7))))
            warm[b] = one < 0.05  # slower backends are not disturbed by a cold start
        bar.update(1)
        for _ in range(repeat):
            for b, fn in runs.items():
                if not times[b] or times[b][-1] < slow_limit:
                    times[b].append(_once(b, fn, p, calls[b], warm=warm[b]))
            bar.update(1)
        best = {b: min(ts) for b, ts in times.items()}  # best round: load only adds time
        split = sum(best[b] for b in PARTS) if all(b in best for b in PARTS) else None
        if "numpy int32" in best:
            numpy_gops = ops / best["numpy int32"] / 1e9
        elif "numpy int32" in backends and numpy_gops is not None:
            best["numpy int32"] = ops / numpy_gops / 1e9  # extrapolated from the largest size it ran
        for b in [b for b in backends if b in best]:
            sec, epilogue = best[b], b == "fast: epilogue only"
            rows.append(dict(N=n, K=k, M=m, backend=b, seconds=sec,
                             gops=None if epilogue else ops / sec / 1e9,
                             speed_vs_fp32=None if epilogue else best["torch fp32"] / sec,
                             share_of_fast=sec / split if split and b in PARTS else None,
                             runs=len(times.get(b, [])), threads=torch.get_num_threads(),
                             estimated=b not in times))
    bar.close()
    return rows


def format_table(rows, backends=None) -> str:
    """The rows as a text table, one convention stated in its header.

    ``speed vs fp32`` is ``t_fp32 / t`` (> 1 faster); the epilogue shows its share
    of the fast path instead of GOPS; an estimated row says so.

    >>> rows = [dict(N=64, K=64, M=64, backend="torch fp32", seconds=2e-4, gops=2.6, speed_vs_fp32=1.0,
    ...              share_of_fast=None, estimated=False),
    ...         dict(N=64, K=64, M=64, backend="fast: epilogue only", seconds=5e-5, gops=None,
    ...              speed_vs_fp32=None, share_of_fast=0.25, estimated=False)]
    >>> print(format_table(rows))
    N×K×M           path                       ms     GOPS  speed vs fp32  share of fast
    64×64×64        torch fp32              0.200      2.6          1.00×
                    fast: epilogue only     0.050        —              —            25%
    """
    order = list(backends or BACKENDS)
    rows = sorted((r for r in rows if r["backend"] in order),
                  key=lambda r: (r["N"] * r["K"] * r["M"], r["N"], r["K"], order.index(r["backend"])))
    lines = [f"{'N×K×M':<15} {'path':<20} {'ms':>8} {'GOPS':>8} {'speed vs fp32':>14} {'share of fast':>14}"]
    last = None
    for r in rows:
        size = f"{r['N']}×{r['K']}×{r['M']}"
        est = r.get("estimated")
        ms = f"≈{r['seconds'] * 1e3:.0f}" if est else f"{r['seconds'] * 1e3:.3f}"
        gops = "—" if r["gops"] is None else f"{r['gops']:.1f}"
        speed = "—" if r["speed_vs_fp32"] is None else f"{r['speed_vs_fp32']:.2f}×"
        share = "" if r["share_of_fast"] is None else f"{r['share_of_fast']:.0%}"
        line = (f"{size if size != last else '':<15} {r['backend']:<20} {ms:>8} {gops:>8} {speed:>14} "
                f"{share:>14}").rstrip()
        lines.append(line + ("  (estimate: not run, see above)" if est else ""))
        last = size
    return "\n".join(lines)


def machine_line() -> str:
    """The first line of every benchmark: torch's CPU capability, the int8 dot-product
    instructions listed, and the int8 matmul and conv paths qkit chose (or was told to use)."""
    info, convs = engine.info(), conv_engine.info()
    how = "forced by QKIT_INT8_MATMUL" if info.forced else "chosen by probing"
    return (f"CPU capability {info.capability} (int8 dot-product: {', '.join(info.int8_units) or 'none listed'}); "
            f"int8 matmul path: {info.chosen} ({how}); conv paths: "
            + ", ".join(f"{k} {convs.chosen[k]}" for k in conv_engine.KINDS))


def path_report() -> str:
    """Which int8 path runs on this machine, and why (several lines).

    It names the CPU's int8 dot-product instructions (x86 VNNI / AMX, ARM dotprod /
    i8mm) as /proc/cpuinfo lists them, torch's CPU capability, which exact int8
    matmul :mod:`qkit.kernels.engine` chose, and how the epilogue runs.
    """
    flags, int8_units = engine.cpu_flags(), engine.cpu_int8_units()
    capability = engine.cpu_capability()
    if int8_units and not str(capability).startswith(("AVX512", "unknown")) and "vnni" in " ".join(int8_units):
        why = (f"listed, but torch's CPU capability is {capability} (limited by ATEN_CPU_CAPABILITY?): "
               "torch's int8 kernels do not use them here")
    elif int8_units:
        why = "the CPU multiplies int8 in hardware, so int8 can beat float32 on large matrices"
    elif flags:
        why = ("no int8 dot-product instructions listed: torch._int_mm falls back to slow generic "
               "code here, so expect int8 to lose to float32")
    else:
        why = "no /proc/cpuinfo on this system: the CPU's int8 support is unknown"
    matmul = f"{engine.info().chosen} (chosen by qkit.kernels.engine: {engine.info().reason})"
    mode = fast._Compiled.mode
    if mode == "eager":
        epilogue = "eager (torch.compile failed or gave other bits here): several passes over the output"
    elif mode == "not compiled yet":
        epilogue = "fused by torch.compile on its first call (not compiled yet in this kernel)"
    elif mode == "scalar":
        epilogue = ("fused by torch.compile into one pass, without vectorisation (the vectorised code "
                    "gave other bits than eager here)")
    elif mode == "direct":
        epilogue = "fused by inductor into one pass, called without torch.compile's guards (compiled)"
    elif mode == "vectorized, uncached":
        epilogue = ("fused by torch.compile into one pass, compiled afresh (the kernel in inductor's "
                    "on-disk cache gave other bits than eager here)")
    else:
        epilogue = "fused by torch.compile into one pass (compiled)"
    convs = conv_engine.info()
    return "\n".join([
        f"CPU: {os.cpu_count()} logical cores, torch uses {torch.get_num_threads()} threads; "
        f"torch's CPU capability: {capability}",
        f"int8 dot-product instructions: {', '.join(int8_units) or 'none found'} -> {why}",
        f"qkit fast path: matmul = {matmul}; requantization epilogue = {epilogue}",
        "qkit conv paths (qkit.kernels.conv_engine): "
        + ", ".join(f"{kind} {convs.chosen[kind]}" for kind in conv_engine.KINDS),
    ])


def cpu_load() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS does not report it."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None


def headline(rows, seconds: float | None = None, load_before: float | None = None) -> str:
    """What the table says at its largest size, computed from ``rows``; then how the timing went.

    >>> rows = [dict(N=8, K=8, M=8, backend=b, seconds=t, speed_vs_fp32=s, share_of_fast=f, estimated=False)
    ...         for b, t, s, f in [("torch fp32", 2.0, 1.0, None), ("qkit fast", 1.0, 2.0, None),
    ...                            ("qkit eager", 4.0, 0.5, None), ("fast: epilogue only", 0.1, None, 0.1)]]
    >>> print(headline(rows))
    at 8×8×8: qkit fast runs at 2.00× fp32's speed (faster); its fused epilogue takes 10% of its time; unfused (qkit eager) it runs at 0.50× (slower)
    """
    n, k, m = max(((r["N"], r["K"], r["M"]) for r in rows), key=lambda s: s[0] * s[1] * s[2])
    by = {r["backend"]: r for r in rows if (r["N"], r["K"], r["M"]) == (n, k, m)}

    def speed(b: str, unit: str = "") -> str:
        s = by[b]["speed_vs_fp32"]
        return f"{s:.2f}×{unit} ({'faster' if s > 1 else 'slower'})"

    parts = [f"at {n}×{k}×{m}:"]
    if "qkit fast" in by:
        parts.append(" qkit fast runs at " + speed("qkit fast", " fp32's speed"))
    if by.get("fast: epilogue only", {}).get("share_of_fast") is not None:
        parts.append(f"; its fused epilogue takes {by['fast: epilogue only']['share_of_fast']:.0%} of its time")
    if "qkit eager" in by:
        parts.append(f"; unfused (qkit eager) it runs at {speed('qkit eager')}")
    text = "".join(parts)
    if seconds is not None:
        load, cores = cpu_load(), os.cpu_count() or 1
        text += f"\ntimed in {seconds:.0f} s"
        if load is not None and load_before is not None:
            busy = load_before > 1.5 * cores  # this notebook alone adds up to one per thread
            text += (f"; load average {load_before:.1f} before, {load:.1f} after, on {cores} CPUs"
                     + (" (well above the number of CPUs: other programs shared them and slowed some "
                        "paths, above all the multi-threaded ones)" if busy else ""))
    return text
