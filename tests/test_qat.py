"""qkit.qat.prepare / convert: the integer model computes what training simulated."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from torch import nn

from qkit import measure, ptq, qat
from qkit.graph import fold_batchnorm
from qkit.nn import QuantConv2d, QuantLinear
from qkit.pack import packed_bytes
from qkit.qat.prepare import QATModel
from qkit.qat.quantizers import ActQuant
from qkit.train import fit, one_thread, outputs

pytestmark = pytest.mark.lesson05

CNNS = ["mobilenet_v1", "mobilenet_v2", "resnet", "inception"]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def _agreement(a: nn.Module, b: nn.Module, X: torch.Tensor) -> float:
    return (outputs(a.eval(), X).argmax(1) == outputs(b, X).argmax(1)).float().mean().item()


def _int_layers(model: nn.Module) -> dict:
    return {n: m for n, m in model.named_modules() if isinstance(m, (QuantConv2d, QuantLinear))}


@pytest.mark.parametrize("name", CNNS)
@pytest.mark.parametrize("w_bits, a_bits, method", [(8, 8, "minmax"), (4, 4, "lsq"), (4, 4, "pact")])
def test_convert_computes_what_training_simulated(zoo, digits_train, digits_test, name, w_bits, a_bits, method):
    X, y = digits_train
    qm = qat.prepare(zoo[name], w_bits=w_bits, a_bits=a_bits, method=method, calibration=X[:256])
    fit(qm, X[:256], y[:256], epochs=1, lr=1e-3, progress=False, penalty=qm.penalty)  # grids and weights move
    int_model = qat.convert(qm)
    assert _agreement(qm, int_model, digits_test[0]) >= 0.995


def test_points_are_the_grids_of_the_integer_model(zoo, calibration):
    """One fake quantizer per distinct grid of ptq.convert's integer model (its act_scale table)."""
    for name in CNNS + ["mlp"]:
        qm = qat.prepare(zoo[name], calibration=calibration)
        grids = ptq.convert(zoo[name], "int8", calibration, backend="eager").act_scale
        assert len(qm.points) == len(grids), name


def test_prepare_leaves_the_model_alone_and_trains(zoo, digits_train, calibration):
    model = zoo["resnet"]
    before = copy.deepcopy(model.state_dict())
    qm = qat.prepare(model, w_bits=4, method="lsq", calibration=calibration)
    assert isinstance(qm, QATModel) and qm.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    out = qm(calibration[:8])
    assert out.dtype == torch.float32 and out.shape == (8, 10)
    out.sum().backward()
    scales = [q.scale for q in qm.weight_quantizers().values()] + [q.scale for q in qm.act_quantizers().values()]
    assert all(s.grad is not None and torch.isfinite(s.grad).all() for s in scales)  # LSQ steps learn
    assert all(p.grad is not None for n, p in qm.named_parameters() if n.endswith("weight"))


def test_lsq_initial_steps_follow_esser_et_al(zoo, calibration):
    """Weights: 2·mean|w|/√Qp per output channel (narrow grid, Qp = 2^(b-1) - 1)."""
    qm = qat.prepare(zoo["resnet"], w_bits=4, a_bits=4, method="lsq", calibration=calibration)
    folded = dict(fold_batchnorm(zoo["resnet"]).named_modules())
    for name, wq in qm.weight_quantizers().items():
        w = folded[name].weight.detach()
        expect = 2 * w.abs().reshape(len(w), -1).mean(1) / math.sqrt(7)
        torch.testing.assert_close(wq.scale.detach(), expect)
    first = next(iter(qm.act_quantizers().values()))  # the input: digits are >= 0, so an unsigned grid
    assert first.unsigned
    torch.testing.assert_close(first.scale.detach(), 2 * calibration.abs().mean() / math.sqrt(15))


def test_minmax_ranges_move_then_freeze(zoo, digits_train):
    X, y = digits_train
    qm = qat.prepare(zoo["mlp"], method="minmax", calibration=X[:64], ema_steps=3)
    q = list(qm.act_quantizers().values())[1]
    seen = []
    for i in range(5):
        qm(X[64 * (i + 1): 64 * (i + 2)] * (1 + i))  # growing inputs: the range would keep growing
        seen.append(float(q.hi))
    assert seen[0] < seen[1]  # moved while warming up (1 calibration batch + 2 training batches)
    assert seen[2] == seen[3] == seen[4]  # frozen after ema_steps batches
    qm.eval()
    qm(X[:64] * 100)
    assert float(q.hi) == seen[-1]  # evaluation never moves a grid


