"""Per-group quantization: one grid per run of ``group_size`` weights.

Each group gets its own ``scale`` (and ``zero_point``) in ``x ≈ scale * (q - zero_point)``.
A group is just a channel of a reshaped view, so the per-channel machinery
does all the work::

    w (M, K)  --group_view-->  (M * K // group_size, group_size)   # one group per row
              per-channel quantization along axis 0
              --ungroup-->     (M, K)

Granularity is a trade: per-tensor (one scale), per-channel (one per output
row), per-group (one per ``group_size`` weights) fit the grid ever closer to
the values, at the cost of storing ever more scales (:func:`scale_overhead_bits`).
"""

from __future__ import annotations

import torch

from qkit._checks import as_float_tensor, check_int
from qkit.qparams import QParams, choose_qparams, tensor_range
from qkit.quant import fake_quantize, quantize

GRANULARITIES = ("tensor", "channel", "group")


def _grouped_shape(shape: tuple[int, ...], group_size, axis: int) -> tuple[tuple[int, ...], int]:
    """Shape with ``axis`` moved last (as grouped), and ``axis`` made non-negative."""
    if len(shape) == 0:
        raise ValueError("w must have at least one dimension; got a 0-d tensor")
    check_int("group_size", group_size, low=1)
    axis = check_int("axis", axis, low=-len(shape), high=len(shape) - 1) % len(shape)
    k = shape[axis]
    if k % group_size:
        raise ValueError(
            f"group_size must divide the length of axis {axis} ({k} for shape {tuple(shape)}); "
            f"got group_size={group_size}, which leaves {k % group_size} weights over"
        )
    return tuple(shape[:axis]) + tuple(shape[axis + 1:]) + (k,), axis


def group_view(w, group_size: int, axis: int = -1) -> torch.Tensor:
    """Reshape ``w`` so that each row holds one group of ``group_size`` consecutive weights.

    Groups run along ``axis`` (for a linear weight (M, K), the input dimension
    K: groups never straddle two output rows).

    Args:
        w: float tensor (or numpy array), e.g. a linear weight (M, K).
        group_size: weights per group; must divide ``w.shape[axis]``.
        axis: the axis along which consecutive weights are grouped.

    Returns:
        ``(w.numel() // group_size, group_size)`` tensor: row ``i`` is group ``i``.

    Example:
        >>> w = torch.arange(8.0).reshape(2, 4)
        >>> group_view(w, 2)
        tensor([[0., 1.],
                [2., 3.],
                [4., 5.],
                [6., 7.]])
        >>> group_view(w, 1, axis=0).T       # along axis 0: columns are split
        tensor([[0., 4., 1., 5., 2., 6., 3., 7.]])
    """
    w = as_float_tensor("w", w)
    _, axis = _grouped_shape(tuple(w.shape), group_size, axis)
    return w.movedim(axis, -1).reshape(-1, group_size)  # (G, group_size)


def ungroup(x, shape, axis: int = -1) -> torch.Tensor:
    """Undo :func:`group_view`: back to ``shape`` (grouped along ``axis``).

    Example:
        >>> w = torch.arange(6.0).reshape(2, 3)
        >>> ungroup(group_view(w, 3), w.shape)
        tensor([[0., 1., 2.],
                [3., 4., 5.]])
        >>> torch.equal(ungroup(group_view(w, 2, axis=0), w.shape, axis=0), w)
        True
    """
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    shape = tuple(int(n) for n in shape)
    if x.dim() != 2:
        raise ValueError(f"x must be a grouped 2-d (groups, group_size) tensor; got shape {tuple(x.shape)}")
    moved, axis = _grouped_shape(shape, x.shape[1], axis)
    if x.numel() != torch.Size(shape).numel():
        raise ValueError(f"x has {x.numel()} values but shape {shape} holds {torch.Size(shape).numel()}")
    return x.reshape(moved).movedim(-1, axis)


def _group_qparams(view, bits, scheme, signed, narrow) -> QParams:
    lo, hi = tensor_range(view.detach(), axis=0)  # (G,) each
    return choose_qparams(lo, hi, bits, scheme=scheme, signed=signed, narrow=narrow, axis=0)


