"""qkit.distill: the loss against an independent formula, its gradient against the closed form, the trainer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qkit import distill
from qkit.train import fit

pytestmark = pytest.mark.lesson09


def _softmax_rows(rows, T):
    """Plain-Python softmax of each row of floats at temperature T (max subtracted)."""
    out = []
    for r in rows:
        m = max(r)
        e = [math.exp((v - m) / T) for v in r]
        z = sum(e)
        out.append([v / z for v in e])
    return out


def _loss_by_hand(s, t, labels, T, alpha):
    """alpha·T²·KL(p_t‖p_s) + (1−alpha)·CE, written out in Python floats from the definitions."""
    ps, pt, p1 = _softmax_rows(s, T), _softmax_rows(t, T), _softmax_rows(s, 1.0)
    n = len(s)
    kl = sum(sum(a * (math.log(a) - math.log(b)) for a, b in zip(pt[i], ps[i]) if a > 0) for i in range(n)) / n
    ce = -sum(math.log(p1[i][labels[i]]) for i in range(n)) / n
    return alpha * T * T * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 0.0), (8.0, 1.0), (0.5, 0.3)])
def test_loss_matches_the_definition(T, alpha):
    g = torch.Generator().manual_seed(int(T * 10 + alpha * 100))
    s = torch.randn(7, 10, generator=g, dtype=torch.float64) * 3
    t = torch.randn(7, 10, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 10, (7,), generator=g)
    got = distill.loss(s, t, y, T=T, alpha=alpha).item()
    want = _loss_by_hand(s.tolist(), t.tolist(), y.tolist(), T, alpha)
    assert got == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_loss_against_torch_kl_div():
    """A second, independent route: torch's kl_div (batchmean) and cross_entropy."""
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    T, alpha = 3.0, 0.7
    kl = nn.functional.kl_div(torch.log_softmax(s / T, 1), torch.log_softmax(t / T, 1), reduction="batchmean",
                              log_target=True)
    want = alpha * T ** 2 * kl + (1 - alpha) * nn.functional.cross_entropy(s, y)
    assert distill.loss(s, t, y, T=T, alpha=alpha).item() == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (10.0, 0.25)])
def test_gradient_is_the_closed_form(T, alpha):
    """d loss/d s = alpha·T·(softmax(s/T) − softmax(t/T))/N + (1 − alpha)·(softmax(s) − onehot)/N."""
    g = torch.Generator().manual_seed(5)
    n = 6
    s = (torch.randn(n, 10, generator=g, dtype=torch.float64) * 2).requires_grad_()
    t = torch.randn(n, 10, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, 10, (n,), generator=g)
    distill.loss(s, t, y, T=T, alpha=alpha).backward()
    ps = torch.tensor(_softmax_rows(s.tolist(), T), dtype=torch.float64)
    pt = torch.tensor(_softmax_rows(t.tolist(), T), dtype=torch.float64)
    p1 = torch.tensor(_softmax_rows(s.tolist(), 1.0), dtype=torch.float64)
    onehot = torch.zeros(n, 10, dtype=torch.float64)
    onehot[torch.arange(n), y] = 1
    want = alpha * T * (ps - pt) / n + (1 - alpha) * (p1 - onehot) / n
    torch.testing.assert_close(s.grad, want, rtol=1e-10, atol=1e-12)


def test_gradient_by_finite_differences():
    g = torch.Generator().manual_seed(6)
    s = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 5, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 4, 2])
    assert torch.autograd.gradcheck(lambda v: distill.loss(v, t, y, T=3.0, alpha=0.6), (s,))


def test_teacher_gets_no_gradient_and_equal_logits_leave_only_ce():
    s = torch.randn(4, 10, requires_grad=True)
    t = s.detach().clone().requires_grad_()
    y = torch.tensor([1, 2, 3, 4])
    value = distill.loss(s, t, y, T=4.0, alpha=0.9)
    value.backward()
    assert t.grad is None
    assert value.item() == pytest.approx(0.1 * nn.functional.cross_entropy(s, y).item(), rel=1e-5)


def test_T_squared_keeps_the_soft_gradient_on_one_scale():
    """Hinton et al.'s reason for T²: at large T the soft gradient tends to (s − t)/(K·N), whatever T."""
    g = torch.Generator().manual_seed(7)
    s0 = torch.randn(2, 10, generator=g, dtype=torch.float64)
    t = torch.randn(2, 10, generator=g, dtype=torch.float64)
    t = t - t.mean(1, keepdim=True)
    s0 = s0 - s0.mean(1, keepdim=True)  # zero-mean logits: the high-T limit is exact up to O(1/T²)
    limit = (s0 - t) / (10 * 2)
    for T in (50.0, 200.0):
        s = s0.clone().requires_grad_()
        distill.loss(s, t, torch.zeros(2, dtype=torch.int64), T=T, alpha=1.0).backward()
        torch.testing.assert_close(s.grad, limit, rtol=0.05, atol=1e-4)


