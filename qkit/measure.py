"""What a model costs: bytes of its real serialized artifact, latency, and both next to accuracy.

>>> from torch import nn
>>> layer = nn.Linear(100, 10)                   # 1 010 float32 parameters = 4 040 bytes
>>> tensor_bytes(layer)
4040
>>> 4040 < model_size(layer) < 4040 + 2048       # plus torch.save's container overhead
True
>>> format_bytes(4040), format_bytes(7e9 * 4)
('3.95 KiB', '26.1 GiB')

``model_size - tensor_bytes`` is the container: about 1.2 KiB per file plus
about 270 bytes per tensor (a zip entry and a pickle record). For a model of a
few dozen small layers that is a real share of the file, which is why the
size ratio of a tiny quantized model falls short of the 4× of its weights.

Latency is wall-clock time (``time.perf_counter``) of whole forward passes
under ``torch.inference_mode``, after warm-up calls; the median and the 95th
percentile over the repeats. It depends on the machine, its load and
``torch.get_num_threads()`` (reported with it): compare numbers from one run only.
"""

from __future__ import annotations

import io
import statistics
import time

import numpy as np
import torch

from qkit._checks import check_int


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


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of the tensors in ``model.state_dict()`` alone (shared storage counted once): the payload."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    storages = {}
    for t in model.state_dict().values():
        if isinstance(t, torch.Tensor):
            s = t.untyped_storage()
            storages[s.data_ptr(), s.nbytes()] = s.nbytes()
    return sum(storages.values())


