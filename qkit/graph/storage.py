"""Storage sharing: the buffers of all converted layers as views of one storage per dtype.

``torch.save`` writes every storage once, however many tensors view it, and
each storage costs a record in the file (a zip entry and a pickle record,
~250 bytes). A converted model keeps three small tensors per layer (``q_w``,
``w_scale``, ``bias``): on the zoo's small models those records would eat much
of what int8 saves. Packing them into one storage per dtype makes the file
what the numbers in it weigh (``qkit.measure.model_size``); PTQ does it for
every converted model, and so will any technique that ships converted layers.
"""

from __future__ import annotations

import torch
from torch import nn

from qkit.nn import (DynamicQuantConv2d, DynamicQuantLinear, Float16Conv2d, Float16Linear, QuantConv2d,
                     QuantLinear)

PACKED_LAYERS = (QuantLinear, QuantConv2d, Float16Linear, Float16Conv2d, DynamicQuantLinear, DynamicQuantConv2d)
_ALIGN = 16  # elements: every layer's slice starts 16-element aligned


@torch.no_grad()
def share_storage(root: nn.Module) -> nn.Module:
    """Make the buffers of every converted layer views of one storage per dtype (in place; values unchanged).

    ``torch.save`` writes a storage once however many tensors view it, and each
    storage costs a file record (~250 bytes): on small models the per-layer
    ``q_w`` / ``w_scale`` / ``bias`` records would eat much of the int8 saving.
    The keys of ``state_dict()`` do not change; ``load_state_dict`` copies into
    the views in place, so they stay views (and a layer's ``w_qp.scale`` stays
    its ``w_scale`` buffer). The views are stable objects, so the fast kernels'
    cache (keyed on the weight object and its version counter) stays valid; a
    write to any view bumps the shared version counter, which only makes the
    cache rebuild.

    Example:
        >>> from qkit import choose_qparams
        >>> qp = choose_qparams(-1.0, 1.0)
        >>> m = share_storage(nn.Sequential(QuantLinear.from_float(nn.Linear(4, 3), qp, qp),
        ...                                 QuantLinear.from_float(nn.Linear(3, 2), qp, qp)))
        >>> m[0].q_w.untyped_storage().data_ptr() == m[1].q_w.untyped_storage().data_ptr()
        True
    """
    groups: dict = {}  # dtype -> {id: tensor}, each tensor once
    slots = []  # (module, buffer name, tensor)
    for module in root.modules():
        if isinstance(module, PACKED_LAYERS):
            for name, t in module._buffers.items():
                if t is not None and name not in module._non_persistent_buffers_set:  # only what is saved
                    groups.setdefault(t.dtype, {}).setdefault(id(t), t)
                    slots.append((module, name, t))
    views = {}
    for dtype, tensors in groups.items():
        sizes = [-(-t.numel() // _ALIGN) * _ALIGN for t in tensors.values()]
        flat = torch.zeros(sum(sizes), dtype=dtype)
        offset = 0
        for (key, t), size in zip(tensors.items(), sizes):
            views[key] = flat[offset: offset + t.numel()].view(t.shape)
            views[key].copy_(t)
            offset += size
    for module, name, t in slots:
        module._buffers[name] = views[id(t)]
        w_qp = getattr(module, "w_qp", None)
        if w_qp is not None and w_qp.scale is t:  # the kernels read the scale from w_qp: same view
            module.w_qp = w_qp._replace(scale=views[id(t)])
    return root
