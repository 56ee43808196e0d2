"""What the techniques share (qkit.graph): tracing, layer lookup and replacement, folding records, storage."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from qkit import choose_qparams, graph, quantize
from qkit.nn import Float16Linear, QuantConv2d, QuantLinear

pytestmark = pytest.mark.lesson04


class Branchy(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x  # control flow on a tensor value: not traceable


def test_trace_gives_a_graph_or_says_why_not():
    gm = graph.trace(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), "a test")
    assert [n.op for n in gm.graph.nodes] == ["placeholder", "call_module", "call_module", "output"]
    with pytest.raises(ValueError, match=r"^folding it needs a torch.fx-traceable model, .* of Branchy failed"):
        graph.trace(Branchy(), "folding it")


def test_set_module_replaces_by_dotted_name():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 2)))
    graph.set_module(model, "1.1", nn.Identity())
    graph.set_module(model, "0", nn.ReLU6())
    assert [type(m).__name__ for m in model.modules()][1:] == ["ReLU6", "Sequential", "ReLU", "Identity"]
    assert graph.get_module(model, "1.1") is model[1][1]


def test_fold_batchnorm_records_what_it_folded():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.BatchNorm2d(3)).eval()
    folded = graph.fold_batchnorm(model)
    assert folded.folded_bn == {"0": "1", "3": "3"}  # conv+bn pair; a lone BN became its own 1x1 conv
    assert isinstance(folded.get_submodule("3"), nn.Conv2d) and folded.get_submodule("3").groups == 3
    assert isinstance(model[1], nn.BatchNorm2d)  # the original is not touched
    with pytest.raises(ValueError, match="folding BatchNorm needs a torch.fx-traceable model"):
        graph.fold_batchnorm(Branchy())


def _converted() -> nn.Module:
    torch.manual_seed(0)
    qp = choose_qparams(-2.0, 2.0)
    return nn.Sequential(QuantConv2d(torch.randn(4, 1, 3, 3), torch.randn(4), qp, qp, backend="ref"),
                         nn.Flatten(), QuantLinear(torch.randn(3, 36), torch.randn(3), qp, qp, backend="ref"),
                         Float16Linear(torch.randn(2, 3), None))


def _storages(model: nn.Module) -> set:
    return {t.untyped_storage().data_ptr() for t in model.state_dict().values()}


def test_share_storage_packs_one_storage_per_dtype_and_keeps_values():
    model, plain = _converted(), _converted()
    q_x = quantize(torch.randn(2, 1, 5, 5), choose_qparams(-2.0, 2.0))  # conv: (2, 4, 3, 3), 36 features
    before = plain[2](plain[1](plain[0](q_x)))
    graph.share_storage(model)
    assert {k: v.dtype for k, v in model.state_dict().items()} == {k: v.dtype for k, v in plain.state_dict().items()}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
    dtypes = {v.dtype for v in model.state_dict().values()}  # int8, float32, float16
    assert len(_storages(model)) == len(dtypes) < len(_storages(plain))
    assert torch.equal(model[2](model[1](model[0](q_x))), before)


def test_shared_storage_survives_a_save_and_load():
    model = graph.share_storage(_converted())
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    fresh = graph.share_storage(_converted())
    with torch.no_grad():
        for t in fresh.state_dict().values():
            t.zero_()
    fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert len(_storages(fresh)) == len(_storages(model))  # loaded in place: still views of one storage
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
