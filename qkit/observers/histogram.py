"""Calibration, part 2: observers that clip, reading a histogram of the stream.

Percentile, MSE-optimal and entropy (KL) thresholds; see ``qkit.observers`` for the overview.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from qkit._checks import check_int
from qkit.observers.base import Observer
from qkit.qparams import MIN_SCALE, choose_qparams


class _HistogramObserver(Observer):
    """Per-tensor observer over a histogram of ``x``: ``2 * bins`` bins on ``[-R, R]``.

    ``abs_counts()`` folds it into ``bins`` bins of ``|x|`` on ``[0, R]``.
    Subclasses choose a threshold ``t``; the range is ``[max(x_min, -t), min(x_max, t)]``.
    """

    per_channel = False

    def __init__(self, bins: int = 2048, axis: int | None = None) -> None:
        super().__init__(axis)  # refuses a per-channel axis
        self.bins = check_int("bins", bins, low=8)
        self.counts = torch.zeros(2 * self.bins, dtype=torch.float64)  # (2 * bins,)
        self.radius = 0.0  # R; a power-of-two multiple of the first batch's max |x|

    @property
    def bin_width(self) -> float:
        """Width of one bin, ``R / bins``."""
        return self.radius / self.bins

    def _observe(self, x):
        lo, hi = float(x.min()), float(x.max())
        peak = max(-lo, hi)
        if self.batches == 0:
            self.x_min, self.x_max, self.radius = lo, hi, max(peak, MIN_SCALE)
        self.x_min, self.x_max = min(self.x_min, lo), max(self.x_max, hi)
        if peak > self.radius:  # re-bin: double R until it covers, merging 2**k bins into one
            k = max(1, math.ceil(math.log2(peak / self.radius)))
            while self.radius * 2**k < peak:
                k += 1
            n = self.bins
            merge = min(2**k, 2 * n)  # merging more than 2n bins changes nothing more
            new = (torch.arange(2 * n) - n).div(merge, rounding_mode="floor") + n  # old bin -> new bin
            self.counts = torch.zeros_like(self.counts).index_add_(0, new, self.counts)
            self.radius *= 2**k
        idx = torch.floor(x.double().reshape(-1) / self.bin_width) + self.bins  # (numel,)
        idx = idx.clamp(0, 2 * self.bins - 1).long()
        self.counts += torch.bincount(idx, minlength=2 * self.bins).double()

    def abs_counts(self) -> np.ndarray:
        """Histogram of ``|x|``: ``bins`` counts, bin ``k`` covering ``[k, k+1) * bin_width``."""
        c = self.counts.numpy()
        return c[self.bins:] + c[: self.bins][::-1]

    def _clip(self, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        f32 = torch.float32
        hi = min(self.x_max, t)
        lo = min(max(self.x_min, -t), hi)  # data entirely above t (say x >= 1, t = 0.5): [t, t]
        return torch.tensor(lo, dtype=f32), torch.tensor(hi, dtype=f32)


class PercentileObserver(_HistogramObserver):
    """Clip at the ``percentile``-th percentile of ``|x|`` (one threshold for both tails).

    The percentile is read from the histogram (linear inside the bin), so it is
    within about one ``bin_width`` of ``numpy.percentile(abs(x), percentile)``.

    Example:
        >>> x = torch.cat([torch.linspace(-1, 1, 1001), torch.tensor([50.0])])
        >>> lo, hi = PercentileObserver(99.0).update(x).range()
        >>> round(lo.item(), 1), round(hi.item(), 1)     # the outlier 50 is clipped
        (-1.0, 1.0)
    """

    def __init__(self, percentile: float = 99.99, bins: int = 2048, axis: int | None = None) -> None:
        super().__init__(bins, axis)
        if not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
            raise ValueError(f"percentile must be a number in (0, 100]; got {percentile!r}")
        self.percentile = float(percentile)

    def _range(self, bits, scheme, signed, narrow):
        counts = self.abs_counts()
        cdf = np.cumsum(counts)  # (bins,)
        target = self.percentile / 100 * cdf[-1]
        k = min(int(np.searchsorted(cdf, target)), self.bins - 1)  # first bin reaching target
        before = cdf[k] - counts[k]
        t = (k + (target - before) / max(counts[k], 1.0)) * self.bin_width
        return self._clip(min(t, max(-self.x_min, self.x_max)))


def _rounding_integral(v: np.ndarray) -> np.ndarray:
    """Antiderivative of ``(round(v) - v)**2`` (period 1, mean 1/12)."""
    whole = np.floor(v + 0.5)
    d = v - whole  # in [-0.5, 0.5)
    return whole / 12 + (d**3 + 0.125) / 3


class MSEObserver(_HistogramObserver):
    """Clip where the quantization mean squared error of the histogram is smallest.

    The best threshold depends on the grid (fewer bits → clip harder), so it is
    searched in :meth:`range` for the requested ``bits``/``scheme``: first
    ``t = max|x| * 2**(-j/8)`` down to one bin, then 33 steps between the best
    one's neighbours. :meth:`mse_curve` scores a threshold exactly, assuming
    values spread uniformly inside each bin.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> e = torch.empty(2, 20000).exponential_(generator=g)
        >>> x = e[0] - e[1]                                  # Laplace(0, 1)
        >>> obs = MSEObserver().update(x)
        >>> lo, hi = obs.range(bits=4)
        >>> 3 < hi.item() < 7 < x.max().item()              # clips the long tail
        True
    """

    def mse_curve(self, thresholds, bits: int = 8, *, scheme: str = "affine", signed: bool = True,
                  narrow: bool = False) -> np.ndarray:
        """Estimated MSE of ``fake_quantize`` when clipping at each threshold ``t > 0``.

        Each ``t`` gives the range ``[max(x_min, -t), min(x_max, t)]`` and its grid
        (``choose_qparams``). A bin ``[a, b)`` holding ``n`` values contributes
        ``n / (b - a)`` times the integral over the bin of the squared error:
        ``(u - end)²`` beyond the grid's ends (clipping) and
        ``scale² * (round(u/scale) - u/scale)²`` between them (rounding).
        """
        self._check(bits, scheme, signed, narrow)
        return self._mse(np.asarray(thresholds, dtype=np.float64), bits, scheme, signed, narrow)[2]

    def _mse(self, t, bits, scheme, signed, narrow):
        hi_np = np.minimum(self.x_max, t)
        lo_np = np.minimum(np.maximum(self.x_min, -t), hi_np)  # as _clip: never above hi
        lo = torch.tensor(lo_np, dtype=torch.float32)  # (T,)
        hi = torch.tensor(hi_np, dtype=torch.float32)  # (T,)
        qp = choose_qparams(lo, hi, bits, scheme=scheme, signed=signed, narrow=narrow, axis=0)
        low, high = (e.double().numpy()[:, None] for e in qp.float_range)  # (T, 1) grid ends
        s = qp.scale.double().numpy()[:, None]  # (T, 1)
        c = self.counts.numpy()
        used = np.nonzero(c)[0]
        a = ((used - self.bins) * self.bin_width)[None, :]  # (1, B) left edges of used bins
        b = a + self.bin_width
        sq = np.where(a < low, ((np.minimum(b, low) - low) ** 3 - (a - low) ** 3) / 3, 0.0)
        sq += np.where(b > high, ((b - high) ** 3 - (np.maximum(a, high) - high) ** 3) / 3, 0.0)
        ra, rb = np.clip(a, low, high) / s, np.clip(b, low, high) / s  # (T, B) inside part
        sq += s**3 * (_rounding_integral(rb) - _rounding_integral(ra))
        return lo, hi, sq @ c[used] / (self.bin_width * c.sum())  # (T,) mean squared error

    def _range(self, bits, scheme, signed, narrow):
        peak = max(-self.x_min, self.x_max)
        steps = 8 * math.log2(max(peak / self.bin_width, 1.0))
        t = peak * 2.0 ** (-np.arange(0, steps + 1) / 8)  # (T,) descending, coarse
        j = int(np.argmin(self._mse(t, bits, scheme, signed, narrow)[2]))
        fine = np.linspace(t[min(j + 1, len(t) - 1)], t[max(j - 1, 0)], 33)
        lo, hi, mse = self._mse(np.append(fine, t[j]), bits, scheme, signed, narrow)
        best = int(np.argmin(mse))
        return lo[best].clone(), hi[best].clone()


def _kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """KL(P || Q) of two count vectors; Q mixed with ``eps`` of uniform over P's support."""
    p = p / p.sum()
    support = p > 0
    q = (1 - eps) * q / max(q.sum(), 1e-300) + eps * support / support.sum()
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


