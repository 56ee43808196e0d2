"""One function compiled by ``torch.compile`` (inductor) on first use, checked against eager, with an eager fallback.

The int8 layers' element-wise tails (requantization, the integer residual add, rescaling,
pooling) are a dozen int64 passes when run eagerly; compiled, each is one vectorised pass.
:class:`Compiled` wraps such a function: one graph for all sizes (``dynamic=True``),
re-traced only when a size of 1, a dtype or the grad/inference mode changes (they specialise).

Correctness first, as for the matmul paths (:mod:`qkit.kernels.engine`): the first call of
every new trace also runs the eager function and compares the bits. inductor's vectorised
int64 code is not exact everywhere: with torch 2.13 under ``ATEN_CPU_CAPABILITY=avx2`` it
computes wrong int64 products and shifts by a broadcast tensor. Then the function is compiled
again without vectorisation (``cpp.simdlen = 1``: plain C++ loops, still one pass) and checked
again; if that is wrong too, or compilation fails, the eager function runs from then on (one
warning). :attr:`Compiled.mode` says which is running: ``"vectorized"``, ``"scalar"`` or ``"eager"``.

>>> double = Compiled(lambda x: x * 2, "doubling")
>>> double.eager(torch.tensor([1, 2]))
tensor([2, 4])
"""

from __future__ import annotations

import types
import warnings

import torch
import torch.fx.experimental._config as fx_config


def _equal(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _fresh(fn):
    """A copy of ``fn`` with a code object of its own (no dynamo cache shared with ``fn``)."""
    code = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_scalar")
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


class Compiled:
    """``fn`` compiled once, called as :meth:`__call__`; :meth:`eager` runs it uncompiled."""

    def __init__(self, fn, what: str) -> None:
        self.eager, self.what = fn, what
        self.fn = None  # torch.compile(fn), made on first use
        self.failed = False  # compilation failed or gave wrong bits: eager from then on
        self.scalar = False  # the vectorised code gave wrong bits here: compiled without vectorisation
        self.seen: set = set()  # signatures already traced and checked

    @property
    def mode(self) -> str:
        """``"eager"``, ``"scalar"``, ``"vectorized"`` (or ``"not compiled yet"``)."""
        if self.failed:
            return "eager"
        if self.fn is None:
            return "not compiled yet"
        return "scalar" if self.scalar else "vectorized"

    def _compile(self):
        options = {"cpp.dynamic_threads": True}
        if self.scalar:
            options["cpp.simdlen"] = 1
        return torch.compile(_fresh(self.eager) if self.scalar else self.eager, dynamic=True, options=options)

    def __call__(self, *args):
        if self.failed:
            return self.eager(*args)
        sig = (tuple(tuple(s == 1 for s in a.shape) + (a.dtype,) for a in args if isinstance(a, torch.Tensor)),
               torch.is_inference_mode_enabled())
        try:
            if self.fn is None:
                self.fn = self._compile()
            with torch.no_grad():
                if sig in self.seen:
                    return self.fn(*args)
                with fx_config.patch(use_duck_shape=False):  # equal sizes must not tie together
                    out = self.fn(*args)
                want = self.eager(*args)
                if not _equal(out, want) and not self.scalar:  # wrong vectorised code: plain loops
                    self.scalar, self.seen = True, set()
                    self.fn = self._compile()
                    with fx_config.patch(use_duck_shape=False):
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