def quantize_grouped(w, bits: int, group_size: int, *, scheme: str = "scale", axis: int = -1,
                     signed: bool = True, narrow: bool = False) -> tuple[torch.Tensor, QParams]:
    """Quantize ``w`` with one min-max grid per group.

    Returns:
        ``(q, qp)`` with ``q`` in the grouped layout ``(G, group_size)`` and
        ``qp`` per-channel along axis 0 (G scales), so ``dequantize(q, qp)``
        works as for any per-channel grid; ``ungroup`` it to get ``w``'s shape.

    Example:
        >>> w = torch.tensor([[0.05, -0.2, 5.0, 8.0]])
        >>> q, qp = quantize_grouped(w, bits=4, group_size=2)   # grids for |w| <= 0.2 and <= 8
        >>> q
        tensor([[ 2, -7],
                [ 4,  7]], dtype=torch.int8)
        >>> qp.scale
        tensor([0.0286, 1.1429])
    """
    view = group_view(w, group_size, axis)  # (G, group_size)
    qp = _group_qparams(view, bits, scheme, signed, narrow)
    return quantize(view, qp), qp


def fake_quantize_grouped(w, bits: int, group_size: int, *, scheme: str = "scale", axis: int = -1,
                          signed: bool = True, narrow: bool = False) -> torch.Tensor:
    """Quantize-dequantize ``w`` per group; same shape as ``w`` (straight-through gradient).

    Example:
        >>> w = torch.tensor([[0.05, -0.2, 5.0, 8.0]])
        >>> fake_quantize_grouped(w, bits=4, group_size=2)
        tensor([[ 0.0571, -0.2000,  4.5714,  8.0000]])
        >>> fake_quantize_grouped(w, bits=4, group_size=4)    # one grid: small weights vanish
        tensor([[0.0000, 0.0000, 4.5714, 8.0000]])
    """
    if isinstance(w, torch.Tensor) and w.is_floating_point() and w.dtype != torch.float32:
        w = w.float()
    w = as_float_tensor("w", w)
    view = group_view(w, group_size, axis)  # (G, group_size)
    qp = _group_qparams(view, bits, scheme, signed, narrow)
    return ungroup(fake_quantize(view, qp), w.shape, axis)


def scale_overhead_bits(w_shape, granularity: str, group_size: int | None = None, *,
                        scale_bits: int = 32, zero_point_bits: int = 0) -> float:
    """Extra storage per weight, in bits, for the scales (and zero points) of a grid.

    One ``(scale, zero_point)`` pair costs ``scale_bits + zero_point_bits``
    (``zero_point_bits=0`` for the scale scheme, whose zero point is always 0).
    There is one pair for the tensor, one per channel (``w_shape[0]``, the
    output channels), or one per ``group_size`` weights of the last axis.

    Example:
        A 4096 x 4096 weight with float16 scales:

        >>> scale_overhead_bits((4096, 4096), "tensor", scale_bits=16)
        9.5367431640625e-07
        >>> scale_overhead_bits((4096, 4096), "channel", scale_bits=16)
        0.00390625
        >>> scale_overhead_bits((4096, 4096), "group", 128, scale_bits=16)   # 4-bit -> 4.125
        0.125
    """
    shape = tuple(check_int("w_shape entry", n, low=1) for n in w_shape)
    if not shape:
        raise ValueError("w_shape must have at least one dimension; got ()")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}; got {granularity!r}")
    if (granularity == "group") != (group_size is not None):
        raise ValueError(
            f"group_size goes with granularity='group' only; got granularity={granularity!r} "
            f"and group_size={group_size!r}"
        )
    pair = check_int("scale_bits", scale_bits, low=0) + check_int("zero_point_bits", zero_point_bits, low=0)
    numel = torch.Size(shape).numel()
    if granularity == "tensor":
        pairs = 1
    elif granularity == "channel":
        pairs = shape[0]
    else:
        _grouped_shape(shape, group_size, -1)  # group_size must divide the last axis
        pairs = numel // group_size
    return pairs * pair / numel
