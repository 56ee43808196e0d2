"""Which exact int8 matmul runs on this CPU: chosen once per process by probing, correctness first.

Equation: ``acc = a @ b`` for int8 ``a (N, K)``, ``b (K, M)``, exactly, in int32.
The candidates are in :mod:`qkit.kernels.matmul`. On first use the engine

1. runs every available candidate on extreme-value data (rows and columns of
   -128 and 127, random rows, K = 1, K = 3 and K = 2500 > 1024: several float32
   chunks, the last one partial) and compares with an int64 reference; a candidate
   that is wrong once is never chosen;
2. times the exact ones on a 256×1024×256 and a 1024×1024×1024 product
   (best of a few calls after a warm-up, in :data:`ROUNDS` rounds that take every
   path in turn, so that a burst of other work on the machine — which once made
   ``_int_mm`` look 70× slower than it is — spoils one round, not the choice;
   about a second in all; a path slower
   than :data:`SLOW_CALL` per large call is only timed small and extrapolated)
   and keeps the fastest by the sum of the two times;
3. times them on a small product too (256×64×128, a layer of the ``mlp`` zoo model), where a
   call's fixed overhead (ONNX Runtime's session run: tenths of a millisecond) outweighs its
   arithmetic, and keeps the fastest there for every product below :data:`SMALL_MACS`
   multiply-adds (``info().small``).

The environment variable ``QKIT_INT8_MATMUL=int_mm|float32|onnxruntime`` forces a path
(it is still checked for exactness, and not timed). :func:`info` says what was chosen and
why; :func:`matmul` runs it. :func:`reset` forgets the choice (tests).

>>> torch.equal(matmul(torch.ones(2, 3, dtype=torch.int8), torch.ones(3, 4, dtype=torch.int8)),
...             torch.full((2, 4), 3, dtype=torch.int32))
True
>>> info().chosen in PATHS
True
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch

from qkit.kernels.matmul import CANDIDATES

PATHS = tuple(CANDIDATES)  # ("int_mm", "float32", "onnxruntime")
ENV = "QKIT_INT8_MATMUL"
PROBES = ((256, 1024, 256), (1024, 1024, 1024))  # (N, K, M) timed
SLOW_CALL = 0.25  # seconds: a candidate this slow on the small probe is not timed on the large one
SMALL = (256, 64, 128)  # (N, K, M) timed for small products
SMALL_MACS = 1 << 23  # N·K·M below this: the path fastest on SMALL
ROUNDS = 3  # timing rounds over all candidates; each time kept is the best of its rounds


@dataclass
class Candidate:
    """What the probe found for one path."""

    name: str
    available: bool
    why_not: str | None = None  # unavailable, or wrong on the probe
    exact: bool | None = None  # None: not run
    seconds: dict = field(default_factory=dict)  # "NxKxM" -> best seconds per call
    estimated: bool = False  # the large probe was extrapolated from the small one (too slow to run)
    small_seconds: float = float("inf")  # best seconds per call on SMALL

    @property
    def score(self) -> float:
        """Sum of the probe times (inf if not timed): lower is better."""
        return sum(self.seconds.values()) if len(self.seconds) == len(PROBES) else float("inf")


@dataclass
class EngineInfo:
    """The choice and its reasons; ``str()`` prints them (see :func:`describe`)."""

    chosen: str
    reason: str
    capability: str  # torch.backends.cpu.get_cpu_capability()
    int8_units: list  # VNNI / AMX / dotprod flags from /proc/cpuinfo
    forced: bool
    candidates: list
    probe_seconds: float
    small: str = ""  # the path for products below SMALL_MACS multiply-adds ("" = chosen)

    def __str__(self) -> str:
        lines = [f"int8 matmul path: {self.chosen} ({self.reason})",
                 f"CPU: torch capability {self.capability}; int8 dot-product instructions: "
                 f"{', '.join(self.int8_units) or 'none listed'}; probe took {self.probe_seconds:.2f} s"]
        for c in self.candidates:
            if not c.available or c.exact is False:
                state = f"not used: {c.why_not}"
            elif c.exact is None:
                state = "not probed"
            else:
                times = ", ".join(f"{s} {t * 1e3:.2f} ms" for s, t in c.seconds.items()) or "not timed"
                times += " (last one estimated: too slow to run)" if c.estimated else ""
                if c.small_seconds < float("inf"):
                    times += f"; {'x'.join(map(str, SMALL))} {c.small_seconds * 1e3:.2f} ms"
                state = f"exact; {times}"
            lines.append(f"  {c.name:12s} {state}")
        return "\n".join(lines)


def cpu_capability() -> str:
    """torch's CPU capability (``"AVX512"``, ``"AVX2"``, ``"DEFAULT"``, ...), or ``"unknown"``."""
    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return str(get()) if get is not None else "unknown"


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags as /proc/cpuinfo lists them (x86 "flags", ARM "Features"); None if unreadable.

    >>> flags = cpu_flags()
    >>> flags is None or isinstance(flags, set)
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            flags.update(line.split(":", 1)[1].split())
    return flags


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (x86 "model name"), else ``platform.processor()``, else "unknown".

    >>> isinstance(cpu_model(), str) and cpu_model() != ""
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    import platform

    return " ".join(platform.processor().split()) or "unknown"


