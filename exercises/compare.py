"""Comparing a learner's answer with the reference: type, then dtype, then shape, then values.

``structure_diff`` and ``value_diff`` return a one-line description of the first
difference, or None; ``show`` and ``describe_case`` write values and arguments short
(a tensor of more than three values by its shape: "a (3, 5) tensor [...]").
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch


def short_number(v: Any) -> str:
    """A number, short: ints exactly, floats with 6 significant digits."""
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return repr(v)[:40]
    if isinstance(v, numbers.Integral):
        return str(int(v))
    text = f"{float(v):.6g}"
    return text if any(c in text for c in ".ein") else text + ".0"


def shape_text(shape: Sequence[int]) -> str:
    """A shape as learners write it: ``(3, 5)``, ``(4,)``, ``()``."""
    return str(tuple(int(d) for d in shape))


def show(v: Any) -> str:
    """A value, short: tensors show at most three elements, and their shape when it is not obvious.

    Example:
        >>> show(torch.tensor([0.5, -1.0]))
        'tensor([0.5, -1.0])'
        >>> show(torch.arange(15, dtype=torch.int8).reshape(3, 5))
        'a (3, 5) int8 tensor [0, 1, 2, …]'
    """
    if isinstance(v, torch.Tensor):
        flat = v.detach().reshape(-1)
        body = ", ".join(short_number(e) for e in flat[:3].tolist()) + (", …" if flat.numel() > 3 else "")
        dtype = "" if v.dtype == torch.float32 else str(v.dtype).replace("torch.", "")
        if v.dim() == 0:
            return f"tensor({body})" + (f" ({dtype})" if dtype else "")
        if v.dim() == 1 and flat.numel() <= 3:
            return f"tensor([{body}])" + (f" ({dtype})" if dtype else "")
        return f"a {shape_text(v.shape)} {dtype + ' ' if dtype else ''}tensor [{body}]"
    if isinstance(v, (tuple, list)):
        inner = ", ".join(show(e) for e in v)
        return f"({inner})" if isinstance(v, tuple) else f"[{inner}]"
    return short_number(v)


def _describe(name: str, v: Any, shapes_only: bool) -> str:
    """One argument in a case label: ``bits=4``, ``b=tensor([0.5, 1.0])``, ``w of shape (3, 5)`` (``w (3, 5)``)."""
    if isinstance(v, torch.Tensor):
        if shapes_only:
            return f"{name} {shape_text(v.shape)}"
        if v.dim() != 1 or v.numel() > 3:
            return f"{name} of shape {shape_text(v.shape)}"
        return f"{name}={show(v)}"
    if isinstance(v, (list, tuple)) and v and all(isinstance(e, torch.Tensor) for e in v):
        kind = "list" if isinstance(v, list) else "tuple"
        return f"{name}=a {kind} of {len(v)} tensor{'s' if len(v) > 1 else ''}"
    return f"{name}={show(v)}"


def describe_case(names: Sequence[str], args: Sequence[Any], *, shapes_only: bool = False,
                  limit: int = 80) -> str:
    """The arguments of one case, short: tensors by their shape (or their few values), others by value.

    ``shapes_only`` describes every tensor by its shape alone, tersely; arguments
    beyond about ``limit`` characters are left out (``…``).

    Example:
        >>> describe_case(["w", "b", "bits"], [torch.zeros(3, 5), torch.tensor([0.5, 1.0]), 4])
        'w of shape (3, 5), b=tensor([0.5, 1.0]), bits=4'
        >>> describe_case(["w", "b", "bits"], [torch.zeros(3, 5), torch.zeros(3), 4], shapes_only=True)
        'w (3, 5), b (3,), bits=4'
    """
    parts = [_describe(n, a, shapes_only) for n, a in zip(names, args)]
    text = ""
    for i, part in enumerate(parts):
        candidate = part if not text else f"{text}, {part}"
        if i and len(candidate) > limit:
            return f"{text}, …"
        text = candidate
    return text


def structure_diff(got: Any, want: Any, what: str, parts: Sequence[str]) -> str | None:
    """Type, dtype or shape mismatch of ``got`` against ``want``; None if they agree."""
    kind = "a torch.Tensor" if isinstance(got, torch.Tensor) else f"of type {type(got).__name__}"
    if isinstance(want, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"{what} is {kind}; expected a torch.Tensor"
        if got.dtype != want.dtype:
            return f"{what} has dtype {got.dtype}; expected {want.dtype}"
        if got.shape != want.shape:
            return f"{what} has shape {tuple(got.shape)}; expected {tuple(want.shape)}"
    elif isinstance(want, tuple):
        names = f" ({', '.join(parts)})" if parts else ""
        if not isinstance(got, (tuple, list)):
            return f"{what} is {kind}; expected a tuple of {len(want)}{names}"
        if len(got) != len(want):
            return f"you returned {len(got)} values; expected {len(want)}{names}"
        subjects = [f"`{p}`" for p in parts] + [f"element {i}" for i in range(len(parts), len(want))]
        return next(filter(None, map(structure_diff, got, want, subjects, [()] * len(want))), None)
    elif isinstance(want, numbers.Real) and not isinstance(want, bool):
        py = "int" if isinstance(want, numbers.Integral) else "float"
        if isinstance(got, torch.Tensor):
            return f"{what} is a tensor; return a Python {py} (use {py}(...) or .item())"
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            return f"{what} is {kind}; expected a Python {py}"
        if py == "int" and not isinstance(got, numbers.Integral):
            return f"{what} is the float {float(got)!r}; expected an int"
    return None


def value_diff(got: Any, want: Any, what: str, parts: Sequence[str], tol: tuple[float, float],
            probe: tuple[str, torch.Tensor] | None) -> str | None:
    """First value that differs (types already agree); None if all match."""
    if isinstance(want, torch.Tensor):
        g = got.detach()
        bad = ~torch.isclose(g, want, *tol, equal_nan=True) if want.is_floating_point() else g != want
        if not bad.any():
            return None
        idx = tuple(int(i) for i in bad.nonzero()[0])
        at = f"{'element ' if what == 'your result' else what}[{', '.join(map(str, idx))}]"
        ctx = f"where {probe[0]} = {short_number(probe[1][idx])}; " if probe and probe[1].shape == g.shape else ""
        return (f"{at} is {short_number(g[idx])}; expected {short_number(want[idx])} "
                f"({ctx}{int(bad.sum())} of {bad.numel()} values differ)")
    if isinstance(want, tuple) and any(isinstance(w, (torch.Tensor, tuple)) for w in want):
        subjects = [f"`{p}`" for p in parts] + [f"element {i}" for i in range(len(parts), len(want))]
        found = (value_diff(g, w, s, (), tol, probe) for g, w, s in zip(got, want, subjects))
        return next(filter(None, found), None)
    pairs = zip(got, want) if isinstance(want, tuple) else [(got, want)]
    if all(g == w if isinstance(w, numbers.Integral) or not isinstance(w, numbers.Real)
           else math.isclose(float(g), float(w), rel_tol=tol[0], abs_tol=tol[1]) for g, w in pairs):
        return None
    said = "you returned" if what == "your result" else f"{what} is"
    return f"{said} {show(got)}; expected {show(want)}"
