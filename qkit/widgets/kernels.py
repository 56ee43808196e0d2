"""Lesson 03's panel: accumulator overflow against the accumulation length K, live."""

from __future__ import annotations

import ipywidgets as w
import torch

from qkit import viz
from qkit.overflow import accumulator_bound, max_safe_k, running_sums
from qkit.widgets.base import Panel, slider, toggle

K_EXPONENTS = range(0, 19)  # K = 1 ... 262 144: past int32's worst-case limit of 65 793


def _product_stats(x_bits: int, w_bits: int) -> tuple[float, float]:
    """Mean and std of ``a * q_w``: a uniform in [0, 2**x_bits - 1], q_w uniform and symmetric."""
    a = torch.arange(2**x_bits, dtype=torch.float64)  # q_x - zero_point_x of a ReLU output
    q_w = torch.arange(1 - 2 ** (w_bits - 1), 2 ** (w_bits - 1), dtype=torch.float64)  # narrow grid
    mean = a.mean() * q_w.mean()
    second = (a**2).mean() * (q_w**2).mean()
    return float(mean), float(torch.sqrt(second - mean**2))


class AccumulatorPanel(Panel):
    """Sliders for K and the bit-widths; toggles for the accumulator width and the data."""

    def __init__(self, k: int = 4096, x_bits: int = 8, w_bits: int = 8, acc_bits: int = 32) -> None:
        self.plot = viz.AccumulatorPlot(k_max=2 ** K_EXPONENTS[-1])
        options = [(f"{2**e:,}", 2**e) for e in K_EXPONENTS]
        if k not in dict(options).values():
            raise ValueError(f"k must be a power of two from 1 to {2 ** K_EXPONENTS[-1]:,}; got {k}")
        controls = {
            "k": w.SelectionSlider(options=options, value=k, description="K",
                                   continuous_update=True, layout=w.Layout(width="300px")),
            "x_bits": slider(w.IntSlider, "input bits", x_bits, 2, 8, 1),
            "w_bits": slider(w.IntSlider, "weight bits", w_bits, 2, 8, 1),
            "acc_bits": toggle("accumulator", [("int16", 16), ("int32", 32)], acc_bits),
            "data": toggle("data", ["worst case", "random"], "worst case"),
        }
        super().__init__(controls, self.plot, rows=[["k", "x_bits", "w_bits"], ["acc_bits", "data"]])

    def update(self, k, x_bits, w_bits, acc_bits, data) -> str:
        worst_one = accumulator_bound(1, x_bits, w_bits)
        mean, sigma = _product_stats(x_bits, w_bits)
        if data == "worst case":  # largest input times the most negative weight, K times
            products = torch.full((k,), -worst_one, dtype=torch.int64)
        else:
            gen = torch.Generator().manual_seed(k * 100 + x_bits * 10 + w_bits)
            a = torch.randint(0, 2**x_bits, (k,), generator=gen)  # (K,) int64
            q_w = torch.randint(1 - 2 ** (w_bits - 1), 2 ** (w_bits - 1), (k,), generator=gen)  # mean 0
            products = a * q_w  # (K,) int64
        exact, wrapped = running_sums(products, acc_bits)
        self.plot.update(k, worst_one, sigma, acc_bits, exact.numpy(), wrapped.numpy())
        bound, safe = accumulator_bound(k, x_bits, w_bits), max_safe_k(acc_bits, x_bits, w_bits)
        limit = 2 ** (acc_bits - 1) - 1
        fits = bound <= limit
        got, want = int(wrapped[-1]), int(exact[-1])
        self.overflowed = bool((exact != wrapped).any())
        offset = exact - wrapped  # (K,) int64: a multiple of 2**acc_bits, changing at every wrap
        self.wraps = int((offset[1:] != offset[:-1]).sum()) + int(offset[0] != 0)
        verdict = ("<span style='color:#1a7f37'>always fits</span>" if fits else
                   "<span style='color:#b00'>can overflow</span>")
        register = f"an int{acc_bits} register holds only {-limit - 1:,} … {limit:,}"
        if not self.overflowed:
            outcome = f"this sum stays inside ({register}): exact {want:,}, the register agrees — no overflow"
        else:
            times = "once" if self.wraps == 1 else f"{self.wraps:,} times"
            outcome = (f"this sum reaches {want:,}, but {register}: each time the sum passes one end it "
                       f"jumps to the other end (here {times}), so ")
            if got == want:
                outcome += ("it <b style='color:#b00'>wrapped around on the way</b> and back again: the final "
                            "value happens to be right, but partial sums on the way were not")
            else:
                outcome += (f"it <b style='color:#b00'>wrapped around</b>: at the end the register holds "
                            f"<b style='color:#b00'>{got:,} instead of {want:,}</b> "
                            f"(wrong by {abs(want - got):,})")
        return (f"worst case |acc| at K = {k:,}: {bound:,} vs int{acc_bits} max {limit:,} → {verdict}"
                f" (safe up to K = {safe:,}) &nbsp;·&nbsp; random data: mean {mean:.1f}, "
                f"std {sigma:,.0f} per product<br>{outcome}")