def _round_robin(models: dict, x: torch.Tensor, repeat: int, warmup: int) -> dict:
    """Times in ms of ``model(x)`` per model: ``warmup`` untimed calls each, then ``repeat`` rounds
    that call every model once (a background load then hits them all alike)."""
    times: dict = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            for _ in range(warmup):
                model(x)
        for _ in range(repeat):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def latency(model: torch.nn.Module, x: torch.Tensor, *, repeat: int = 20, warmup: int = 3) -> dict:
    """Wall time of ``model(x)``: median and 95th percentile in ms over ``repeat`` calls, after ``warmup``.

    Returns:
        ``{"median_ms", "p95_ms", "batch", "threads", "repeat"}``; ``batch`` is
        ``len(x)``, ``threads`` is ``torch.get_num_threads()``.

    Example:
        >>> t = latency(torch.nn.Linear(8, 2), torch.randn(4, 8), repeat=3, warmup=1)
        >>> sorted(t), t["batch"], t["median_ms"] <= t["p95_ms"]
        (['batch', 'median_ms', 'p95_ms', 'repeat', 'threads'], 4, True)
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor batch; got {type(x).__name__}")
    check_int("repeat", repeat, low=1)
    check_int("warmup", warmup, low=0)
    times = _round_robin({"model": model}, x, repeat, warmup)["model"]
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "batch": len(x), "threads": torch.get_num_threads(), "repeat": repeat}


def compare(models: dict, X: torch.Tensor, y: torch.Tensor, batch: int = 256, *, repeat: int = 20,
            warmup: int = 3, timing: bool = True) -> list[dict]:
    """One row per model: accuracy on ``(X, y)``, size, and latency on the first ``batch`` samples of ``X``.

    Ratios are against the first model (the baseline): ``size_ratio`` = its size
    / this size (> 1 is smaller), ``payload_ratio`` the same for the tensors
    alone, ``speedup`` = its median latency / this one (> 1 is faster),
    ``accuracy_drop`` in points (percent). Latency is timed round-robin:
    ``warmup`` calls of each model, then ``repeat`` rounds in which every model
    runs once. With ``timing=False`` the latency columns are None (no timing at all).
    :func:`format_table` prints the rows.

    Returns:
        Dicts with ``name, accuracy, size, tensor_bytes, size_ratio, payload_ratio,
        accuracy_drop, latency_ms, p95_ms, speedup, batch, threads``.

    Example:
        >>> from torch import nn
        >>> X, y = torch.randn(8, 4), torch.zeros(8, dtype=torch.long)
        >>> rows = compare({"a": nn.Linear(4, 2), "b": nn.Linear(4, 2).half().float()}, X, y, timing=False)
        >>> [r["name"] for r in rows], rows[0]["size_ratio"], rows[0]["accuracy_drop"]
        (['a', 'b'], 1.0, 0.0)
    """
    from qkit.train import evaluate

    if not isinstance(models, dict) or not models:
        raise ValueError(f"models must be a non-empty dict of name -> nn.Module; got {type(models).__name__}")
    check_int("batch", batch, low=1)
    check_int("repeat", repeat, low=1)
    check_int("warmup", warmup, low=0)
    times = _round_robin(models, X[:batch], repeat, warmup) if timing else {}
    rows = []
    for name, model in models.items():
        row = {"name": name, "accuracy": evaluate(model, X, y), "size": model_size(model),
               "tensor_bytes": tensor_bytes(model), "latency_ms": None, "p95_ms": None,
               "batch": min(batch, len(X)), "threads": torch.get_num_threads()}
        if timing:
            row["latency_ms"], row["p95_ms"] = statistics.median(times[name]), float(np.percentile(times[name], 95))
        base = rows[0] if rows else row
        row["size_ratio"] = base["size"] / row["size"]
        row["payload_ratio"] = base["tensor_bytes"] / row["tensor_bytes"]
        row["accuracy_drop"] = 100 * (base["accuracy"] - row["accuracy"])
        row["speedup"] = None if row["latency_ms"] is None else base["latency_ms"] / row["latency_ms"]
        rows.append(row)
    return rows


#: How :func:`format_table` shows a column of :func:`compare`'s rows: (header, format).
FORMATS = {"name": ("model", "s"), "accuracy": ("accuracy", ".2%"), "accuracy_drop": ("drop (pt)", "+.2f"),
           "size": ("size", format_bytes), "tensor_bytes": ("payload", format_bytes),
           "size_ratio": ("× smaller", ".2f"), "payload_ratio": ("payload ×", ".2f"),
           "latency_ms": ("ms", ".2f"), "p95_ms": ("p95 ms", ".2f"), "speedup": ("× faster", ".2f"),
           "batch": ("batch", "d"), "threads": ("threads", "d")}
COLUMNS = ("name", "accuracy", "accuracy_drop", "size", "size_ratio", "latency_ms", "speedup")


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    """Rows of dicts (such as :func:`compare`'s) as an aligned text table: header, rule, one line per row.

    A column is a key (header and format from :data:`FORMATS`, else the key and
    ``str``) or a ``(key, header, format)`` triple; a format is a format spec
    (``".2f"``) or a function of the value. Text is left-aligned, numbers (however formatted) right;
    a None value prints as ``-``.

    Example:
        >>> rows = [{"name": "fp32", "accuracy": 0.98, "size": 40000},
        ...         {"name": "int8", "accuracy": 0.975, "size": 10500}]
        >>> print(format_table(rows, ["name", "accuracy", "size", ("size", "bytes", "d")]))
        model  accuracy      size  bytes
        --------------------------------
        fp32     98.00%  39.1 KiB  40000
        int8     97.50%  10.3 KiB  10500
    """
    specs = [c if isinstance(c, tuple) else (c, *FORMATS.get(c, (c, str))) for c in columns]

    def cell(value, fmt) -> str:
        if value is None:
            return "-"
        return fmt(value) if callable(fmt) else format(value, fmt)

    table = [[cell(row.get(key), fmt) for key, _, fmt in specs] for row in rows]
    numeric = [all(isinstance(row.get(key), (int, float)) or row.get(key) is None for row in rows)
               for key, _, _ in specs]
    widths = [max([len(h)] + [len(line[i]) for line in table]) for i, (_, h, _) in enumerate(specs)]

    def line(cells) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    head = line([h for _, h, _ in specs])
    return "\n".join([head, "-" * len(head)] + [line(cells) for cells in table])
