"""Step 2 of post-training quantization: run representative data, record every activation's range.

Each value that flows between two nodes of the (BN-folded) float graph gets an
observer (:mod:`qkit.observers`); after the calibration batch has gone through,
``observer.qparams(8)`` is the per-tensor affine int8 grid of that value::

    x ≈ scale * (q - zero_point)

Only grids that the integer graph needs are ever asked for (that is when the
histogram observers do their search). The batch runs in chunks, so a large
calibration set costs bounded memory; min-max does not care about the
chunking, the histogram observers see the same histogram either way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.fx as fx

from qkit.observers import OBSERVERS, Observer


class Calibration(NamedTuple):
    """What the calibration run saw: an observer per float activation, and every node's output kind."""

    observers: dict  # node name -> Observer (float tensor outputs only)
    meta: dict  # node name -> (dtype, shape) for tensors, or the Python type of anything else


def check_calibration(calibration) -> torch.Tensor:
    """The calibration batch as a float32 tensor, or a clear error (missing, wrong type, empty, NaN/inf)."""
    if calibration is None:
        raise ValueError("mode='int8' needs calibration data: pass calibration=X, a float tensor batch of "
                         "representative inputs (e.g. 256 training images), shaped like the model's input")
    if isinstance(calibration, np.ndarray):
        calibration = torch.from_numpy(calibration)
    if not isinstance(calibration, torch.Tensor):
        raise TypeError(f"calibration must be a float torch.Tensor (or numpy array) batch of inputs; got "
                        f"{type(calibration).__name__} (from a loader pass torch.cat([x for x, _ in loader]))")
    if not calibration.is_floating_point():
        raise TypeError(f"calibration must hold floating-point inputs; got dtype {calibration.dtype}")
    if calibration.dim() == 0 or calibration.shape[0] == 0 or calibration.numel() == 0:
        raise ValueError(f"calibration is empty (shape {tuple(calibration.shape)}): pass at least one sample")
    if not torch.isfinite(calibration).all():
        raise ValueError("calibration contains NaN or inf: every calibration input must be finite")
    return calibration.float()


def observer_factory(observer):
    """A zero-argument callable making fresh observers, from a name in ``OBSERVERS``, a class or a callable."""
    if isinstance(observer, str):
        if observer not in OBSERVERS:
            raise ValueError(f"unknown observer {observer!r}; choose one of {sorted(OBSERVERS)}")
        return OBSERVERS[observer]
    if isinstance(observer, Observer):
        raise TypeError("pass an observer name, class or factory (every activation needs a fresh one), "
                        f"not an {type(observer).__name__} instance")
    if callable(observer):
        return observer
    raise TypeError(f"observer must be a name from {sorted(OBSERVERS)}, an Observer class or a "
                    f"zero-argument factory; got {type(observer).__name__}")


class _Recorder(fx.Interpreter):
    """Runs the graph and feeds every float tensor a node produces to that node's observer."""

    def __init__(self, gm: fx.GraphModule, make) -> None:
        super().__init__(gm)
        self.make = make
        self.observers: dict[str, Observer] = {}
        self.meta: dict = {}

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.meta[n.name] = (out.dtype, tuple(out.shape))
            if out.is_floating_point() and n.op not in ("get_attr", "output"):
                if n.name not in self.observers:
                    obs = self.make()
                    if not isinstance(obs, Observer):
                        raise TypeError(f"the observer factory returned {type(obs).__name__}, not an Observer")
                    self.observers[n.name] = obs
                self.observers[n.name].update(out.detach())
        else:
            self.meta[n.name] = type(out)
        return out


@torch.no_grad()
def record_ranges(gm: fx.GraphModule, calibration, observer="minmax", chunk: int = 256) -> Calibration:
    """Run ``calibration`` through ``gm`` in chunks of ``chunk`` samples; observe every float activation.

    Example:
        >>> from torch import nn
        >>> gm = fx.symbolic_trace(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
        >>> cal = record_ranges(gm, torch.randn(8, 2))
        >>> sorted(cal.observers), cal.meta["_1"]
        (['_0', '_1', 'input_1'], (torch.float32, (8, 2)))
        >>> bool(cal.observers["_1"].range()[0] == 0.0)        # after the ReLU
        True
    """
    x = check_calibration(calibration)
    rec = _Recorder(gm, observer_factory(observer))
    for i in range(0, len(x), chunk):
        rec.run(x[i: i + chunk])
    return Calibration(rec.observers, rec.meta)
