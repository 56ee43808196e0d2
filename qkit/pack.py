"""Bit packing: store ``bits``-bit integers in ``bits`` bits each, not in a whole int8.

A 4-bit weight kept in int8 wastes half of every byte; packed, a tensor of
``n`` values takes ``ceil(n * bits / 8)`` bytes. The layout is one bit stream,
little-endian: value ``i`` occupies stream bits ``[i*bits, (i+1)*bits)``, and
stream bit ``j`` is bit ``j % 8`` of byte ``j // 8`` — so the first value sits
in the lowest bits of the first byte, and a field may straddle two bytes
(``bits`` = 3, 5, 6, 7). Each field holds::

    signed, bits >= 2:  q mod 2**bits        (two's complement, q in [-2**(bits-1), 2**(bits-1) - 1])
    unsigned:           q                    (q in [0, 2**bits - 1])
    signed, bits == 1:  1 for q = +1, 0 for q = -1   (the binary convention: no level 0)

Worked example, 4-bit signed ``[1, -2]``: fields ``0x1`` and ``-2 mod 16 = 0xE``;
the first goes low, so the byte is ``0xE1``.

Vectorised: 8 values of ``bits`` bits are exactly ``bits`` bytes, so ``pack``
ORs each group of 8 fields into one int64 word (at most 56 bits for
``bits`` <= 7) and cuts the word into bytes; ``unpack`` does the reverse.
"""

from __future__ import annotations

import numbers

import torch

from qkit._checks import as_int_tensor, check_bool, check_int

MAX_PACK_BITS = 8


def packed_bytes(numel: int, bits: int) -> int:
    """Bytes that ``numel`` values of ``bits`` bits take packed: ``ceil(numel * bits / 8)``.

    Example:
        >>> packed_bytes(1001, 3), packed_bytes(1, 1), packed_bytes(0, 4)
        (376, 1, 0)
    """
    numel = check_int("numel", numel, low=0)
    bits = check_int("bits", bits, low=1, high=MAX_PACK_BITS)
    return (numel * bits + 7) // 8


def _field_range(bits: int, signed: bool) -> tuple[int, int]:
    if not signed:
        return 0, 2**bits - 1
    if bits == 1:
        return -1, 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _range_text(bits: int, signed: bool) -> str:
    if signed and bits == 1:
        return "the 1-bit signed (binary) values {-1, +1}"
    lo, hi = _field_range(bits, signed)
    return f"the {bits}-bit {'signed' if signed else 'unsigned'} range [{lo}, {hi}]"


def _check_values(q: torch.Tensor, bits: int, signed: bool) -> None:
    """Raise naming the first value that does not fit (never wrap it silently)."""
    lo, hi = _field_range(bits, signed)
    bad = (q < lo) | (q > hi)
    if signed and bits == 1:
        bad = bad | (q == 0)
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"q[{i}] (flat index) = {int(q[i])} does not fit: expected {_range_text(bits, signed)}"
        )


