"""Sparse storage: a pruned layer saved as a bitmask and its non-zero values, so the file really shrinks.

A pruned weight of ``n`` entries of ``e`` bytes each, ``nnz`` of them non-zero,
is stored as

    bitmask: n bits, packed (qkit.pack, 1 bit per entry: 1 = kept)   ceil(n / 8) bytes
    values:  the nnz kept entries in C order, same dtype              nnz · e bytes

and rebuilt on load as ``w = zeros(shape); w[bitmask] = values``. That pays off
when ``n/8 + nnz·e < n·e``, i.e. at a density ``nnz/n < 1 - 1/(8e)``: below
96.9 % for float32 (e = 4), below 87.5 % for int8 (e = 1); :func:`to_sparse`
converts only the layers where it pays. At 90 % sparsity a float32 weight of
``n`` entries shrinks from ``4n`` to ``n/8 + 0.4n`` bytes (7.7×), an int8 one from
``n`` to ``0.225n`` (4.4×). (Han et al. 2016's Deep Compression stores relative
indices in 4 bits instead, and Huffman-codes both streams; not done here.)

The dense weight stays on the layer as a **non-persistent** buffer (what the
forward pass reads; not in ``state_dict``, so not in the file) and the two new
buffers are what is saved. A ``load_state_dict`` hook rebuilds the dense weight
from them (as :func:`qkit.qat.convert.pack_weights` does for packed low-bit weights),
so ``qkit.measure.model_size`` counts the real bytes and a saved, reloaded model
computes bit for bit what the original did.

Works on float models (``nn.Conv2d`` / ``nn.Linear`` ``weight``) and on the integer
models of :func:`qkit.ptq.convert` / :func:`qkit.qat.convert` (``q_w``, int8: a pruned
weight quantizes to the integer 0 on their symmetric weight grids).

>>> layer = nn.Linear(8, 4, bias=False)
>>> with torch.no_grad():
...     _ = layer.weight.masked_fill_(torch.arange(32).view(4, 8) % 8 != 0, 0.0)   # 4 of 32 kept
>>> stored = to_sparse(layer)
>>> sorted(stored.state_dict())                   # 4 bytes of bitmask + 4 float32 values
['weight_bitmask', 'weight_values']
>>> stored.weight_bitmask.tolist(), stored.weight_values.numel()
([1, 1, 1, 1], 4)
"""

from __future__ import annotations

import copy
import io  # noqa: F401 (the doctests use it)

import torch
from torch import nn

from qkit.graph.storage import PACKED_LAYERS, share_storage
from qkit.nn import QuantConv2d, QuantLinear
from qkit.pack import packed_bytes, pack, unpack
from qkit.prune.masks import PRUNABLE, _check_model

SUFFIXES = ("_bitmask", "_values")


def encode(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bitmask, values)`` of ``w``: packed ``w != 0`` (uint8, ceil(n/8) bytes) and the non-zeros in C order.

    Example:
        >>> bits, values = encode(torch.tensor([[0.0, 1.5], [0.0, -2.0]]))
        >>> bits.tolist(), values.tolist()            # kept at flat 1 and 3: 0b1010
        ([10], [1.5, -2.0])
    """
    keep = (w != 0).reshape(-1)  # (n,) bool
    return pack(keep.to(torch.uint8), 1, signed=False), w.reshape(-1)[keep].clone()  # (ceil(n/8),) uint8, (nnz,)


def decode(bitmask: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of :func:`encode`: the dense tensor of ``shape`` (``values``' dtype), 0 outside the mask.

    Example:
        >>> decode(torch.tensor([10], dtype=torch.uint8), torch.tensor([1.5, -2.0]), (2, 2))
        tensor([[ 0.0000,  1.5000],
                [ 0.0000, -2.0000]])
    """
    keep = unpack(bitmask, 1, shape, signed=False).bool()  # shape, bool
    if int(keep.sum()) != values.numel():
        raise ValueError(f"the bitmask keeps {int(keep.sum())} entries but {values.numel()} values were given")
    dense = torch.zeros(keep.shape, dtype=values.dtype)
    dense[keep] = values
    return dense


def stored_bytes(n: int, nnz: int, element_bytes: int) -> int:
    """Payload bytes of the sparse form: ``ceil(n/8) + nnz · element_bytes``.

    Example:
        >>> stored_bytes(1000, 100, 4), 1000 * 4        # 90 % sparse float32: 525 bytes instead of 4000
        (525, 4000)
    """
    return packed_bytes(n, 1) + nnz * element_bytes


def _sparse_attribute(module: nn.Module) -> str | None:
    """The name of the weight tensor this module saves (None: no such tensor, or not saved)."""
    if isinstance(module, (QuantLinear, QuantConv2d)):
        return None if "q_w" in module._non_persistent_buffers_set else "q_w"  # packed low-bit: leave alone
    if isinstance(module, PRUNABLE) and isinstance(module._parameters.get("weight"), torch.Tensor):
        return "weight"
    return None


