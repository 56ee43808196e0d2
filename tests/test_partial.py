"""Partial quantization and mixed precision (lesson 07): qkit.partial against independent computations.

Oracles: layer names from the unfolded model's own modules, byte counts from the
packing formula written out here, accuracies recomputed by quantizing weights by
hand (``fake_quantize`` + ``weight_qparams``) and activations with ``capture`` +
``choose_qparams``, and a brute-force enumeration of every assignment.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from qkit import choose_qparams, fake_quantize, partial, weight_qparams
from qkit.activations import capture, quantized_output
from qkit.graph import fold_batchnorm, get_module
from qkit.train import evaluate, fit, one_thread

pytestmark = pytest.mark.lesson07


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():  # tiny models on a shared 2-core machine: a second thread only waits
        yield

LAYERS = (nn.Conv2d, nn.Linear)


def module_layers(model: nn.Module) -> list[str]:
    """Conv/linear names as registered in the unfolded model (the zoo registers them in forward order)."""
    return [n for n, m in model.named_modules() if isinstance(m, LAYERS)]


def packed_bytes(model: nn.Module, bits: dict[str, int]) -> int:
    """The packing formula, written out: b-bit codes rounded up to whole bytes, one float32 scale per row."""
    modules = dict(model.named_modules())
    total = 0
    for name in module_layers(model):
        w, b = modules[name].weight, bits.get(name, 32)
        total += w.numel() * 4 if b == 32 else (w.numel() * b + 7) // 8 + 4 * w.shape[0]
    return total


def hand_accuracy(model: nn.Module, bits: dict[str, int], X, y, *, act: dict[str, int] | None = None,
                  calibration=None) -> float:
    """Fold, quantize the named layers' weights by hand, optionally one activation point per entry of ``act``."""
    folded = fold_batchnorm(model)
    modules = dict(folded.named_modules())
    with torch.no_grad():
        for name, b in bits.items():
            w = modules[name].weight
            if b != 32:
                w.copy_(fake_quantize(w, weight_qparams(w, b, narrow=True)))
    if not act:
        return evaluate(folded, X, y)
    (point, b), = act.items()
    out = capture(folded, point, calibration)
    lo, hi = out.min().item(), out.max().item()
    with quantized_output(folded, point, choose_qparams(lo, hi, b, signed=lo < 0)):
        return evaluate(folded, X, y)