def float_path() -> str:
    """What decides a float computation's last bits here: torch's CPU capability and the CPU model.

    A training with fixed seeds on one thread repeats bit for bit on one machine, but not on
    another: torch picks its vector kernels by capability (AVX2, AVX-512), and oneDNN and MKL also
    choose their blocking, and so the order of their sums, by the CPU model (its cache sizes and
    micro-architecture). Two CPUs with the same capability can therefore round differently, and a
    low-bit fine-tune amplifies one rounding into a few changed answers. Grids store this string;
    their tests require equal values only where it is equal.

    >>> float_path().startswith(cpu_capability() + " · ")
    True
    """
    return f"{cpu_capability()} · {cpu_model()}"


def cpu_int8_units() -> list:
    """int8 dot-product flags (x86 VNNI / AMX, ARM dotprod / i8mm) from /proc/cpuinfo, sorted; [] if unreadable.

    >>> isinstance(cpu_int8_units(), list)
    True
    """
    flags = cpu_flags() or set()
    return sorted(f for f in flags if "vnni" in f or f.startswith("amx") or f in ("asimddp", "i8mm"))


def _probe_cases() -> list:
    """(a, b) int8 pairs with full-range rows/columns; K = 2500 spans three float32 chunks."""
    gen = torch.Generator().manual_seed(0)
    cases = []
    for n, k, m in ((37, 2500, 19), (5, 1, 7), (6, 3, 1), (64, 1024, 33)):
        a = torch.randint(-128, 128, (n, k), generator=gen, dtype=torch.int8)
        b = torch.randint(-128, 128, (k, m), generator=gen, dtype=torch.int8)
        a[: min(n, 4)] = torch.tensor([-128, 127, -128, 127], dtype=torch.int8)[: min(n, 4), None]
        b[:, : min(m, 3)] = torch.tensor([-128, 127, -128], dtype=torch.int8)[None, : min(m, 3)]
        cases.append((a, b))
    return cases


def is_exact(name: str) -> bool:
    """Whether candidate ``name`` equals an int64 matmul on every probe case.

    >>> is_exact("float32")
    True
    """
    fn = CANDIDATES[name][0]
    for a, b in _probe_cases():
        want = (a.long() @ b.long()).to(torch.int32)  # (N, M) exact: |.| < 2**31 here
        got = fn(a, b)
        if got.dtype != torch.int32 or got.shape != want.shape or not torch.equal(got, want):
            return False
    return True


def _time(fn, n: int, k: int, m: int, calls: int = 3) -> float:
    """Best seconds of ``calls`` calls of ``fn`` on random int8 ``(n, k) × (k, m)``, after one warm-up call."""
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(-128, 128, (n, k), generator=gen, dtype=torch.int8)
    b = torch.randint(-128, 128, (m, k), generator=gen, dtype=torch.int8).T  # (K, M) view, as layers pass it
    fn(a, b)  # warm-up (ONNX Runtime builds its session here)
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn(a, b)
        best = min(best, time.perf_counter() - start)
        if best > SLOW_CALL:
            break
    return best


def _probe(names, timed: bool) -> list:
    out = []
    for name in PATHS:
        fn, check = CANDIDATES[name]
        why = check()
        c = Candidate(name, why is None, why)
        if c.available and name in names:
            try:
                c.exact = is_exact(name)
            except Exception as err:  # noqa: BLE001 - a candidate that crashes is not exact
                c.exact, c.why_not = False, f"failed on the probe ({type(err).__name__}: {str(err)[:120]})"
            if c.exact is False and c.why_not is None:
                c.why_not = "wrong sums on the extreme-value probe"
        out.append(c)
    if timed:
        with torch.no_grad():
            for _ in range(ROUNDS):  # interleaved: a burst of other work slows one round, not one path
                for c in out:
                    if c.exact:
                        _time_round(c)
    return out


