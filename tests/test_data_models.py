"""The shipped digits data, the model zoo, and the fit/evaluate loops."""

import copy
from collections import Counter

import numpy as np
import pytest
import torch

from qkit import models, train
from qkit.data import digits

SIZES = {"train": 1438, "test": 359, "all": 1797}


def _rows(X, y):
    """Each sample as a hashable (pixels, label) key; pixels are counts 0..16 / 16."""
    pix = np.rint(X.numpy().reshape(len(X), -1) * 16).astype(np.uint8)
    return [p.tobytes() + bytes([int(label)]) for p, label in zip(pix, y.numpy())]


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_digits_split_shapes_dtypes_ranges(split):
    X, y = digits(split)
    n = SIZES[split]
    assert X.shape == (n, 1, 8, 8) and X.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert X.max() == 1.0  # scaled by 16, not by the max of some subset
    assert torch.equal(X * 16, torch.round(X * 16))  # pixels are the counts 0..16 / 16
    assert set(y.unique().tolist()) == set(range(10))


def test_default_split_is_train():
    X, y = digits()
    assert len(X) == SIZES["train"]


def test_split_is_a_stratified_partition():
    Xa, ya = digits("all")
    Xr, yr = digits("train")
    Xt, yt = digits("test")
    rows_a, rows_r, rows_t = _rows(Xa, ya), _rows(Xr, yr), _rows(Xt, yt)
    assert not set(rows_r) & set(rows_t)  # disjoint
    assert Counter(rows_r) + Counter(rows_t) == Counter(rows_a)  # together they are everything
    all_counts, test_counts = Counter(ya.tolist()), Counter(yt.tolist())
    for c in range(10):
        assert abs(test_counts[c] - 0.2 * all_counts[c]) <= 1, (c, test_counts[c], all_counts[c])


def test_split_is_fixed():
    X1, y1 = digits("test")
    X2, y2 = digits("test")
    assert torch.equal(X1, X2) and torch.equal(y1, y2)


@pytest.mark.parametrize("bad", ["val", "Train", "", None, 0])
def test_bad_split(bad):
    with pytest.raises(ValueError, match="split must be one of"):
        digits(bad)


def test_zoo_names_and_pretrained_mlp_accuracy(digits_test):
    assert "mlp" in models.names()
    assert models.names() == sorted(models.names())
    model = models.load("mlp")
    assert not model.training
    Xt, yt = digits_test
    acc = train.evaluate(model, Xt, yt)
    assert acc >= 0.95
    # evaluate agrees with accuracy computed directly
    with torch.no_grad():
        direct = (model(Xt).argmax(dim=1) == yt).double().mean().item()
    assert acc == pytest.approx(direct, abs=1e-12)
    # an untrained model is near chance, so the shipped weights do the work
    torch.manual_seed(0)
    assert train.evaluate(models.load("mlp", pretrained=False), Xt, yt) < 0.5


@pytest.mark.parametrize("name", ["resnet18", "MLP", ""])
def test_unknown_model(name):
    with pytest.raises(ValueError, match="unknown model"):
        models.load(name)
    with pytest.raises(ValueError, match="unknown model"):
        models.build(name)


def _train_small(train_split, seed, fit_seed=0, epochs=5):
    X, y = train_split[0][:200], train_split[1][:200]
    torch.manual_seed(seed)
    model = models.build("mlp")
    losses = train.fit(model, X, y, epochs=epochs, lr=1e-2, batch_size=32, seed=fit_seed, progress=False)
    return model, losses


def test_fit_reduces_loss_and_is_deterministic(digits_train):
    m1, l1 = _train_small(digits_train, seed=0)
    m2, l2 = _train_small(digits_train, seed=0)
    assert len(l1) == 5 and all(np.isfinite(l1))
    assert l1[-1] < 0.5 * l1[0]
    assert l1 == l2
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not m1.training  # fit leaves the model in eval mode
    # the fit seed matters (batch order), so the equality above is not vacuous
    m3, _ = _train_small(digits_train, seed=0, fit_seed=1)
    assert not all(torch.equal(s1[k], m3.state_dict()[k]) for k in s1)


def test_evaluate_restores_training_mode(digits_test):
    model = models.build("mlp").train()
    X, y = digits_test
    train.evaluate(model, X[:10], y[:10])
    assert model.training


def test_fit_and_evaluate_reject_mismatched_data(digits_test):
    model = models.build("mlp")
    X, y = digits_test
    for bad_X, bad_y in [(X[:10], y[:9]), (X[:0], y[:0])]:
        with pytest.raises(ValueError, match="same, non-zero number of samples"):
            train.fit(model, bad_X, bad_y, epochs=1, progress=False)
        with pytest.raises(ValueError, match="same, non-zero number of samples"):
            train.evaluate(model, bad_X, bad_y)
    with pytest.raises(TypeError, match="X and y must be tensors"):
        train.evaluate(model, X.numpy(), y)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        train.fit(model, X, y, epochs=0, progress=False)


def test_fit_hooks_groups_and_loss_fn(digits_train):
    """on_step / on_epoch see every step and epoch; param groups and loss_fn reach the optimizer and the loss."""
    X, y = digits_train[0][:96], digits_train[1][:96]
    torch.manual_seed(0)
    a = models.build("mlp")
    b = copy.deepcopy(a)
    steps, epochs, seen = [], [], []
    la = train.fit(a, X, y, epochs=2, batch_size=32, progress=False, on_step=lambda s, loss: steps.append((s, loss)),
                   on_epoch=epochs.append)
    assert [s for s, _ in steps] == list(range(1, 7)) and epochs == [1, 2]
    assert la[0] == pytest.approx(sum(loss for _, loss in steps[:3]) / 3)  # equal batches: the epoch mean

    def ce(out, labels, inputs):  # cross-entropy by hand: the same training as the default
        seen.append(inputs.shape)
        return -torch.log_softmax(out, 1).gather(1, labels[:, None]).mean()

    lb = train.fit(b, X, y, epochs=2, batch_size=32, progress=False, loss_fn=ce,
                   params=[{"params": list(b.parameters()), "lr": 1e-2}])
    assert seen[0] == (32, 1, 8, 8)
    assert lb == pytest.approx(la, rel=1e-5)
    c = copy.deepcopy(b)
    train.fit(c, X, y, epochs=1, batch_size=32, progress=False, params=[{"params": list(c.parameters()), "lr": 0.0}])
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), c.parameters()))  # a group's lr is used
