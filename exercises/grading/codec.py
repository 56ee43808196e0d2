"""What a learner's function returns, carried back to the checker as plain JSON.

The checker never unpickles anything a learner's process made: a pickle can run any
code when it is loaded (``__reduce__``), and code run in the checker could rewrite the
check. So the learner's side turns a result into a tree of JSON values, with tensors
and arrays as ``(dtype, shape, bytes)``, and the checker rebuilds it from an allow-list
of types. Anything else comes back as an :class:`Opaque` stand-in that carries the
learner's type name and ``repr``, so the check still says what was returned.

Example:
    >>> back = decode(json.loads(json.dumps(encode((torch.tensor([1, -2], dtype=torch.int8), 0.5, None)))))
    >>> back
    (tensor([ 1, -2], dtype=torch.int8), 0.5, None)
    >>> decode(encode(object())).__class__.__name__
    'object'
"""

from __future__ import annotations

import base64
import json  # noqa: F401 (the doctest uses it)
import math
import re
from typing import Any

import numpy as np
import torch

TORCH_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
    torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128)}
NUMPY_KINDS = "biufc"  # bool, int, unsigned, float, complex
MAX_BYTES = 256 * 2**20  # one result above this is refused (a check never needs so much)


class Opaque:
    """Stands for a learner's value of a type the codec does not carry (its name and repr kept)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


def _qparams_type():
    from qkit.qparams import QParams  # noqa: PLC0415  (only when a result holds one)

    return QParams


def _bytes(b: bytes) -> str:
    if len(b) > MAX_BYTES:
        raise ValueError(f"a result of {len(b):,} bytes is more than a check carries ({MAX_BYTES:,})")
    return base64.b64encode(b).decode("ascii")


def encode(obj: Any) -> Any:
    """A JSON-able tree for ``obj`` (learner side: any object; unknown types become their repr)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return {"int": str(obj)}  # any size, exactly
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"float": repr(obj)}
    if isinstance(obj, complex):
        return {"complex": [repr(obj.real), repr(obj.imag)]}
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in TORCH_DTYPES or t.is_sparse:
            return _opaque(obj)
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        return {"tensor": dtype, "shape": list(t.shape), "data": _bytes(raw.numpy().tobytes()),
                "grad": bool(obj.requires_grad)}
    if isinstance(obj, np.ndarray) and obj.dtype.kind in NUMPY_KINDS:
        a = np.ascontiguousarray(obj)
        return {"ndarray": a.dtype.str, "shape": list(a.shape), "data": _bytes(a.tobytes())}
    if isinstance(obj, np.generic) and obj.dtype.kind in NUMPY_KINDS:
        return {"npscalar": obj.dtype.str, "data": _bytes(obj.tobytes())}
    if type(obj).__name__ == "QParams" and type(obj).__module__ == "qkit.qparams":
        return {"qparams": {name: encode(getattr(obj, name)) for name in obj._fields}}
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return {"tuple": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return {"list": [encode(v) for v in obj]}
    if isinstance(obj, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in obj.items()]}
    return _opaque(obj)


def _opaque(obj: Any) -> dict:
    try:
        text = repr(obj)
    except Exception:
        text = "<unprintable>"
    return {"opaque": type(obj).__name__, "repr": text[:300]}


def _dtype(name: str, table: dict) -> Any:
    if name not in table:
        raise ValueError(f"not a dtype a result may carry: {name!r}")
    return table[name]


def decode(tree: Any) -> Any:
    """Rebuild a value from :func:`encode`'s tree (checker side: allow-listed types only, no code runs)."""
    if tree is None or isinstance(tree, (bool, str, float)):
        return tree
    if isinstance(tree, int):  # plain JSON ints (not made by encode, but harmless)
        return tree
    if not isinstance(tree, dict) or len(tree) == 0:
        raise ValueError(f"not an encoded value: {str(tree)[:80]}")
    if "int" in tree:
        return int(tree["int"])
    if "float" in tree:
        return float(tree["float"])
    if "complex" in tree:
        return complex(float(tree["complex"][0]), float(tree["complex"][1]))
    if "tensor" in tree:
        dtype = _dtype(tree["tensor"], TORCH_DTYPES)
        raw_dtype = torch.int16 if dtype == torch.bfloat16 else dtype
        data = bytearray(base64.b64decode(tree["data"]))
        shape = [int(n) for n in tree["shape"]]
        flat = torch.frombuffer(data, dtype=raw_dtype) if data else torch.empty(0, dtype=raw_dtype)
        t = flat.view(dtype).reshape(shape).clone()
        return t.requires_grad_() if tree.get("grad") and t.is_floating_point() else t
    if "ndarray" in tree or "npscalar" in tree:
        dt = np.dtype(tree.get("ndarray") or tree["npscalar"])
        if dt.kind not in NUMPY_KINDS or dt.hasobject:
            raise ValueError(f"not a dtype a result may carry: {dt}")
        a = np.frombuffer(base64.b64decode(tree["data"]), dtype=dt)
        return a.reshape([int(n) for n in tree["shape"]]).copy() if "ndarray" in tree else a[0]
    if "tuple" in tree:
        return tuple(decode(v) for v in tree["tuple"])
    if "list" in tree:
        return [decode(v) for v in tree["list"]]
    if "dict" in tree:
        return {decode(k): decode(v) for k, v in tree["dict"]}
    if "qparams" in tree:
        return _qparams_type()(**{k: decode(v) for k, v in tree["qparams"].items()})
    if "opaque" in tree:
        name = tree["opaque"] if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", str(tree["opaque"])) else "Opaque"
        return type(name, (Opaque,), {})(str(tree["repr"]))
    raise ValueError(f"not an encoded value: {str(tree)[:80]}")
