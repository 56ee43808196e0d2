"""Sparse *and* packed: a pruned low-bit integer layer saved as a bitmask plus its non-zero values, bit-packed.

Pruning and low-bit quantization save bytes in two different ways, and they
multiply. A layer of ``n`` integer weights at ``b`` bits, ``nnz`` of them non-zero
(a pruned weight quantizes to the integer 0 on a symmetric grid), is stored as

    bitmask: n bits, packed, 1 = kept (qkit.pack, 1 bit per entry)     ceil(n / 8) bytes
    values:  the nnz kept integers in C order, packed at b bits        ceil(nnz · b / 8) bytes

instead of ``ceil(n · b / 8)`` bytes packed densely (:func:`qkit.qat.convert`'s
``q_w_packed``) or ``n`` bytes of int8. It pays when ``n/8 + nnz·b/8 < n·b/8``, i.e.
at a density ``nnz / n < 1 − 1/b``: below 75 % at 4 bits, 87.5 % at 8 bits, never at
1 bit (a binary weight has no 0 to prune). At 75 % sparsity and 4 bits a layer takes
``n/8 + n/8 = n/4`` bytes: 1/16 of its float32 ``4n``, and the zeros cost as much as
the values. (Han et al. 2016's Deep Compression stores 4-bit relative indices and
Huffman-codes both streams; a bitmask is simpler and, at these densities, as small.)

:func:`to_sparse_packed` converts an integer model from :func:`qkit.qat.convert` or
:func:`qkit.ptq.convert` in place of :func:`qkit.prune.to_sparse` (which leaves
packed low-bit layers alone). The dense ``q_w`` (int8, what the kernels read) stays
on each layer as a non-persistent buffer; a ``load_state_dict`` hook rebuilds it from
the two saved streams, so ``qkit.measure.model_size`` counts the real bytes and a
reloaded model computes bit for bit what the original did.

>>> q_w = torch.tensor([[0, 3, 0, -2], [0, 0, 7, 0]], dtype=torch.int8)   # 3 of 8 kept, 4-bit values
>>> bitmask, values = encode(q_w, bits=4)
>>> bitmask.tolist(), values.tolist()        # kept at flat 1, 3, 6: 0b01001010; fields 3, -2 = 0xE, 7
([74], [227, 7])
>>> torch.equal(decode(bitmask, values, bits=4, shape=(2, 4)), q_w)
True
>>> stored_bytes(1000, 250, 4), (1000 * 4 + 7) // 8     # 75 % sparse 4-bit: 250 bytes instead of 500
(250, 500)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from qkit._checks import check_int
from qkit.graph.storage import share_storage
from qkit.nn import QuantConv2d, QuantLinear
from qkit.pack import pack, packed_bytes, unpack

__all__ = ["decode", "encode", "layer_bits", "load_sparse_packed", "stored_bytes", "to_sparse_packed"]


def stored_bytes(n: int, nnz: int, bits: int) -> int:
    """Payload bytes of the sparse packed form: ``ceil(n/8) + ceil(nnz·bits/8)``.

    Example:
        >>> stored_bytes(64, 8, 4), stored_bytes(64, 64, 4)   # 8 + 4 bytes; dense 4-bit would be 32
        (12, 40)
    """
    n = check_int("n", n, low=0)
    nnz = check_int("nnz", nnz, low=0, high=n)
    return packed_bytes(n, 1) + packed_bytes(nnz, check_int("bits", bits, low=2, high=8))


def encode(q_w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(bitmask, values)``: packed ``q_w != 0`` (uint8, ceil(n/8)) and the non-zeros packed at ``bits`` (uint8).

    Raises:
        ValueError: ``bits`` outside 2..8, or a non-zero value outside the signed ``bits``-bit range.
    """
    bits = check_int("bits", bits, low=2, high=8)
    if not isinstance(q_w, torch.Tensor) or q_w.is_floating_point():
        raise TypeError(f"q_w must be an integer tensor; got "
                        f"{q_w.dtype if isinstance(q_w, torch.Tensor) else type(q_w).__name__}")
    keep = (q_w != 0).reshape(-1)  # (n,) bool
    values = q_w.reshape(-1)[keep]  # (nnz,) integers, C order
    return pack(keep.to(torch.uint8), 1, signed=False), pack(values, bits)  # (ceil(n/8),), (ceil(nnz·b/8),) uint8


def decode(bitmask: torch.Tensor, values: torch.Tensor, bits: int, shape) -> torch.Tensor:
    """Inverse of :func:`encode`: the dense int8 tensor of ``shape``, 0 where the bitmask is 0."""
    keep = unpack(bitmask, 1, shape, signed=False).bool()  # shape, bool
    nnz = int(keep.sum())
    if packed_bytes(nnz, bits) != values.numel():
        raise ValueError(f"the bitmask keeps {nnz} entries, which take {packed_bytes(nnz, bits)} bytes at {bits} "
                         f"bits; got {values.numel()} bytes of values")
    dense = torch.zeros(keep.shape, dtype=torch.int8)
    dense[keep] = unpack(values, bits, (nnz,)).to(torch.int8)
    return dense


def layer_bits(module: nn.Module) -> int:
    """The weight bits of an integer layer: its ``w_bits`` when packed below 8, else 8."""
    return int(getattr(module, "w_bits", 8))


def _rebuild(module: nn.Module, incompatible_keys) -> None:
    """After ``load_state_dict``: the dense ``q_w`` from the bitmask and values just loaded."""
    with torch.no_grad():
        module.q_w.copy_(decode(module.q_w_bitmask, module.q_w_values, layer_bits(module), module.q_w.shape))


