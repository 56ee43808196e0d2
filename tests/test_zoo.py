"""The model zoo of lesson 04: every model loads, is accurate, is countable and reproducible."""

from importlib import resources

import pytest
import torch
import torch.fx
from torch import nn

from qkit import data, models, train
from qkit.zoo import make

pytestmark = pytest.mark.lesson04

NAMES = ["inception", "mlp", "mobilenet_v1", "mobilenet_v2", "resnet", "wide_mlp"]
CNNS = ["inception", "mobilenet_v1", "mobilenet_v2", "resnet"]


def _zoo_file(name):
    return resources.files("qkit.zoo").joinpath(f"{name}.pt")


def test_names():
    assert models.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_model_is_accurate_in_eval_mode(name, digits_test):
    Xt, yt = digits_test
    model = models.load(name)
    assert not any(m.training for m in model.modules())
    with torch.no_grad():
        out = model(Xt[:7])
    assert out.shape == (7, 10) and out.dtype == torch.float32
    assert train.evaluate(model, Xt, yt) >= 0.95


@pytest.mark.parametrize("name", NAMES)
def test_weights_file_loads_with_weights_only(name):
    with _zoo_file(name).open("rb") as f:
        state = torch.load(f, weights_only=True)
    assert list(state) == list(models.build(name).state_dict())
    assert all(v.dtype == torch.float32 for k, v in state.items() if not k.endswith("num_batches_tracked"))


def test_weights_files_are_small_enough_to_ship():
    sizes = {name: len(_zoo_file(name).read_bytes()) for name in NAMES}
    assert all(size < 5_000_000 for size in sizes.values()), sizes
    assert sum(sizes.values()) < 8_000_000, sizes


def test_mlp_keeps_its_keys():  # lessons 01-03 use fc1, relu, fc2
    assert list(models.load("mlp").state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert isinstance(models.load("mlp").relu, nn.ReLU)


@pytest.mark.parametrize("name", NAMES)
def test_untrained_model_differs(name, digits_test):
    Xt, yt = digits_test
    torch.manual_seed(0)
    fresh, trained = models.load(name, pretrained=False), models.load(name)
    assert not fresh.training
    s1, s2 = fresh.state_dict(), trained.state_dict()
    assert any(not torch.equal(s1[k], s2[k]) for k in s1 if k.endswith("weight"))
    assert train.evaluate(fresh, Xt, yt) < 0.5


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="unknown model 'resnet18'") as err:
        models.load("resnet18")
    assert all(name in str(err.value) for name in NAMES)
    with pytest.raises(ValueError, match="unknown model"):
        models.describe("mobilenet_v3")
    with pytest.raises(ValueError, match="unknown model"):
        make.main(["mobilenet"])


def test_describe_mobilenet_v1_by_hand():
    # stem 3×3 conv 1→16 at 8×8, then depthwise-separable blocks (cin, cout, stride), then fc 128→10
    params = 1 * 16 * 9 + 2 * 16  # conv (no bias) + BN weight and bias
    macs = 8 * 8 * 16 * 9
    side = 8
    for cin, cout, stride in [(16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)]:
        side //= stride
        params += cin * 9 + 2 * cin + cin * cout + 2 * cout  # depthwise + BN, pointwise + BN
        macs += side * side * (cin * 9 + cin * cout)
    params += 128 * 10 + 10
    macs += 128 * 10
    assert (params, macs) == (36874, 269824)
    d = models.describe("mobilenet_v1")
    assert (d["params"], d["macs"]) == (params, macs)
    assert "Howard" in d["family"]


def test_describe_mlps_by_hand():
    assert models.describe("mlp")["macs"] == 64 * 128 + 128 * 10
    wide = models.describe("wide_mlp")
    assert wide["params"] == (64 + 1) * 1024 + (1024 + 1) * 1024 + (1024 + 1) * 10
    assert wide["macs"] == 64 * 1024 + 1024 * 1024 + 1024 * 10
    table = models.describe()
    assert [d["name"] for d in table] == NAMES
    assert all(d["params"] > 0 and d["macs"] > 0 and d["family"] for d in table)


def test_count_macs_counts_groups_and_strides():
    dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)  # 4×4 outputs · 8 channels · 9 taps
    assert models.count_macs(dw, (1, 8, 8, 8)) == 4 * 4 * 8 * 9
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Flatten(), nn.Linear(128, 3)).train()
    assert models.count_macs(model) == 8 * 8 * 2 + 128 * 3
    assert model.training  # mode restored


@pytest.mark.parametrize("name", CNNS)
def test_every_conv_feeds_a_batchnorm_in_the_traced_graph(name):
    """What a PTQ pass relies on: each conv is followed by its BN, activations are modules."""
    model = models.build(name)
    gm = torch.fx.symbolic_trace(model)
    mods = dict(gm.named_modules())
    convs = [n for n in gm.graph.nodes if n.op == "call_module" and isinstance(mods[n.target], nn.Conv2d)]
    assert convs
    for node in convs:
        (user,) = node.users
        assert user.op == "call_module" and isinstance(mods[user.target], nn.BatchNorm2d), node.target
    assert not any(n.op == "call_function" and "relu" in str(n.target) for n in gm.graph.nodes)


def test_residuals_and_concatenations():
    v2 = models.build("mobilenet_v2")
    assert [b.residual for b in v2.blocks if isinstance(b, models.InvertedResidual)] == [True, False, True, False, True]
    resnet = models.build("resnet")
    assert [type(b.shortcut).__name__ for b in resnet.blocks] == ["Identity", "ConvBNReLU", "ConvBNReLU"]
    block = models.build("inception").blocks[0]
    assert block(torch.zeros(2, 16, 8, 8)).shape == (2, block.out_channels, 8, 8)


def test_retraining_is_reproducible():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = [make.train_model("mobilenet_v1", epochs=1, seed=s) for s in (0, 0, 1)]
    finally:
        torch.set_num_threads(threads)
    s0, s0_again, s1 = (m.state_dict() for m in runs)
    assert all(torch.equal(s0[k], s0_again[k]) for k in s0)
    assert not all(torch.equal(s0[k], s1[k]) for k in s0)  # the seed matters


def test_retraining_on_given_images():
    X, y = data.digits("train")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        default, whole, fewer = (make.train_model("mlp", epochs=1, **given).state_dict()
                                 for given in ({}, {"X": X, "y": y}, {"X": X[:500], "y": y[:500]}))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(default[k], whole[k]) for k in default)  # the default is the train split
    assert not all(torch.equal(default[k], fewer[k]) for k in default)  # X, y are what it trains on
    with pytest.raises(ValueError, match="both X and y"):
        make.train_model("mlp", epochs=1, X=X)
