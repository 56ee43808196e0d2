"""One function compiled by ``torch.compile`` (inductor) on first use, checked against eager, with an eager fallback.

The int8 layers' element-wise tails (requantization, the integer residual add, rescaling,
pooling) are a dozen int64 passes when run eagerly; compiled, each is one vectorised pass.
:class:`Compiled` wraps such a function: one graph for all sizes (``dynamic=True``),
re-traced when a size of 1, a dtype, the memory layout or the grad/inference mode changes.

Correctness first, as for the matmul paths (:mod:`qkit.kernels.engine`): the first call of
every new trace also runs the eager function and compares the bits. Compiled code is not
always right: with torch 2.13 under ``ATEN_CPU_CAPABILITY=avx2`` (torch's AVX2 code on an
AVX-512 machine), inductor's vectorised code for a 64-bit compare-and-select
(``torch.where``) gave wrong results. On a mismatch the function is compiled again without
inductor's on-disk caches (a kernel cached by another process) and checked; then without
vectorisation (``cpp.simdlen = 1``: plain C++ loops, still one pass); if that is wrong too,
or compilation fails, the eager function runs from then on (one warning).

Calling a ``torch.compile`` function costs dynamo's frame evaluation and guards, about
25 µs here: more than the kernel itself on a small layer (a 256×128 epilogue). The
signatures above already say which trace fits, so for each one :class:`Compiled`
first tries inductor directly: the function traced with symbolic sizes
(``make_fx``) and compiled by ``compile_fx``, called without dynamo (about 15 µs
less per call). It is checked against eager like the rest; if building it fails or
its bits differ, that signature takes the ``torch.compile`` path above. Only where torch
runs its AVX-512 code: under ``ATEN_CPU_CAPABILITY=avx2`` a direct kernel once passed
its first-call check and then gave wrong bits on other inputs (the AVX2 codegen bug
above depends on the values), so on other CPUs every signature takes the
``torch.compile`` chain, as before.
:attr:`Compiled.mode` says which is running: ``"vectorized"``, ``"vectorized, uncached"``,
``"scalar"`` or ``"eager"``.

>>> double = Compiled(lambda x: x * 2, "doubling")
>>> double.eager(torch.tensor([1, 2]))
tensor([2, 4])
"""

from __future__ import annotations

import contextlib
import types
import warnings

import torch
import torch.fx.experimental._config as fx_config
from torch._inductor import config as inductor_config
from torch._inductor.compile_fx import compile_fx
from torch.fx.experimental.proxy_tensor import make_fx

from qkit.kernels.engine import cpu_capability


