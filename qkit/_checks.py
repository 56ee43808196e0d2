"""Argument checks shared by the library: one wording for every error.

Each check raises ``TypeError`` for a wrong kind of value and ``ValueError``
for a right kind with a wrong value, naming what was expected and what was got.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) within ``[low, high]``.

    Example:
        >>> check_int("bits", 4, low=1, high=16)
        4
        >>> check_int("bits", 4.0)
        Traceback (most recent call last):
        ...
        TypeError: bits must be an int; got float 4.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"in [{low}, {high}]" if low is not None and high is not None else (
            f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{name} must be an int {span}; got {value}")
    return value


def check_bool(name: str, value) -> bool:
    """Return ``value`` if it is a bool, else raise ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}")
    return bool(value)


def as_tensor(name: str, x) -> torch.Tensor:
    """Turn a tensor, numpy array or Python number into a tensor (no copy if possible)."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray) or isinstance(x, (numbers.Number, np.generic)):
        if isinstance(x, bool):
            raise TypeError(f"{name} must be a number or tensor; got bool {x!r}")
        return torch.as_tensor(x)
    raise TypeError(
        f"{name} must be a torch.Tensor, numpy array or number; got {type(x).__name__}"
    )


def as_float_tensor(name: str, x) -> torch.Tensor:
    """Return ``x`` as a float32 tensor; integer and bool tensors are refused.

    Example:
        >>> as_float_tensor("x", 1.5)
        tensor(1.5000)
        >>> as_float_tensor("x", torch.tensor([1, 2], dtype=torch.int8))
        Traceback (most recent call last):
        ...
        TypeError: x must hold floating-point values; got dtype torch.int8
    """
    t = as_tensor(name, x)
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        t = t.to(torch.float32)  # a plain Python int like 2 is a fine bound
    if not t.is_floating_point():
        raise TypeError(f"{name} must hold floating-point values; got dtype {t.dtype}")
    return t.to(torch.float32)


def as_int_tensor(name: str, q) -> torch.Tensor:
    """Return ``q`` as an integer tensor; float and bool tensors are refused."""
    t = as_tensor(name, q)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers; got dtype {t.dtype}")
    return t
