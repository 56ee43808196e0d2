"""u8 × s8 matmul the way AVX2 computes it: pairs of products added into a *saturating* int16.

Equation: ``acc[n, m] = Σ_k a[n, k] · b[k, m]`` with ``a`` uint8 (0…255) and ``b``
int8 (-128…127), which an int32 accumulator holds exactly; x86 CPUs without VNNI
do not compute it that way.

Derivation. AVX2 has no instruction that multiplies bytes into int32. The fastest
one it has, ``vpmaddubsw``, multiplies unsigned bytes of one operand by signed bytes
of the other and adds each **adjacent pair** of products into one int16, saturating
(clamping) to [-32768, 32767] instead of wrapping; ``vpmaddwd`` with ones then adds
pairs of those int16 into int32 exactly, and the int32 sums accumulate along K::

    pair[j] = clamp(a[2j] b[2j] + a[2j+1] b[2j+1], -32768, 32767)   # vpmaddubsw
    acc     = Σ_j pair[j]                                             # vpmaddwd + vpaddd, exact

One product is at most ``255 · 128 = 32 640`` in magnitude and fits, but a pair
reaches ``255 · 127 + 255 · 127 = 64 770 > 32 767``: on full-range data the sum is
wrong. A CPU with VNNI (``vpdpbusd``) adds four products straight into int32 and
is exact. The cure on AVX2 is one bit less on one side (``reduce_range``):

* 7-bit weights, ``|b| <= 64``: a pair is at most ``2 · 255 · 64 = 32 640`` (ONNX
  Runtime's quantizer, ``reduce_range=True``);
* 7-bit activations, ``a <= 127``: at most ``2 · 127 · 128 = 32 512`` (torch's x86 /
  fbgemm default activation observers, ``reduce_range=True``).

Either way every pair fits, at the price of a grid half as fine on that side.
A third way keeps all 8 bits: both operands unsigned, ``a`` and ``b + 128`` in
uint8 with zero point 128 (u8 × u8). Kernels for that pairing widen to int16
before they multiply, so no pair sum saturates: qkit's own ONNX Runtime path
(:func:`qkit.kernels.matmul.onnxruntime_u8u8`) uses it and is exact on every x86 CPU.

In a layer, an int8 input ``q_x`` (zero point ``z_x``) travels as the uint8 ``a = q_x + 128``
and ``Σ_k (q_x - z_x) q_w = Σ_k a q_w - (z_x + 128) Σ_k q_w``: the first sum is the u8 × s8
matmul, the second is precomputed per weight row (:func:`int8_linear_avx2`).

Scope: a reference emulation (int32 tensors, one pair at a time along K), for
lessons and tests; an odd K is padded with a zero product.
"""

from __future__ import annotations

import torch

from qkit._checks import as_tensor
from qkit.kernels import ref
from qkit.qparams import QParams

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def _operands(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    """``a`` uint8 ``(N, K)`` and ``b`` int8 ``(K, M)`` as int32, padded to an even K."""
    a, b = as_tensor("a", a), as_tensor("b", b)
    if a.dtype != torch.uint8:
        raise TypeError(f"a must be a uint8 tensor (N, K); got dtype {a.dtype}")
    if b.dtype != torch.int8:
        raise TypeError(f"b must be an int8 tensor (K, M); got dtype {b.dtype}")
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"a must be (N, K) and b (K, M); got {tuple(a.shape)} and {tuple(b.shape)}")
    a32, b32 = a.to(torch.int32), b.to(torch.int32)
    if a32.shape[1] % 2:  # a zero product pairs with the last one
        a32, b32 = torch.nn.functional.pad(a32, (0, 1)), torch.nn.functional.pad(b32, (0, 0, 0, 1))
    return a32, b32


def pair_sums(a, b) -> torch.Tensor:
    """The exact int32 pair sums ``a[n, 2j] b[2j, m] + a[n, 2j+1] b[2j+1, m]``, before any clamp.

    Args:
        a: uint8 ``(N, K)``.
        b: int8 ``(K, M)``.

    Returns:
        int32 ``(N, M, ceil(K / 2))``.

    Example:
        >>> a = torch.tensor([[255, 255, 1, 2]], dtype=torch.uint8)
        >>> b = torch.tensor([[127], [127], [3], [4]], dtype=torch.int8)
        >>> pair_sums(a, b).tolist()                       # 255·127·2, 1·3 + 2·4
        [[[64770, 11]]]
    """
    a32, b32 = _operands(a, b)
    even = a32[:, None, 0::2] * b32.T[None, :, 0::2]  # (N, M, K/2) int32, |.| <= 32 640
    odd = a32[:, None, 1::2] * b32.T[None, :, 1::2]  # (N, M, K/2) int32
    return even + odd  # (N, M, K/2) int32, |.| <= 65 280