class EntropyObserver(_HistogramObserver):
    """Clip where KL(P || Q) is smallest: TensorRT's 8-bit calibration.

    Source: S. Migacz, "8-bit Inference with TensorRT", GTC 2017. On the
    histogram of ``|x|`` and for every ``i >= levels`` bins: P = the first ``i``
    bins with all counts beyond folded into bin ``i - 1``; Q = the first ``i``
    bins merged into ``levels`` groups, each group's total spread evenly over
    the bins where P is non-zero. Q is mixed with 1e-4 of a uniform
    distribution on P's support, so a bin Q leaves empty costs a large but
    finite penalty (MXNet and TVM smooth likewise). The threshold is the right
    edge of the best ``i``.
    ``levels`` is ``2**(bits-1)`` (128 for int8: one half of a signed grid), or
    ``2**bits`` when the grid spends every level on ``[0, t]`` (an unsigned
    scale grid, or an affine grid on data ``x >= 0``).
    If ``levels`` exceeds the bins in use, nothing is clipped. The first bin is
    left out of P and Q: it holds the exact zeros of ReLU outputs, which every
    grid represents exactly (0.0 is always a level), and their spike would
    otherwise dominate the divergence and drag the threshold far too low.

    Example:
        >>> x = torch.cat([torch.linspace(-1, 1, 10001), torch.tensor([-40.0, 40.0])])
        >>> lo, hi = EntropyObserver().update(x).range(bits=8)
        >>> 1.0 < hi.item() < 40.0                          # the two outliers are clipped
        True
    """

    def _range(self, bits, scheme, signed, narrow):
        full = (scheme == "scale" and not signed) or (scheme == "affine" and self.x_min >= 0)
        levels = 2**bits if full else 2 ** (bits - 1)  # grid levels on [0, t]
        counts = self.abs_counts().astype(np.float64)
        counts[0] = 0.0  # zeros are exact on every grid: they carry no information about t
        if not counts.any():
            return self._clip(max(-self.x_min, self.x_max))
        used = int(np.nonzero(counts)[0][-1]) + 1
        best_i, best_kl = used, math.inf
        for i in range(levels, used + 1):
            p = counts[:i].copy()  # (i,) reference P: outliers folded into the last bin
            p[-1] += counts[i:].sum()
            size = i // levels
            group = np.minimum(np.arange(i) // size, levels - 1)  # (i,) level of each bin
            nonzero = p > 0
            total = np.bincount(group, counts[:i], levels)  # (levels,) Q before expansion
            spread = np.bincount(group, nonzero, levels)
            q = np.where(nonzero, total[group] / np.maximum(spread[group], 1), 0.0)  # (i,)
            kl = _kl_divergence(p, q)
            if kl < best_kl:
                best_i, best_kl = i, kl
        return self._clip(min(best_i * self.bin_width, max(-self.x_min, self.x_max)))