def _time_round(c: Candidate) -> None:
    """One round of timings for candidate ``c``; each entry keeps its best over the rounds."""
    fn = CANDIDATES[c.name][0]
    (n0, k0, m0), (n1, k1, m1) = PROBES
    small, large = f"{n0}x{k0}x{m0}", f"{n1}x{k1}x{m1}"
    c.seconds[small] = min(c.seconds.get(small, float("inf")), _time(fn, n0, k0, m0))
    guess = c.seconds[small] * (n1 * k1 * m1) / (n0 * k0 * m0)  # the large probe, if time grows with N·K·M
    if guess > SLOW_CALL:  # too slow to be worth a second, whole, probe: estimate it
        c.seconds[large], c.estimated = guess, True
    else:
        before = float("inf") if c.estimated else c.seconds.get(large, float("inf"))  # an estimate is no time
        c.seconds[large], c.estimated = min(before, _time(fn, n1, k1, m1)), False
    c.small_seconds = min(c.small_seconds, _time(fn, *SMALL))


def _choose() -> EngineInfo:
    start = time.perf_counter()
    forced = os.environ.get(ENV, "").strip()
    common = dict(capability=cpu_capability(), int8_units=cpu_int8_units())
    if forced:
        if forced not in PATHS:
            raise ValueError(f"{ENV} must be one of {PATHS} (or unset); got {forced!r}")
        candidates = _probe({forced}, timed=False)
        c = next(c for c in candidates if c.name == forced)
        if not c.exact:
            raise ValueError(f"{ENV}={forced} cannot be used on this machine: {c.why_not}")
        return EngineInfo(forced, f"forced by {ENV}={forced}; checked exact", forced=True,
                          candidates=candidates, probe_seconds=time.perf_counter() - start, **common)
    candidates = _probe(set(PATHS), timed=True)
    exact = [c for c in candidates if c.exact]
    if not exact:  # float32 is exact on any IEEE float32 GEMM: this means a broken BLAS
        raise RuntimeError("no exact int8 matmul path on this machine: " +
                           "; ".join(f"{c.name}: {c.why_not}" for c in candidates))
    best = min(exact, key=lambda c: c.score)
    others = [f"{c.name} {c.score / best.score:.1f}× its time" for c in exact if c is not best]
    reason = (f"fastest exact path on the probes ({' + '.join(best.seconds)}): {best.score * 1e3:.1f} ms"
              + (f"; {', '.join(others)}" if others else ""))
    # a path that gives wrong sums is said in the reason (lesson 03 prints it), never used; no
    # warning: a notebook's stderr would then differ from machine to machine
    wrong = [f"{c.name} gives wrong sums here ({c.why_not}): never used" for c in candidates
             if c.available and c.exact is False]
    reason += "".join(f"; {w}" for w in wrong)
    small = min(exact, key=lambda c: c.small_seconds)
    reason += (f"; below {SMALL_MACS:,} multiply-adds: {small.name} (fastest at {'x'.join(map(str, SMALL))}: "
               f"{small.small_seconds * 1e3:.2f} ms)")
    return EngineInfo(best.name, reason, forced=False, candidates=candidates,
                      probe_seconds=time.perf_counter() - start, small=small.name, **common)


class _State:
    info: EngineInfo | None = None
    fn = None
    small_fn = None


def info() -> EngineInfo:
    """The chosen path and why (probes on the first call in a process, then cached)."""
    if _State.info is None:
        with torch.inference_mode(False), torch.no_grad():
            chosen = _choose()
        _State.small_fn = CANDIDATES[chosen.small or chosen.chosen][0]
        _State.fn, _State.info = CANDIDATES[chosen.chosen][0], chosen
    return _State.info


def describe() -> str:
    """:func:`info` as printable lines: the path, the reason, the CPU, each candidate's probe."""
    return str(info())


def reset() -> None:
    """Forget the choice: the next :func:`matmul` probes again (and reads ``QKIT_INT8_MATMUL`` again)."""
    _State.info, _State.fn, _State.small_fn = None, None, None


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int8 ``(N, K) @ (K, M)`` -> int32 ``(N, M)`` on the chosen path (``info().small`` for small products)."""
    if _State.fn is None:
        info()
    if a.shape[0] * a.shape[1] * b.shape[1] < SMALL_MACS:
        return _State.small_fn(a, b)
    return _State.fn(a, b)
