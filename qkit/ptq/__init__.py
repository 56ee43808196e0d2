"""Post-training quantization (lesson 04): a trained float model in, a smaller float-in/float-out model out.

Three modes, as in TensorFlow Lite's table of post-training methods (its names)::

    mode       data needed                 weights  activations              arithmetic
    "fp16"     none                        float16  float32                  float32 (weights cast on the fly)
    "dynamic"  none                        int8     int8 per batch (min-max) int8 × int8 → int32, then float
    "int8"     a representative batch      int8     int8, calibrated grids   integer only, float islands where needed

Every int8 value means ``x ≈ scale * (q - zero_point)``. Full-integer
conversion is three steps, each its own module:

1. :mod:`qkit.graph.fold` (shared with the other techniques) — trace with
   ``torch.fx``, fold BatchNorm into the conv before it (``w' = w·γ/σ``,
   ``b' = (b - μ)·γ/σ + β``);
2. :mod:`qkit.ptq.calibrate` — run the calibration batch, one observer per activation;
3. :mod:`qkit.ptq.convert` — rewrite the graph: int8 from layer to layer, ReLU
   fused as a clamp, float islands for ops without an integer version.

The converted model records what ran where in ``ptq_report`` (a list of
``(node, runs, op)``); :func:`format_report` prints it.

>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)).eval()
>>> q = convert(model, "int8", calibration=torch.randn(32, 1, 8, 8), backend="ref")
>>> print(format_report(q.ptq_report))
0  int8  Conv2d+BatchNorm+ReLU
3  int8  Flatten
4  int8  Linear
>>> q(torch.randn(2, 1, 8, 8)).dtype
torch.float32
"""

from __future__ import annotations

import torch  # noqa: F401  (used by the doctest above)
from torch import nn

from qkit._checks import check_bool
from qkit.graph import fold_batchnorm
from qkit.kernels import BACKENDS
from qkit.ptq.calibrate import check_calibration, observer_factory, record_ranges
from qkit.ptq.convert import ReportRow, convert_int8
from qkit.ptq.swap import swap_layers

MODES = ("fp16", "dynamic", "int8")
OPTIONS = {"observer": "minmax", "per_channel": True, "backend": "fast", "bits": 8, "skip": ()}


def convert(model: nn.Module, mode: str, calibration=None, **options) -> nn.Module:
    """Post-training quantization of a copy of ``model``; float in, float out; ``model`` is not touched.

    Args:
        model: a trained float ``nn.Module`` (the copy is put in eval mode).
        mode: ``"fp16"``, ``"dynamic"`` or ``"int8"`` (table in the module docstring).
        calibration: ``"int8"`` only (ignored otherwise): a float tensor batch of
            representative inputs, shaped like the model's input (numpy accepted).
        **options:
            observer: activation calibration for ``"int8"``: a name from
                ``qkit.observers.OBSERVERS`` (default ``"minmax"``), an Observer
                class, or a factory such as ``lambda: PercentileObserver(99.9)``.
            per_channel: one weight scale per output channel (default True) or
                one per layer; ``"dynamic"`` and ``"int8"``.
            backend: integer kernels of ``"int8"``: ``"fast"`` (default),
                ``"eager"`` or ``"ref"`` (same bits; ref is slow on big layers).
            bits: 8 only (lower bit-widths: :mod:`qkit.qat`, :mod:`qkit.simulate`).
            skip: ``"int8"`` only: names of conv/linear layers to keep in float (partial
                quantization, lesson 07): they run as float islands, their input dequantized
                and their output quantized again where an integer op reads it. Names are
                those of the BN-folded graph (:func:`layer_names`), e.g. ``"stem.conv"``.

    Returns:
        The converted model, with ``ptq_report``: one :class:`ReportRow`
        ``(node, runs, op)`` per layer (``"fp16"``/``"dynamic"``: every conv/linear
        and every float32 layer left; ``"int8"``: every node of the graph, ``runs``
        being ``"int8"`` or ``"float island"``).

    Raises:
        TypeError: ``model`` not an nn.Module, calibration not a float tensor,
            an unknown option name.
        ValueError: unknown mode, bits other than 8, missing/empty/NaN
            calibration for ``"int8"``, a model torch.fx cannot trace
            (``"int8"``), a layer with weights that has no integer version.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; convert takes {sorted(OPTIONS)}")
    opts = {**OPTIONS, **options}
    if opts["bits"] != 8 or isinstance(opts["bits"], bool):
        raise ValueError(f"bits={opts['bits']!r} is not supported yet: post-training conversion is int8 "
                         "only (bits=8); lower bit widths are lesson 05 (fake quantization)")
    check_bool("per_channel", opts["per_channel"])
    if opts["backend"] not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {opts['backend']!r}")
    if mode != "int8":
        return swap_layers(model, mode, per_channel=opts["per_channel"])
    x = check_calibration(calibration)
    make = observer_factory(opts["observer"])
    gm = fold_batchnorm(model)  # step 1 (a deep copy, eval mode)
    skip = check_skip(gm, opts["skip"])
    cal = record_ranges(gm, x, make)  # step 2
    return convert_int8(gm, cal, per_channel=opts["per_channel"], backend=opts["backend"],
                        skip=skip).eval()  # step 3


def layer_names(gm: nn.Module) -> list[str]:
    """The conv/linear layers of a (BN-folded) model, in definition order: the names ``skip`` takes.

    Example:
        >>> from torch import nn
        >>> layer_names(fold_batchnorm(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
        ...                                          nn.Linear(2, 3))))
        ['0', '3']
    """
    return [name for name, m in gm.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def check_skip(gm: nn.Module, skip) -> tuple[str, ...]:
    """``skip`` as a tuple of layer names of ``gm``, or a clear error (a string, an unknown name)."""
    if isinstance(skip, str) or not isinstance(skip, (tuple, list, set, frozenset)):
        raise TypeError(f"skip must be a tuple of layer names (e.g. ('stem.conv',)); got {skip!r}")
    names = layer_names(gm)
    unknown = [s for s in skip if s not in names]
    if unknown:
        raise ValueError(f"skip names no conv/linear layer of the BN-folded model: {unknown}; its layers are "
                         f"{names}")
    return tuple(skip)


def format_report(report) -> str:
    """``ptq_report`` as aligned text, one row per line."""
    rows = [tuple(map(str, r)) for r in report]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in rows)


__all__ = ["MODES", "ReportRow", "check_skip", "convert", "format_report", "layer_names", "record_ranges"]
