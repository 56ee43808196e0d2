"""qkit.compose: sparse packed storage against a plain-Python transcription of its layout; the stages on a tiny recipe."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from qkit import choose_qparams, compose, data, measure, prune
from qkit.nn import QuantConv2d, QuantLinear
from qkit.train import evaluate, outputs

pytestmark = pytest.mark.lesson11


def _sparse_ints(g: torch.Generator, shape, bits: int, density: float) -> torch.Tensor:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    q = torch.randint(lo, hi + 1, shape, generator=g).to(torch.int8)
    q[torch.rand(shape, generator=g) >= density] = 0
    return q


def _layout_by_hand(q: torch.Tensor, bits: int) -> tuple[list[int], list[int]]:
    """The documented layout in plain Python: bit i of byte i//8 says entry i is kept; the kept values form
    one little-endian stream of `bits`-bit two's-complement fields."""
    flat = [int(v) for v in q.reshape(-1).tolist()]
    mask = [0] * math.ceil(len(flat) / 8)
    for i, v in enumerate(flat):
        if v != 0:
            mask[i // 8] |= 1 << (i % 8)
    kept = [v for v in flat if v != 0]
    stream = 0
    for j, v in enumerate(kept):
        stream |= (v % (1 << bits)) << (j * bits)
    nbytes = math.ceil(len(kept) * bits / 8)
    return mask, [(stream >> (8 * k)) & 0xFF for k in range(nbytes)]


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 7, 8])
def test_encode_follows_the_layout_and_decodes_back(bits):
    g = torch.Generator().manual_seed(bits)
    for shape, density in (((4, 9), 0.3), ((3, 2, 3, 3), 0.6), ((17,), 1.0), ((5, 5), 0.0)):
        q = _sparse_ints(g, shape, bits, density)
        bitmask, values = compose.encode(q, bits)
        mask, vals = _layout_by_hand(q, bits)
        assert bitmask.dtype == values.dtype == torch.uint8
        assert bitmask.tolist() == mask and values.tolist() == vals
        back = compose.decode(bitmask, values, bits, shape)
        assert back.dtype == torch.int8 and torch.equal(back, q)
        nnz = int((q != 0).sum())
        assert compose.stored_bytes(q.numel(), nnz, bits) == len(mask) + len(vals)


def test_bad_inputs_name_what_was_expected():
    with pytest.raises(TypeError, match="integer tensor"):
        compose.encode(torch.zeros(4), 4)
    with pytest.raises(ValueError, match="bits"):
        compose.encode(torch.zeros(4, dtype=torch.int8), 1)
    with pytest.raises(ValueError, match="range"):
        compose.encode(torch.tensor([9], dtype=torch.int8), 4)  # 9 is not a signed 4-bit value
    bitmask, values = compose.encode(torch.tensor([1, 0, 2, 0], dtype=torch.int8), 4)
    with pytest.raises(ValueError, match="keeps 2 entries"):
        compose.decode(bitmask, torch.zeros(3, dtype=torch.uint8), 4, (4,))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        compose.to_sparse_packed("model")
    with pytest.raises(ValueError, match="sparsity"):
        compose.recipe(sparsity=1.0)
    with pytest.raises(ValueError, match="unknown"):
        compose.check_recipe({**compose.RECIPE, "epochs": 3})
    with pytest.raises(ValueError, match="w_bits"):
        compose.recipe(w_bits=1)


def _integer_model(sparsity: float, bits: int) -> nn.Module:
    """A small pruned conv + linear integer model with `bits`-bit packed weights (no training: cheap)."""
    from qkit import qat

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 10)).eval()
    pruned = prune.magnitude(model, sparsity, scope="layer")
    X = data.digits("train")[0][:128]
    return qat.convert(qat.prepare(pruned, w_bits=bits, calibration=X), backend="ref"), X  # ref: no compile wait


