"""Timing of the int8 linear backends against float32, for ``benchmarks/`` and notebook 03.

Equation: ``x ≈ scale * (q - zero_point)``; throughput counts ``2·N·K·M``
operations (one multiply, one add per product), in GOPS = 1e9 operations/s.

Every backend runs once per round, round after round (so a background load
hits them all alike); the median over rounds is reported, after two warm-up
calls each (which also compile the fused epilogue and fill the per-weight cache).

>>> rows = time_linear_backends([(8, 16, 8)], repeat=1, backends=("torch fp32", "qkit fast"))
>>> [(r["backend"], r["N"], r["K"], r["M"]) for r in rows]
[('torch fp32', 8, 16, 8), ('qkit fast', 8, 16, 8)]
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from qkit.kernels import fast, int8_linear
from qkit.qparams import QParams, choose_qparams, tensor_range
from qkit.quant import quantize

#: Names of the timed variants, in table order.
BACKENDS = ("numpy int32", "torch fp32", "torch int8 (ao)", "qkit fast", "qkit eager",
            "fast: _int_mm only", "fast: epilogue only")


def _problem(n: int, k: int, m: int, seed: int) -> dict:
    """Random float layer and its int8 version: per-tensor affine x, per-channel scale w."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=g).clamp(min=-1.0) * 0.5 + 0.2  # shifted: non-zero zero_point
    w = torch.randn(m, k, generator=g) / k**0.5  # (M, K)
    b = torch.randn(m, generator=g) * 0.1  # (M,)
    x_qp = choose_qparams(*tensor_range(x))
    w_qp = choose_qparams(*tensor_range(w, axis=0), scheme="scale", narrow=True, axis=0)
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
        "torch int8 (ao)": lambda: None,  # replaced below when available
        "qkit fast": lambda: int8_linear(*args, backend="fast"),
        "qkit eager": lambda: int8_linear(*args, backend="eager"),
        "fast: _int_mm only": lambda: torch._int_mm(p["q_x"], p["q_w"].T),
        "fast: epilogue only": lambda acc: fast.requantize(acc, prepared),
    }
    if "torch int8 (ao)" in backends:
        try:
            table["torch int8 (ao)"] = _ao_linear(p)
        except Exception as err:  # noqa: BLE001 - a missing yardstick is reported, not fatal
            warnings.warn(f"torch.ao quantized Linear unavailable: {err}", UserWarning)
            backends = [b for b in backends if b != "torch int8 (ao)"]
    return {b: table[b] for b in backends}


def _once(name: str, fn, p: dict) -> float:
    """Seconds of one call; the epilogue alone gets the int32 output of a matmul just run."""
    arg = (torch._int_mm(p["q_x"], p["q_w"].T),) if name == "fast: epilogue only" else ()  # (N, M) int32
    start = time.perf_counter()
    fn(*arg)
    return time.perf_counter() - start


def time_linear_backends(sizes, repeat: int = 7, *, backends=BACKENDS, seed: int = 0,
                         slow_limit: float = 2.0) -> list[dict]:
    """Median wall time of each backend on each ``(N, K, M)`` size.

    Args:
        sizes: iterable of ``(N, K, M)``.
        repeat: rounds per size (median over them).
        backends: names from :data:`BACKENDS`.
        seed: data seed.
        slow_limit: a backend whose single call takes longer than this many
            seconds (numpy at large sizes) stops after that call.

    Returns:
        One dict per (size, backend): ``N, K, M, backend, seconds, gops,
        vs_fp32`` (fp32 time / this time, from the same run; None without fp32),
        ``runs`` and ``threads`` (``torch.get_num_threads()``).
    """
    rows = []
    for n, k, m in sizes:
        p = _problem(n, k, m, seed)
        runs = _runners(p, list(backends))
        times: dict[str, list[float]] = {b: [] for b in runs}
        for b, fn in runs.items():  # warm-up: compile, caches, page faults
            if _once(b, fn, p) < slow_limit:
                _once(b, fn, p)
        for _ in range(repeat):
            for b, fn in runs.items():
                if not times[b] or times[b][-1] < slow_limit:
                    times[b].append(_once(b, fn, p))
        fp32 = statistics.median(times["torch fp32"]) if "torch fp32" in times else None
        for b, ts in times.items():
            sec = statistics.median(ts)
            rows.append(dict(N=n, K=k, M=m, backend=b, seconds=sec, gops=2 * n * k * m / sec / 1e9,
                             vs_fp32=None if fp32 is None else fp32 / sec, runs=len(ts),
                             threads=torch.get_num_threads()))
    return rows
