"""Three exact int8 matmuls ``(N, K) × (K, M) -> int32 (N, M)``: the candidates :mod:`qkit.kernels.engine` picks from.

Equation: ``acc[n, m] = Σ_k a[n, k] · b[k, m]`` with ``a, b`` int8, exactly, in int32.
Each candidate computes the same integers in a different way; which is fastest
depends on the CPU (int8 dot-product units or not), so the engine measures.

* :func:`int_mm`: ``torch._int_mm``, int8 × int8 → int32 on the CPU's
  dot-product units (fast with AVX-512 VNNI or AMX; a slow generic loop without).
* :func:`float32_chunked`: float32 GEMM over K-chunks of at most :data:`CHUNK`,
  exact by the bound proved in its docstring (as fast as float32, on any CPU).
* :func:`onnxruntime_u8u8`: ONNX Runtime's ``MatMulInteger`` on operands shifted
  to uint8 (int8 dot products in MLAS, ONNX Runtime's own kernels).

Like ``torch._int_mm``, the int32 result wraps if ``|acc| >= 2**31``
(``K > 2**17`` at worst); qkit's layers check K before (stage 4 of ref).
"""

from __future__ import annotations

import numpy as np
import torch

#: Longest K-chunk of :func:`float32_chunked`: 1024 · 128 · 128 = 2**24.
CHUNK = 1024


