"""Structured pruning (qkit.prune.channels, qkit.prune.structure): channels really removed, the rest fixed up.

The strongest check is the zero-channel test: channels whose filter and BatchNorm γ, β are set
to 0 by hand output exactly 0, so removing them must leave every logit unchanged. It fails if the
wrong channels go, if a downstream layer keeps a column it should lose (or loses the wrong one),
if a residual partner or a concat offset is missed, or if a BatchNorm is not sliced alike.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.fx as fx
from torch import nn

from qkit import models, ptq, qat
from qkit.graph import get_module
from qkit.prune.channels import channels, groups
from qkit.prune.structure import analyse

pytestmark = [pytest.mark.lesson08, pytest.mark.usefixtures("one_thread")]


ZOO = models.names()
CNNS = ["inception", "mobilenet_v1", "mobilenet_v2", "resnet"]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def l1_keep(weights: list[torch.Tensor], k: int) -> torch.Tensor:
    """The k channels with the largest Σ|W[j]| summed over ``weights`` (sorted): the rule written out again."""
    score = sum(w.detach().abs().flatten(1).sum(1) for w in weights)
    return torch.topk(score, k).indices.sort().values


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("amount", [0.25, 0.5, 0.75])
def test_every_zoo_model_shrinks_and_still_runs(zoo, digits_test, name, amount):
    dense = zoo[name]
    before = copy.deepcopy(dense.state_dict())
    small = channels(dense, amount)
    X = digits_test[0][:16]
    assert small(X).shape == (16, 10)
    assert n_params(small) < n_params(dense)
    assert type(small) is type(dense) and [n for n, _ in small.named_modules()] == [n for n, _ in dense.named_modules()]
    assert small.training == dense.training
    fx.symbolic_trace(small)  # still traceable
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())  # the original is untouched


@pytest.mark.parametrize("name", ZOO)
def test_amount_zero_is_the_same_function(zoo, digits_test, name):
    X = digits_test[0][:64]
    same = channels(zoo[name], 0.0)
    assert n_params(same) == n_params(zoo[name])
    assert torch.equal(same(X), zoo[name](X))


def test_parameter_count_by_hand_small_net():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                        nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    small = channels(net, 0.5)  # 4 -> 2 and 6 -> 3 channels; the 3 logits stay
    conv1 = 2 * 1 * 9 + 2  # weight + bias
    conv2 = 3 * 2 * 9 + 3
    bns = 2 * 2 + 2 * 3  # γ and β
    fc = 3 * 3 + 3
    assert n_params(small) == conv1 + conv2 + bns + fc == 99
    assert small[1].running_mean.shape == (2,) and small[4].num_features == 3


def test_parameter_count_by_hand_resnet(zoo):
    # half of every width: stem 16 -> 8, block widths 16, 32, 64 -> 8, 16, 32; fc keeps its 10 outputs
    s, a, b, c = 8, 8, 16, 32
    expected = (9 * s + 2 * s                                # stem conv + bn
                + 9 * s * a + 2 * a + 9 * a * a + 2 * a        # block 0 (identity shortcut)
                + 9 * a * b + 2 * b + 9 * b * b + 2 * b + a * b + 2 * b  # block 1 + 1×1 shortcut
                + 9 * b * c + 2 * c + 9 * c * c + 2 * c + b * c + 2 * c  # block 2 + 1×1 shortcut
                + c * 10 + 10)
    assert n_params(channels(zoo["resnet"], 0.5)) == expected == 19810


def _zero(model: nn.Module, layers: dict[str, list[str]], idx: list[int]) -> nn.Module:
    """Zero output channels ``idx``: the producers' weight rows (and bias), and γ, β of the listed BatchNorms."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for name in layers["rows"]:
            m = get_module(model, name)
            m.weight[idx] = 0
            if m.bias is not None:
                m.bias[idx] = 0
        for name in layers["bns"]:
            get_module(model, name).weight[idx] = 0
            get_module(model, name).bias[idx] = 0
    return model