@pytest.fixture(scope="module")
def toy(digits_train) -> nn.Module:
    """A 4-layer perceptron trained here in well under a second: 4 ** 4 = 256 assignments to enumerate."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    fit(model, *digits_train, epochs=15, lr=1e-2, progress=False)
    return model


@pytest.mark.parametrize("name", ["mlp", "mobilenet_v1", "mobilenet_v2", "resnet", "inception"])
def test_layers_are_every_conv_and_linear_in_order(zoo, name):
    assert partial.layers(zoo[name]) == module_layers(zoo[name])


def test_sensitivity_keys_and_16_bits_cost_nothing(zoo, calibration, digits_test):
    model = zoo["mobilenet_v1"]
    drops = partial.sensitivity(model, calibration, *digits_test, bits=16)
    assert list(drops) == module_layers(model)
    assert all(isinstance(d, float) for d in drops.values())
    assert max(abs(d) for d in drops.values()) <= 0.5


def test_two_bits_hurt_some_layer_more_than_a_point(zoo, calibration, digits_test):
    drops = partial.sensitivity(zoo["resnet"], calibration, *digits_test, bits=2)
    assert max(drops.values()) > 1.0
    assert min(drops.values()) < max(drops.values())  # layers differ: the point of the lesson


@pytest.mark.parametrize(("name", "layer", "point", "bits"), [
    ("mobilenet_v1", "blocks.0.conv1", "blocks.0.relu1", 2),  # depthwise conv, activation after its ReLU
    ("mobilenet_v1", "stem.conv", "stem.relu", 3),
    ("resnet", "blocks.1.conv2", "blocks.1.conv2", 2),  # feeds a residual add: its own output
    ("mlp", "fc2", "fc2", 2),  # logits: signed grid
])
def test_sensitivity_equals_a_hand_computed_drop(zoo, calibration, digits_test, name, layer, point, bits):
    model = zoo[name]
    X, y = digits_test
    before = copy.deepcopy(model.state_dict())
    base = evaluate(fold_batchnorm(model), X, y)
    expected = 100 * (base - hand_accuracy(model, {layer: bits}, X, y, act={point: bits}, calibration=calibration))
    drops = partial.sensitivity(model, calibration, X, y, bits=bits)
    assert drops[layer] == pytest.approx(expected, abs=1e-9)
    assert expected != 0.0  # the case tests something
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # model untouched


def test_weights_only_table_equals_hand_computed_drops(zoo, digits_test):
    model = zoo["mobilenet_v2"]
    X, y = digits_test[0][:200], digits_test[1][:200]
    table = partial.sensitivity_table(model, None, X, y, choices=(2, 32))
    base = evaluate(fold_batchnorm(model), X, y)
    for layer in ("stem.conv", "blocks.1.conv3", "fc"):
        assert table[layer][2] == pytest.approx(100 * (base - hand_accuracy(model, {layer: 2}, X, y)), abs=1e-9)
        assert table[layer][32] == 0.0


def test_weight_bytes_matches_the_packing_formula(zoo):
    assert partial.weight_bytes(zoo["mlp"], {"fc1": 4, "fc2": 32}) == (8192 * 4 // 8 + 4 * 128) + 4 * 1280
    odd = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))  # 45 bits -> 6 bytes; 10 bits -> 2 bytes
    assert partial.weight_bytes(odd, {"0": 3, "2": 2}) == (6 + 4 * 5) + (2 + 4 * 1)
    model = zoo["inception"]
    rng = np.random.default_rng(0)
    for _ in range(5):
        bits = {n: int(rng.choice([2, 3, 4, 8, 16, 32])) for n in module_layers(model)}
        assert partial.weight_bytes(model, bits) == packed_bytes(model, bits)
    assert partial.weight_bytes(model, {}) == 4 * sum(dict(model.named_modules())[n].weight.numel()
                                                       for n in module_layers(model))


def test_allocate_fits_the_budget(zoo, digits_test):
    model = zoo["mobilenet_v1"]
    X, y = digits_test[0][:200], digits_test[1][:200]
    full = packed_bytes(model, {})
    table = partial.sensitivity_table(model, None, X, y, choices=(2, 4, 8, 32))
    for fraction in (0.5, 0.2, 0.1, 0.09):  # all at 2 bits: 0.084
        budget = int(full * fraction)
        bits = partial.allocate(model, None, X, y, budget_bytes=budget, table=table)
        assert list(bits) == module_layers(model)
        assert set(bits.values()) <= {2, 4, 8, 32}
        assert packed_bytes(model, bits) <= budget
    measured = partial.allocate(model, None, X, y, budget_bytes=int(full * 0.1))  # measures its own table
    assert measured == partial.allocate(model, None, X, y, budget_bytes=int(full * 0.1), table=table)


def test_allocate_keeps_everything_at_the_top_choice_when_it_fits(zoo, digits_test):
    model = zoo["resnet"]
    X, y = digits_test[0][:100], digits_test[1][:100]
    names = module_layers(model)
    assert partial.allocate(model, None, X, y, budget_bytes=packed_bytes(model, {})) == {n: 32 for n in names}
    eight = packed_bytes(model, {n: 8 for n in names})
    assert partial.allocate(model, None, X, y, budget_bytes=eight, choices=(2, 4, 8)) == {n: 8 for n in names}


def test_allocate_refuses_a_budget_below_the_smallest_size(zoo, digits_test):
    model = zoo["mlp"]
    least = packed_bytes(model, {"fc1": 2, "fc2": 2})
    with pytest.raises(ValueError, match=f"at least {least} bytes"):
        partial.allocate(model, None, *digits_test, budget_bytes=least - 1)
    assert packed_bytes(model, partial.allocate(model, None, *digits_test, budget_bytes=least)) == least


def test_greedy_goes_by_drop_per_byte_then_refills_the_slack():
    # a: 1 point for 150 bytes (0.0067 /B); b: 0.05 point for 15 bytes (0.0033 /B). Budget 190 of 220:
    # b goes down first (205, still too big), then a (55); the slack then lets b back up (70).
    size = {"a": {2: 50, 8: 200}, "b": {2: 5, 8: 20}}
    drops = {"a": {2: 1.0, 8: 0.0}, "b": {2: 0.05, 8: 0.0}}
    assert partial.greedy(size, drops, 190) == {"a": 2, "b": 8}
    # per byte, not per point: a costs more points (2.0 vs 1.0) but far less per byte saved
    size = {"a": {4: 100, 8: 200}, "b": {4: 10, 8: 20}}
    drops = {"a": {4: 2.0, 8: 0.0}, "b": {4: 1.0, 8: 0.0}}
    assert partial.greedy(size, drops, 215) == {"a": 4, "b": 8}
    # three choices: moves go to the *next* lower one (b: 8 -> 4 at 0.001 /B beats a: 8 -> 4 at 0.018 /B;
    # jumping straight to 2 bits would have picked a: 8 -> 2 at 0.013 /B over b: 8 -> 2 at 0.04 /B)
    size = {"a": {2: 25, 4: 50, 8: 100}, "b": {2: 25, 4: 50, 8: 100}}
    drops = {"a": {2: 1.0, 4: 0.9, 8: 0.0}, "b": {2: 3.0, 4: 0.05, 8: 0.0}}
    assert partial.greedy(size, drops, 150) == {"a": 8, "b": 4}


def brute_force_best(model, X, y, budget, choices) -> float:
    """The best accuracy of any assignment that fits, every one evaluated by hand."""
    names = module_layers(model)
    accs = [hand_accuracy(model, dict(zip(names, combo)), X, y)
            for combo in itertools.product(choices, repeat=len(names))
            if packed_bytes(model, dict(zip(names, combo))) <= budget]
    return max(accs)


@pytest.mark.parametrize("case", ["mlp", "toy"])
def test_optimal_is_the_brute_force_best(zoo, toy, digits_test, case):
    model = zoo["mlp"] if case == "mlp" else toy
    X, y = digits_test
    choices = (2, 4, 8, 32) if case == "mlp" else (2, 4, 8)
    budget = packed_bytes(model, {n: 4 for n in module_layers(model)})
    best = partial.optimal(model, None, X, y, budget_bytes=budget, choices=choices)
    assert packed_bytes(model, best) <= budget
    assert hand_accuracy(model, best, X, y) == brute_force_best(model, X, y, budget, choices)


@pytest.mark.parametrize("budget_bits", [32, 8, 4])
def test_greedy_within_a_third_of_a_point_of_optimal_on_the_mlp(zoo, digits_test, budget_bits):
    # Budgets from float down to every layer at 4 bits. Tighter budgets (some layer at 2 bits) are out
    # of reach of single-layer drops, which stop adding up there: see the next test.
    model = zoo["mlp"]
    X, y = digits_test
    budget = packed_bytes(model, {n: budget_bits for n in module_layers(model)})
    greedy = partial.allocate(model, None, X, y, budget_bytes=budget)
    best = brute_force_best(model, X, y, budget, (2, 4, 8, 32))
    assert packed_bytes(model, greedy) <= budget
    assert 100 * (best - hand_accuracy(model, greedy, X, y)) <= 0.3


def test_under_tight_budgets_greedy_and_random_never_beat_optimal(toy, digits_test):
    X, y = digits_test
    names = module_layers(toy)
    for budget in (packed_bytes(toy, {n: 4 for n in names}), int(1.4 * packed_bytes(toy, {n: 2 for n in names}))):
        best = partial.optimal(toy, None, X, y, budget_bytes=budget, choices=(2, 4, 8))
        acc_best = hand_accuracy(toy, best, X, y)
        greedy = partial.allocate(toy, None, X, y, budget_bytes=budget, choices=(2, 4, 8))
        assert hand_accuracy(toy, greedy, X, y) <= acc_best
        for seed in range(3):
            rand = partial.random_allocation(toy, budget, (2, 4, 8), seed)
            assert packed_bytes(toy, rand) <= budget
            assert hand_accuracy(toy, rand, X, y) <= acc_best


def test_random_allocation_fits_is_deterministic_and_uniform(zoo):
    model = zoo["mlp"]
    budget = packed_bytes(model, {"fc1": 8, "fc2": 8})
    names = module_layers(model)
    fitting = {combo for combo in itertools.product((2, 4, 8, 32), repeat=2)
               if packed_bytes(model, dict(zip(names, combo))) <= budget}
    draws = [tuple(partial.random_allocation(model, budget, seed=s).values()) for s in range(160)]
    assert set(draws) == fitting  # only fitting assignments, and every one of them
    expected = len(draws) / len(fitting)
    assert all(0.5 * expected <= draws.count(c) <= 1.5 * expected for c in fitting)
    assert partial.random_allocation(model, budget, seed=7) == partial.random_allocation(model, budget, seed=7)


def test_random_allocation_near_the_minimum_still_fits(zoo):
    model = zoo["resnet"]  # 10 layers: at the minimum + 1 byte, rejection sampling gives up and fills
    least = packed_bytes(model, {n: 2 for n in module_layers(model)})
    bits = partial.random_allocation(model, least + 100, (2, 4, 8, 32), seed=0)
    assert packed_bytes(model, bits) <= least + 100
    assert bits == partial.random_allocation(model, least + 100, (2, 4, 8, 32), seed=0)


def test_simulate_bits_quantizes_what_it_says(zoo, calibration):
    model = zoo["mobilenet_v1"]
    folded = fold_batchnorm(model)
    sim = partial.simulate_bits(model, {"blocks.1.conv2": 3, "fc": 32}, calibration, act_bits=4)
    for row in sim.get_submodule("blocks.1.conv2").weight:
        assert row.unique().numel() <= 2**3 - 1  # narrow symmetric 3-bit grid: 7 levels
    assert torch.equal(sim.fc.weight, folded.fc.weight)
    assert torch.equal(sim.stem.conv.weight, folded.stem.conv.weight)  # left out: float
    assert capture(sim, "blocks.0.relu1", calibration[:64]).unique().numel() <= 2**4  # unsigned 4-bit grid
    assert capture(folded, "blocks.0.relu1", calibration[:64]).unique().numel() > 100
    assert capture(sim, "fc", calibration[:64]).unique().numel() <= 2**4  # logits: signed 4-bit grid


def test_simulate_bits_weights_only_equals_hand_quantization(zoo, digits_test):
    model = zoo["resnet"]
    X = digits_test[0][:64]
    bits = {"stem.conv": 4, "blocks.1.shortcut.conv": 2, "fc": 8}
    sim = partial.simulate_bits(model, bits, act_bits=None)
    folded = fold_batchnorm(model)
    modules = dict(folded.named_modules())
    with torch.no_grad():
        for name, b in bits.items():
            w = modules[name].weight
            w.copy_(fake_quantize(w, weight_qparams(w, b, narrow=True)))
        assert torch.equal(sim(X), folded(X))


def test_numpy_inputs_are_accepted(zoo, calibration, digits_test):
    X, y = digits_test
    as_numpy = partial.sensitivity(zoo["mlp"], calibration.numpy(), X.numpy(), y.numpy(), bits=4)
    assert as_numpy == partial.sensitivity(zoo["mlp"], calibration, X, y, bits=4)


def test_errors(zoo, calibration, digits_test):
    mlp = zoo["mlp"]
    X, y = digits_test
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got dict"):
        partial.sensitivity({}, calibration, X, y)
    with pytest.raises(ValueError, match=r"bits must be an int in \[2, 16\]; got 1"):
        partial.sensitivity(mlp, calibration, X, y, bits=1)
    with pytest.raises(ValueError, match=r"bits must be an int in \[2, 16\]; got 17"):
        partial.sensitivity(mlp, calibration, X, y, bits=17)
    with pytest.raises(TypeError, match="bits must be an int; got float"):
        partial.sensitivity(mlp, calibration, X, y, bits=4.0)
    with pytest.raises(ValueError, match="same, non-zero number of samples"):
        partial.sensitivity(mlp, calibration, X, y[:-1])
    with pytest.raises(TypeError, match="y must hold integer class labels"):
        partial.sensitivity(mlp, calibration, X, y.float())
    with pytest.raises(ValueError, match="calibration is empty"):
        partial.sensitivity(mlp, calibration[:0], X, y)
    with pytest.raises(ValueError, match="activations need calibration data"):
        partial.simulate_bits(mlp, {"fc1": 4})
    for choices, err, msg in [((), ValueError, "choices is empty"),
                              ((1, 8), ValueError, r"choices\[0\] must be an int in \[2, 16\]; got 1"),
                              ((8, 24), ValueError, r"choices\[1\] must be an int in \[2, 16\]; got 24"),
                              ("248", TypeError, "choices must be a sequence"),
                              ((8, 4.0), TypeError, r"choices\[1\] must be an int in \[2, 16\] or 32")]:
        with pytest.raises(err, match=msg):
            partial.allocate(mlp, None, X, y, budget_bytes=10_000, choices=choices)
    for budget in (0, -5):
        with pytest.raises(ValueError, match=f"budget_bytes must be an int >= 1; got {budget}"):
            partial.allocate(mlp, None, X, y, budget_bytes=budget)
        with pytest.raises(ValueError, match="budget_bytes must be an int >= 1"):
            partial.random_allocation(mlp, budget)
    with pytest.raises(TypeError, match="budget_bytes must be an int"):
        partial.allocate(mlp, None, X, y, budget_bytes=1e4)
    with pytest.raises(ValueError, match=r"bits names no such layer: \['fc3'\]"):
        partial.weight_bytes(mlp, {"fc3": 8})
    with pytest.raises(ValueError, match=r"bits\['fc1'\] must be an int in \[2, 16\]; got 1"):
        partial.simulate_bits(mlp, {"fc1": 1}, act_bits=None)
    with pytest.raises(ValueError, match="4 \\*\\* 10 = 1048576 assignments, more than max_assignments=5000"):
        partial.optimal(zoo["resnet"], None, X, y, budget_bytes=10_000)
    with pytest.raises(ValueError, match="table must hold a drop for every layer"):
        partial.allocate(mlp, None, X, y, budget_bytes=10_000, table={"fc1": {2: 0.0}})


# ---- the measured greedy against brute force ----------------------------------------------

def _hand_quantized(model: nn.Module, bits: dict) -> nn.Module:
    """A deep copy with each Linear's weight on its per-row symmetric narrow grid, by hand."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for name, b in bits.items():
            w = copy_.get_submodule(name).weight
            if b != 32:
                w.copy_(fake_quantize(w, weight_qparams(w, b, narrow=True)))
    return copy_


