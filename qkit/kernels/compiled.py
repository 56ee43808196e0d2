"""One function compiled by ``torch.compile`` (inductor) on first use, with an eager fallback.

The int8 layers' element-wise tails (requantization of a float32 accumulator, the integer
residual add) are a dozen int64 passes when run eagerly; compiled, each is one vectorised
pass. :class:`Compiled` wraps such a function: one graph for all sizes (``dynamic=True``),
re-traced only when a size of 0/1 or the grad/inference mode changes (they specialise), and,
if compilation fails, one warning and the eager function from then on (same bits).

>>> double = Compiled(lambda x: x * 2, "doubling")
>>> double.eager(torch.tensor([1, 2]))
tensor([2, 4])
"""

from __future__ import annotations

import warnings

import torch
import torch.fx.experimental._config as fx_config


class Compiled:
    """``fn`` compiled once, called as :meth:`__call__`; :meth:`eager` runs it uncompiled."""

    def __init__(self, fn, what: str) -> None:
        self.eager, self.what = fn, what
        self.fn = None  # torch.compile(fn), made on first use
        self.failed = False  # compilation failed once: eager from then on
        self.seen: set = set()  # signatures already traced

    def __call__(self, *args):
        if self.failed:
            return self.eager(*args)
        sig = (tuple(tuple(s == 1 for s in a.shape) + (a.dtype,) for a in args if isinstance(a, torch.Tensor)),
               torch.is_inference_mode_enabled())
        try:
            if self.fn is None:
                self.fn = torch.compile(self.eager, dynamic=True, options={"cpp.dynamic_threads": True})
            with torch.no_grad():
                if sig in self.seen:
                    return self.fn(*args)
                with fx_config.patch(use_duck_shape=False):  # equal sizes must not tie together
                    out = self.fn(*args)
            self.seen.add(sig)
            return out
        except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
            self.failed = True
            warnings.warn(f"torch.compile of the {self.what} failed ({type(err).__name__}: {str(err)[:200]}); "
                          "qkit uses the (slower, equal) eager version from now on", UserWarning, stacklevel=3)
            return self.eager(*args)