# (model, {layer whose group is pruned: fraction}, the rows and BatchNorms a channel of that group passes, by hand)
ZERO_CASES = [
    ("resnet", {"stem.conv": 0.25},  # residual group: stem and block 0's conv2 feed the same add
     {"rows": ["stem.conv", "blocks.0.conv2"], "bns": ["stem.bn", "blocks.0.bn2"]}, [1, 6, 9, 14]),
    ("resnet", {"blocks.1.conv2": 0.25},  # block 1's add: conv2 and the 1×1 shortcut
     {"rows": ["blocks.1.conv2", "blocks.1.shortcut.conv"], "bns": ["blocks.1.bn2", "blocks.1.shortcut.bn"]},
     [0, 3, 4, 10, 20, 21, 30, 31]),
    ("resnet", {"blocks.2.conv1": 0.5},  # a plain group, inside a block
     {"rows": ["blocks.2.conv1"], "bns": ["blocks.2.bn1"]}, list(range(1, 64, 2))),
    ("mobilenet_v1", {"stem.conv": 0.25},  # the depthwise conv of block 0 and its BN follow the stem
     {"rows": ["stem.conv"], "bns": ["stem.bn", "blocks.0.bn1"]}, [2, 5, 11, 12]),
    ("mobilenet_v1", {"blocks.3.conv2": 0.5},
     {"rows": ["blocks.3.conv2"], "bns": ["blocks.3.bn2", "blocks.4.bn1"]}, list(range(0, 128, 2))),
    ("mobilenet_v2", {"blocks.1.conv3": 0.25},  # residual: blocks 1 and 2 project into one stream
     {"rows": ["blocks.1.conv3", "blocks.2.conv3"], "bns": ["blocks.1.bn3", "blocks.2.bn3"]}, [0, 7, 8, 23, 4, 17]),
    ("mobilenet_v2", {"blocks.0.conv1": 0.5},  # expand conv; the depthwise conv2 + bn2 follow
     {"rows": ["blocks.0.conv1"], "bns": ["blocks.0.bn1", "blocks.0.bn2"]}, list(range(32, 64))),
    ("inception", {"blocks.0.branch2.1.conv": 0.25},  # concat: channels 8..23 of the 40
     {"rows": ["blocks.0.branch2.1.conv"], "bns": ["blocks.0.branch2.1.bn"]}, [0, 5, 9, 15]),
    ("inception", {"blocks.2.branch4.1.conv": 0.5},  # last segment of the final concat, read by fc
     {"rows": ["blocks.2.branch4.1.conv"], "bns": ["blocks.2.branch4.1.bn"]}, list(range(8))),
    ("mlp", {"fc1": 0.5}, {"rows": ["fc1"], "bns": []}, list(range(0, 128, 2))),
]


@pytest.mark.parametrize("criterion", ["l1", "bn"])
@pytest.mark.parametrize("case", ZERO_CASES, ids=lambda c: f"{c[0]}-{next(iter(c[1]))}")
def test_removing_channels_that_are_exactly_zero_changes_no_output(zoo, digits_test, case, criterion):
    name, amount, layers, idx = case
    if criterion == "bn" and not layers["bns"]:
        pytest.skip("no BatchNorm to score by")
    zeroed = _zero(zoo[name], layers, idx)
    X = digits_test[0][:128]
    small = channels(zeroed, amount, criterion=criterion)
    for layer in layers["rows"]:  # exactly the zeroed channels went
        assert get_module(small, layer).weight.shape[0] == get_module(zeroed, layer).weight.shape[0] - len(idx)
    torch.testing.assert_close(small(X), zeroed(X), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(channels(zoo[name], amount, criterion=criterion)(X), zoo[name](X), atol=1e-3)


def test_residual_group_loses_the_same_channels_everywhere(zoo):
    dense, small = zoo["resnet"], channels(zoo["resnet"], 0.5)
    w = {n: get_module(dense, n).weight for n in ("stem.conv", "blocks.0.conv1", "blocks.0.conv2", "blocks.1.conv1",
                                                   "blocks.1.shortcut.conv")}
    stream = l1_keep([w["stem.conv"], w["blocks.0.conv2"]], 8)  # scored by the sum over both producers
    inner = l1_keep([w["blocks.0.conv1"]], 8)
    inner1 = l1_keep([w["blocks.1.conv1"]], 16)
    stream1 = l1_keep([get_module(dense, "blocks.1.conv2").weight,
                       w["blocks.1.shortcut.conv"]], 16)
    assert torch.equal(small.stem.conv.weight, w["stem.conv"][stream])
    assert torch.equal(small.stem.bn.running_var, dense.stem.bn.running_var[stream])
    assert torch.equal(small.blocks[0].conv1.weight, w["blocks.0.conv1"][inner][:, stream])
    assert torch.equal(small.blocks[0].conv2.weight, w["blocks.0.conv2"][stream][:, inner])
    assert torch.equal(small.blocks[0].bn2.weight, dense.blocks[0].bn2.weight[stream])
    assert torch.equal(small.blocks[1].conv1.weight, w["blocks.1.conv1"][inner1][:, stream])
    assert torch.equal(small.blocks[1].shortcut.conv.weight, w["blocks.1.shortcut.conv"][stream1][:, stream])


def test_concat_offsets_in_the_consumer_columns(zoo):
    dense = zoo["inception"]
    small = channels(dense, {"blocks.0.branch2.1.conv": 0.5, "blocks.0.branch4.1.conv": 0.25})
    keep2 = l1_keep([dense.blocks[0].branch2[1].conv.weight], 8)  # 16 -> 8, at offset 8 of the concat
    keep4 = l1_keep([dense.blocks[0].branch4[1].conv.weight], 6)  # 8 -> 6, at offset 32
    columns = torch.cat([torch.arange(8), 8 + keep2, torch.arange(24, 32), 32 + keep4])  # 30 of 40
    for consumer in ("branch1", "branch2.0", "branch3.0", "branch4.1"):
        old = get_module(dense, f"blocks.2.{consumer}.conv").weight
        assert torch.equal(get_module(small, f"blocks.2.{consumer}.conv").weight, old[:, columns])


def test_depthwise_conv_follows_its_input(zoo):
    dense, small = zoo["mobilenet_v1"], channels(zoo["mobilenet_v1"], 0.5)
    keep = l1_keep([dense.stem.conv.weight], 8)
    dw = small.blocks[0].conv1
    assert dw.in_channels == dw.out_channels == dw.groups == 8
    assert torch.equal(dw.weight, dense.blocks[0].conv1.weight[keep])
    assert torch.equal(small.blocks[0].bn1.running_mean, dense.blocks[0].bn1.running_mean[keep])
    assert small.blocks[0].conv2.in_channels == 8


def test_linear_after_flatten_loses_the_channel_positions():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 3))
    with torch.no_grad():
        net[0].weight[[1, 2]] *= 1e-3  # the two weakest filters
    small = channels(net, 0.5)
    cols = torch.cat([torch.arange(0, 64), torch.arange(192, 256)])  # channels 0 and 3: features c·64 … c·64 + 63
    assert torch.equal(small[3].weight, net[3].weight[:, cols])


