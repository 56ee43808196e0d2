"""Lesson 04 exercises: post-training quantization (BN folding, dynamic range, size, calibration).

In the notebook::

    from exercises.ex04_ptq import q1, q2, q3, q4

    q1  my_fold_bn(w, b, gamma, beta, mean, var, eps) -> tuple[Tensor, Tensor]     # (w', b') float32
    q2  my_dynamic_linear(x, q_w, w_scale, bias) -> Tensor                         # float32 (N, M)
    q3  my_size_ratio(n_params, bits, n_scales, scale_bits, overhead_bytes) -> float
    q4  my_calibrated_grid(activations: list[Tensor], bits: int) -> tuple[float, int]  # (scale, zero_point)

References: :func:`qkit.graph.fold_conv_bn`, :class:`qkit.nn.DynamicQuantLinear`,
the byte count ``(4 n + overhead) / (n bits/8 + n_scales scale_bits/8 + overhead)``
and :class:`qkit.observers.MinMaxObserver` with ``qparams(bits, signed=False)``.
The first fixed case of each question is built so that every known mistake fails
there with an output of its own.
"""

from __future__ import annotations

import torch
from torch import nn

import qkit
from exercises.core import Mistake, Question
from qkit.graph import fold_conv_bn
from qkit.nn import DynamicQuantLinear
from qkit.observers import MinMaxObserver

__all__ = ["q1", "q2", "q3", "q4"]


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def _randint(g: torch.Generator, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (), generator=g))


# ---- q1: fold a BatchNorm into the conv before it ----------------------------------------