def test_minmax_without_calibration_finds_points_on_the_first_batch(zoo, digits_train, digits_test):
    X, y = digits_train
    qm = qat.prepare(zoo["mlp"], w_bits=4)
    params = [id(p) for p in qm.parameters()]
    with pytest.raises(ValueError, match="seen no data"):
        qat.convert(qm)
    fit(qm, X, y, epochs=1, lr=1e-3, progress=False)  # the optimizer is built before the first batch
    assert [id(p) for p in qm.parameters()] == params  # so no parameter may appear later
    assert len(qm.points) == 3
    assert _agreement(qm, qat.convert(qm), digits_test[0]) >= 0.995


def test_pact_learns_a_clip_with_its_penalty(zoo, digits_train):
    X, y = digits_train
    qm = qat.prepare(zoo["resnet"], a_bits=4, method="pact", calibration=X[:256], pact_decay=1e-2)
    for name, q in qm.act_quantizers().items():  # a clip from 0 after a ReLU, the input (pixels >= 0) and the
        nonneg = name == "x" or "relu" in name or name == "pool"  # pool of ReLU outputs; LSQ elsewhere (signed)
        assert q.method == ("pact" if nonneg else "lsq"), name
    alphas = [q.alpha for q in qm.act_quantizers().values() if q.method == "pact"]
    qm.penalty().backward()
    for a in alphas:  # d(λ·α²)/dα = 2λα
        torch.testing.assert_close(a.grad, 2e-2 * a.detach())
    v2 = qat.prepare(zoo["mobilenet_v2"], a_bits=4, method="pact", calibration=X[:256])
    kinds = {q.method for q in v2.act_quantizers().values()}
    assert kinds == {"pact", "lsq"}  # linear bottlenecks and logits can be negative: no clip from 0


@pytest.mark.parametrize("w_bits, levels", [(1, {-1, 1}), (2, {-1, 0, 1}), (3, set(range(-3, 4)))])
def test_binary_ternary_and_low_bit_weights_are_packed(zoo, calibration, w_bits, levels):
    qm = qat.prepare(zoo["resnet"], w_bits=w_bits, calibration=calibration)
    int_model = qat.convert(qm)
    for name, layer in _int_layers(int_model).items():
        assert set(layer.q_w.unique().tolist()) <= levels, name
        assert layer.q_w_packed.numel() == packed_bytes(layer.q_w.numel(), w_bits)
        assert "q_w" not in layer.state_dict()  # only the packed bytes are saved