def test_soft_targets_flatten_with_T():
    t = torch.tensor([[5.0, 1.0, 0.0]])
    p1, p4 = distill.soft_targets(t, 1.0), distill.soft_targets(t, 4.0)
    e = [math.exp(v / 4) for v in (5.0, 1.0, 0.0)]
    torch.testing.assert_close(p4[0], torch.tensor([v / sum(e) for v in e]))
    assert p4[0, 0] < p1[0, 0] and p4[0, 2] > p1[0, 2]


@pytest.mark.parametrize("kw,err,piece", [
    ({"T": 0.0}, ValueError, "T must be > 0"),
    ({"alpha": 1.5}, ValueError, "alpha must be in [0, 1]"),
    ({"T": "4"}, TypeError, "T must be a real number"),
])
def test_bad_keywords_are_named(kw, err, piece):
    s = torch.zeros(2, 3)
    with pytest.raises(err, match=piece.replace("[", r"\[").replace("]", r"\]")):
        distill.loss(s, s, torch.tensor([0, 1]), **kw)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="same shape"):
        distill.loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels must be int64"):
        distill.loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="2-d"):
        distill.loss(torch.zeros(3), torch.zeros(3), torch.tensor([0]))


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(48, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (48,), generator=g)
    return X, y


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_alpha_zero_is_the_scratch_run_bit_for_bit(schedule):
    """Same seed, same batches, same schedule: with alpha = 0 the loss is CE, so train == fit exactly."""
    X, y = _tiny_data()
    torch.manual_seed(1)
    teacher = distill.student(16)
    torch.manual_seed(2)
    a = distill.student(8)
    b = distill.student(8)
    c = distill.student(8)
    b.load_state_dict(a.state_dict())
    c.load_state_dict(a.state_dict())
    distill.train(a, teacher, X, y, T=4.0, alpha=0.0, epochs=3, lr=1e-2, batch_size=16, seed=9, progress=False,
                  schedule=schedule)
    fit(b, X, y, epochs=3, lr=1e-2, batch_size=16, weight_decay=1e-4, seed=9, progress=False, schedule=schedule)
    other = "constant" if schedule == "cosine" else "cosine"
    fit(c, X, y, epochs=3, lr=1e-2, batch_size=16, weight_decay=1e-4, seed=9, progress=False, schedule=other)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))  # the schedule is passed on


def test_train_moves_the_student_towards_the_teacher_and_leaves_the_teacher_alone():
    X, y = _tiny_data()
    torch.manual_seed(1)
    teacher = distill.student(16)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    torch.manual_seed(2)
    s = distill.student(16)
    with torch.no_grad():
        gap0 = distill.loss(s(X), teacher(X), y, T=2.0, alpha=1.0).item()
    teacher.train()
    distill.train(s, teacher, X, y, T=2.0, alpha=1.0, epochs=20, lr=1e-2, seed=0, progress=False)
    with torch.no_grad():
        gap1 = distill.loss(s(X), teacher(X), y, T=2.0, alpha=1.0).item()
    assert gap1 < 0.2 * gap0
    assert teacher.training  # its mode is restored
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k])


def test_student_size():
    assert sum(p.numel() for p in distill.student(32).parameters()) == 64 * 32 + 32 + 32 * 10 + 10


def test_per_class_keeps_the_first_k_of_each_class_in_order():
    y = torch.tensor([3, 1, 3, 3, 1, 0, 1])
    X = torch.arange(7.0).reshape(7, 1)
    Xs, ys = distill.per_class(X, y, 2)
    assert Xs.flatten().tolist() == [0.0, 1.0, 2.0, 4.0, 5.0]  # the third 3 and the third 1 are left out
    assert ys.tolist() == [3, 1, 3, 1, 0]
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        distill.per_class(X, y, 0)


def test_epochs_for_gives_at_least_the_steps():
    for n in (1, 31, 32, 33, 100, 1079):
        e = distill.epochs_for(n, 800, 32)
        per_epoch = -(-n // 32)
        assert e * per_epoch >= 800 > (e - 1) * per_epoch


def test_paired_gain_against_statistics():
    import statistics

    a, b = [0.81, 0.79, 0.86, 0.84, 0.80], [0.75, 0.77, 0.80, 0.79, 0.78]
    d = [u - v for u, v in zip(a, b)]
    mean, se = distill.paired_gain(a, b)
    assert mean == pytest.approx(statistics.fmean(d)) and se == pytest.approx(statistics.stdev(d) / math.sqrt(5))
    with pytest.raises(ValueError, match="same number"):
        distill.paired_gain([0.1, 0.2], [0.1])