def _rebuild(module: nn.Module, incompatible_keys) -> None:
    """After ``load_state_dict``: the dense weights from the bitmasks and values just loaded."""
    with torch.no_grad():
        for attr in module.sparse_attributes:
            dense = getattr(module, attr)
            dense.copy_(decode(getattr(module, attr + "_bitmask"), getattr(module, attr + "_values"), dense.shape))


def _resize(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs) -> None:
    """Before ``load_state_dict``: make room for the incoming values (another model's count of non-zeros)."""
    for attr in module.sparse_attributes:
        key = prefix + attr + "_values"
        incoming = state_dict.get(key)
        if isinstance(incoming, torch.Tensor) and incoming.shape != module._buffers[attr + "_values"].shape:
            module._buffers[attr + "_values"] = torch.empty_like(incoming, dtype=module._buffers[attr + "_values"].dtype)


def _make_sparse(module: nn.Module, attr: str, bitmask: torch.Tensor, values: torch.Tensor) -> None:
    dense = getattr(module, attr).detach().clone()  # own storage: the forward pass reads it; not saved
    if attr in module._parameters:
        del module._parameters[attr]
    module._buffers[attr] = dense
    module._non_persistent_buffers_set.add(attr)
    module.register_buffer(attr + "_bitmask", bitmask)
    module.register_buffer(attr + "_values", values)
    if not hasattr(module, "sparse_attributes"):
        module.sparse_attributes = []
        module.register_load_state_dict_pre_hook(_resize)
        module.register_load_state_dict_post_hook(_rebuild)
    module.sparse_attributes.append(attr)


@torch.no_grad()
def to_sparse(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose pruned weights are saved as bitmask + non-zero values.

    Every conv/linear float ``weight`` (and every int8 ``q_w`` of an integer model) is
    converted when the sparse form is smaller (density below ``1 - 1/(8·element bytes)``);
    the others stay as they are. The copy computes exactly what ``model`` does; its
    converted weights are buffers, so it is for shipping and inference, not for training.

    Args:
        model: a float model (e.g. from :func:`qkit.prune.magnitude`) or an integer one
            (:func:`qkit.ptq.convert` ``"int8"``, :func:`qkit.qat.convert`).

    Returns:
        The copy; ``copy.sparse_layers`` lists the converted layers' names.

    Example:
        >>> from qkit.measure import model_size
        >>> from qkit.prune.magnitude import magnitude
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> dense = nn.Linear(1000, 100)
        >>> pruned = magnitude(dense, 0.9)
        >>> sparse = to_sparse(pruned)
        >>> model_size(pruned) > 7 * model_size(sparse)   # 12.5 kB of bitmask + 40 kB of values vs 400 kB
        True
        >>> torch.equal(sparse(torch.ones(1, 1000)), pruned(torch.ones(1, 1000)))
        True
    """
    out = copy.deepcopy(_check_model(model))
    converted = []
    for name, module in out.named_modules():
        attr = _sparse_attribute(module)
        if attr is None:
            continue
        w = getattr(module, attr).detach()
        nnz = int((w != 0).sum())
        if stored_bytes(w.numel(), nnz, w.element_size()) >= w.numel() * w.element_size():
            continue
        _make_sparse(module, attr, *encode(w))
        converted.append(name)
    if any(isinstance(m, PACKED_LAYERS) for m in out.modules()):
        share_storage(out)  # integer layers: one storage per dtype again, without the dense q_w
    out.sparse_layers = converted
    return out


@torch.no_grad()
def load_sparse(skeleton: nn.Module, state_dict: dict) -> nn.Module:
    """A copy of ``skeleton`` (same architecture, any weights) loaded from a state saved by a :func:`to_sparse` model.

    Each layer whose ``<name>.<weight>_bitmask`` is in ``state_dict`` is put in sparse form first,
    then ``load_state_dict(strict=True)`` fills in every tensor and rebuilds the dense weights.

    Example:
        >>> from qkit.prune.magnitude import magnitude
        >>> pruned = magnitude(nn.Linear(16, 4), 0.75)
        >>> buf = io.BytesIO(); torch.save(to_sparse(pruned).state_dict(), buf); _ = buf.seek(0)
        >>> again = load_sparse(nn.Linear(16, 4), torch.load(buf, weights_only=True))
        >>> torch.equal(again.weight, pruned.weight)
        True
    """
    out = copy.deepcopy(_check_model(skeleton))
    for name, module in out.named_modules():
        attr = _sparse_attribute(module)
        prefix = f"{name}." if name else ""
        if attr is not None and prefix + attr + "_bitmask" in state_dict:
            w = getattr(module, attr).detach()
            bits = state_dict[prefix + attr + "_bitmask"]
            values = state_dict[prefix + attr + "_values"]
            _make_sparse(module, attr, torch.zeros_like(bits), torch.zeros_like(values, dtype=w.dtype))
    out.load_state_dict(state_dict, strict=True)
    return out