@pytest.mark.parametrize("bits", [4, 8])
def test_sparse_packed_model_computes_the_same_and_its_file_shrinks_by_the_payload(bits):
    dense, X = _integer_model(0.8, bits)
    small = compose.to_sparse_packed(dense)
    assert small.sparse_layers == ["0", "3"]
    assert torch.equal(outputs(small, X), outputs(dense, X))
    layers = [m for m in dense.modules() if isinstance(m, (QuantConv2d, QuantLinear))]
    dense_payload = sum(math.ceil(m.q_w.numel() * bits / 8) for m in layers)  # packed (or int8 at 8 bits)
    sparse_payload = sum(math.ceil(m.q_w.numel() / 8) + math.ceil(int((m.q_w != 0).sum()) * bits / 8) for m in layers)
    saved = measure.model_size(dense) - measure.model_size(small)
    # the file shrinks by the payload, less the pickle record of one more tensor a layer and 16-byte alignment
    extra = (dense_payload - sparse_payload) - saved
    assert 0 <= extra <= 100 * len(layers), (saved, dense_payload, sparse_payload)


def test_a_saved_state_loads_into_an_unpruned_skeleton():
    dense, X = _integer_model(0.8, 4)
    small = compose.to_sparse_packed(dense)
    buf = io.BytesIO()
    torch.save(small.state_dict(), buf)
    buf.seek(0)
    skeleton, _ = _integer_model(0.0, 4)  # other weights, nothing pruned
    again = compose.load_sparse_packed(skeleton, torch.load(buf, weights_only=True))
    assert torch.equal(outputs(again, X), outputs(dense, X))
    assert measure.model_size(again) == measure.model_size(small)


def test_dense_layers_are_left_alone():
    dense, X = _integer_model(0.1, 4)  # 90 % dense at 4 bits: a bitmask costs more than it saves
    assert compose.to_sparse_packed(dense).sparse_layers == []


TINY = compose.recipe(teacher="mlp", distill_epochs=1, prune_epochs=1, qat_epochs=1, calibration=128)


@pytest.fixture(scope="module")
def tiny_run():
    X, y = data.digits("train")
    Xt, yt = data.digits("test")
    return compose.run((X, y, Xt, yt), TINY, seed=0), (Xt, yt)


def test_every_stage_is_what_it_claims(tiny_run):
    stages, (Xt, yt) = tiny_run
    assert tuple(stages) == compose.STAGES
    teacher, student = stages["original"], stages["distilled"]
    assert student.fc1.out_features == round(teacher.fc1.out_features * (1 - TINY["width_cut"]))
    assert prune.sparsity(stages["pruned"]) == pytest.approx(TINY["sparsity"], abs=1e-3)
    packed = stages["packed"]
    integer = {name: m for name, m in packed.named_modules() if isinstance(m, (QuantConv2d, QuantLinear))}
    for name, layer in prune.prunable(stages["pruned"]).items():  # the masks survived QAT:
        assert not integer[name].q_w[layer.weight == 0].any()  # every pruned weight is an integer 0
    assert compose.agreement(stages["onnx"], packed, Xt) >= 0.995
    assert evaluate(packed, Xt, yt) > 0.8


def test_stage_rows_measure_real_files(tiny_run):
    stages, (Xt, yt) = tiny_run
    rows = {r["stage"]: r for r in compose.stage_rows(stages, Xt, yt, timing=False)}
    assert rows["original"]["size"] == measure.model_size(stages["original"])
    assert rows["packed"]["size"] == measure.model_size(stages["packed"]) < rows["quantized"]["size"]
    assert rows["onnx"]["size"] == len(open(stages["onnx"].path, "rb").read())
    assert rows["packed"]["size_ratio"] == rows["original"]["size"] / rows["packed"]["size"]
    assert rows["onnx"]["accuracy"] == evaluate(stages["onnx"], Xt, yt)
    assert rows["packed"]["latency_ms"] is None


def test_the_final_state_loads_into_the_recipe_skeleton(tiny_run):
    stages, (Xt, _) = tiny_run
    X = data.digits("train")[0]
    again = compose.load_final(stages["packed"].state_dict(), TINY, X)
    assert torch.equal(outputs(again, Xt), outputs(stages["packed"], Xt))
