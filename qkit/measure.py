"""What a model costs: bytes of its real serialized artifact (latency comes with lesson 04).

>>> from torch import nn
>>> layer = nn.Linear(100, 10)                   # 1 010 float32 parameters = 4 040 bytes
>>> 4040 < model_size(layer) < 4040 + 2048       # plus torch.save's container overhead
True
>>> format_bytes(4040), format_bytes(7e9 * 4)
('3.95 KiB', '26.1 GiB')
"""

from __future__ import annotations

import io

import torch


def model_size(model: torch.nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what you would ship, overhead included."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def format_bytes(n: float) -> str:
    """Human-readable binary size: B, KiB, MiB, GiB or TiB, about three significant digits."""
    if n < 0:
        raise ValueError(f"a size must be >= 0; got {n}")
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if n < 1000 else f"{n:.0f} {unit}"