def int_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``torch._int_mm(a, b)``, with K = 1 done as an outer product (torch 2.13's CPU ``_int_mm`` is wrong there).

    Example:
        >>> int_mm(torch.tensor([[2], [-3]], dtype=torch.int8), torch.tensor([[4, 5]], dtype=torch.int8))
        tensor([[  8,  10],
                [-12, -15]], dtype=torch.int32)
    """
    if a.shape[1] == 1:
        return a.to(torch.int32) * b.to(torch.int32)  # (N, 1) * (1, M) -> (N, M) int32
    return torch._int_mm(a, b)  # (N, M) int32


def float32_chunked(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int8 matmul by float32 GEMMs over K-chunks of at most 1024, each chunk rounded to int32.

    Why it is exact: every product ``a[n, k] · b[k, m]`` of two int8 values has
    ``|a · b| <= 128 · 128 = 2**14`` and is an integer. A GEMM adds a chunk's
    ``c <= 1024`` products in some order and grouping of its own (blocked, vectorised,
    with fused multiply-adds); whatever the order, every intermediate value it forms
    is the sum of a *subset* of those products, so it is an integer with
    ``|s| <= c · 2**14 <= 2**24``. float32 has a 24-bit significand: it represents
    every integer of magnitude up to ``2**24`` exactly, so every product and every
    addition inside the GEMM is exact (no rounding ever happens). The chunk's float32
    result is then an exact integer, converted to int32 *before* chunks are added
    (in int32, where sums of more than 1024 products may exceed ``2**24``).

    This holds for true float32 arithmetic only: ``torch.set_float32_matmul_precision``
    other than ``"highest"`` lets a backend use bfloat16/TF32 inputs, so this
    function sets ``"highest"`` for its own GEMMs and restores the setting after.

    Example:
        >>> a = torch.full((1, 3000), -128, dtype=torch.int8)          # 3000 · 2**14 > 2**24: three chunks
        >>> float32_chunked(a, torch.full((3000, 2), -128, dtype=torch.int8))
        tensor([[49152000, 49152000]], dtype=torch.int32)
    """
    n, k = a.shape
    m = b.shape[1]
    precision = torch.get_float32_matmul_precision()
    if precision != "highest":
        torch.set_float32_matmul_precision("highest")
    try:
        acc = torch.zeros(n, m, dtype=torch.int32) if k == 0 else None
        for start in range(0, k, CHUNK):
            part = torch.mm(a[:, start:start + CHUNK].float(), b[start:start + CHUNK].float())  # (N, M) exact
            part = part.to(torch.int32)  # (N, M) int32, |.| <= 2**24
            acc = part if acc is None else acc.add_(part)  # (N, M) int32
        return acc
    finally:
        if precision != "highest":
            torch.set_float32_matmul_precision(precision)


class _Ort:
    session = None  # one InferenceSession with symbolic N, K, M, made on first use
    threads = None  # torch's thread count when it was made


def onnxruntime_available() -> str | None:
    """None if :func:`onnxruntime_u8u8` can run here, else why not (a sentence)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "not installed (pip install onnxruntime)"
    return None


def _field(number: int, payload) -> bytes:
    """One protobuf field: an int as a varint (wire type 0), bytes/str length-delimited (wire type 2)."""
    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
            v >>= 7
            if not v:
                return bytes(out)

    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def matmul_integer_model() -> bytes:
    """A serialized ONNX model of one ``MatMulInteger``: uint8 A ``(N, K)``, uint8 B ``(K, M)``, zero points 128.

    Written field by field from ONNX's ``onnx.proto`` (ModelProto, GraphProto, NodeProto,
    TensorProto, ValueInfoProto), so that the ``onnx`` package (and its second-long
    import) is not needed; tests check it against ``onnx.helper``'s model.

    Example:
        >>> matmul_integer_model()[:2]     # field 1 (ir_version) = 8
        b'\\x08\\x08'
    """
    uint8, int32 = 2, 6  # TensorProto.DataType

    def value_info(name: str, elem: int, dims) -> bytes:
        shape = b"".join(_field(1, _field(2, d)) for d in dims)  # Dimension.dim_param (symbolic)
        return _field(1, name) + _field(2, _field(1, _field(1, elem) + _field(2, shape)))

    zero = lambda name: _field(2, uint8) + _field(8, name) + _field(9, bytes([128]))  # noqa: E731 scalar 128
    node = b"".join(_field(1, n) for n in ("A", "B", "za", "zb")) + _field(2, "Y") + _field(4, "MatMulInteger")
    graph = (_field(1, node) + _field(2, "qkit_int8_matmul") + _field(5, zero("za")) + _field(5, zero("zb"))
             + _field(11, value_info("A", uint8, "NK")) + _field(11, value_info("B", uint8, "KM"))
             + _field(12, value_info("Y", int32, "NM")))
    return _field(1, 8) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))  # IR 8, opset 13


def _session():
    """An ONNX Runtime session of :func:`matmul_integer_model`, one per torch thread count."""
    threads = torch.get_num_threads()
    if _Ort.session is None or _Ort.threads != threads:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # ONNX Runtime's threads busy-wait after each run by default, taking the cores from torch's
        # next operations (fp32 measured 2× slower next to it): let them sleep.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        _Ort.session = ort.InferenceSession(matmul_integer_model(), options, providers=["CPUExecutionProvider"])
        _Ort.threads = threads
    return _Ort.session


def onnxruntime_u8u8(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int8 matmul by ONNX Runtime's ``MatMulInteger`` on uint8 operands shifted by 128.

    ``q + 128`` (stored as uint8; flipping the top bit of the int8 byte does it) with
    zero point 128 stands for the same integer ``q``; ONNX Runtime computes
    ``Σ (a_u - 128)(b_u - 128)`` exactly in int32 (it folds the zero points into row
    and column sums). Not u8 × s8: on AVX2, ONNX Runtime's u8 × s8 kernels add
    pairs of products in saturating int16 (``vpmaddubsw``), wrong on full-range
    data such as ``255 · 127 + 255 · 127 > 2**15``; u8 × u8 widens to int16 first.

    Example:
        >>> onnxruntime_u8u8(torch.tensor([[-128, 127]], dtype=torch.int8), torch.tensor([[-128], [-128]], dtype=torch.int8))
        tensor([[128]], dtype=torch.int32)
    """
    a_u = a.contiguous().numpy().view(np.uint8) ^ np.uint8(0x80)  # (N, K) uint8 = a + 128
    b_u = b.contiguous().numpy().view(np.uint8) ^ np.uint8(0x80)  # (K, M) uint8 = b + 128
    (y,) = _session().run(None, {"A": a_u, "B": b_u})  # (N, M) int32
    return torch.from_numpy(y)


#: name -> (function, availability check returning None or why not).
CANDIDATES = {
    "int_mm": (int_mm, lambda: None if hasattr(torch, "_int_mm") else "this torch has no torch._int_mm"),
    "float32": (float32_chunked, lambda: None),
    "onnxruntime": (onnxruntime_u8u8, onnxruntime_available),
}