def test_packed_files_really_shrink(zoo, calibration):
    fp32 = measure.model_size(zoo["resnet"])
    sizes = {b: measure.model_size(qat.convert(qat.prepare(zoo["resnet"], w_bits=b, calibration=calibration)))
             for b in (8, 4, 2, 1)}
    assert sizes[8] > sizes[4] > sizes[2] > sizes[1]
    assert sizes[4] <= fp32 / 6 and sizes[2] <= fp32 / 10 and sizes[1] <= fp32 / 16  # the budgets
    weights = sum(m.weight.numel() for m in fold_batchnorm(zoo["resnet"]).modules()
                  if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert sizes[8] - sizes[4] >= 0.45 * weights  # about half a byte per weight saved


def test_a_saved_packed_model_loads_back(zoo, calibration, digits_test):
    qm = qat.prepare(zoo["mobilenet_v2"], w_bits=3, a_bits=6, method="lsq", calibration=calibration)
    a = qat.convert(qm)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    b = qat.convert(qat.prepare(zoo["mobilenet_v2"], w_bits=3, a_bits=6, method="lsq", calibration=calibration * 0.5))
    assert not torch.equal(outputs(a, digits_test[0]), outputs(b, digits_test[0]))
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(outputs(a, digits_test[0]), outputs(b, digits_test[0]))


def test_mixed_precision_and_skip(zoo, calibration, digits_test):
    names = ptq.layer_names(fold_batchnorm(zoo["resnet"]))
    bits = {names[0]: 8, names[1]: 2, names[-1]: 8}
    qm = qat.prepare(zoo["resnet"], w_bits=bits, skip=(names[2],), calibration=calibration)
    wq = qm.weight_quantizers()
    assert names[2] not in wq and wq[names[1]].bits == 2 and wq[names[3]].bits == 8  # unnamed: 8
    int_model = qat.convert(qm)
    rows = {r.node: r.runs for r in int_model.ptq_report}
    assert rows[names[2]] == "float (skip)" and rows[names[1]] == "int8"
    assert int_model.qat_bits[names[1]] == 2
    assert _agreement(qm, int_model, digits_test[0]) >= 0.995


def test_convert_in_inference_mode(zoo, calibration, digits_test):
    qm = qat.prepare(zoo["inception"], w_bits=4, calibration=calibration)
    with torch.inference_mode():
        int_model = qat.convert(qm)
        out = int_model(digits_test[0][:16])
    assert out.shape == (16, 10)


def test_bad_arguments_are_named(zoo, calibration):
    m = zoo["mlp"]
    with pytest.raises(ValueError, match="unknown method"):
        qat.prepare(m, method="dorefa", calibration=calibration)
    with pytest.raises(ValueError, match="w_bits"):
        qat.prepare(m, w_bits=9, calibration=calibration)
    with pytest.raises(ValueError, match="a_bits"):
        qat.prepare(m, a_bits=1, calibration=calibration)
    with pytest.raises(ValueError, match="pass calibration"):
        qat.prepare(m, method="lsq")
    with pytest.raises(ValueError, match="names no conv/linear layer"):
        qat.prepare(m, w_bits={"fc9": 4}, calibration=calibration)
    with pytest.raises(ValueError, match="names no conv/linear layer"):
        qat.prepare(m, skip=("fc9",), calibration=calibration)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        qat.prepare("mlp")
    with pytest.raises(TypeError, match="qkit.qat.prepare returned"):
        qat.convert(m)
    with pytest.raises(TypeError, match="float"):
        qat.prepare(m, calibration=torch.zeros(4, 64, dtype=torch.long))


def test_act_quant_unsigned_grid_is_held_in_int8():
    fq = ActQuant(3, "lsq", torch.tensor([0.0, 0.5, 1.0]))
    g = fq.qparams()
    assert (g.qmin, g.qmax, int(g.zero_point)) == (-4, 3, -4)  # [0, 7] shifted by -4
    x = torch.linspace(-1, 3, 101)
    levels = torch.clamp(torch.round(x / g.scale), 0, 7)  # the unsigned grid, written independently
    torch.testing.assert_close(fq(x).detach(), levels * g.scale)


def test_keep_ends_holds_the_first_and_last_layer_and_the_io_at_8_bits(zoo, calibration, digits_test):
    qm = qat.prepare(zoo["mobilenet_v1"], w_bits=2, a_bits=2, method="lsq", keep_ends=8, calibration=calibration)
    names = ptq.layer_names(fold_batchnorm(zoo["mobilenet_v1"]))
    bits = {n: q.bits for n, q in qm.weight_quantizers().items()}
    assert bits[names[0]] == bits[names[-1]] == 8 and {bits[n] for n in names[1:-1]} == {2}
    a = [q.bits for q in qm.act_quantizers().values()]
    assert a[0] == a[-1] == 8 and set(a[1:-1]) == {2}
    int_model = qat.convert(qm)
    assert _agreement(qm, int_model, digits_test[0]) >= 0.995
    with pytest.raises(ValueError, match="keep_ends"):
        qat.prepare(zoo["mlp"], keep_ends=1, calibration=calibration)


def test_finetune_is_for_qat_models(zoo, digits_train):
    with pytest.raises(TypeError, match="qkit.qat.prepare returned"):
        qat.finetune(zoo["mlp"], *digits_train, epochs=1)


def test_finetune_with_a_teacher_trains_on_the_distillation_loss(zoo, digits_train):
    """teacher= is fit with Hinton's loss against the teacher's logits on the same shifted batches."""
    X, y = digits_train[0][:192], digits_train[1][:192]
    teacher = zoo["mlp"]

    def by_hand(logits, labels, inputs):  # alpha·T²·KL + (1 - alpha)·CE, written with torch's kl_div
        with torch.no_grad():
            t = teacher(inputs)
        kl = torch.nn.functional.kl_div(torch.log_softmax(logits / 2.0, 1), torch.log_softmax(t / 2.0, 1),
                                        reduction="batchmean", log_target=True)
        return 0.7 * 4.0 * kl + 0.3 * torch.nn.functional.cross_entropy(logits, labels)

    runs = []
    for kwargs in ({"teacher": teacher, "T": 2.0, "alpha": 0.7}, {"loss_fn": by_hand}, {}):
        qm = qat.prepare(zoo["mlp"], w_bits=4, calibration=X[:64])
        runs.append(qat.finetune(qm, X, y, epochs=2, seed=3, progress=False, **kwargs))
    assert runs[0] == pytest.approx(runs[1], rel=1e-4)  # the same training, formula for formula
    assert runs[0] != pytest.approx(runs[2], rel=1e-2)  # and not plain cross-entropy
    qm = qat.prepare(zoo["mlp"], w_bits=4, calibration=X[:64])
    with pytest.raises(ValueError, match="not both"):
        qat.finetune(qm, X, y, epochs=1, teacher=teacher, loss_fn=by_hand, progress=False)
    with pytest.raises(TypeError, match="teacher must be a torch.nn.Module"):
        qat.finetune(qm, X, y, epochs=1, teacher="mlp", progress=False)
    with pytest.raises(ValueError, match="T"):
        qat.finetune(qm, X, y, epochs=1, teacher=teacher, T=0.0, progress=False)
