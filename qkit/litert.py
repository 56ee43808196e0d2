"""One-op int8 ``.tflite`` files: read them, run them in TensorFlow Lite, run qkit on the same input.

Equation of every int8 tensor in the file: ``x ≈ scale * (q - zero_point)``.

A full-integer ``.tflite`` layer holds everything qkit's kernels take: the int8
weight, the bias already quantized to int32 on the scale ``s_x s_w``, the float32
scales and int32 zero points of input, weight and output, and the geometry. This
module reads them with the real interpreter (``ai_edge_litert``, TensorFlow Lite's
runtime from PyPI) into qkit's layout, so a test or a lesson compares in one call:

>>> op = read_op(models_dir() / "fc_bias.tflite")
>>> op.op, tuple(op.q_w.shape), op.bias.dtype, op.w_qp.axis
('FULLY_CONNECTED', (6, 20), torch.int32, None)
>>> q_x = random_input(op, batch=4, seed=0)
>>> bool((run_litert(op, q_x) == run_qkit(op, q_x)).all())
True

Layouts: TFLite is channels-last, qkit channels-first. ``q_w`` here is ``(M, K)``
(FULLY_CONNECTED) or ``(C_out, C_in/groups, kH, kW)`` (TFLite's CONV_2D weight is
``(C_out, kH, kW, C_in)``, DEPTHWISE_CONV_2D's ``(1, kH, kW, C_out)``); inputs and
outputs are ``(N, K)`` / ``(N, C, H, W)``. A fused ReLU / ReLU6 is the clamp
TFLite's ``CalculateActivationRangeQuantized`` computes, folded into ``y_qp``'s
``qmin``/``qmax``. SAME padding is TFLite's: ``total = max((out-1)·stride +
dilation·(k-1) + 1 - in, 0)``, ``total // 2`` before, the rest after (so an
even input with stride 2 pads one more row at the bottom than at the top).

Resolvers (:data:`RESOLVERS`): ``"reference"`` (``OpResolverType.BUILTIN_REF``, the
readable kernels of ``kernels/internal/reference/``), ``"optimized"``
(``BUILTIN_WITHOUT_DEFAULT_DELEGATES``: ruy / the optimized kernels) and
``"xnnpack"`` (``BUILTIN``, TFLite's default with the XNNPACK delegate).
:func:`resolver_differences` counts how often the last two differ from the first;
:func:`rounding_matches` finds which of qkit's roundings each one follows.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from qkit.qparams import QParams

RESOLVERS = ("reference", "optimized", "xnnpack")
OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
ACTIVATIONS = {0: None, 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}  # TFLite's ActivationFunctionType


class LiteOp(NamedTuple):
    """What one operator of a ``.tflite`` file holds, in qkit's vocabulary and layout."""

    path: Path
    op: str  # one of OPS
    q_w: torch.Tensor  # int8 (M, K) or (C_out, C_in/groups, kH, kW)
    bias: torch.Tensor | None  # int32 (M,) on the scale s_x s_w, or None
    x_qp: QParams  # per-tensor int8
    w_qp: QParams  # scale scheme, [-127, 127]; axis 0 if per channel
    y_qp: QParams  # per-tensor; qmin/qmax narrowed by the fused activation
    activation: str | None  # None, "RELU", "RELU_N1_TO_1", "RELU6"
    stride: tuple[int, int]  # (H, W); (1, 1) for FULLY_CONNECTED
    padding: tuple[int, int, int, int]  # (top, bottom, left, right), explicit
    dilation: tuple[int, int]
    groups: int
    input_shape: tuple[int, ...]  # qkit layout, batch 1 as stored: (1, K) or (1, C, H, W)
    options: dict  # the raw builtin options of the file (padding code, multiplier, ...)


def models_dir() -> Path:
    """The folder of the shipped one-op files (``tests/litert/`` next to the ``qkit`` package)."""
    here = Path(__file__).resolve().parents[1] / "tests" / "litert"
    for folder in (here, Path.cwd() / "tests" / "litert", Path.cwd().parent / "tests" / "litert"):
        if folder.is_dir() and any(folder.glob("*.tflite")):
            return folder
    raise FileNotFoundError(f"no .tflite files in {here} (run from the repository; see tests/litert/README.md)")


