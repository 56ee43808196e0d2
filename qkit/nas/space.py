"""Neural architecture search, part 1: the search space — tiny CNNs for the 8×8 digits.

An architecture is four choices, each from a short list:

* ``block``: ``"plain"`` (k×k conv → BN → ReLU), ``"separable"`` (depthwise k×k → BN → ReLU →
  pointwise 1×1 → BN → ReLU, as in MobileNet, Howard et al. 2017) or ``"residual"`` (two k×k
  convs with an identity shortcut, as in ResNet, He et al. 2016);
* ``depth``: how many blocks follow the stem;
* ``width``: channels of the stem and of every block;
* ``kernel``: the k of every k×k convolution.

The network is always ``stem (k×k conv, 1 → width) → depth blocks → global average pool → fc (width → 10)``
(:func:`qkit.nas.build.build`). The space is the product of the lists, so its size is the
product of their lengths:

>>> SPACE.size, len(SPACE.archs())          # 3 blocks · 4 depths · 5 widths · 2 kernels
(120, 120)
>>> Arch("residual", 2, 16, 3).key
'residual-d2-w16-k3'
>>> Arch.parse("residual-d2-w16-k3") == Arch("residual", 2, 16, 3)
True

A **mutation** (what evolution does to a parent) changes exactly one of the four choices to
another value of its list, so every architecture is a few mutations from any other.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

BLOCKS = ("plain", "separable", "residual")


@dataclass(frozen=True, order=True)
class Arch:
    """One point of the search space (hashable, so it can key a cache)."""

    block: str
    depth: int
    width: int
    kernel: int

    @property
    def key(self) -> str:
        """A short, unique name, also the JSON key: ``"plain-d2-w16-k3"``."""
        return f"{self.block}-d{self.depth}-w{self.width}-k{self.kernel}"

    @classmethod
    def parse(cls, key: str) -> "Arch":
        """The inverse of :attr:`key` (a ValueError for anything else)."""
        try:
            block, d, w, k = key.split("-")
            if d[0] != "d" or w[0] != "w" or k[0] != "k":
                raise ValueError
            return cls(block, int(d[1:]), int(w[1:]), int(k[1:]))
        except (ValueError, AttributeError, IndexError):
            raise ValueError(f"an architecture key looks like 'plain-d2-w16-k3'; got {key!r}") from None


CHOICES = tuple(f.name for f in fields(Arch))  # ('block', 'depth', 'width', 'kernel')


@dataclass(frozen=True)
class Space:
    """The lists each choice is drawn from; the space is their product."""

    block: tuple = BLOCKS
    depth: tuple = (1, 2, 3, 4)
    width: tuple = (8, 12, 16, 24, 32)
    kernel: tuple = (3, 5)

    def __post_init__(self) -> None:
        for name in CHOICES:
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values or len(set(values)) != len(values):
                raise ValueError(f"Space.{name} must be a non-empty tuple of distinct values; got {values!r}")
        if not set(self.block) <= set(BLOCKS):
            raise ValueError(f"Space.block must hold some of {BLOCKS}; got {self.block!r}")
        for name in ("depth", "width", "kernel"):
            if not all(isinstance(v, int) and v >= 1 for v in getattr(self, name)):
                raise ValueError(f"Space.{name} must hold ints >= 1; got {getattr(self, name)!r}")
        if not all(k % 2 == 1 for k in self.kernel):
            raise ValueError(f"Space.kernel must hold odd sizes ('same' padding); got {self.kernel!r}")

    @property
    def size(self) -> int:
        """How many architectures the space holds."""
        n = 1
        for name in CHOICES:
            n *= len(getattr(self, name))
        return n

    def archs(self) -> list[Arch]:
        """Every architecture, in a fixed order (block, then depth, width, kernel)."""
        return [Arch(b, d, w, k) for b in self.block for d in self.depth for w in self.width for k in self.kernel]

    def __contains__(self, arch) -> bool:
        return isinstance(arch, Arch) and all(getattr(arch, n) in getattr(self, n) for n in CHOICES)

    def sample(self, gen: torch.Generator) -> Arch:
        """A uniformly random architecture (each choice drawn independently from ``gen``).

        Example:
            >>> SPACE.sample(torch.Generator().manual_seed(0)) in SPACE
            True
        """
        picks = [getattr(self, n)[int(torch.randint(len(getattr(self, n)), (), generator=gen))] for n in CHOICES]
        return Arch(*picks)

    def mutate(self, arch: Arch, gen: torch.Generator) -> Arch:
        """``arch`` with exactly one choice changed to another value of its list (uniformly at random).

        Example:
            >>> parent = Arch("plain", 2, 16, 3)
            >>> child = SPACE.mutate(parent, torch.Generator().manual_seed(0))
            >>> sum(getattr(child, n) != getattr(parent, n) for n in CHOICES)
            1
        """
        if arch not in self:
            raise ValueError(f"arch must be in the space; got {arch!r}")
        movable = [n for n in CHOICES if len(getattr(self, n)) > 1]
        if not movable:
            raise ValueError("every choice of this space has one value: nothing to mutate")
        name = movable[int(torch.randint(len(movable), (), generator=gen))]
        others = [v for v in getattr(self, name) if v != getattr(arch, name)]
        value = others[int(torch.randint(len(others), (), generator=gen))]
        return Arch(**{n: (value if n == name else getattr(arch, n)) for n in CHOICES})


#: The lesson's space: 120 tiny CNNs.
SPACE = Space()