def _equal(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _fresh(fn, tag: str):
    """A copy of ``fn`` with a code object of its own (no dynamo cache shared with ``fn``)."""
    code = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_{tag}")
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def _layout(a: torch.Tensor) -> tuple:
    """What makes a new trace (or may make a wrong reuse of one): dtype, sizes of 1, the order of
    the strides (memory format: channels-last and NCHW are different kernels), density."""
    if a.dim() <= 1:  # 0-d and 1-d constants: one layout
        return a.dtype, a.dim(), a.numel() == 1
    order = tuple(sorted(range(a.dim()), key=lambda d: (-a.stride(d), d)))
    return a.dtype, tuple(s == 1 for s in a.shape), order, a.is_contiguous()


def _aliases(args) -> tuple:
    """Which arguments are one and the same tensor. A trace made where two arguments were the same
    object reads one input for both (make_fx merges them); reused for distinct tensors, it gave
    wrong bits (the single rounding passes ``round_up`` twice, the double rounding two tensors)."""
    seen: dict = {}
    return tuple(seen.setdefault(id(a), i) for i, a in enumerate(args) if isinstance(a, torch.Tensor))


def _no_autograd_cache(active: bool = True):
    """AOT autograd's on-disk cache off (it also serves compiled kernels), or a no-op."""
    if not active:
        return contextlib.nullcontext()
    from torch._functorch import config as functorch_config

    return functorch_config.patch(enable_autograd_cache=False)


def direct_trusted() -> bool:
    """Whether inductor's kernels may be called directly here: torch runs its AVX-512 code."""
    return cpu_capability().startswith("AVX512")


class Compiled:
    """``fn`` compiled once, called as :meth:`__call__`; :meth:`eager` runs it uncompiled."""

    def __init__(self, fn, what: str, *, direct: bool = True) -> None:
        self.eager, self.what = fn, what
        self.use_direct = direct and direct_trusted()  # inductor without dynamo first (else torch.compile only)
        self.fn = None  # torch.compile(fn), made on first use
        self.failed = False  # compilation failed or gave wrong bits: eager from then on
        self.retries = 0  # wrong bits seen: 1 = compiled again without the on-disk cache, 2 = also scalar
        self.seen: set = set()  # signatures already traced and checked
        self.direct: dict = {}  # signature -> inductor's compiled function, called without dynamo
        self.direct_failed = False  # building one failed once: torch.compile only from then on

    @property
    def mode(self) -> str:
        """``"eager"``, ``"scalar"``, ``"vectorized, uncached"``, ``"vectorized"`` (the torch.compile path, the
        weakest in use), ``"direct"`` (inductor without dynamo, every signature so far) or ``"not compiled yet"``."""
        if self.failed:
            return "eager"
        if self.fn is None:
            return "direct" if self.direct else "not compiled yet"
        return ("vectorized", "vectorized, uncached", "scalar")[self.retries]

    @property
    def ran(self) -> bool:
        """Whether compiled code (either kind) has served a call."""
        return bool(self.direct) or self.fn is not None

    @property
    def scalar(self) -> bool:
        return self.retries == 2

    def _compile(self):
        options = {"cpp.dynamic_threads": True}
        if self.retries:
            options["fx_graph_cache"] = False
        if self.retries == 2:
            options["cpp.simdlen"] = 1
        return torch.compile(_fresh(self.eager, f"retry{self.retries}") if self.retries else self.eager,
                             dynamic=True, options=options)

    def _build_direct(self, args, want):
        """Inductor's kernel for this signature (symbolic sizes), or None if it cannot be had or is wrong."""
        try:
            with torch.no_grad(), fx_config.patch(use_duck_shape=False):  # no size ties
                gm = make_fx(self.eager, tracing_mode="symbolic")(*args)
            fakes = [n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"]
            with torch.no_grad(), inductor_config.patch({"cpp.dynamic_threads": True}):
                compiled = compile_fx(gm, fakes)

            def direct(*call_args):
                out = compiled(*call_args)  # inductor returns a list of outputs
                if isinstance(want, tuple):
                    return tuple(out)
                return out[0] if isinstance(out, (list, tuple)) else out

            with torch.no_grad():
                if _equal(direct(*args), want):
                    return direct
        except Exception:  # noqa: BLE001 - any failure: the torch.compile path serves this signature
            self.direct_failed = True
        return None

    def __call__(self, *args):
        if self.failed:
            return self.eager(*args)
        sig = (tuple(_layout(a) for a in args if isinstance(a, torch.Tensor)), torch.is_inference_mode_enabled(),
               _aliases(args))
        direct = self.direct.get(sig)
        if direct is not None:
            with torch.no_grad():
                return direct(*args)
        if self.use_direct and not self.direct_failed and self.retries == 0 and sig not in self.seen:
            want = self.eager(*args)
            direct = self._build_direct(args, want)
            if direct is not None:
                self.direct[sig] = direct
                return want
        try:
            if self.fn is None:
                self.fn = self._compile()
            with torch.no_grad():
                if sig in self.seen:
                    return self.fn(*args)
                with fx_config.patch(use_duck_shape=False), _no_autograd_cache(self.retries > 0):  # no size ties
                    out = self.fn(*args)
                want = self.eager(*args)
                while not _equal(out, want) and self.retries < 2:  # uncached, then plain loops
                    self.retries, self.seen = self.retries + 1, set()
                    self.fn = self._compile()
                    with fx_config.patch(use_duck_shape=False), _no_autograd_cache():
                        out = self.fn(*args)
                if not _equal(out, want):
                    raise ArithmeticError("the compiled code gives other bits than the eager code")
            self.seen.add(sig)
            return out
        except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
            self.failed = True
            warnings.warn(f"torch.compile of the {self.what} failed ({type(err).__name__}: {str(err)[:200]}); "
                          "qkit uses the (slower, equal) eager version from now on", UserWarning, stacklevel=3)
            return self.eager(*args)
