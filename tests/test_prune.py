"""qkit.prune (unstructured): magnitude pruning, masks that survive training and QAT, schedule, sensitivity."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from qkit import prune, qat
from qkit.train import evaluate, fit

pytestmark = pytest.mark.lesson08


def _all_weights(model):
    return [(name, m.weight) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _brute_force_global(model, s):
    """The pruned weights by hand: a Python list of (|w|, layer, flat index), sorted, the first k zeroed."""
    entries = []
    for li, (_, w) in enumerate(_all_weights(model)):
        for j, v in enumerate(w.detach().reshape(-1).tolist()):
            entries.append((abs(v), li, j))
    entries.sort(key=lambda e: e[0])  # Python's sort is stable: ties keep (layer, index) order
    k = round(s * len(entries))
    out = [w.detach().clone().reshape(-1) for _, w in _all_weights(model)]
    for _, li, j in entries[:k]:
        out[li][j] = 0.0
    return [o.view(w.shape) for o, (_, w) in zip(out, _all_weights(model))]


def _small_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


@pytest.mark.parametrize("s", [0.0, 0.37, 0.9, 1.0])
def test_global_matches_brute_force(s):
    model = _small_model()
    pruned = prune.magnitude(model, s)
    for got, want in zip((w for _, w in _all_weights(pruned)), _brute_force_global(model, s)):
        assert torch.equal(got.detach(), want)
    n = sum(w.numel() for _, w in _all_weights(model))
    assert prune.sparsity(pruned) == round(s * n) / n
    assert prune.sparsity(model) == 0.0  # the original is untouched


def test_layer_scope_prunes_each_layer_alone():
    model = _small_model()
    pruned = prune.magnitude(model, 0.75, scope="layer")
    for (_, w0), (_, w1) in zip(_all_weights(model), _all_weights(pruned)):
        k = round(0.75 * w0.numel())
        assert int((w1 == 0).sum()) == k
        kept = w1.detach() != 0  # every kept |w| >= every pruned |w|
        assert w0.detach().abs()[kept].min() >= w0.detach().abs()[~kept].max()
        assert torch.equal(w1.detach()[kept], w0.detach()[kept])


def test_global_prunes_the_small_layer_less():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(0.01)
        model[1].weight.copy_(torch.arange(1.0, 17.0).view(4, 4))
    pruned = prune.magnitude(model, 0.5)
    assert prune.layer_sparsity(pruned) == {"0": 1.0, "1": 0.0}


def test_ties_prune_exactly_k():
    layer = nn.Linear(10, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    assert int((prune.magnitude(layer, 0.3).weight == 0).sum()) == 3


@pytest.mark.parametrize("bad, error", [(1.5, ValueError), (-0.1, ValueError), ("0.5", TypeError), (True, TypeError)])
def test_bad_sparsity(bad, error):
    with pytest.raises(error, match="sparsity"):
        prune.magnitude(_small_model(), bad)


def test_bad_scope_and_layers():
    with pytest.raises(ValueError, match="scope"):
        prune.magnitude(_small_model(), 0.5, scope="channel")
    with pytest.raises(ValueError, match="not conv/linear"):
        prune.magnitude(_small_model(), 0.5, layers=["1"])
    with pytest.raises(TypeError, match="nn.Module"):
        prune.magnitude("model", 0.5)


def test_masks_survive_fit_without_the_hook_they_do_not(digits_train):
    X, y = digits_train
    model = prune.magnitude(_small_model(), 0.8)
    zeros = [w.detach() == 0 for _, w in _all_weights(model)]
    plain = copy.deepcopy(model)
    fit(plain, X[:256], y[:256], epochs=1, progress=False)  # no hook: Adam moves the zeros
    assert prune.sparsity(plain) < 0.1
    before = copy.deepcopy(model)
    prune.finetune(model, X[:256], y[:256], epochs=1, progress=False)
    assert prune.sparsity(model) == prune.sparsity(before)
    for z, (_, w) in zip(zeros, _all_weights(model)):
        assert torch.equal(w.detach()[z], torch.zeros(int(z.sum())))  # the same positions, exactly 0
        assert (w.detach()[~z] != 0).all()
    assert not torch.equal(_all_weights(model)[0][1], _all_weights(before)[0][1])  # it did train


def test_finetune_recovers_accuracy(zoo, digits_train, digits_test):
    X, y = digits_train
    Xt, yt = digits_test
    pruned = prune.magnitude(zoo["mlp"], 0.9)
    before = evaluate(pruned, Xt, yt)
    prune.finetune(pruned, X, y, epochs=4, progress=False)
    assert evaluate(pruned, Xt, yt) > before + 0.05
    assert abs(prune.sparsity(pruned) - 0.9) < 1e-4


def test_zeros_survive_qat_prepare_finetune_convert(zoo, digits_train, calibration):
    X, y = digits_train
    pruned = prune.magnitude(zoo["resnet"], 0.8)
    qm = qat.prepare(pruned, calibration=calibration)
    # BN folding scales each output channel: the zeros are where they were, layer by layer
    float_zeros = {n: ~keep for n, keep in prune.masks(pruned).items()}  # masks() is "weight != 0"
    for n, keep in prune.masks(qm).items():
        assert torch.equal(~keep, float_zeros[n.removeprefix("graph_module.")])
    qat.finetune(qm, X[:512], y[:512], epochs=1, progress=False, on_step=prune.keep_masks(qm))
    for n, keep in prune.masks(qm).items():
        assert torch.equal(~keep, float_zeros[n.removeprefix("graph_module.")])
    integer = qat.convert(qm)
    for n, m in integer.named_modules():
        if hasattr(m, "q_w"):
            assert int((m.q_w[float_zeros[n]] != 0).sum()) == 0  # every pruned weight is the integer 0


def test_polynomial_against_the_formula():
    s_i, s_f, t0, n, dt = 0.1, 0.95, 20, 7, 5
    for t in range(0, 80):
        if t < t0:
            want = s_i
        elif t > t0 + n * dt:
            want = s_f
        else:
            want = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3
        assert prune.polynomial(t, s_f=s_f, n=n, dt=dt, s_i=s_i, t0=t0) == pytest.approx(want, abs=1e-12)


def test_gradual_reaches_the_sparsity_on_schedule(zoo, digits_train):
    X, y = digits_train
    model = copy.deepcopy(zoo["mlp"])
    record = []
    prune.gradual(model, X[:640], y[:640], sparsity=0.9, epochs=2, dt=2, progress=False, record=record)
    n = sum(w.numel() for _, w in _all_weights(model))
    assert prune.sparsity(model) == round(0.9 * n) / n
    sparsities = [s for _, s in record]
    assert sparsities == sorted(sparsities) and sparsities[-1] == pytest.approx(0.9)
    steps = [t for t, _ in record]
    assert steps == list(range(2, 2 * len(steps) + 1, 2))  # every dt steps, over half of the 20 steps
    assert steps[-1] == 10


def test_sensitivity_by_hand(zoo, digits_test):
    Xt, yt = digits_test
    model = zoo["mlp"]
    state = copy.deepcopy(model.state_dict())
    got = prune.sensitivity(model, Xt, yt, (0.5, 0.99))
    for name in ("fc1", "fc2"):
        for s, acc in zip((0.5, 0.99), got[name]):
            alone = prune.magnitude(model, s, layers=[name])
            assert acc == evaluate(alone, Xt, yt)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])  # restored
    assert got["fc1"][1] < got["fc1"][0]


def test_sparse_file_round_trip_float_and_int8(zoo, calibration, digits_test, tmp_path):
    """A 90 % sparse model saved as bitmask + values reloads bit for bit; the file shrinks by the formula."""
    from qkit import measure, ptq

    Xt, _ = digits_test
    pruned = prune.magnitude(zoo["resnet"], 0.9)
    for model in (pruned, ptq.convert(pruned, "int8", calibration)):
        sparse = prune.to_sparse(model)
        assert torch.equal(sparse(Xt[:64]), model(Xt[:64]))
        path = tmp_path / "sparse.pt"
        torch.save(sparse.state_dict(), path)
        again = prune.load_sparse(model, torch.load(path, weights_only=True))
        assert torch.equal(again(Xt[:64]), model(Xt[:64]))
        saved = 0
        for name in sparse.sparse_layers:
            m = sparse.get_submodule(name)
            attr = m.sparse_attributes[0]
            w = getattr(m, attr)
            n, nnz = w.numel(), int((w != 0).sum())
            assert m._buffers[attr + "_bitmask"].numel() == -(-n // 8)  # ceil(n / 8) bytes, written out
            assert m._buffers[attr + "_values"].numel() == nnz
            saved += n * w.element_size() - (-(-n // 8) + nnz * w.element_size())
        assert saved > 0 and measure.model_size(sparse) < measure.model_size(model) - saved / 2


def test_a_weight_that_would_not_shrink_stays_dense():
    layer = nn.Linear(64, 1, bias=False)  # 2 of 64 float32 weights zero: the bitmask costs more than they save
    with torch.no_grad():
        layer.weight[0, :2] = 0.0
    assert prune.to_sparse(layer).sparse_layers == []
    assert prune.to_sparse(prune.magnitude(layer, 0.5)).sparse_layers == [""]