def test_measured_greedy_is_within_a_third_of_a_point_of_the_optimum(toy, digits_test):
    X, y = digits_test
    names, choices = partial.layers(toy), (2, 4, 8)
    every = {combo: hand_accuracy(toy, dict(zip(names, combo)), X, y)
             for combo in itertools.product(choices, repeat=len(names))}
    size = {combo: packed_bytes(toy, dict(zip(names, combo))) for combo in every}
    lo, hi = min(size.values()), max(size.values())
    scorer = partial.Scorer(toy, X, y)
    for i in range(20):
        budget = lo + (hi - lo) * i // 19
        best = max(acc for combo, acc in every.items() if size[combo] <= budget)
        bits = partial.greedy_measured(toy, None, X, y, budget_bytes=budget, choices=choices, scorer=scorer)
        assert packed_bytes(toy, bits) <= budget
        assert 100 * (best - every[tuple(bits[n] for n in names)]) <= 0.3, budget


def test_measured_greedy_holds_fixed_layers_and_is_near_the_optimum_among_the_rest(toy, digits_test):
    X, y = digits_test
    names, choices = partial.layers(toy), (2, 4, 8)
    fixed = {names[0]: 8, names[-1]: 8}  # the two ends, as keep_ends=8 holds them
    every = {combo: hand_accuracy(toy, dict(zip(names, combo)), X, y)
             for combo in itertools.product(choices, repeat=len(names))
             if all(dict(zip(names, combo))[n] == b for n, b in fixed.items())}
    size = {combo: packed_bytes(toy, dict(zip(names, combo))) for combo in every}
    lo, hi = min(size.values()), max(size.values())
    scorer = partial.Scorer(toy, X, y)
    for i in range(10):
        budget = lo + (hi - lo) * i // 9
        best = max(acc for combo, acc in every.items() if size[combo] <= budget)
        bits = partial.greedy_measured(toy, None, X, y, budget_bytes=budget, choices=choices, scorer=scorer,
                                       fixed=fixed)
        assert list(bits) == names and all(bits[n] == b for n, b in fixed.items())
        assert packed_bytes(toy, bits) <= budget
        assert 100 * (best - every[tuple(bits[n] for n in names)]) <= 0.3, budget
    with pytest.raises(ValueError, match="too small"):  # the fixed layers' bytes count: below that, no fit
        partial.greedy_measured(toy, None, X, y, budget_bytes=lo - 1, choices=choices, fixed=fixed)


