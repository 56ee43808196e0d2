"""qkit.nas (lesson 10): the space, the networks, the proxy's rank correlation, both searches, the Pareto front.

Oracles: parameter counts from the layer shapes written out here; Spearman's closed form
1 − 6Σd²/(n(n²−1)) (no ties) and a Pearson of average ranks computed by brute force; the
Pareto front by pairwise domination; properties every search must have (constraints, budget,
the aging window of Real et al.'s Algorithm 1) rather than the code's own outputs.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch

from qkit import nas, ptq
from qkit.nas import SPACE, Arch, Space, Trial
from qkit.nas.space import CHOICES

pytestmark = pytest.mark.lesson10


def params_by_hand(a: Arch) -> int:
    w, k = a.width, a.kernel
    conv = w * w * k * k + 2 * w  # a k×k conv (no bias) and its BN's gamma, beta
    block = {"plain": conv, "separable": (w * k * k + 2 * w) + (w * w + 2 * w), "residual": 2 * conv}[a.block]
    return (w * k * k + 2 * w) + a.depth * block + (10 * w + 10)


# ---- the space ---------------------------------------------------------------------------

def test_the_space_is_the_product_of_its_lists():
    archs = SPACE.archs()
    assert len(archs) == len(set(archs)) == SPACE.size == 3 * 4 * 5 * 2
    assert set(archs) == {Arch(*c) for c in itertools.product(SPACE.block, SPACE.depth, SPACE.width, SPACE.kernel)}
    assert all(Arch.parse(a.key) == a and a in SPACE for a in archs)
    assert Arch("plain", 7, 8, 3) not in SPACE and "plain-d1-w8-k3" not in SPACE


@pytest.mark.parametrize("key", ["plain-2-16-3", "plain-d2-w16", "plain-d2-w16-kx", None, "d2-plain-w16-k3"])
def test_a_bad_key_is_a_value_error(key):
    with pytest.raises(ValueError, match="looks like 'plain-d2-w16-k3'"):
        Arch.parse(key)


@pytest.mark.parametrize("kw, piece", [({"kernel": (3, 4)}, "odd"), ({"block": ("dense",)}, "Space.block"),
                                       ({"width": ()}, "non-empty"), ({"depth": (1, 1)}, "distinct"),
                                       ({"width": (0, 8)}, "ints >= 1")])
def test_a_bad_space_is_refused(kw, piece):
    with pytest.raises(ValueError, match=piece):
        Space(**kw)


def test_sampling_is_uniform_over_the_space():
    gen = torch.Generator().manual_seed(1)
    counts = Counter(SPACE.sample(gen) for _ in range(12_000))
    assert set(counts) == set(SPACE.archs())
    expected = 12_000 / SPACE.size  # 100 each
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 119 + 4 * math.sqrt(2 * 119)  # 119 degrees of freedom: mean 119, sd ~15


def test_a_mutation_changes_exactly_one_choice_and_reaches_every_neighbour():
    gen = torch.Generator().manual_seed(0)
    parent = Arch("residual", 2, 16, 3)
    children = Counter(SPACE.mutate(parent, gen) for _ in range(3000))
    neighbours = {Arch(**{**parent.__dict__, n: v}) for n in CHOICES for v in getattr(SPACE, n)} - {parent}
    assert set(children) == neighbours  # 2 blocks + 3 depths + 4 widths + 1 kernel = 10
    assert len(neighbours) == 10
    with pytest.raises(ValueError, match="in the space"):
        SPACE.mutate(Arch("plain", 9, 16, 3), gen)


# ---- the networks ------------------------------------------------------------------------

def test_parameter_counts_follow_the_layer_shapes():
    for a in SPACE.archs():
        assert nas.count_params(a) == params_by_hand(a), a.key


def test_every_block_type_runs_and_converts_to_int8(digits_train, digits_test, calibration):
    X, y = digits_train
    Xt, _ = digits_test
    for block in nas.BLOCKS:
        arch = Arch(block, 2, 8, 3)
        model = nas.train_arch(arch, X[:512], y[:512], {"epochs": 2, "lr": 1e-2}, seed=0).eval()
        assert model(Xt[:5]).shape == (5, 10)
        int8 = ptq.convert(model, "int8", calibration)  # every conv is followed by its BN: foldable
        agree = (int8(Xt).argmax(1) == model(Xt).argmax(1)).float().mean().item()
        assert agree >= 0.9, (block, agree)


def test_the_residual_block_adds_its_input():
    torch.manual_seed(0)
    block = nas.build(Arch("residual", 1, 8, 3)).blocks[0].eval()
    with torch.no_grad():
        block.conv2.weight.zero_()  # the branch now gives bn2's bias (beta = 0): out = relu(x)
        x = torch.randn(2, 8, 8, 8)
        assert torch.equal(block(x), torch.relu(x))


def test_training_is_reproducible_from_its_seed(digits_train):
    X, y = digits_train
    arch = Arch("separable", 1, 8, 3)
    a, b = (nas.train_arch(arch, X[:256], y[:256], {"epochs": 1}, seed=3) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_proxy_is_scored_on_the_held_out_slice_only():
    from qkit.data import digits

    X, y = digits("train")
    Xf, yf, Xh, yh = nas.split()
    assert len(Xf) + len(Xh) == len(X) and len(Xh) == 359
    assert torch.equal(torch.cat([Xf, Xh]), X) and torch.equal(torch.cat([yf, yh]), y)
    Xt, _ = digits("test")
    flat = {tuple(x.flatten().tolist()) for x in Xt}
    assert len(flat & {tuple(x.flatten().tolist()) for x in Xh}) <= 3  # digits has a few duplicate images


# ---- Spearman ------------------------------------------------------------------------------

def test_spearman_matches_the_closed_form_without_ties():
    gen = np.random.default_rng(0)
    for n in (2, 3, 7, 20):
        for _ in range(20):
            a, b = gen.permutation(n) + 0.5, gen.normal(size=n)
            ra, rb = np.argsort(np.argsort(a)) + 1, np.argsort(np.argsort(b)) + 1
            rho = 1 - 6 * ((ra - rb) ** 2).sum() / (n * (n * n - 1))
            assert nas.spearman(a, b) == pytest.approx(rho, abs=1e-9)


def test_spearman_with_ties_is_pearson_of_average_ranks():
    a, b = [0.9, 0.5, 0.5, 0.7, 0.5, 0.1], [3, 1, 2, 2, 5, 0]

    def avg_rank(v):  # brute force: 1 + (number smaller) + (number equal - 1) / 2
        return [1 + sum(u < x for u in v) + (sum(u == x for u in v) - 1) / 2 for x in v]

    ra, rb = np.array(avg_rank(a)), np.array(avg_rank(b))
    assert nas.spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1], abs=1e-12)
    assert nas.spearman(a, b) == nas.spearman(np.exp(a), np.array(b) ** 3)  # only the order counts


def test_spearman_refuses_what_has_no_ranking():
    with pytest.raises(ValueError, match="as long"):
        nas.spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="not all equal"):
        nas.spearman([1, 1, 1], [1, 2, 3])


# ---- the searches -------------------------------------------------------------------------

def table_estimate(a: Arch) -> float:
    """A deterministic stand-in for the proxy, peaked at residual-d3-w24-k5 (no training)."""
    return (1.0 - 0.05 * abs(a.depth - 3) - 0.002 * abs(a.width - 24) - 0.03 * (a.kernel != 5)
            - 0.06 * (a.block != "residual"))


def fake_latency(a: Arch) -> float:
    return a.depth * a.width * a.kernel / 100


class Counting:
    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, arch):
        self.calls.append(arch)
        return self.fn(arch)


@pytest.mark.parametrize("strategy", nas.STRATEGIES)
def test_a_search_spends_its_budget_within_the_constraints(strategy):
    est = Counting(table_estimate)
    found = nas.search(SPACE, strategy=strategy, trials=25, max_params=5000, max_latency_ms=2.0, seed=4,
                       estimate=est, latency=fake_latency)
    assert [t.index for t in found] == list(range(25)) and len(est.calls) == 25  # infeasible ones cost nothing
    for t in found:
        assert t.params == params_by_hand(t.arch) <= 5000 and t.latency_ms == fake_latency(t.arch) <= 2.0
        assert t.estimate == table_estimate(t.arch)
    again = nas.search(SPACE, strategy=strategy, trials=25, max_params=5000, max_latency_ms=2.0, seed=4,
                       estimate=table_estimate, latency=fake_latency)
    other = nas.search(SPACE, strategy=strategy, trials=25, max_params=5000, max_latency_ms=2.0, seed=5,
                       estimate=table_estimate, latency=fake_latency)
    assert again == found and other != found


def test_random_search_draws_uniformly_from_the_feasible_architectures():
    feasible = [a for a in SPACE.archs() if params_by_hand(a) <= 3000]
    counts = Counter(t.arch for seed in range(60) for t in nas.search(
        SPACE, trials=50, max_params=3000, seed=seed, estimate=table_estimate, latency=fake_latency))
    assert set(counts) == set(feasible)
    expected = 3000 / len(feasible)
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    dof = len(feasible) - 1
    assert chi2 < dof + 4 * math.sqrt(2 * dof)


def test_evolution_follows_aging_evolution():
    """Real et al. 2019, Algorithm 1: P random trials, then each child mutates the best of S members of the
    last P trials (the population: the oldest has died), in one choice."""
    P, S = 6, 3
    for seed in range(10):
        ts = nas.search(SPACE, strategy="evolution", trials=40, seed=seed, estimate=table_estimate,
                        latency=fake_latency, population=P, sample=S)
        assert all(t.parent is None for t in ts[:P])
        for t in ts[P:]:
            window = ts[t.index - P: t.index]  # alive when t was made
            parent = ts[t.parent]
            assert parent in window
            assert sum(getattr(t.arch, n) != getattr(parent.arch, n) for n in CHOICES) == 1
            assert sum(w.estimate <= parent.estimate for w in window) >= S  # the best of S members


def test_evolution_beats_random_search_on_a_smooth_objective():
    """On an objective where neighbours are alike, mutating good architectures pays (60 trials, 20 seeds)."""
    best = max(table_estimate(a) for a in SPACE.archs())
    hits = {s: sum(max(t.estimate for t in nas.search(SPACE, strategy=s, trials=60, seed=seed,
                                                       estimate=table_estimate, latency=fake_latency)) == best
                   for seed in range(20)) for s in nas.STRATEGIES}
    assert hits["evolution"] >= hits["random"] + 5, hits


def test_impossible_constraints_and_bad_arguments_are_value_errors():
    kw = dict(estimate=table_estimate, latency=fake_latency)
    with pytest.raises(ValueError, match="smallest of the space has 346"):
        nas.search(SPACE, max_params=300, **kw)
    with pytest.raises(ValueError, match="fastest takes 0.24 ms"):
        nas.search(SPACE, max_latency_ms=0.1, **kw)
    with pytest.raises(ValueError, match="strategy must be one of"):
        nas.search(SPACE, strategy="grid", **kw)
    with pytest.raises(ValueError, match="trials"):
        nas.search(SPACE, trials=0, **kw)
    with pytest.raises(ValueError, match="max_params"):
        nas.search(SPACE, max_params=-5, **kw)
    with pytest.raises(TypeError, match="qkit.nas.Space"):
        nas.search("space", **kw)


def test_the_default_search_trains_and_measures_once_per_architecture():
    table = nas.LatencyTable(batch=8, repeat=2)
    found = nas.search(SPACE, trials=3, max_params=700, seed=0, latency=table)  # the real proxy: 3 trainings
    assert all(0.0 <= t.estimate <= 1.0 and t.estimate == nas.quick_accuracy(t.arch) for t in found)
    assert table.measured == len({t.arch for t in found} | set(table.ms)) - 0 == len(table.ms)
    assert all(params_by_hand(a) <= 700 for a in table.ms)  # latency only measured for small enough ones


def test_best_so_far_is_the_running_maximum():
    gen = torch.Generator().manual_seed(0)
    est = torch.rand(30, generator=gen).tolist()
    ts = [Trial(i, Arch("plain", 1, 8, 3), 1, 1.0, e) for i, e in enumerate(est)]
    assert nas.best_so_far(ts) == [max(est[: i + 1]) for i in range(30)]


# ---- the Pareto front -----------------------------------------------------------------------

@pytest.mark.parametrize("cost", ["params", "latency_ms"])
def test_the_front_is_every_non_dominated_architecture(cost):
    for seed in range(5):
        ts = nas.search(SPACE, trials=40, seed=seed, estimate=lambda a: round(table_estimate(a), 2),
                        latency=fake_latency)
        first = {}
        for t in ts:
            first.setdefault(t.arch, t)
        unique = list(first.values())
        expected = [t for t in unique if not any(
            getattr(u, cost) <= getattr(t, cost) and u.estimate >= t.estimate
            and (getattr(u, cost) < getattr(t, cost) or u.estimate > t.estimate) for u in unique)]
        # equal (cost, estimate) pairs: the front keeps the earliest trial of them
        expected = [t for t in expected if not any(getattr(u, cost) == getattr(t, cost) and u.estimate == t.estimate
                                                   and u.index < t.index for u in expected)]
        front = nas.pareto(ts, cost=cost)
        assert sorted(t.index for t in front) == sorted(t.index for t in expected)
        assert [getattr(t, cost) for t in front] == sorted(getattr(t, cost) for t in front)
    with pytest.raises(ValueError, match="cost must be one of"):
        nas.pareto(ts, cost="bytes")


# ---- the race over seeds (qkit.nas.compare) -------------------------------------------------

def test_race_is_each_seeds_search_and_summarize_counts_by_hand():
    from qkit.nas.compare import StoredTable, race, summarize

    archs = SPACE.archs()
    table = StoredTable({a.key: ((i * 53) % 97) / 97 for i, a in enumerate(archs)}, {a.key: 1.0 for a in archs})
    curves = race(SPACE, trials=12, seeds=[4, 5, 6], table=table, max_params=5000)
    for s in nas.STRATEGIES:
        for row, seed in zip(curves[s], [4, 5, 6]):
            trials = nas.search(SPACE, strategy=s, trials=12, max_params=5000, seed=seed, estimate=table.estimate,
                            latency=table.latency)
            running = [max(t.estimate for t in trials[: i + 1]) for i in range(12)]
            assert row.tolist() == running
    got = summarize(curves)
    last_r, last_e = curves["random"][:, -1].tolist(), curves["evolution"][:, -1].tolist()
    assert got["wins"] == sum(e > r for e, r in zip(last_e, last_r))
    assert got["ties"] == sum(e == r for e, r in zip(last_e, last_r))
    assert got["random"] == pytest.approx(sum(last_r) / 3) and got["evolution"] == pytest.approx(sum(last_e) / 3)
    with pytest.raises(ValueError, match="at least one seed"):
        race(SPACE, trials=5, seeds=[], table=table)
    with pytest.raises(ValueError, match="curves must hold"):
        summarize({"random": curves["random"]})


def test_fastest_ms_is_the_minimum_of_the_timed_calls(monkeypatch):
    """With a fake clock, the fastest of the timed calls is returned and the warm-up calls are not timed."""
    import time

    durations = iter([50.0, 50.0, 7.0, 3.0, 9.0])  # ms of each call: 2 warm-ups, then 3 timed
    clock = {"t": 0.0, "start": True}

    def fake_counter():
        if not clock["start"]:
            clock["t"] += next(durations) / 1e3
        clock["start"] = not clock["start"]
        return clock["t"]

    monkeypatch.setattr(time, "perf_counter", fake_counter)
    assert nas.fastest_ms(torch.nn.Identity(), torch.zeros(1), repeat=3, warmup=2) == pytest.approx(3.0)
    monkeypatch.undo()
    with pytest.raises(TypeError, match="torch.nn.Module"):
        nas.fastest_ms(lambda x: x, torch.zeros(1))
    with pytest.raises(ValueError, match="repeat must be an int >= 1"):
        nas.fastest_ms(torch.nn.Identity(), torch.zeros(1), repeat=0)