def pack(q, bits: int, *, signed: bool = True) -> torch.Tensor:
    """Pack integers into ``bits``-bit fields, little-endian within bytes (see the module docstring).

    Args:
        q: integer tensor (any integer dtype, any shape; numpy accepted); it is
            flattened in C order.
        bits: field width, 1 .. 8.
        signed: two's-complement fields if True (1 bit: the binary values
            -1 and +1, stored as 0 and 1), else unsigned fields.

    Returns:
        1-d uint8 tensor of ``packed_bytes(q.numel(), bits)`` bytes; unused
        high bits of the last byte are 0.

    Raises:
        TypeError: ``q`` is not an integer tensor/array, ``bits`` not an int, ``signed`` not a bool.
        ValueError: ``bits`` outside 1..8, or a value outside the field's range
            (named with its flat index).

    Example:
        >>> pack(torch.tensor([1, -2], dtype=torch.int8), 4)          # the 0xE1 of the docstring
        tensor([225], dtype=torch.uint8)
        >>> pack(torch.tensor([1, -1, -1, 1, 1, 1, 1, 1, 1]), 1)    # 0b11111001, then 0b1
        tensor([249,   1], dtype=torch.uint8)
    """
    q = as_int_tensor("q", q)
    bits = check_int("bits", bits, low=1, high=MAX_PACK_BITS)
    signed = check_bool("signed", signed)
    flat = q.reshape(-1).to(torch.int64)  # (n,)
    n = flat.numel()
    _check_values(flat, bits, signed)
    if signed and bits == 1:
        fields = (flat > 0).to(torch.int64)  # +1 -> 1, -1 -> 0
    else:
        fields = flat & (2**bits - 1)  # (n,) two's complement for negatives
    if bits == 8:
        return fields.to(torch.uint8)
    groups = -(-n // 8)
    padded = torch.zeros(groups * 8, dtype=torch.int64)
    padded[:n] = fields
    shifts = torch.arange(8, dtype=torch.int64) * bits  # (8,)
    words = (padded.view(groups, 8) << shifts).sum(dim=1)  # (G,) int64, 8*bits <= 56 bits used
    byte_shifts = torch.arange(bits, dtype=torch.int64) * 8  # (bits,)
    data = (words[:, None] >> byte_shifts) & 0xFF  # (G, bits)
    return data.reshape(-1)[: packed_bytes(n, bits)].to(torch.uint8)


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, torch.Size)):
        raise TypeError(f"shape must be a tuple of ints; got {type(shape).__name__} {shape!r}")
    return tuple(check_int("shape entry", s, low=0) for s in shape)


def unpack(data, bits: int, shape, *, signed: bool = True) -> torch.Tensor:
    """Inverse of :func:`pack`: read ``prod(shape)`` fields of ``bits`` bits from packed bytes.

    Args:
        data: 1-d uint8 tensor, as :func:`pack` returns.
        bits: field width, 1 .. 8.
        shape: shape of the result (a tuple of ints, or one int).
        signed: how the fields were written (as for :func:`pack`).

    Returns:
        Tensor of ``shape``: int8, except unsigned 8-bit fields, which come back
        as uint8 (255 does not fit an int8).

    Raises:
        TypeError: ``data`` is not a uint8 tensor, or a wrong argument type.
        ValueError: ``data`` is not 1-d, or holds the wrong number of bytes
            for ``shape``; ``bits`` outside 1..8.

    Example:
        >>> unpack(torch.tensor([0xE1], dtype=torch.uint8), 4, (2,))
        tensor([ 1, -2], dtype=torch.int8)
        >>> unpack(torch.tensor([0xE1], dtype=torch.uint8), 4, (2,), signed=False)
        tensor([ 1, 14], dtype=torch.int8)
    """
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8:
        got = f"dtype {data.dtype}" if isinstance(data, torch.Tensor) else type(data).__name__
        raise TypeError(f"data must be a uint8 tensor (what pack returns); got {got}")
    bits = check_int("bits", bits, low=1, high=MAX_PACK_BITS)
    signed = check_bool("signed", signed)
    shape = _shape(shape)
    if data.dim() != 1:
        raise ValueError(f"data must be 1-d; got shape {tuple(data.shape)}")
    n = 1
    for s in shape:
        n *= s
    want = packed_bytes(n, bits)
    if data.numel() != want:
        raise ValueError(
            f"shape {shape} holds {n} values of {bits} bits = {want} bytes; got {data.numel()} bytes"
        )
    out_dtype = torch.uint8 if (bits == 8 and not signed) else torch.int8
    if bits == 8:
        fields = data.to(torch.int64)  # (n,)
    else:
        groups = -(-n // 8)
        padded = torch.zeros(groups * bits, dtype=torch.int64)
        padded[:want] = data
        byte_shifts = torch.arange(bits, dtype=torch.int64) * 8  # (bits,)
        words = (padded.view(groups, bits) << byte_shifts).sum(dim=1)  # (G,) int64
        shifts = torch.arange(8, dtype=torch.int64) * bits  # (8,)
        fields = ((words[:, None] >> shifts) & (2**bits - 1)).reshape(-1)[:n]  # (n,)
    if signed and bits == 1:
        values = 2 * fields - 1  # 1 -> +1, 0 -> -1
    elif signed:
        values = fields - ((fields >> (bits - 1)) << bits)  # sign-extend: subtract 2**bits if top bit set
    else:
        values = fields
    return values.to(out_dtype).reshape(shape)