@pytest.mark.parametrize("fixed, error, match", [
    ({"nope": 8}, ValueError, r"fixed names no conv/linear layer of the BN-folded model: \['nope'\]"),
    ({"<first>": 3}, ValueError, r"fixed widths must be among choices \(2, 4, 8\); got \{'.*': 3\}"),
    ({"<first>": True}, ValueError, r"fixed widths must be among choices"),
    ([("<first>", 8)], TypeError, r"fixed must be a dict \{layer: bits\} or None; got list"),
])
def test_measured_greedy_refuses_bad_fixed_layers(toy, digits_test, fixed, error, match):
    X, y = digits_test
    first = partial.layers(toy)[0]
    fixed = [(first, 8)] if isinstance(fixed, list) else {first if k == "<first>" else k: v for k, v in fixed.items()}
    with pytest.raises(error, match=match):
        partial.greedy_measured(toy, None, X, y, budget_bytes=10_000, choices=(2, 4, 8), fixed=fixed)


def test_scorer_matches_a_hand_evaluation_and_remembers(toy, digits_test):
    X, y = digits_test
    names = partial.layers(toy)
    bits = dict(zip(names, (2, 8, 32, 4)))
    scorer = partial.Scorer(toy, X, y)
    acc, loss = scorer(bits)
    assert acc == hand_accuracy(toy, bits, X, y)
    with torch.no_grad():
        logits = _hand_quantized(toy, bits)(X).double()
    hand_loss = float(-(logits.log_softmax(1)[torch.arange(len(y)), y]).mean())
    assert loss == pytest.approx(hand_loss, rel=1e-5)
    assert scorer(dict(bits)) == (acc, loss) and scorer.evaluations == 1
    assert torch.equal(toy[1].weight, copy.deepcopy(toy)[1].weight)  # the model itself is untouched