def shipped_models(folder=None) -> list[Path]:
    """Every ``*.tflite`` in ``folder`` (default :func:`models_dir`), sorted by name."""
    return sorted(Path(folder or models_dir()).glob("*.tflite"))


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError as err:  # a dependency: say how to get it
        raise ImportError("qkit.litert needs TensorFlow Lite's interpreter: pip install ai-edge-litert") from err
    return interpreter


def _read_model(path: Path):
    """The flatbuffer as ``ai_edge_litert``'s schema objects, with a friendly error for other files."""
    from ai_edge_litert import schema_py_generated as schema

    blob = path.read_bytes()
    if len(blob) < 8 or blob[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a .tflite file (no 'TFL3' identifier in its header)")
    return schema.ModelT.InitFromPackedBuf(blob, 0)


def _qparams(detail: dict, qmin: int, qmax: int, axis_map: dict | None = None) -> QParams:
    q = detail["quantization_parameters"]
    scale = torch.tensor(q["scales"], dtype=torch.float32)  # (C,) float32, as stored
    zero_point = torch.tensor(q["zero_points"], dtype=torch.int32)
    if scale.numel() == 0:
        raise ValueError(f"tensor {detail['name']!r} is not quantized (no scales)")
    if scale.numel() == 1:
        return QParams(scale.reshape(()), zero_point.reshape(()), qmin, qmax, None)
    return QParams(scale, zero_point, qmin, qmax, 0)  # per channel: qkit's axis 0 (output channels)


def _activation_range(activation: str | None, y: QParams) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized``: ``zp + round(f / scale)`` in float32, ties away."""
    scale, zp = np.float32(y.scale.item()), int(y.zero_point)

    def level(f: float) -> int:
        v = np.float32(f) / scale  # float32 division, as TfLiteRound(f / scale)
        t = np.trunc(v)  # v - t is exact: ties go away from zero, as C's round
        return zp + int(t) + (int(np.sign(v)) if abs(v - t) >= 0.5 else 0)

    low, high = y.qmin, y.qmax
    if activation == "RELU":
        low = max(low, level(0.0))
    elif activation == "RELU6":
        low, high = max(low, level(0.0)), min(high, level(6.0))
    elif activation == "RELU_N1_TO_1":
        low, high = max(low, level(-1.0)), min(high, level(1.0))
    return low, high


def _same_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """TFLite's SAME padding along one axis: ``(before, after, out)``."""
    span = dilation * (k - 1) + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2, out


def read_op(path) -> LiteOp:
    """Read the one FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D of a full-int8 ``.tflite`` file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a ``.tflite`` file, more or fewer than one operator, another
            operator, or tensors that are not int8 (weights, input, output) / int32 (bias).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such .tflite file: {path}")
    model = _read_model(path)
    interp = _interpreter_module().Interpreter(model_path=str(path))
    ops = interp._get_ops_details()
    if len(ops) != 1 or ops[0]["op_name"] not in OPS:
        names = [o["op_name"] for o in ops]
        raise ValueError(f"{path.name} must hold exactly one of {OPS}; it holds {names}")
    name, inputs, outputs = ops[0]["op_name"], list(ops[0]["inputs"]), list(ops[0]["outputs"])
    details = {d["index"]: d for d in interp.get_tensor_details()}
    x_d, w_d, y_d = details[inputs[0]], details[inputs[1]], details[outputs[0]]
    b_d = details[inputs[2]] if len(inputs) > 2 and inputs[2] >= 0 else None
    for what, d, dtype in (("input", x_d, np.int8), ("weight", w_d, np.int8), ("output", y_d, np.int8)) + (
            (("bias", b_d, np.int32),) if b_d is not None else ()):
        if d["dtype"] != dtype:
            raise ValueError(f"{path.name}: the {what} must be {np.dtype(dtype).name}; got {np.dtype(d['dtype']).name}")
    w = torch.from_numpy(interp.get_tensor(w_d["index"]).copy())  # int8, TFLite layout
    bias = None if b_d is None else torch.from_numpy(interp.get_tensor(b_d["index"]).copy())  # int32 (C_out,)
    options = {k: v for k, v in vars(model.subgraphs[0].operators[0].builtinOptions or object()).items()}
    activation = ACTIVATIONS.get(options.get("fusedActivationFunction", 0), "unsupported")
    x_qp, w_qp = _qparams(x_d, -128, 127), _qparams(w_d, -127, 127)
    y_qp = _qparams(y_d, -128, 127)
    y_qp = y_qp._replace(**dict(zip(("qmin", "qmax"), _activation_range(activation, y_qp))))
    shape = tuple(int(s) for s in x_d["shape"])
    if name == "FULLY_CONNECTED":
        return LiteOp(path, name, w, bias, x_qp, w_qp, y_qp, activation, (1, 1), (0, 0, 0, 0), (1, 1), 1,
                      shape, options)
    if name == "CONV_2D":
        q_w = w.permute(0, 3, 1, 2).contiguous()  # (C_out, C_in/g, kH, kW) from (C_out, kH, kW, C_in/g)
        groups = shape[3] // q_w.shape[1]
    else:  # DEPTHWISE_CONV_2D: (1, kH, kW, C_out); output channel o reads input o // multiplier
        q_w = w.permute(3, 0, 1, 2).contiguous()  # (C_out, 1, kH, kW)
        groups = shape[3]
        if w_qp.axis is not None:
            w_qp = w_qp._replace(axis=0)
    stride = (options["strideH"], options["strideW"])
    dilation = (options.get("dilationHFactor", 1), options.get("dilationWFactor", 1))
    if options["padding"] == 0:  # SAME
        (t, b, _), (left, r, _) = (_same_padding(shape[1 + d], q_w.shape[2 + d], stride[d], dilation[d])
                                   for d in range(2))
        padding = (t, b, left, r)
    else:  # VALID
        padding = (0, 0, 0, 0)
    return LiteOp(path, name, q_w, bias, x_qp, w_qp, y_qp, activation, stride, padding, dilation, groups,
                  (shape[0], shape[3], shape[1], shape[2]), options)


def _as_op(op_or_path) -> LiteOp:
    return op_or_path if isinstance(op_or_path, LiteOp) else read_op(op_or_path)


def _check_input(op: LiteOp, q_x) -> torch.Tensor:
    q_x = torch.as_tensor(q_x)
    if q_x.dtype != torch.int8:
        raise TypeError(f"q_x must be an int8 tensor; got dtype {q_x.dtype}")
    if q_x.dim() != len(op.input_shape) or tuple(q_x.shape[1:]) != op.input_shape[1:]:
        raise ValueError(f"q_x must have shape (N, {', '.join(map(str, op.input_shape[1:]))}) for "
                         f"{op.path.name}; got {tuple(q_x.shape)}")
    return q_x


def random_input(op, batch: int = 8, seed: int = 0) -> torch.Tensor:
    """Full-range random int8 input of shape ``(batch, *op.input_shape[1:])`` (qkit layout)."""
    op = _as_op(op)
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-128, 128, (batch, *op.input_shape[1:]), generator=g, dtype=torch.int8)


def run_litert(op, q_x, resolver: str = "reference") -> torch.Tensor:
    """Run the file in TensorFlow Lite's interpreter on int8 ``q_x`` (qkit layout); int8 out, qkit layout.

    Args:
        op: a :class:`LiteOp` or the path of a one-op ``.tflite``.
        q_x: int8 ``(N, K)`` or ``(N, C, H, W)``; any batch ``N >= 1``.
        resolver: ``"reference"``, ``"optimized"`` or ``"xnnpack"`` (:data:`RESOLVERS`).
    """
    op = _as_op(op)
    if resolver not in RESOLVERS:
        raise ValueError(f"resolver must be one of {RESOLVERS}; got {resolver!r}")
    q_x = _check_input(op, q_x)
    mod = _interpreter_module()
    kind = {"reference": mod.OpResolverType.BUILTIN_REF,
            "optimized": mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "xnnpack": mod.OpResolverType.BUILTIN}[resolver]
    interp = mod.Interpreter(model_path=str(op.path), experimental_op_resolver_type=kind, num_threads=1)
    x = q_x if q_x.dim() == 2 else q_x.permute(0, 2, 3, 1)  # TFLite: channels last
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, list(x.shape), strict=False)
    interp.allocate_tensors()
    interp.set_tensor(index, np.ascontiguousarray(x.numpy()))
    interp.invoke()
    y = torch.from_numpy(interp.get_tensor(interp.get_output_details()[0]["index"]).copy())  # int8
    return y if y.dim() == 2 else y.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)


def run_qkit(op, q_x, backend: str = "ref", rounding: str | None = None) -> torch.Tensor:
    """qkit's kernel for the file's op on the same int8 ``q_x`` (qkit layout): int8 out.

    Args:
        op: a :class:`LiteOp` or a path.
        q_x: as :func:`run_litert`.
        backend: ``"ref"``, ``"eager"`` or ``"fast"`` (:data:`qkit.kernels.BACKENDS`).
        rounding: None for qkit's default for the op (TFLite's reference rule:
            ``"float64"`` for FULLY_CONNECTED, ``"double"`` for convolutions), or
            one of :data:`qkit.fixedpoint.ROUNDINGS`.
    """
    from qkit import kernels

    op = _as_op(op)
    q_x = _check_input(op, q_x)
    extra = {} if rounding is None else {"rounding": rounding}
    args = (op.x_qp, op.q_w, op.w_qp, op.bias, op.y_qp)
    if op.op == "FULLY_CONNECTED":
        return kernels.int8_linear(q_x, *args, backend=backend, **extra)
    top, bottom, left, right = op.padding
    if (top, left) != (bottom, right):  # asymmetric SAME: pad the extra row/column with z_x (real 0.0)
        q_x = F.pad(q_x, (0, right - left, 0, bottom - top), value=int(op.x_qp.zero_point))
    return kernels.int8_conv2d(q_x, *args, stride=op.stride, padding=(top, left), dilation=op.dilation,
                               groups=op.groups, backend=backend, **extra)


def resolver_differences(paths=None, *, batches: int = 4, batch: int = 8, seed: int = 0,
                         resolvers=("optimized", "xnnpack")) -> list[dict]:
    """How many int8 outputs TFLite's other resolvers change against its own reference, per file.

    Every file gets the same full-range random int8 inputs (``batches`` batches of
    ``batch``, from ``seed``) in every resolver.

    Returns:
        One dict per (file, resolver): ``file`` (name), ``op``, ``resolver``,
        ``outputs`` (int8 values compared), ``mismatches`` (values that differ from
        ``"reference"``) and ``max_abs_diff`` (in output levels).
    """
    rows = []
    for path in (shipped_models() if paths is None else [Path(p) for p in paths]):
        op = read_op(path)
        xs = [random_input(op, batch, seed + i) for i in range(batches)]
        ref = torch.cat([run_litert(op, x, "reference") for x in xs]).int()
        for resolver in resolvers:
            other = torch.cat([run_litert(op, x, resolver) for x in xs]).int()
            diff = (other - ref).abs()
            rows.append(dict(file=path.stem, op=op.op, resolver=resolver, outputs=diff.numel(),
                             mismatches=int((diff != 0).sum()), max_abs_diff=int(diff.max())))
    return rows


def rounding_matches(paths=None, *, resolvers=RESOLVERS, batches: int = 4, batch: int = 8, seed: int = 0,
                     roundings=None) -> list[dict]:
    """Which of qkit's requantization rules each TFLite resolver follows, per file.

    Same inputs as :func:`resolver_differences`; qkit's reference kernel runs once
    per rounding of :data:`qkit.fixedpoint.ROUNDINGS`.

    Returns:
        One dict per (file, resolver): ``file``, ``op``, ``resolver``, ``outputs`` and,
        for each rounding, the number of outputs where qkit with that rounding differs
        from the resolver (0: bit for bit).
    """
    from qkit.fixedpoint import ROUNDINGS

    rows = []
    for path in (shipped_models() if paths is None else [Path(p) for p in paths]):
        op = read_op(path)
        xs = [random_input(op, batch, seed + i) for i in range(batches)]
        ours = {r: torch.cat([run_qkit(op, x, rounding=r) for x in xs]) for r in (roundings or ROUNDINGS)}
        for resolver in resolvers:
            theirs = torch.cat([run_litert(op, x, resolver) for x in xs])
            rows.append(dict(file=path.stem, op=op.op, resolver=resolver, outputs=theirs.numel(),
                             **{r: int((q != theirs).sum()) for r, q in ours.items()}))
    return rows


def format_table(rows: list[dict]) -> str:
    """Rows of :func:`resolver_differences` or :func:`rounding_matches` as a fixed-width text table."""
    if not rows:
        return ""
    numbers = [k for k in rows[0] if k not in ("file", "op", "resolver")]
    head = f"{'file':<22} {'op':<18} {'resolver':<10} " + " ".join(f"{k:>12}" for k in numbers)
    lines = [head] + [f"{r['file']:<22} {r['op']:<18} {r['resolver']:<10} " + " ".join(f"{r[k]:>12}" for k in numbers)
                      for r in rows]
    return "\n".join(lines)
