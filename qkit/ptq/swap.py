"""The two data-free modes: swap each conv/linear for its float16 or dynamic-int8 twin.

BatchNorm is folded first when the model can be traced (as any deployment
converter does: one layer less to store and run); if it cannot, the BatchNorms
stay float32 modules and the report says so.
"""

from __future__ import annotations

import copy

import torch.fx as fx
from torch import nn

from qkit.graph import fold_batchnorm, set_module, share_storage
from qkit.nn import DynamicQuantConv2d, DynamicQuantLinear, Float16Conv2d, Float16Linear
from qkit.ptq.convert import ReportRow


def _fold_if_traceable(model: nn.Module) -> tuple[nn.Module, dict]:
    try:
        gm = fold_batchnorm(model)
    except ValueError:  # not traceable (or a BN without statistics): keep the module tree as it is
        return copy.deepcopy(model).eval(), {}
    return gm, gm.folded_bn


def swap_layers(model: nn.Module, mode: str, *, per_channel: bool = True) -> nn.Module:
    """A converted copy of ``model``: ``mode="fp16"`` or ``"dynamic"``; other layers stay float32.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> half = swap_layers(model, "fp16")
        >>> [tuple(r) for r in half.ptq_report]
        [('0', 'fp16', 'Linear'), ('2', 'fp16', 'Linear')]
    """
    out, folded = _fold_if_traceable(model)
    report = []
    for name, mod in list(out.named_modules()):
        if type(mod) in (nn.Conv2d, nn.Linear):
            conv = isinstance(mod, nn.Conv2d)
            try:
                if mode == "fp16":
                    new, runs = (Float16Conv2d if conv else Float16Linear).from_float(mod), "fp16"
                else:
                    new = (DynamicQuantConv2d if conv else DynamicQuantLinear).from_float(mod, per_channel=per_channel)
                    runs = "dynamic int8"
            except ValueError as err:
                raise ValueError(f"layer {name!r} ({type(mod).__name__}): {err}") from None
            set_module(out, name, new)
            op = type(mod).__name__ + ("" if name not in folded else (
                "+BatchNorm" if folded[name] != name else " (BatchNorm2d as 1x1 depthwise conv)"))
            report.append(ReportRow(name, runs, op))
        elif next(mod.parameters(recurse=False), None) is not None or (
                next(mod.buffers(recurse=False), None) is not None and not isinstance(mod, fx.GraphModule)):
            report.append(ReportRow(name, "float32", type(mod).__name__))
    if isinstance(out, fx.GraphModule):
        out.recompile()
    share_storage(out)  # one storage per dtype for all converted layers: a compact torch.save
    out.ptq_report = report
    return out