def _resize(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs) -> None:
    """Before ``load_state_dict``: room for the incoming values (another model may keep another count)."""
    incoming = state_dict.get(prefix + "q_w_values")
    if isinstance(incoming, torch.Tensor) and incoming.shape != module.q_w_values.shape:
        module._buffers["q_w_values"] = torch.empty_like(incoming)


def _drop_unpack_hook(module: nn.Module) -> None:
    """Remove :func:`qkit.qat.convert.pack_weights`' load hook (it reads ``q_w_packed``, which goes)."""
    from qkit.qat.convert import _unpack_hook  # noqa: PLC0415

    for key, hook in list(module._load_state_dict_post_hooks.items()):
        if getattr(hook, "__wrapped__", hook) is _unpack_hook or getattr(hook, "hook", None) is _unpack_hook:
            del module._load_state_dict_post_hooks[key]


def _make_sparse(m: nn.Module, bitmask: torch.Tensor, values: torch.Tensor) -> None:
    if "q_w_packed" in m._buffers:  # a packed low-bit layer: its dense packing leaves the state
        del m._buffers["q_w_packed"]
        _drop_unpack_hook(m)
    m._buffers["q_w"] = m.q_w.clone()  # own storage: the kernels read it; not saved
    m._non_persistent_buffers_set.add("q_w")
    m.register_buffer("q_w_bitmask", bitmask)
    m.register_buffer("q_w_values", values)
    m.register_load_state_dict_pre_hook(_resize)
    m.register_load_state_dict_post_hook(_rebuild)


@torch.no_grad()
def to_sparse_packed(model: nn.Module) -> nn.Module:
    """A copy of an integer model whose pruned layers are saved as bitmask + bit-packed non-zero values.

    Each ``QuantConv2d`` / ``QuantLinear`` is converted where the sparse form is smaller
    (:func:`stored_bytes` below the dense ``ceil(n·b/8)``); the others stay as they are.
    The copy computes exactly what ``model`` does.

    Args:
        model: an integer model (:func:`qkit.qat.convert`, or ``qkit.ptq.convert(..., "int8")``).

    Returns:
        The copy; ``copy.sparse_layers`` lists the converted layers' names.

    Example:
        >>> from qkit import choose_qparams
        >>> from qkit.measure import model_size
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> fc = nn.Linear(512, 64)
        >>> with torch.no_grad():
        ...     _ = fc.weight.masked_fill_(torch.rand(64, 512) < 0.8, 0.0)     # about 80 % pruned
        >>> qp = choose_qparams(-4.0, 4.0)
        >>> dense = nn.Sequential(QuantLinear.from_float(fc, qp, qp, backend="ref"))
        >>> small = to_sparse_packed(dense)
        >>> small.sparse_layers, model_size(dense) - model_size(small) > 20000   # 32 kB of int8 -> ~10.6 kB
        (['0'], True)
        >>> x = torch.randint(-128, 128, (3, 512), dtype=torch.int8)
        >>> torch.equal(small(x), dense(x))
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    out = copy.deepcopy(model)
    converted = []
    for name, m in out.named_modules():
        if not isinstance(m, (QuantLinear, QuantConv2d)):
            continue
        bits = layer_bits(m)
        n, nnz = m.q_w.numel(), int((m.q_w != 0).sum())
        if bits < 2 or stored_bytes(n, nnz, bits) >= packed_bytes(n, bits):
            continue
        _make_sparse(m, *encode(m.q_w, bits))
        converted.append(name)
    share_storage(out)  # the new uint8 streams join the one storage per dtype
    out.sparse_layers = converted
    return out


@torch.no_grad()
def load_sparse_packed(skeleton: nn.Module, state_dict: dict) -> nn.Module:
    """A copy of the integer model ``skeleton`` (same architecture and bits, any values) loaded from a
    state saved by a :func:`to_sparse_packed` model.

    Every layer whose ``<name>.q_w_bitmask`` is in ``state_dict`` is put in sparse form first;
    then ``load_state_dict(strict=True)`` fills in every tensor (activation grids, scales,
    biases) and rebuilds the dense ``q_w``.

    Example:
        >>> from qkit import choose_qparams
        >>> qp = choose_qparams(-4.0, 4.0)
        >>> fc = nn.Linear(64, 8)
        >>> with torch.no_grad():
        ...     _ = fc.weight.masked_fill_(torch.arange(512).view(8, 64) % 4 != 0, 0.0)   # 75 % pruned
        >>> small = to_sparse_packed(nn.Sequential(QuantLinear.from_float(fc, qp, qp)))
        >>> other = nn.Sequential(QuantLinear.from_float(nn.Linear(64, 8), qp, qp))      # dense, other weights
        >>> again = load_sparse_packed(other, small.state_dict())
        >>> torch.equal(again[0].q_w, small[0].q_w), again.sparse_layers
        (True, ['0'])
    """
    if not isinstance(skeleton, nn.Module):
        raise TypeError(f"skeleton must be a torch.nn.Module; got {type(skeleton).__name__}")
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors; got {type(state_dict).__name__}")
    out = copy.deepcopy(skeleton)
    converted = []
    for name, m in out.named_modules():
        key = (f"{name}." if name else "") + "q_w_bitmask"
        if isinstance(m, (QuantLinear, QuantConv2d)) and key in state_dict:
            _make_sparse(m, torch.zeros_like(state_dict[key]), torch.zeros(0, dtype=torch.uint8))
            converted.append(name)
    out.load_state_dict(state_dict, strict=True)
    share_storage(out)  # after loading: the values resized to the saved counts join one storage again
    out.sparse_layers = converted
    return out
