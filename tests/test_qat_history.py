"""qkit.qat.history: the recorder runs qat.finetune's recipe exactly, and what it records is the grids."""

from __future__ import annotations

import copy

import pytest
import torch

from qkit import qat
from qkit.qat.history import History, finetune_with_history, snapshot
from qkit.train import evaluate

pytestmark = pytest.mark.lesson06


@pytest.fixture(scope="module")
def small(digits_train, calibration):
    X, y = digits_train
    return X[:320], y[:320], calibration


def _prepared(zoo, calibration, method, bits=3, **kw):
    return qat.prepare(zoo["mlp"], w_bits=bits, a_bits=bits, method=method, calibration=calibration, **kw)


@pytest.mark.parametrize("method", ["minmax", "lsq", "pact"])
def test_same_training_as_finetune(zoo, small, method):
    """Recording only reads: same parameters, buffers and epoch losses as qat.finetune, bit for bit."""
    X, y, cal = small
    a, b = _prepared(zoo, cal, method), _prepared(zoo, cal, method)
    losses = qat.finetune(a, X, y, epochs=2, seed=3, progress=False)
    h = finetune_with_history(b, X, y, epochs=2, seed=3, every=1, progress=False, test=(X[:50], y[:50]))
    assert h.epoch_loss == losses
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert not b.training


def test_records_what_the_quantizers_hold(zoo, small):
    X, y, cal = small
    m = _prepared(zoo, cal, "lsq", bits=4)
    init = {n: q.scale.detach().abs().item() for n, q in m.act_quantizers().items()}
    h = finetune_with_history(m, X, y, epochs=2, every=2, progress=False)
    n_steps = 2 * 5  # 320 images, 64 a batch
    assert h.steps == list(range(0, n_steps + 1, 2))
    assert len(h.loss) == n_steps
    for name, q in m.act_quantizers().items():
        row = h.act[name]
        assert row["method"] == "lsq" and len(row["step"]) == len(h.steps)
        assert row["step"][0] == pytest.approx(init[name], rel=1e-6)        # before any update
        assert row["step"][-1] == pytest.approx(q.scale.detach().abs().item(), rel=1e-6)  # after the last
    for name, wq in m.weight_quantizers().items():
        last = h.weight[name]["step"][-1]
        assert torch.allclose(last, wq.scale.detach().abs().reshape(-1))
        assert torch.allclose(h.weight[name]["top"][-1], last * 7)           # 4-bit narrow: qmax 7


def test_pact_top_is_alpha_and_minmax_freezes(zoo, small):
    X, y, cal = small
    m = _prepared(zoo, cal, "pact", bits=3)
    h = finetune_with_history(m, X, y, epochs=1, every=1, progress=False)
    relu = m.act_quantizers()["relu"]
    assert relu.method == "pact"
    assert h.act["relu"]["top"][-1] == pytest.approx(relu.alpha.item(), rel=1e-5)
    assert h.act["relu"]["step"][-1] == pytest.approx(relu.alpha.item() / 7, rel=1e-5)

    m = _prepared(zoo, cal, "minmax", bits=3, ema_steps=4)  # calibration counts as one
    h = finetune_with_history(m, X, y, epochs=1, every=1, progress=False)
    q = m.act_quantizers()["relu"]
    lo, hi = min(q.lo.item(), 0.0), max(q.hi.item(), 0.0)
    steps = h.act["relu"]["step"]
    assert steps[-1] == pytest.approx((hi - lo) / 7, rel=1e-5)   # signed 3-bit affine grid: 7 steps
    assert steps[1] != steps[3] and len(set(steps[3:])) == 1     # batches 1-3 move it, then frozen


def test_epoch_accuracy_and_relative(zoo, small, digits_test):
    X, y, cal = small
    Xt, yt = digits_test
    m = _prepared(zoo, cal, "lsq")
    h = finetune_with_history(m, X, y, epochs=2, every=5, test=(Xt, yt), progress=False)
    assert len(h.epoch_acc) == 2 and h.epoch_acc[-1] == evaluate(m, Xt, yt)
    rel = h.relative("act", "relu")
    assert rel[0] == 1.0 and rel[-1] == pytest.approx(h.act["relu"]["step"][-1] / h.act["relu"]["step"][0])
    w = h.relative("weight", "fc1")
    ratios = h.weight["fc1"]["step"][-1].double() / h.weight["fc1"]["step"][0].double()
    assert w[-1] == pytest.approx(ratios.mean().item())
    with pytest.raises(ValueError, match="recorded"):
        h.relative("act", "nope")
    with pytest.raises(ValueError, match="'act' or 'weight'"):
        h.relative("bias", "relu")


def test_snapshot_does_not_train(zoo, calibration):
    m = _prepared(zoo, calibration, "lsq")
    before = copy.deepcopy(m.state_dict())
    acts, weights = snapshot(m)
    assert set(acts) == set(m.act_quantizers()) and set(weights) == set(m.weight_quantizers())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_errors(zoo, small):
    X, y, cal = small
    with pytest.raises(TypeError, match="qkit.qat.prepare"):
        finetune_with_history(zoo["mlp"], X, y)
    m = _prepared(zoo, cal, "lsq")
    with pytest.raises(ValueError, match="every"):
        finetune_with_history(m, X, y, every=0)
    with pytest.raises(ValueError, match="same"):
        finetune_with_history(m, X, y[:10])
    with pytest.raises(TypeError, match="pair"):
        finetune_with_history(m, X, y, test=X)
    assert isinstance(History(), History)
