"""Which exact convolution path runs on this CPU, per kind of convolution: chosen once per process by probing.

Equation: ``acc = Σ q_x q_w`` over each output's taps, exactly (:mod:`qkit.kernels.conv`).
Two paths compute it: ``"float32"`` (torch's float32 conv2d on the int8 values, exact for
``K <= 1024`` per chunk) and ``"matmul"`` (im2col + the exact int8 matmul that
:mod:`qkit.kernels.engine` chose; shifted int32 taps for depthwise). Which one is faster
depends on the CPU (int8 dot-product units make the matmul path win on large GEMMs) and on
the kind of convolution:

* ``"depthwise"`` — one input channel per group (``K = kH·kW``, no GEMM to speak of);
* ``"pointwise"`` — 1×1 without padding, one group (a plain GEMM over channels-last pixels);
* ``"spatial"`` — everything else (im2col + GEMM, or a direct float32 convolution).

On first use the float32 path is checked for exactness on full-range data
(:func:`qkit.kernels.conv.is_exact`; if it fails, it is never used), then both paths are
timed on one batch-256 layer of each kind (best of a few calls) and the faster is kept.
``QKIT_INT8_CONV=float32|matmul`` forces one path for all kinds (still checked for exactness).

>>> info().chosen["depthwise"] in PATHS
True
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch

from qkit.kernels import conv, engine

KINDS = ("depthwise", "pointwise", "spatial")
PATHS = ("float32", "matmul")
ENV = "QKIT_INT8_CONV"
#: One timed layer per kind: (N, C_in, H, C_out, k, groups), stride 1, 'same' padding.
PROBES = {"depthwise": (256, 64, 8, 64, 3, 64), "pointwise": (256, 64, 8, 64, 1, 1),
          "spatial": (256, 32, 8, 32, 3, 1)}


def kind(cin_g: int, kh: int, kw: int, padding, groups: int) -> str:
    """The kind of a conv (module docstring).

    >>> kind(1, 3, 3, (1, 1), 32), kind(64, 1, 1, (0, 0), 1), kind(16, 3, 3, (1, 1), 1)
    ('depthwise', 'pointwise', 'spatial')
    """
    if cin_g == 1 and groups > 1:
        return "depthwise"
    if kh == kw == 1 and tuple(padding) == (0, 0) and groups == 1:
        return "pointwise"
    return "spatial"


@dataclass
class ConvInfo:
    """The path per kind and why; ``str()`` prints it."""

    chosen: dict  # kind -> "float32" | "matmul"
    reason: str
    float32_exact: bool
    seconds: dict = field(default_factory=dict)  # kind -> {path: best seconds}
    forced: bool = False

    def __str__(self) -> str:
        parts = [f"{k} {self.chosen[k]}" for k in KINDS]
        lines = [f"int8 conv paths: {', '.join(parts)} ({self.reason})"]
        for k, times in self.seconds.items():
            lines.append(f"  {k:10s} " + ", ".join(f"{p} {t * 1e3:.2f} ms" for p, t in times.items()))
        return "\n".join(lines)


def _layer(k: str):
    n, c, h, o, ks, g = PROBES[k]
    gen = torch.Generator().manual_seed(2)
    x = conv.channels_last(torch.randint(-128, 128, (n, c, h, h), generator=gen, dtype=torch.int8))
    w = torch.randint(-128, 128, (o, c // g, ks, ks), generator=gen, dtype=torch.int8)
    p = (ks // 2, ks // 2)
    return x, w, p, g


def _time(fn, calls: int = 3) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _run(path: str, k: str):
    x, w, p, g = _layer(k)
    one = (1, 1)
    if path == "float32":
        w_f = w.float()
        return lambda: conv.float32_sums(x, w_f, -128, one, p, one, g)
    return lambda: conv.matmul_sums(x, w, -128, one, p, one, g, tuple(x.shape[2:]))


def _choose() -> ConvInfo:
    forced = os.environ.get(ENV, "").strip()
    if forced and forced not in PATHS:
        raise ValueError(f"{ENV} must be one of {PATHS} (or unset); got {forced!r}")
    exact = conv.is_exact()
    if forced:
        if forced == "float32" and not exact:
            raise ValueError(f"{ENV}=float32 cannot be used on this machine: wrong sums on the full-range probe")
        return ConvInfo({k: forced for k in KINDS}, f"forced by {ENV}={forced}", exact, forced=True)
    if not exact:
        return ConvInfo({k: "matmul" for k in KINDS},
                        "float32 conv2d gives wrong sums here (a non-exact algorithm or precision): never used",
                        False)
    engine.info()  # the matmul path is probed first, so its probe is not timed here
    seconds = {k: {p: _time(_run(p, k)) for p in PATHS} for k in KINDS}
    chosen = {k: min(PATHS, key=lambda p, k=k: seconds[k][p]) for k in KINDS}
    return ConvInfo(chosen, f"faster on a batch-256 layer of each kind; matmul = {engine.info().chosen}",
                    True, seconds)


class _State:
    info: ConvInfo | None = None


def info() -> ConvInfo:
    """The path per kind and why (probes on the first call in a process, then cached)."""
    if _State.info is None:
        with torch.inference_mode(False), torch.no_grad():
            _State.info = _choose()
    return _State.info


def path(k: str) -> str:
    """The chosen path for kind ``k``."""
    return (_State.info or info()).chosen[k]


def reset() -> None:
    """Forget the choice (tests): the next call probes again and reads ``QKIT_INT8_CONV`` again."""
    _State.info = None
