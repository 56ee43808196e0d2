"""qkit.pack: b-bit fields, little-endian bit stream, round trips and errors.

Oracle: the layout in plain Python ints — the whole tensor is one integer
``sum(field_i << (i * bits))`` written with ``int.to_bytes(..., "little")`` — which shares no
code with the vectorised int64-word implementation; plus byte layouts written out by hand.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_profiles import examples

from qkit.pack import pack, packed_bytes, unpack

pytestmark = pytest.mark.lesson05

CASES = [(bits, signed) for bits in range(1, 9) for signed in (True, False)]


def _values_range(bits, signed):
    if not signed:
        return list(range(0, 2**bits))
    if bits == 1:
        return [-1, 1]
    return list(range(-(2 ** (bits - 1)), 2 ** (bits - 1)))


def _reference_pack(values, bits, signed):
    """The layout in Python ints: field i occupies bits [i*bits, (i+1)*bits) of one big integer."""
    stream = 0
    for i, v in enumerate(values):
        if signed and bits == 1:
            field = 1 if v == 1 else 0
        else:
            field = v % (2**bits)  # two's complement for negatives
        stream |= field << (i * bits)
    nbytes = -(-len(values) * bits // 8)
    return list(stream.to_bytes(nbytes, "little"))


def _random_values(bits, signed, n, seed):
    rng = np.random.default_rng(seed)
    return rng.choice(_values_range(bits, signed), size=n).tolist()


@pytest.mark.parametrize("bits,signed", CASES)
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1001])
def test_round_trip_and_layout(bits, signed, n):
    values = _random_values(bits, signed, n, seed=bits * 100 + n)
    dtype = torch.uint8 if (bits == 8 and not signed) else torch.int8
    q = torch.tensor(values, dtype=torch.int64).to(dtype)
    data = pack(q, bits, signed=signed)
    assert data.dtype == torch.uint8 and data.dim() == 1
    assert data.numel() == -(-n * bits // 8) == packed_bytes(n, bits)
    assert data.tolist() == _reference_pack(values, bits, signed)
    back = unpack(data, bits, (n,), signed=signed)
    assert back.dtype == dtype and back.tolist() == values


@pytest.mark.parametrize("bits,signed", CASES)
def test_every_value_round_trips(bits, signed):
    values = _values_range(bits, signed)
    q = torch.tensor(values)  # int64 in
    data = pack(q, bits, signed=signed)
    assert data.tolist() == _reference_pack(values, bits, signed)
    assert unpack(data, bits, len(values), signed=signed).tolist() == values


def test_known_byte_layouts():
    i8 = torch.int8
    # 4-bit signed [1, -2]: 1 = 0x1 in the low nibble, -2 = 0xE in the high one
    assert pack(torch.tensor([1, -2], dtype=i8), 4).tolist() == [0xE1]
    # 2-bit signed [1, -1, -2, 0] -> fields 01, 11, 10, 00 from the lowest bits up: 0b00_10_11_01
    assert pack(torch.tensor([1, -1, -2, 0], dtype=i8), 2).tolist() == [0b00101101]
    # 1-bit binary [+1, -1, -1, +1, +1, -1, -1, -1, +1] -> 1,0,0,1,1,0,0,0 | 1
    assert pack(torch.tensor([1, -1, -1, 1, 1, -1, -1, -1, 1], dtype=i8), 1).tolist() == [0b00011001, 0b1]
    # 3-bit unsigned [5, 3, 7]: 101, 011, 111 -> stream 111_011_101 = 0x1DD -> bytes 0xDD, 0x01
    assert pack(torch.tensor([5, 3, 7], dtype=i8), 3, signed=False).tolist() == [0xDD, 0x01]
    # 3-bit signed [-1, 0, 3]: fields 111, 000, 011 -> 011_000_111 = 0xC7, 0x00
    assert pack(torch.tensor([-1, 0, 3], dtype=i8), 3).tolist() == [0xC7, 0x00]
    # 5-bit signed [-16, 15]: 10000, 01111 -> 01111_10000 = 0x1F0 -> 0xF0, 0x01
    assert pack(torch.tensor([-16, 15], dtype=i8), 5).tolist() == [0xF0, 0x01]
    # 7-bit unsigned [127, 0, 1]: bits 0..6 set, then 0, then bit 14 -> 0x7F, 0x40, 0x00
    assert pack(torch.tensor([127, 0, 1], dtype=i8), 7, signed=False).tolist() == [0x7F, 0x40, 0x00]
    # 8-bit signed is plain two's complement bytes
    assert pack(torch.tensor([-128, -1, 0, 127], dtype=i8), 8).tolist() == [0x80, 0xFF, 0x00, 0x7F]
    assert unpack(torch.tensor([0xF0, 0x01], dtype=torch.uint8), 5, (2,)).tolist() == [-16, 15]
    assert unpack(torch.tensor([0b00101101], dtype=torch.uint8), 2, (2, 2)).tolist() == [[1, -1], [-2, 0]]


def test_shapes_and_dtypes():
    q = torch.randint(-8, 8, (3, 4, 5), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    data = pack(q, 4)
    assert data.numel() == 30
    back = unpack(data, 4, q.shape)
    assert back.shape == q.shape and torch.equal(back.to(torch.int32), q)
    assert torch.equal(pack(q.to(torch.int16), 4), data) and torch.equal(pack(q.numpy(), 4), data)
    assert torch.equal(pack(q.transpose(0, 2), 4), pack(q.transpose(0, 2).contiguous(), 4))  # C order
    assert unpack(pack(torch.tensor(-3), 3), 3, ()).shape == ()  # 0-d


@settings(max_examples=examples(200), deadline=None)
@given(data=st.data(), bits=st.integers(1, 8), signed=st.booleans(), n=st.integers(0, 70))
def test_round_trip_property(data, bits, signed, n):
    values = data.draw(st.lists(st.sampled_from(_values_range(bits, signed)), min_size=n, max_size=n))
    packed = pack(torch.tensor(values, dtype=torch.int64), bits, signed=signed)
    assert packed.tolist() == _reference_pack(values, bits, signed)
    assert unpack(packed, bits, (n,), signed=signed).tolist() == values


@settings(max_examples=examples(100), deadline=None)
@given(raw=st.binary(min_size=0, max_size=40), bits=st.integers(1, 8), signed=st.booleans())
def test_unpack_property_any_bytes(raw, bits, signed):
    """Any byte string is the packing of some fields (when the count fits): unpack reads them."""
    n = len(raw) * 8 // bits
    if packed_bytes(n, bits) != len(raw):
        return  # trailing bits that no whole field would own; not a valid packing
    stream = int.from_bytes(raw, "little")
    fields = [(stream >> (i * bits)) & (2**bits - 1) for i in range(n)]
    if signed and bits == 1:
        want = [2 * f - 1 for f in fields]
    elif signed:
        want = [f - 2**bits if f >= 2 ** (bits - 1) else f for f in fields]
    else:
        want = fields
    data = torch.tensor(list(raw), dtype=torch.uint8)
    assert unpack(data, bits, (n,), signed=signed).tolist() == want


def test_packed_bytes():
    for n in (0, 1, 7, 9, 1001, 10**6):
        for b in range(1, 9):
            assert packed_bytes(n, b) == -(-n * b // 8)
    assert packed_bytes(1001, 3) == 376  # 3003 bits -> 375.375 bytes


@pytest.mark.parametrize("values,bits,signed,match", [
    ([8], 4, True, r"q\[0\].*= 8.*4-bit signed range \[-8, 7\]"),
    ([0, -9], 4, True, r"q\[1\].*= -9.*\[-8, 7\]"),
    ([16], 4, False, r"= 16.*4-bit unsigned range \[0, 15\]"),
    ([-1], 3, False, r"= -1.*\[0, 7\]"),
    ([1, 0], 1, True, r"q\[1\].*= 0.*\{-1, \+1\}"),
    ([1, 2], 1, True, r"= 2.*\{-1, \+1\}"),
    ([2], 1, False, r"= 2.*\[0, 1\]"),
    ([128], 8, True, r"= 128.*\[-128, 127\]"),
    ([256], 8, False, r"= 256.*\[0, 255\]"),
])
def test_out_of_range_values_are_refused(values, bits, signed, match):
    with pytest.raises(ValueError, match=match):
        pack(torch.tensor(values), bits, signed=signed)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: pack(torch.tensor([1]), 0), ValueError, "bits"),
    (lambda: pack(torch.tensor([1]), 9), ValueError, "bits"),
    (lambda: pack(torch.tensor([1]), 4.0), TypeError, "bits must be an int"),
    (lambda: pack(torch.tensor([1.0]), 4), TypeError, "integers"),
    (lambda: pack(torch.tensor([True]), 4), TypeError, "integers"),
    (lambda: pack([1, 2], 4), TypeError, "q must be"),
    (lambda: pack(torch.tensor([1]), 4, signed=1), TypeError, "signed"),
    (lambda: unpack(torch.tensor([1, 2], dtype=torch.uint8), 4, (2,)), ValueError, "= 1 bytes; got 2"),
    (lambda: unpack(torch.tensor([1, 2], dtype=torch.uint8), 4, (5,)), ValueError, "3 bytes"),
    (lambda: unpack(torch.tensor([1], dtype=torch.uint8), 4, (3,)), ValueError, "= 2 bytes; got 1"),
    (lambda: unpack(torch.tensor([1, 2], dtype=torch.int8), 4, (4,)), TypeError, "uint8"),
    (lambda: unpack([1, 2], 4, (4,)), TypeError, "uint8"),
    (lambda: unpack(torch.zeros(2, 1, dtype=torch.uint8), 4, (4,)), ValueError, "1-d"),
    (lambda: unpack(torch.zeros(1, dtype=torch.uint8), 9, (1,)), ValueError, "bits"),
    (lambda: unpack(torch.zeros(1, dtype=torch.uint8), 0, (1,)), ValueError, "bits"),
    (lambda: unpack(torch.zeros(1, dtype=torch.uint8), 8, "1"), TypeError, "shape"),
    (lambda: unpack(torch.zeros(1, dtype=torch.uint8), 8, (-1,)), ValueError, "shape"),
    (lambda: packed_bytes(-1, 4), ValueError, "numel"),
    (lambda: packed_bytes(3, 9), ValueError, "bits"),
])
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