def matmul_u8s8_avx2(a, b) -> torch.Tensor:
    """``a @ b`` as ``vpmaddubsw`` computes it: each pair sum clamped to int16, then summed in int32.

    Args:
        a: uint8 ``(N, K)``.
        b: int8 ``(K, M)``.

    Returns:
        int32 ``(N, M)``; equal to the exact product exactly when no pair sum
        leaves [-32768, 32767] (:func:`saturated_pairs` counts those).

    Example:
        >>> a = torch.tensor([[255, 255, 1, 2]], dtype=torch.uint8)
        >>> b = torch.tensor([[127], [127], [3], [4]], dtype=torch.int8)
        >>> matmul_u8s8_avx2(a, b).item(), (a.int() @ b.int()).item()    # 32767 + 11 vs 64770 + 11
        (32778, 64781)
    """
    return pair_sums(a, b).clamp(INT16_MIN, INT16_MAX).sum(dim=2, dtype=torch.int32)  # (N, M)


def saturated_pairs(a, b) -> int:
    """How many pair sums of ``a @ b`` leave int16 (and so are clamped on AVX2).

    Example:
        >>> a = torch.full((2, 6), 255, dtype=torch.uint8)
        >>> saturated_pairs(a, torch.full((6, 3), 127, dtype=torch.int8))      # all 2·3·3 pairs
        18
        >>> saturated_pairs(a, torch.full((6, 3), 64, dtype=torch.int8))       # 7-bit weights: none
        0
    """
    s = pair_sums(a, b)  # (N, M, K/2) int32
    return int(((s < INT16_MIN) | (s > INT16_MAX)).sum())


def onnxruntime_u8s8(a, b) -> torch.Tensor:
    """``a @ b`` by ONNX Runtime's ``MatMulInteger`` with uint8 ``a``, int8 ``b`` and zero points 0.

    What this returns depends on the CPU: exact where ONNX Runtime has a VNNI (or
    ARM dot-product) kernel, :func:`matmul_u8s8_avx2`-like on AVX2-only x86 CPUs.
    Needs ``onnx`` (to write the one-node graph) and ``onnxruntime``.

    Args:
        a: uint8 ``(N, K)``.
        b: int8 ``(K, M)``.

    Returns:
        int32 ``(N, M)``.

    Example:
        >>> a = torch.tensor([[3, 200]], dtype=torch.uint8)
        >>> onnxruntime_u8s8(a, torch.tensor([[-2], [1]], dtype=torch.int8))   # small: exact on every CPU
        tensor([[194]], dtype=torch.int32)
    """
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    _operands(a, b)  # checks only
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "qkit_u8s8",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, ["N", "K"]),
         helper.make_tensor_value_info("B", TensorProto.INT8, ["K", "M"])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, ["N", "M"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"A": np.ascontiguousarray(a.numpy()), "B": np.ascontiguousarray(b.numpy())})
    return torch.from_numpy(y)  # (N, M) int32


def int8_linear_avx2(q_x, x_qp: QParams, q_w, w_qp: QParams, bias, y_qp: QParams, *,
                     rounding: str = "double") -> torch.Tensor:
    """:func:`qkit.kernels.ref.int8_linear` with its sum computed by :func:`matmul_u8s8_avx2`.

    ``acc = Σ_k a q_w - (z_x + 128) Σ_k q_w + bias_q`` with ``a = q_x + 128`` (uint8), then the
    same requantization (``rounding``, one of :data:`qkit.fixedpoint.ROUNDINGS`): the layer as an
    AVX2 u8 × s8 kernel computes it.

    Example:
        >>> from qkit import choose_qparams
        >>> x_qp, y_qp = choose_qparams(0.0, 1.0), choose_qparams(0.0, 100.0)
        >>> w_qp = choose_qparams(-1.0, 1.0, scheme="scale")
        >>> q_x = torch.full((1, 4), 127, dtype=torch.int8)                # x = 1.0: a = 255
        >>> q_w = torch.full((1, 4), 127, dtype=torch.int8)                # w = 1.0
        >>> ref.int8_linear(q_x, x_qp, q_w, w_qp, None, y_qp, rounding="double")   # 4·255·127 = 129 540
        tensor([[-118]], dtype=torch.int8)
        >>> int8_linear_avx2(q_x, x_qp, q_w, w_qp, None, y_qp)            # 2 pairs of 32 767: 65 534
        tensor([[-123]], dtype=torch.int8)
    """
    q_x = ref.int8_tensor("q_x", q_x, 2, "(N, K)")
    q_w = ref.int8_tensor("q_w", q_w, 2, "(M, K)")
    m = q_w.shape[0]
    ref.check_grids(x_qp, w_qp, y_qp, m)
    z_x = int(x_qp.zero_point)
    bias_q = ref.quantize_bias(bias, x_qp, w_qp, m)  # (M,) int32
    multiplier, shift = ref.output_multipliers(x_qp, w_qp, y_qp, m, rounding)  # (M,) each
    a = (q_x.to(torch.int16) + 128).to(torch.uint8)  # (N, K) uint8, the same integers shifted
    row_sums = q_w.long().sum(dim=1)  # (M,) int64
    acc = matmul_u8s8_avx2(a, q_w.T).long() - (z_x + 128) * row_sums + bias_q.long()  # (N, M) int64
    return ref.requantize(acc, multiplier, shift, y_qp, rounding)  # (N, M) int8