def fold_bn_solution(w: torch.Tensor, b: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                     mean: torch.Tensor, var: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(w', b') of the one conv equal to ``bn(conv(x))`` in eval mode."""
    factor = gamma / torch.sqrt(var + eps)          # (C_out,)  γ/σ, one per output channel
    w_folded = w * factor.view(-1, 1, 1, 1)         # scales every weight of filter c
    b_folded = (b - mean) * factor + beta           # the bias goes through the BN too
    return w_folded, b_folded


def _ref_fold_bn(w, b, gamma, beta, mean, var, eps):
    c_out, c_in, kh, kw = w.shape
    conv = nn.Conv2d(c_in, c_out, (kh, kw))
    bn = nn.BatchNorm2d(c_out, eps=eps).eval()
    with torch.no_grad():
        conv.weight.copy_(w), conv.bias.copy_(b)
        bn.weight.copy_(gamma), bn.bias.copy_(beta)
        bn.running_mean.copy_(mean), bn.running_var.copy_(var)
    folded = fold_conv_bn(conv, bn)
    return folded.weight.detach(), folded.bias.detach()


def _q1_fold(w, b, gamma, beta, mean, var, eps, *, sigma=lambda v, e: torch.sqrt(v + e),
             view=(-1, 1, 1, 1), sub_mean=True, add_beta=True, use_b=True):
    """The solution with one step swapped out: each known mistake is one keyword."""
    factor = gamma / sigma(var, eps)
    b_in = b if use_b else torch.zeros_like(b)
    return (w * factor.view(view),
            ((b_in - mean) if sub_mean else b_in) * factor + (beta if add_beta else 0.0))


def _q1_case(g: torch.Generator) -> tuple:
    c_out = _randint(g, 1, 6)
    c_in = c_out if _randint(g, 0, 1) else _randint(g, 1, 6)  # square half the time
    k = _randint(g, 1, 3)
    w = torch.randn(c_out, c_in, k, k, generator=g) * 0.5
    b = torch.randn(c_out, generator=g) * 0.2 if _randint(g, 0, 1) else torch.zeros(c_out)
    gamma = torch.rand(c_out, generator=g) * 1.5 + 0.25
    beta = torch.randn(c_out, generator=g) * 0.3
    mean = torch.randn(c_out, generator=g) * 0.5
    var = torch.rand(c_out, generator=g) * 2.0 + 0.01
    return w, b, gamma, beta, mean, var, [1e-3, 1e-2, 0.1][_randint(g, 0, 2)]


def _q1_edge() -> tuple:
    w = torch.arange(1, 55, dtype=torch.float32).view(3, 3, 2, 3) / 20 - 1.3  # (C_out=3, C_in=3, 2, 3)
    return (w, torch.tensor([0.5, -0.25, 0.125]), torch.tensor([1.5, 0.5, 2.0]),
            torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0.4, -1.0, 0.25]),
            torch.tensor([0.04, 2.25, 0.5]), 0.1)


def _q1_zero_bias_edge() -> tuple:
    w = torch.linspace(-1, 1, 2 * 4 * 3 * 3).view(2, 4, 3, 3)  # C_out != C_in, no conv bias
    return (w, torch.zeros(2), torch.tensor([0.8, 1.2]), torch.tensor([0.0, 0.5]),
            torch.tensor([-0.3, 0.6]), torch.tensor([0.25, 1.5]), 1e-3)


q1 = Question(
    "q1", "my_fold_bn", reference=_ref_fold_bn, solution_fn=fold_bn_solution,
    parts=("w_folded", "b_folded"), rtol=1e-5, atol=1e-6,
    hint_text="In eval mode BatchNorm is one multiply-add per channel: it subtracts the running "
              "mean, divides by σ (computed exactly as BatchNorm does), multiplies by γ and adds β. Put z = w∗x + b in, then collect what multiplies x "
              "(that is w') and what is left over (b'). The per-channel factor belongs to the output "
              "channels, dim 0 of w: check how a (C_out,) tensor broadcasts against a 4-d one.",
    edge_cases=[_q1_edge(), _q1_zero_bias_edge()],
    random_case=_q1_case,
    mistakes=[
        Mistake(lambda *a: _q1_fold(*a, sigma=lambda v, e: torch.sqrt(v)),
                "you forgot eps: σ = sqrt(var + eps), exactly as BatchNorm computes it in eval mode"),
        Mistake(lambda *a: _q1_fold(*a, sigma=lambda v, e: torch.sqrt(v) + e),
                "eps goes inside the square root: σ = sqrt(var + eps), not sqrt(var) + eps"),
        Mistake(lambda *a: _q1_fold(*a, sigma=lambda v, e: v + e),
                "you divided by the variance: BatchNorm divides by the standard deviation "
                "σ = sqrt(var + eps)"),
        Mistake(lambda *a: _q1_fold(*a, view=(1, -1, 1, 1)),
                "γ/σ belongs to the output channels (dim 0 of w): reshape it to (C_out, 1, 1, 1), "
                "not along the input channels"),
        Mistake(lambda *a: _q1_fold(*a, view=(-1,)),
                "γ/σ belongs to the output channels (dim 0 of w): reshape it to (C_out, 1, 1, 1); "
                "a plain (C_out,) tensor broadcasts along the last axis"),
        Mistake(lambda *a: _q1_fold(*a, sub_mean=False),
                "you scaled the bias but forgot the running mean: b' = (b - mean) · γ/σ + β"),
        Mistake(lambda *a: _q1_fold(*a, add_beta=False),
                "you forgot β: the BatchNorm adds its shift after scaling, b' = (b - mean) · γ/σ + β"),
        Mistake(lambda *a: _q1_fold(*a, use_b=False),
                "the conv's own bias b goes through the BatchNorm too: b' = (b - mean) · γ/σ + β"),
    ],
)


# ---- q2: a dynamic-range quantized linear layer ------------------------------------------

def dynamic_linear_solution(x: torch.Tensor, q_w: torch.Tensor, w_scale: torch.Tensor,
                            bias: torch.Tensor) -> torch.Tensor:
    """float32 ``s_x · w_scale · Σ_k (q_x - z_x) q_w + bias``, with x quantized on its own min-max."""
    x_qp = qkit.choose_qparams(x.min(), x.max(), 8)   # per tensor, affine int8, this batch
    q_x = qkit.quantize(x, x_qp)                       # (N, K) int8
    z_x = int(x_qp.zero_point)
    q_x32, q_w32 = q_x.to(torch.int32), q_w.to(torch.int32)  # never multiply in int8
    acc = q_x32 @ q_w32.T - z_x * q_w32.sum(dim=1)     # (N, M) int32, zero point folded
    return acc.float() * (x_qp.scale * w_scale) + bias  # one scale per output channel


def _ref_dynamic_linear(x, q_w, w_scale, bias):
    layer = DynamicQuantLinear(torch.zeros(q_w.shape, dtype=torch.float32), bias)
    layer.q_w, layer.w_scale = q_w.clone(), w_scale.clone()  # the grid under test, not its own
    with torch.no_grad():
        return layer(x)


def _q2_dyn(x, q_w, w_scale, bias, *, scheme="affine", per_row=False, zp=True, acc_int8=False,
            sub_int8=False, w_per_tensor=False, add_bias=True):
    """The solution with one step swapped out: each known mistake is one keyword."""
    if per_row:
        qp = qkit.choose_qparams(x.amin(1), x.amax(1), 8, axis=0)
        q_x, s_x, z_x = qkit.quantize(x, qp), qp.scale[:, None], qp.zero_point[:, None].long()
    else:
        qp = qkit.choose_qparams(x.min(), x.max(), 8, scheme=scheme)
        q_x, s_x, z_x = qkit.quantize(x, qp), qp.scale, int(qp.zero_point)
    if sub_int8:
        acc = (q_x - z_x).to(torch.int32) @ q_w.to(torch.int32).T
    elif acc_int8:
        acc = (q_x @ q_w.T).to(torch.int32) - z_x * q_w.to(torch.int32).sum(1)
    else:
        acc = q_x.to(torch.int32) @ q_w.to(torch.int32).T - (z_x * q_w.to(torch.int32).sum(1) if zp else 0)
    y = acc.float() * (s_x * (w_scale.mean() if w_per_tensor else w_scale))
    return y + bias if add_bias else y


def _q2_weight_only(x, q_w, w_scale, bias):
    return x @ (q_w.float() * w_scale[:, None]).T + bias


def _q2_case(g: torch.Generator) -> tuple:
    """x lies 0.1+ grid steps away from rounding ties of its own min-max grid (scale s, zero point z)."""
    n, k, m = _randint(g, 2, 6), _randint(g, 4, 48), _randint(g, 1, 8)
    s, z = _uniform(g, 0.004, 0.03), _randint(g, -128, 127)
    levels = torch.randint(-128, 128, (n, k), generator=g)
    u = torch.rand(n, k, generator=g) * 0.8 - 0.4
    u = torch.where(levels == -128, u.abs(), torch.where(levels == 127, -u.abs(), u))  # stay inside
    flat = (levels - z + u).reshape(-1)
    ends = torch.randperm(n * k, generator=g)[:2]
    flat[ends] = torch.tensor([-128.0 - z, 127.0 - z], dtype=flat.dtype)  # x.min() and x.max()
    x = (flat.reshape(n, k) * s).to(torch.float32)
    q_w = torch.randint(-127, 128, (m, k), generator=g, dtype=torch.int8)
    w_scale = torch.rand(m, generator=g) * 0.02 + 0.001
    return x, q_w, w_scale, torch.randn(m, generator=g) * 0.5


def _q2_edge() -> tuple:
    # x mostly negative (zero point near +90, so q_x - z_x wraps in int8), rows of different ranges
    x = torch.tensor([[-3.0, -2.5, 0.5, -1.0, -2.9, -0.2],
                      [-0.4, 0.3, -0.1, 0.2, -0.3, 0.1]])
    q_w = torch.tensor([[127, 120, -5, 100, 127, 3],
                        [-127, 64, 90, -30, 7, -100],
                        [1, -2, 3, -4, 5, -6]], dtype=torch.int8)
    return x, q_w, torch.tensor([0.01, 0.002, 0.05]), torch.tensor([0.5, -1.5, 0.25])


q2 = Question(
    "q2", "my_dynamic_linear", reference=_ref_dynamic_linear, solution_fn=dynamic_linear_solution,
    rtol=1e-5, atol=1e-4,
    hint_text="Write x ≈ s_x·(q_x − z_x) and w ≈ w_scale·q_w, multiply out one output y[n, m], and "
              "pull the scales out of the sum over k: what is left is a sum of integers. Keep it in "
              "int32 (int8 products and differences wrap around); the zero point multiplies a sum of "
              "one weight row, so it can be taken care of once per output channel.",
    edge_cases=[_q2_edge()],
    random_case=_q2_case,
    mistakes=[
        Mistake(_q2_weight_only, "that is weight-only quantization (float x times the dequantized "
                "weight): in dynamic-range quantization x is quantized too, on its own min-max grid, "
                "and the sum runs on integers"),
        Mistake(lambda *a: _q2_dyn(*a, zp=False),
                "you forgot the input zero point: subtract z_x · (row sums of q_w) from q_x @ q_w.T"),
        Mistake(lambda *a: _q2_dyn(*a, acc_int8=True),
                "`q_x @ q_w.T` on int8 tensors is computed in int8 and wraps around: convert both "
                "to int32 before multiplying"),
        Mistake(lambda *a: _q2_dyn(*a, sub_int8=True),
                "`q_x - z_x` in int8 wraps around (e.g. -128 - 90 does not fit): widen to int32 first"),
        Mistake(lambda *a: _q2_dyn(*a, w_per_tensor=True),
                "w_scale has one scale per output channel (M,): multiply column m by w_scale[m], "
                "not by one averaged scale"),
        Mistake(lambda *a: _q2_dyn(*a, add_bias=False), "you forgot to add the (float) bias"),
        Mistake(lambda *a: _q2_dyn(*a, scheme="scale"),
                "the input grid is affine (scale and zero point from x.min() and x.max()), "
                "not symmetric: a symmetric grid wastes levels on a lopsided x"),
        Mistake(lambda *a: _q2_dyn(*a, per_row=True),
                "quantize x per tensor: one scale and zero point from the whole batch's min and max, "
                "not one per row"),
    ],
)


# ---- q3: how much smaller the weights get ------------------------------------------------

def size_ratio_solution(n_params: int, bits: int, n_scales: int, scale_bits: int = 32,
                        overhead_bytes: int = 0) -> float:
    """float32 bytes / quantized bytes, scales and a fixed overhead included."""
    float_bytes = 4 * n_params + overhead_bytes                       # float32: 4 bytes a weight
    quant_bytes = n_params * bits / 8 + n_scales * scale_bits / 8 + overhead_bytes  # bits -> bytes
    return float_bytes / quant_bytes


def _q3_ratio(n, bits, s, sb, o, *, w_div=8, s_div=8, f_per=4, o_float=True, o_quant=True,
              scales=True, invert=False):
    f = f_per * n + (o if o_float else 0)
    q = n * bits / w_div + (s * sb / s_div if scales else 0) + (o if o_quant else 0)
    return q / f if invert else f / q


def _q3_case(g: torch.Generator) -> tuple:
    n = _randint(g, 1_000, 5_000_000)
    bits = [2, 3, 4, 6, 16][_randint(g, 0, 4)]
    return n, bits, _randint(g, 1, max(1, n // 32)), [16, 32][_randint(g, 0, 1)], _randint(g, 1, 50_000)


_BYTES = ("mind bits vs bytes: a float32 weight is 4 bytes, a `bits`-bit weight bits/8 bytes, "
          "a scale scale_bits/8 bytes")
_OVERHEAD = ("the overhead (container, metadata) is in both files: add overhead_bytes to the float "
             "size and to the quantized size")
q3 = Question(
    "q3", "my_size_ratio", reference=size_ratio_solution, solution_fn=size_ratio_solution,
    rtol=1e-9,
    hint_text="Count the bytes of each file separately, then divide (the answer is > 1). What does one "
              "float32 weight cost, and one `bits`-bit weight? What else does the quantized file store "
              "beside its weights, and what do both files carry anyway?",
    edge_cases=[(10_000, 4, 100, 32, 2_000), (1_000_000, 8, 1_000, 16, 1_500), (50_000, 16, 0, 32, 0)],
    random_case=_q3_case,
    mistakes=[
        Mistake(lambda *a: _q3_ratio(*a, invert=True),
                "your ratio is upside down: divide the float32 size by the quantized size "
                "(the answer is > 1)"),
        Mistake(lambda *a: _q3_ratio(*a, scales=False),
                "you forgot the scales: n_scales of them, scale_bits/8 bytes each, are stored too"),
        Mistake(lambda *a: _q3_ratio(*a, o_float=False, o_quant=False), _OVERHEAD),
        Mistake(lambda *a: _q3_ratio(*a, o_float=False), _OVERHEAD),
        Mistake(lambda *a: _q3_ratio(*a, w_div=1), _BYTES),
        Mistake(lambda n, b, s, sb, o: _q3_ratio(n, 8, s, sb, o, w_div=b), _BYTES),  # n·8/bits
        Mistake(lambda *a: _q3_ratio(*a, s_div=1), _BYTES),
        Mistake(lambda *a: _q3_ratio(*a, f_per=32), _BYTES),
    ],
)


# ---- q4: calibrate an activation grid --------------------------------------------------

def calibrated_grid_solution(activations: list[torch.Tensor], bits: int) -> tuple[float, int]:
    """(scale, zero_point) of the unsigned affine min-max grid over every calibration batch."""
    lo = min(a.min().item() for a in activations)  # over all batches, not just one
    hi = max(a.max().item() for a in activations)
    lo, hi = min(lo, 0.0), max(hi, 0.0)            # 0.0 must be exact
    qmin, qmax = 0, 2**bits - 1                    # unsigned, like uint8
    scale = (hi - lo) / (qmax - qmin)
    return scale, qmin - round(lo / scale)


def _ref_calibrated_grid(activations, bits):
    obs = MinMaxObserver()
    for a in activations:
        obs.update(a)
    qp = obs.qparams(bits, signed=False)
    return qp.scale.item(), int(qp.zero_point)


def _q4_grid(lo, hi, bits, *, signed=False, widen=True, levels=None):
    qmin, qmax = qkit.qrange(bits, signed)
    if widen:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (levels if levels else qmax - qmin)
    return scale, qmin - round(lo / scale)


def _q4_all(acts):
    return min(a.min().item() for a in acts), max(a.max().item() for a in acts)


def _q4_case(g: torch.Generator) -> tuple:
    bits, n = _randint(g, 4, 8), _randint(g, 2, 5)
    shift = [0.0, -0.25, 0.1][_randint(g, 0, 2)]  # ReLU (0 included), SiLU-like dip, all positive
    acts = [(torch.relu(torch.randn(_randint(g, 4, 20), generator=g) * _uniform(g, 0.5, 4.0))
             + (torch.rand(1, generator=g) * 0.3 if shift > 0 else 0.0)
             + shift * torch.rand(1, generator=g)) for _ in range(n)]
    return acts, bits


_Q4_EDGE = ([torch.tensor([0.2, 1.5, 3.0, 0.7]), torch.tensor([0.4, 6.0, 2.0]),
             torch.tensor([0.9, 1.0, 4.0, 2.2, 0.35])], 8)  # all > 0; max in the middle batch
_Q4_NEG = ([torch.tensor([-0.27, 0.0, 1.3]), torch.tensor([-0.1, 2.6, 0.4])], 6)

q4 = Question(
    "q4", "my_calibrated_grid", reference=_ref_calibrated_grid, solution_fn=calibrated_grid_solution,
    parts=("scale", "zero_point"), rtol=1e-6,
    hint_text="The grid must cover every value any batch showed (not one batch, not an average) and 0 "
              "itself. Count the steps between the unsigned grid's two ends; the zero point is the "
              "integer that 0.0 lands on.",
    edge_cases=[_Q4_EDGE, _Q4_NEG],
    random_case=_q4_case,
    mistakes=[
        Mistake(lambda acts, bits: _q4_grid(acts[-1].min().item(), acts[-1].max().item(), bits),
                "you calibrated on the last batch only: take the min and max over all batches"),
        Mistake(lambda acts, bits: _q4_grid(acts[0].min().item(), acts[0].max().item(), bits),
                "you calibrated on the first batch only: take the min and max over all batches"),
        Mistake(lambda acts, bits: _q4_grid(sum(a.min().item() for a in acts) / len(acts),
                                            sum(a.max().item() for a in acts) / len(acts), bits),
                "you averaged the batches' min and max: a min-max observer keeps the overall "
                "min and max, so no calibration value is clipped"),
        Mistake(lambda acts, bits: _q4_grid(*_q4_all(acts), bits, signed=True),
                "the activation grid is unsigned (like uint8: 0 .. 2**bits - 1), not signed: "
                "your zero_point is off by 2**(bits-1)"),
        Mistake(lambda acts, bits: _q4_grid(*_q4_all(acts), bits, widen=False),
                "the range must contain 0 (ReLU zeros, zero padding): widen it with min(lo, 0) "
                "and max(hi, 0) before computing the scale"),
        Mistake(lambda acts, bits: _q4_grid(*_q4_all(acts), bits, levels=2**bits),
                "a B-bit grid has 2**bits - 1 steps, not 2**bits: scale = (hi - lo) / (2**bits - 1)"),
    ],
)
