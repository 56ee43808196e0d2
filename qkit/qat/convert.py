"""``qat.convert``: the integer model of a QAT model, on the grids training used.

The converter is :func:`qkit.ptq.convert`'s own graph rewrite
(:func:`qkit.ptq.convert.convert_int8`), fed with what QAT learned instead of
what a calibration run observed: each requantization point's grid comes from
its :class:`~qkit.qat.quantizers.ActQuant`, each weight's grid from its
:class:`~qkit.qat.quantizers.WeightQuant`, and each weight is the
fake-quantized weight training saw, so ``q_w = round(w_hat / scale)`` is exact.
The integer model therefore computes what training simulated, up to the
rounding of the int32 bias and of the fixed-point multipliers (measured in
the tests: argmax agreement on the digits test set).

Every requantization rounds **once**: convolutions and linear layers with
``rounding="single"`` (the fixed-point product rounded once, TensorFlow Lite's
single-rounding build; as fast as its two-rounding default), concatenations and
the global pool with ``"float64"``. TensorFlow Lite's default pair rounds twice,
and on the small accumulators of low-bit grids its first rounding moves values
across a level often enough to change some answers at 4 bits and below.

Weights below 8 bits are stored **bit-packed** (:mod:`qkit.pack`): the layer
keeps ``q_w_packed`` (uint8, ``ceil(n·b/8)`` bytes) in its state, and ``q_w``
(int8, what the kernels read) is rebuilt from it when a state is loaded, so
the file a 4-bit model is saved to really is about half an int8 one.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from qkit.graph import set_module, share_storage
from qkit.nn import QuantConv2d, QuantLinear
from qkit.pack import pack, unpack
from qkit.ptq.calibrate import Calibration, record_ranges
from qkit.ptq.convert import convert_int8
from qkit.qat.quantizers import float_layer
from qkit.qparams import QParams


class _Fixed:
    """Stands in for an observer: the grid is already chosen."""

    def __init__(self, qp: QParams) -> None:
        self.qp = qp

    def qparams(self, *args, **kwargs) -> QParams:
        return self.qp


class _Only(dict):
    """The learned grids; asking for any other point means prepare and convert disagree (a bug)."""

    def __missing__(self, key):
        raise RuntimeError(f"the converter needs a grid at {key!r}, where the QAT model has no fake quantization; "
                           "please report this model")


def _unpack_hook(module: nn.Module, incompatible_keys) -> None:
    """After ``load_state_dict``: rebuild the int8 weight from the packed bytes just loaded."""
    with torch.no_grad():
        module.q_w.copy_(unpack(module.q_w_packed, module.w_bits, module.q_w.shape))


def pack_weights(gm: nn.Module, bits: dict[str, int]) -> None:
    """Store the weights of layers below 8 bits packed (``q_w_packed``); ``q_w`` leaves the state.

    ``bits``: ``{layer name: weight bits}``; the integer layers carry their float layer's name.
    """
    for name, module in gm.named_modules():
        b = bits.get(name, 8)
        if isinstance(module, (QuantLinear, QuantConv2d)) and b < 8:
            module.w_bits = b
            module._buffers["q_w"] = module.q_w.clone()  # its own storage: not saved with the others
            module._non_persistent_buffers_set.add("q_w")
            module.register_buffer("q_w_packed", pack(module.q_w, b))  # uint8 (ceil(n·b/8),)
            module.register_load_state_dict_post_hook(_unpack_hook)
    share_storage(gm)


@torch.no_grad()
def convert_qat(qat_model: nn.Module, *, backend: str = "fast") -> nn.Module:
    """The integer GraphModule of a prepared (and trained) :class:`~qkit.qat.prepare.QATModel`."""
    if qat_model.example is None:
        raise ValueError("this QAT model has seen no data yet: train it (or run a batch through it) before convert")
    config = qat_model.config
    gm = copy.deepcopy(qat_model.graph_module).eval()
    grids = _Only({name: _Fixed(gm.get_submodule(t).qparams()) for name, t in qat_model.points.items()})
    targets = set(qat_model.points.values())
    for n in list(gm.graph.nodes):  # the fake-quant nodes go: their grids are in `grids`
        if n.op == "call_module" and n.target in targets:
            n.replace_all_uses_with(n.args[0])
            gm.graph.erase_node(n)
    weight_grids, bits = {}, {}
    for name, m in list(gm.named_modules()):
        if hasattr(m, "wq"):
            weight_grids[name], bits[name] = m.wq.qparams(m.weight), m.wq.bits
            set_module(gm, name, float_layer(m))
    gm.delete_all_unused_submodules()
    gm.recompile()
    meta = record_ranges(gm, qat_model.example).meta  # the shapes and dtypes the converter reads
    q = convert_int8(gm, Calibration(grids, meta), per_channel=config["per_channel"], backend=backend,
                     skip=config["skip"], weight_grids=weight_grids, rounding="single")
    pack_weights(q, bits)
    q.qat_bits = dict(bits)
    return q.eval()