@pytest.mark.parametrize("name", CNNS + ["mlp"])
def test_pruned_model_converts_to_int8_and_to_qat(zoo, digits_train, digits_test, name):
    small = channels(zoo[name], 0.5)
    X = digits_test[0][:256]
    ref = small(X).argmax(1)
    q = ptq.convert(small, "int8", digits_train[0][:256])
    assert (q(X).argmax(1) == ref).float().mean() >= 0.8
    prepared = qat.prepare(small, calibration=digits_train[0][:256]).eval()
    assert (prepared(X).argmax(1) == ref).float().mean() >= 0.8
    assert (qat.convert(prepared)(X).argmax(1) == ref).float().mean() >= 0.8


def test_groups_report():
    found = groups(models.load("mobilenet_v2"))
    assert {"layers": ["blocks.1.conv3", "blocks.2.conv3"], "channels": 24, "prunable": True, "why": None} in found
    assert found[-1]["layers"] == ["fc"] and not found[-1]["prunable"]
    assert not any("conv2" in layer for g in found for layer in g["layers"])  # depthwise convs produce no group


class _View(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4 * 36, 3)

    def forward(self, x):
        return self.fc(self.conv(x).view(x.shape[0], -1))


class _Offset(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.offset = nn.Conv2d(1, 4, 3), nn.Parameter(torch.ones(1, 4, 1, 1))
        self.pool, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.conv(x) + self.offset)))


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.pool, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.b(self.b(self.a(x))))))


@pytest.mark.parametrize("net, fixed, why", [
    (_View(), "conv", "view"),
    (_Offset(), "conv", "offset"),
    (_Twice(), "a", "called 2 times"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.PReLU(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)),
     "0", "PReLU"),
])
def test_what_the_analysis_does_not_know_is_left_alone(net, fixed, why):
    found = {layer: g for g in groups(net) for layer in g["layers"]}
    assert not found[fixed]["prunable"] and why in found[fixed]["why"]
    small = channels(net, 0.5)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(small(x), net(x))  # nothing prunable: the same function


def test_train_and_eval_modes_are_kept_per_module(zoo):
    net = copy.deepcopy(zoo["resnet"]).train()
    net.blocks[1].eval()
    analyse(net)
    assert net.training and not net.blocks[1].training and not net.blocks[1].bn1.training and net.stem.bn.training


@pytest.mark.parametrize("call, error, words", [
    (lambda m: channels("resnet", 0.5), TypeError, "torch.nn.Module"),
    (lambda m: channels(m, 1.0), ValueError, "[0, 1)"),
    (lambda m: channels(m, -0.1), ValueError, "[0, 1)"),
    (lambda m: channels(m, "half"), TypeError, "fraction"),
    (lambda m: channels(m, True), TypeError, "fraction"),
    (lambda m: channels(m, 0.5, criterion="l2"), ValueError, "criterion"),
    (lambda m: channels(m, {"stem.relu": 0.5}), ValueError, "not a conv/linear layer"),
    (lambda m: channels(m, {"fc": 0.5}), ValueError, "output (logits)"),
    (lambda m: channels(m, {3: 0.5}), TypeError, "layer names"),
    (lambda m: channels(m, {"stem.conv": 0.5, "blocks.0.conv2": 0.25}), ValueError, "same residual add"),
    (lambda m: channels(m, 0.5, input_shape=(1, 3, 32, 32)), ValueError, "input_shape"),
    (lambda m: channels(m, 0.5, input_shape="8x8"), ValueError, "input_shape"),
    (lambda m: channels(models.load("mobilenet_v1"), {"blocks.0.conv1": 0.5}), ValueError, "depthwise"),
    (lambda m: channels(models.load("mlp"), 0.5, criterion="bn"), ValueError, "criterion='l1'"),
])
def test_friendly_errors(zoo, call, error, words):
    with pytest.raises(error, match=None) as info:
        call(zoo["resnet"])
    assert words in str(info.value)


def test_untraceable_model_says_so():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    with pytest.raises(ValueError, match="traceable"):
        channels(Branchy(), 0.5, input_shape=(1, 4))
