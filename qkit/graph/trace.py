"""Tracing a model into a graph (``torch.fx``): the view of a model every graph rewrite starts from.

BatchNorm folding, integer conversion and (later) QAT preparation and channel
pruning all rewrite a model's dataflow graph, and all of them need the same
thing first: ``torch.fx.symbolic_trace``, which runs ``forward`` on proxies
and records every module call, function and method as a node.

Scope: symbolic tracing only. A ``forward`` that branches on tensor *values*
(``if x.sum() > 0``) cannot be traced; :func:`trace` then says so, names what
needed the graph, and lists the usual causes.
"""

from __future__ import annotations

import torch.fx as fx
from torch import nn


def trace(model: nn.Module, why: str) -> fx.GraphModule:
    """``torch.fx.symbolic_trace(model)``, or a ``ValueError`` saying why it failed and what needed it.

    Args:
        model: the module to trace (not copied: trace a copy to keep the original).
        why: what needs the graph, for the error message (e.g. ``"folding BatchNorm"``).

    Example:
        >>> gm = trace(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), "this example")
        >>> [n.op for n in gm.graph.nodes]
        ['placeholder', 'call_module', 'call_module', 'output']
        >>> class Branchy(nn.Module):
        ...     def forward(self, x):
        ...         return x if x.sum() > 0 else -x
        >>> trace(Branchy(), "this example")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: this example needs a torch.fx-traceable model, but symbolic tracing of Branchy failed: ...
    """
    try:
        return fx.symbolic_trace(model)
    except Exception as err:  # noqa: BLE001 - any tracing failure gets the same explanation
        raise ValueError(
            f"{why} needs a torch.fx-traceable model, but symbolic tracing of {type(model).__name__} "
            f"failed: {type(err).__name__}: {err}. Typical causes: Python control flow on tensor "
            "values (`if x.sum() > 0`), or calls torch.fx cannot follow; keep forward() to module "
            "calls, +, torch.cat and reshapes"
        ) from err