def test_measured_greedy_refuses_a_budget_below_the_minimum(toy, digits_test):
    X, y = digits_test
    with pytest.raises(ValueError, match="too small"):
        partial.greedy_measured(toy, None, X, y, budget_bytes=10, choices=(2, 4, 8))
    with pytest.raises(ValueError, match="max_swaps"):
        partial.greedy_measured(toy, None, X, y, budget_bytes=10_000, max_swaps=-1)


def test_pareto_front_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = int(torch.randint(1, 9, (), generator=gen))
        sizes = torch.randint(1, 5, (n,), generator=gen).tolist()
        accs = (torch.randint(0, 4, (n,), generator=gen) / 4).tolist()
        keep = [i for i in range(n)
                if not any(sizes[j] <= sizes[i] and accs[j] >= accs[i] and (sizes[j], accs[j]) != (sizes[i], accs[i])
                           for j in range(n))
                and not any((sizes[j], accs[j]) == (sizes[i], accs[i]) for j in range(i))]
        assert partial.pareto_front(sizes, accs) == sorted(keep, key=lambda i: sizes[i])


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mlp"])
def test_layer_kinds(zoo, name):
    model = zoo[name]
    kinds = partial.layer_kinds(model)
    folded = fold_batchnorm(model)
    for layer, kind in kinds.items():
        m = get_module(folded, layer)
        w = m.weight
        if kind == "linear":
            assert w.dim() == 2
        elif kind == "depthwise":
            assert w.shape[1] == 1 and m.groups == w.shape[0] > 1
        elif kind == "pointwise":
            assert w.shape[2:] == (1, 1) and m.groups == 1
        else:
            assert kind == "conv" and w.shape[2:] != (1, 1)
