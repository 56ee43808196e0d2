"""How long a dot product may be before its integer accumulator overflows.

An int8 linear layer sums K products ``(q_x - zero_point_x) * q_w`` in an
accumulator ``acc``. With a ``b_x``-bit input (``q_x - zero_point_x`` spans at
most ``2**b_x - 1``) and a ``b_w``-bit scale-scheme weight (``|q_w| <= 2**(b_w-1)``)::

    |acc| <= K * (2**b_x - 1) * 2**(b_w - 1)                # the worst case

For int8 × int8 that is ``K * 255 * 128``: an int32 accumulator is safe up to
``K = 65 793``, an int16 one only for ``K = 1``. Hardware does not trap an
overflow: two's-complement addition **wraps around** silently. Random data
grows like ``sqrt(K)`` rather than ``K``, which is why overflow bugs hide until
an unlucky input arrives.
"""

from __future__ import annotations

import torch

from qkit._checks import check_int


def accumulator_bound(k: int, x_bits: int = 8, w_bits: int = 8) -> int:
    """Worst-case ``|Σ_k (q_x - zero_point_x) * q_w|`` for a K-long dot product.

    Example:
        >>> accumulator_bound(1), accumulator_bound(4096)
        (32640, 133693440)
    """
    check_int("k", k, low=1)
    check_int("x_bits", x_bits, low=1, high=16)
    check_int("w_bits", w_bits, low=1, high=16)
    return k * (2**x_bits - 1) * 2 ** (w_bits - 1)


def max_safe_k(acc_bits: int = 32, x_bits: int = 8, w_bits: int = 8) -> int:
    """Largest K whose worst case fits a signed ``acc_bits``-bit accumulator (0 if none does).

    Example:
        >>> max_safe_k(32), max_safe_k(16), max_safe_k(32, x_bits=4, w_bits=4)
        (65793, 1, 17895697)
    """
    check_int("acc_bits", acc_bits, low=2, high=64)
    return (2 ** (acc_bits - 1) - 1) // accumulator_bound(1, x_bits, w_bits)


def wrap(values: torch.Tensor, acc_bits: int) -> torch.Tensor:
    """What a signed ``acc_bits``-bit register holds after exact integer ``values``: two's-complement wrap.

    Example:
        >>> wrap(torch.tensor([32767, 32768, -32769, 70000]), 16)
        tensor([ 32767, -32768,  32767,   4464])
    """
    check_int("acc_bits", acc_bits, low=2, high=63)
    if values.is_floating_point():
        raise TypeError(f"values must be integers; got dtype {values.dtype}")
    span = 2**acc_bits
    v = values.to(torch.int64)
    return torch.remainder(v + span // 2, span) - span // 2


def running_sums(products: torch.Tensor, acc_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact and register-wrapped running sums of integer ``products`` (1-d).

    Returns:
        ``(exact, wrapped)``: int64 tensors of the same length; ``exact`` in
        int64 (no overflow for any realistic K), ``wrapped`` as a signed
        ``acc_bits``-bit accumulator would hold it after each addition.

    Example:
        >>> exact, wrapped = running_sums(torch.full((3,), 20000), acc_bits=16)
        >>> exact.tolist(), wrapped.tolist()
        ([20000, 40000, 60000], [20000, -25536, -5536])
    """
    if products.dim() != 1:
        raise ValueError(f"products must be 1-d; got shape {tuple(products.shape)}")
    exact = torch.cumsum(products.to(torch.int64), 0)  # (K,) int64
    return exact, wrap(exact, acc_bits)
