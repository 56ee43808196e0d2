"""Running an exported file in ONNX Runtime: a session, a torch-module wrapper, the kernels it really runs.

* :func:`session`: an ``onnxruntime.InferenceSession`` on the CPU, with as many
  threads as torch has (``torch.get_num_threads()``), threads that sleep between
  runs instead of spinning (they would take the cores from torch's next
  operation), and ONNX Runtime's warnings silenced (they go to stderr).
* :class:`OnnxModel`: that session as an ``nn.Module`` (float tensor in, float
  tensor out), so :func:`qkit.train.evaluate` and :func:`qkit.measure.compare`
  time it in the same round-robin as torch models; its one buffer holds the
  file's bytes, so :func:`qkit.measure.tensor_bytes` is the file size.
* :func:`optimized_ops`: the operators of the graph ONNX Runtime really runs,
  after its optimizations (``SessionOptions.optimized_model_filepath``): e.g.
  whether QLinearConv stayed integer, which float ops it fused.
"""

from __future__ import annotations

import collections
import os
import tempfile

import numpy as np
import torch
from torch import nn


def session(path, threads: int | None = None, optimized_path: str | None = None, config: dict | None = None):
    """An ONNX Runtime CPU session of the file ``path`` (``threads`` defaults to torch's thread count).

    ``config``: more session configuration entries, e.g. ``{"session.x64quantprecision": "1"}``
    (int8 weights rewritten as uint8 on x86: see :mod:`qkit.export`).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the optimizer's notes are not for learners
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel(nn.Module):
    """An exported ONNX file run by ONNX Runtime, as a float-in, float-out module.

    Example:
        >>> import tempfile, os
        >>> from qkit.export import to_onnx
        >>> layer = nn.Sequential(nn.Linear(3, 2), nn.ReLU()).eval()
        >>> path = to_onnx(layer, os.path.join(tempfile.mkdtemp(), "tiny.onnx"), torch.randn(1, 3))
        >>> x = torch.randn(5, 3)
        >>> torch.allclose(OnnxModel(path)(x), layer(x), atol=1e-6)
        True
    """

    def __init__(self, path, threads: int | None = None, config: dict | None = None) -> None:
        super().__init__()
        self.path = str(path)
        self.session = session(self.path, threads, config=config)
        self.input_name = self.session.get_inputs()[0].name
        with open(self.path, "rb") as f:  # the artifact: measure.tensor_bytes(self) is the file's size
            self.register_buffer("onnx_file", torch.frombuffer(bytearray(f.read()), dtype=torch.uint8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)  # (N, ...) float32
        return torch.from_numpy(self.session.run(None, {self.input_name: a})[0])

    def extra_repr(self) -> str:
        return f"path={self.path!r}"


def optimized_ops(path, config: dict | None = None) -> collections.Counter:
    """How many of each operator ONNX Runtime runs for ``path`` after optimizing it (``domain:op`` names).

    ONNX Runtime rewrites a graph when it loads it (constant folding, fusing
    Conv+BatchNorm+ReLU, channels-last layouts for QLinearConv, ...); this is
    the graph it keeps, read back from ``SessionOptions.optimized_model_filepath``.
    """
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "optimized.onnx")
        session(path, threads=1, optimized_path=out, config=config)
        graph = onnx.load(out).graph
    return collections.Counter(f"{n.domain}:{n.op_type}" if n.domain else n.op_type for n in graph.node)
