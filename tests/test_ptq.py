"""Post-training quantization (lesson 04): BN folding, fp16 / dynamic / full-integer conversion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from qkit import OBSERVERS, choose_qparams, dequantize, graph, models, ptq, quantize
from qkit.measure import model_size
from qkit.nn import (DynamicQuantConv2d, DynamicQuantLinear, Float16Conv2d, Float16Linear, QuantConv2d,
                     QuantLinear, Quantize, clamp_grid)
from qkit.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from qkit.ptq.modules import QuantAdd, QuantCat, QuantGlobalAvgPool, QuantReLU, multiply, rescale
from qkit.graph import fold_batchnorm
from qkit.train import evaluate

pytestmark = pytest.mark.lesson04

INTEGER_MODULES = (QuantConv2d, QuantLinear, QuantAdd, QuantCat, QuantGlobalAvgPool, QuantReLU)
BIG_ENOUGH = 80_000  # bytes of the float32 file above which torch.save's fixed ~1.5 KB no longer dominates


# -- small models with the zoo's kinds of blocks -------------------------------------------------
class Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + x)


class Branches(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(c, 4, 1), nn.BatchNorm2d(4), nn.ReLU6())
        self.b = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(c, 6, 3, padding=1), nn.ReLU())

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


class Tiny(nn.Module):
    """stem → residual block → (BN after the add) → branches+cat → maxpool → mean → linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.res = Residual(8)
        self.post_bn = nn.BatchNorm2d(8)  # not after a conv: becomes a 1x1 depthwise conv
        self.branches = Branches(8)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(10, 10)

    def forward(self, x):
        x = self.pool(self.branches(self.post_bn(self.res(self.stem(x)))))
        return self.fc(self.drop(x.mean((2, 3))))


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
    return model.eval()


def _tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return _randomize_bn(Tiny(), seed)


@pytest.fixture(scope="module")
def converted(zoo, calibration, digits_test):
    """``converted(name)``: the float zoo model, its three conversions and their test accuracies (cached)."""
    cache = {}

    def get(name: str) -> dict:
        if name not in cache:
            out = {"fp32": zoo[name]}
            for mode in ptq.MODES:
                out[mode] = ptq.convert(zoo[name], mode, calibration=calibration)
            cache[name] = {"models": out, "accuracy": {k: evaluate(m, *digits_test) for k, m in out.items()}}
        return cache[name]

    return get


# -- step 1: BatchNorm folding -------------------------------------------------------------------
def test_fold_conv_bn_and_bn_as_conv_match_float():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 5, 3, stride=2, padding=1, groups=1), _randomize_bn(nn.BatchNorm2d(5))
    x = torch.randn(4, 3, 9, 9)
    torch.testing.assert_close(graph.fold_conv_bn(conv, bn)(x), bn(conv(x)), rtol=1e-5, atol=1e-5)
    lin, bn1 = nn.Linear(6, 4), _randomize_bn(nn.BatchNorm1d(4))
    z = torch.randn(8, 6)
    torch.testing.assert_close(graph.fold_conv_bn(lin, bn1)(z), bn1(lin(z)), rtol=1e-5, atol=1e-5)
    t = torch.randn(2, 5, 3, 3)
    torch.testing.assert_close(graph.bn_as_conv(bn)(t), bn(t), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["tiny"] + models.names())
def test_folded_float_model_equals_original(name, zoo, digits_test):
    model = _tiny() if name == "tiny" else zoo[name]
    folded = graph.fold_batchnorm(model)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    Xt, _ = digits_test
    with torch.no_grad():
        torch.testing.assert_close(folded(Xt), model(Xt), rtol=1e-5, atol=1e-5)


def test_fold_refuses_batchnorm_without_running_stats():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False))
    with pytest.raises(ValueError, match="running statistics"):
        graph.fold_batchnorm(model)


# -- conversion on small models ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ptq.MODES)
def test_convert_is_float_in_float_out_and_close(mode):
    model = _tiny()
    x = torch.rand(16, 1, 8, 8)
    q = ptq.convert(model, mode, calibration=torch.rand(64, 1, 8, 8), backend="ref")
    with torch.no_grad():
        want, got = model(x), q(x)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert (got - want).abs().max() < {"fp16": 0.01, "dynamic": 0.1, "int8": 0.2}[mode] * want.abs().max()


def test_int8_layers_really_get_int8_tensors():
    q = ptq.convert(_tiny(), "int8", calibration=torch.rand(64, 1, 8, 8), backend="ref")
    seen = []

    def hook(module, inputs, output):
        seen.append((type(module).__name__, [t.dtype for t in inputs], output.dtype))

    for m in q.modules():
        if isinstance(m, INTEGER_MODULES):
            m.register_forward_hook(hook)
    q(torch.rand(4, 1, 8, 8))
    kinds = {k for k, _, _ in seen}
    assert kinds == {"QuantConv2d", "QuantLinear", "QuantAdd", "QuantCat", "QuantGlobalAvgPool"}
    for kind, ins, out in seen:
        assert set(ins) == {torch.int8} and out == torch.int8, kind
    quantizes = [n for n in q.graph.nodes if n.op == "call_module" and isinstance(q.get_submodule(n.target), Quantize)]
    assert len(quantizes) == 1 and quantizes[0].args[0].op == "placeholder"  # one Quantize, at the input


def test_report_lists_every_layer_and_what_ran_where():
    q = ptq.convert(_tiny(), "int8", calibration=torch.rand(64, 1, 8, 8), backend="ref")
    rows = {r.node: r for r in q.ptq_report}
    for path in ("stem.0", "res.conv1", "res.conv2", "post_bn", "branches.a.0", "branches.b.1", "fc"):
        assert rows[path].runs == "int8", path
    assert rows["stem.0"].op == "Conv2d+BatchNorm+ReLU" and rows["branches.a.0"].op == "Conv2d+BatchNorm+ReLU6"
    assert rows["post_bn"].op == "BatchNorm2d as 1x1 depthwise Conv2d"
    assert rows["add"].op == "add+ReLU" and rows["cat"].runs == "int8" and rows["mean"].runs == "int8"
    assert all(r.runs == "int8" for r in q.ptq_report)  # nothing in float in this model
    assert "float island" not in ptq.format_report(q.ptq_report)


def test_ops_without_integer_version_run_as_float_islands():
    class WithIsland(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act, self.fc = nn.Conv2d(1, 4, 3), nn.Hardswish(), nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(torch.sigmoid(self.act(self.conv(x))).amax((2, 3)) * 2.0)

    torch.manual_seed(0)
    model = WithIsland().eval()
    q = ptq.convert(model, "int8", calibration=torch.rand(64, 1, 8, 8), backend="ref")
    rows = {r.node: r.runs for r in q.ptq_report}
    assert rows == {"conv": "int8", "act": "float island", "sigmoid": "float island", "amax": "float island",
                    "mul": "float island", "fc": "int8"}
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        assert (q(x) - model(x)).abs().max() < 0.05


def test_backends_and_observers(zoo, calibration, digits_test):
    cal, x = torch.rand(64, 1, 8, 8), torch.rand(8, 1, 8, 8)
    model = _tiny()
    outs = [ptq.convert(model, "int8", calibration=cal, backend=b)(x) for b in ("ref", "fast")]
    assert torch.equal(outs[0], outs[1])  # integer kernels are bit-exact, so the whole model is
    mlp, (Xt, yt) = zoo["mlp"], digits_test
    for name in OBSERVERS:
        q = ptq.convert(mlp, "int8", calibration=calibration, observer=name, per_channel=False, backend="ref")
        assert evaluate(q, Xt, yt) > 0.95, name


def test_state_dict_is_the_whole_artifact():
    model, x = _tiny(), torch.rand(8, 1, 8, 8)
    a = ptq.convert(model, "int8", calibration=torch.rand(64, 1, 8, 8), backend="ref")
    b = ptq.convert(model, "int8", calibration=torch.rand(64, 1, 8, 8) * 3, backend="ref")  # other grids
    assert not torch.equal(a(x), b(x))
    sd = a.state_dict()
    assert sd["res.conv1.q_w"].dtype == torch.int8 and sd["res.conv1.w_scale"].dtype == torch.float32
    assert sd["act_scale"].dtype == torch.float32 and sd["act_zero_point"].dtype == torch.int32
    b.load_state_dict(sd)
    assert torch.equal(a(x), b(x))  # grids, weights and biases all came through the state_dict
    for q in (a, b):  # all layers' buffers of one dtype share one storage (saved once), also after loading
        assert len({t.untyped_storage().data_ptr() for k, t in q.state_dict().items()
                    if t.dtype == torch.int8}) == 1
        conv = q.get_submodule("res.conv1")
        assert conv.w_qp.scale is conv.w_scale and conv.q_w.untyped_storage().data_ptr() == \
            q.get_submodule("fc").q_w.untyped_storage().data_ptr()
    c = ptq.convert(model, "int8", calibration=torch.rand(64, 1, 8, 8) * 3, backend="fast")
    c(x)  # fill the fast kernels' cache with c's old weights, then load a's
    c.load_state_dict(sd)
    assert torch.equal(a(x), c(x))  # bit-identical to "ref": the cache saw the in-place load
    half = ptq.convert(model, "fp16").state_dict()
    assert {t.dtype for k, t in half.items() if k.endswith(("weight", "bias"))} == {torch.float16}


def test_original_model_is_untouched():
    model = _tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for mode in ptq.MODES:
        ptq.convert(model, mode, calibration=torch.rand(32, 1, 8, 8), backend="ref")
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert isinstance(model.stem[1], nn.BatchNorm2d)


def test_untraceable_model_is_explained_but_fp16_still_works():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.fc = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(72, 2)

        def forward(self, x):
            x = self.bn(self.conv(x))
            if x.sum() > 0:  # control flow on a tensor value: torch.fx cannot trace this
                x = -x
            return self.fc(x.flatten(1))

    model = Branchy().eval()
    with pytest.raises(ValueError, match="torch.fx-traceable.*control flow"):
        ptq.convert(model, "int8", calibration=torch.rand(4, 1, 8, 8))
    for mode in ("fp16", "dynamic"):
        q = ptq.convert(model, mode)
        assert ("bn", "float32", "BatchNorm2d") in [tuple(r) for r in q.ptq_report]
        assert q(torch.rand(3, 1, 8, 8)).shape == (3, 2)


@pytest.mark.parametrize("layer, match", [(nn.LayerNorm(8), "'2' of type LayerNorm"),
                                          (nn.BatchNorm1d(8), "'2' of type BatchNorm1d")])
def test_layers_with_weights_but_no_integer_version_are_refused(layer, match):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), layer, nn.Linear(8, 2)).eval()  # BN not after a layer
    with pytest.raises(ValueError, match=match):
        ptq.convert(model, "int8", calibration=torch.randn(16, 4))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(mode="int4"), ValueError, r"unknown mode 'int4'; choose one of \('fp16', 'dynamic', 'int8'\)"),
    (dict(mode="int8"), ValueError, "needs calibration data"),
    (dict(mode="int8", calibration=torch.zeros(0, 1, 8, 8)), ValueError, "empty"),
    (dict(mode="int8", calibration=torch.full((2, 1, 8, 8), float("nan"))), ValueError, "NaN"),
    (dict(mode="int8", calibration=[[0.0]]), TypeError, "float torch.Tensor"),
    (dict(mode="int8", calibration=torch.ones(2, 1, 8, 8, dtype=torch.int64)), TypeError, "floating-point"),
    (dict(mode="int8", calibration=torch.rand(2, 1, 8, 8), bits=4), ValueError, "bits=4 is not supported"),
    (dict(mode="int8", calibration=torch.rand(2, 1, 8, 8), observer="median"), ValueError, "unknown observer"),
    (dict(mode="int8", calibration=torch.rand(2, 1, 8, 8), backend="gpu"), ValueError, "backend must be"),
    (dict(mode="fp16", per_chanel=True), TypeError, "unknown option"),
])
def test_bad_input_is_refused_clearly(kwargs, error, match):
    with pytest.raises(error, match=match):
        ptq.convert(_tiny(), **kwargs)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="torch.nn.Module; got function"):
        ptq.convert(lambda x: x, "fp16")


# -- the layers and integer ops -------------------------------------------------------------------
def test_fp16_and_dynamic_layers():
    torch.manual_seed(0)
    lin, x = nn.Linear(20, 6), torch.randn(5, 3, 20)
    assert Float16Linear.from_float(lin).weight.dtype == torch.float16
    torch.testing.assert_close(Float16Linear.from_float(lin)(x), lin(x), rtol=0, atol=2e-3)
    dyn = DynamicQuantLinear.from_float(lin)
    assert dyn.q_w.dtype == torch.int8 and dyn(x).shape == (5, 3, 6)
    for conv in (nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=4),
                 nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.Conv2d(4, 6, 1, groups=2)):
        x = torch.randn(2, 4, 7, 7)
        half = Float16Conv2d.from_float(conv)
        torch.testing.assert_close(half(x), F.conv2d(x, conv.weight.half().float(), None if conv.bias is None
                                                     else conv.bias.half().float(), **half.geometry))
        dyn = DynamicQuantConv2d.from_float(conv)
        x_qp = choose_qparams(x.min(), x.max())  # the grid the layer picks from this batch
        want = F.conv2d(dequantize(quantize(x, x_qp), x_qp), dequantize(dyn.q_w, dyn.w_qp), conv.bias,
                        **dyn.geometry)  # float on exactly the integers the layer multiplies
        torch.testing.assert_close(dyn(x), want, rtol=1e-5, atol=1e-5)


def test_one_pass_multiply_is_bit_exact_with_tflite_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(-2**31, 2**31 - 1, (5000,), generator=g),
                   torch.tensor([-2**31, 2**31 - 1, 0, -1, 1, -(2**30), 2**30])])
    for real in [0.0, 1e-12, 2**-31, 0.3, 0.5, 0.75, 1 - 2**-30, 2**-20 * 3]:  # shift <= 0
        m, s = quantize_multiplier(real)
        assert torch.equal(multiply(x, m, s), multiply_by_quantized_multiplier(x, m, s).long()), real
    small = torch.randint(-1000, 1000, (100,), generator=g)  # shift > 0: the reference path
    assert torch.equal(multiply(small, *quantize_multiplier(3.7)),
                       multiply_by_quantized_multiplier(small, *quantize_multiplier(3.7)).long())


def test_integer_add_cat_pool_relu6_within_one_level():
    torch.manual_seed(0)
    a, b = torch.randn(4, 3, 5, 5), torch.rand(4, 3, 5, 5) * 4
    a_qp, b_qp = choose_qparams(a.min(), a.max()), choose_qparams(b.min(), b.max())
    qa, qb = quantize(a, a_qp), quantize(b, b_qp)
    fa, fb = dequantize(qa, a_qp), dequantize(qb, b_qp)
    y_qp = choose_qparams((fa + fb).min(), (fa + fb).max())
    assert (QuantAdd(a_qp, b_qp, y_qp)(qa, qb).int() - quantize(fa + fb, y_qp).int()).abs().max() <= 1
    relu6 = QuantAdd(a_qp, b_qp, y_qp, "relu6")(qa, qb)
    assert (dequantize(relu6, y_qp) - (fa + fb).clamp(0, 6)).abs().max() <= 1.5 * y_qp.scale
    c_qp = choose_qparams(-3.0, 5.0)
    cat = QuantCat([a_qp, b_qp], c_qp, dim=1)(qa, qb)
    assert cat.dtype == torch.int8 and (cat.int() - quantize(torch.cat([fa, fb], 1), c_qp).int()).abs().max() <= 1
    assert torch.equal(rescale(qa, a_qp, a_qp), qa)
    p_qp = choose_qparams(-1.0, 1.0)
    pooled = QuantGlobalAvgPool(a_qp, p_qp)(qa)
    assert pooled.shape == (4, 3, 1, 1)
    assert (pooled.int() - quantize(fa.mean((2, 3), keepdim=True), p_qp).int()).abs().max() <= 1
    grid = clamp_grid(choose_qparams(-2.0, 8.0), "relu6")
    assert dequantize(torch.tensor(grid.qmax, dtype=torch.int8), grid) == pytest.approx(6.0, abs=float(grid.scale) / 2)
    assert torch.equal(QuantReLU(a_qp, "relu")(qa), torch.maximum(qa, a_qp.zero_point.to(torch.int8)))


# -- the zoo: accuracy, size, report ---------------------------------------------------------------
@pytest.mark.parametrize("name", models.names())
def test_zoo_accuracy_within_budget(name, converted):
    acc = converted(name)["accuracy"]
    assert acc["fp32"] - acc["int8"] <= 0.01, acc  # at most 1 point lost
    assert acc["fp32"] - acc["fp16"] <= 0.005, acc
    assert acc["fp32"] - acc["dynamic"] <= 0.01, acc


@pytest.mark.parametrize("name", models.names())
def test_zoo_report_covers_every_layer_in_integer(name, converted):
    z = converted(name)["models"]
    layers = [n for n, m in z["fp32"].named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for mode, runs in (("int8", "int8"), ("fp16", "fp16"), ("dynamic", "dynamic int8")):
        rows = {r.node: r.runs for r in z[mode].ptq_report}
        assert all(rows[p] == runs for p in layers), (mode, rows)
    assert all(r.runs == "int8" for r in z["int8"].ptq_report)  # the zoo needs no float island


@pytest.mark.parametrize("name", models.names())
def test_zoo_sizes(name, converted):
    z = converted(name)["models"]
    size = {k: model_size(m) for k, m in z.items()}
    assert size["fp32"] / size["fp16"] >= 1.9 and size["int8"] < size["fp32"] / 2.5, size  # every model
    if size["fp32"] >= BIG_ENOUGH:  # "mlp" (40 KB float32: 3.0x) only misses 3.5x by the fixed overhead
        assert size["fp32"] / size["int8"] >= 3.5 and size["fp32"] / size["dynamic"] >= 3.5, size


def test_a_layer_called_twice_gets_one_integer_layer_per_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.relu = nn.Linear(6, 6), nn.ReLU()

        def forward(self, x):
            return self.fc(self.relu(self.fc(x)) * 3.0)  # the second call sees other values: another grid

    torch.manual_seed(0)
    model = Twice().eval()
    q = ptq.convert(model, "int8", calibration=torch.randn(64, 6), backend="ref")
    assert [r.node for r in q.ptq_report if r.op.startswith("Linear")] == ["fc", "fc"]
    assert {"fc", "fc_1"} <= {name for name, _ in q.named_children()}
    x = torch.randn(16, 6)
    with torch.no_grad():
        assert (q(x) - model(x)).abs().max() < 0.05 * model(x).abs().max()


def test_skip_keeps_named_layers_in_float(zoo, calibration, digits_test):
    model = zoo["resnet"]
    names = ptq.layer_names(fold_batchnorm(model))
    q = ptq.convert(model, "int8", calibration, skip=(names[0], names[-1]))
    rows = {r.node: r.runs for r in q.ptq_report}
    assert rows[names[0]] == rows[names[-1]] == "float (skip)"
    assert all(rows[n] == "int8" for n in names[1:-1])
    kept = dict(q.named_modules())
    assert isinstance(kept[names[0]], nn.Conv2d) and isinstance(kept[names[-1]], nn.Linear)  # float layers
    full = ptq.convert(model, "int8", calibration)
    X, y = digits_test
    assert evaluate(q, X, y) >= evaluate(full, X, y) - 0.01
    with pytest.raises(ValueError, match="its layers are"):
        ptq.convert(model, "int8", calibration, skip=("stem",))
    with pytest.raises(TypeError, match="tuple of layer names"):
        ptq.convert(model, "int8", calibration, skip="fc")


def test_a_loaded_state_clamps_relu6_on_its_own_grid(zoo, calibration, digits_test):
    """A fused ReLU6 clamps at the level of 6.0, which depends on the grid a loaded state brings."""
    a = ptq.convert(zoo["mobilenet_v2"], "int8", calibration)
    b = ptq.convert(zoo["mobilenet_v2"], "int8", calibration * 0.5)
    b.load_state_dict(a.state_dict())
    X = digits_test[0]
    assert torch.equal(a(X), b(X))


def test_float64_rounding_of_pool_and_rescale_is_the_exact_mean_rounded_once():
    """rounding="float64": round(acc·M) once, ties away; the fixed-point pair can round 0.375 up to 1."""
    x_qp = choose_qparams(0.0, 4.0, bits=4)  # 4-bit levels held in int8
    y_qp = choose_qparams(0.0, 2.9, bits=4)  # M = s_x / (4 s_y) = 0.3448: one bit of shift
    q = torch.randint(x_qp.qmin, x_qp.qmax + 1, (64, 3, 2, 2), generator=torch.Generator().manual_seed(0),
                      dtype=torch.int8)
    out = QuantGlobalAvgPool(x_qp, y_qp, rounding="float64")(q)
    from fractions import Fraction  # the exact mean, in plain rationals
    s_x, s_y = Fraction(float(x_qp.scale)), Fraction(float(y_qp.scale))
    for (n, c), got in zip([(n, c) for n in range(64) for c in range(3)], out.reshape(-1).tolist()):
        acc = sum(int(v) - int(x_qp.zero_point) for v in q[n, c].reshape(-1).tolist())
        v = acc * s_x / (4 * s_y)
        r = int(v) + (1 if v - int(v) >= Fraction(1, 2) else 0)  # v >= 0 here: ties away = up
        assert got == max(y_qp.qmin, min(y_qp.qmax, r + int(y_qp.zero_point)))
    pair = QuantGlobalAvgPool(x_qp, y_qp)(q)
    assert not torch.equal(pair, out)  # the two roundings differ on such small sums
    r = rescale(q, x_qp, y_qp, rounding="float64")
    ref_ = torch.clamp(torch.round((q.double() - int(x_qp.zero_point)) * float(x_qp.scale) / float(y_qp.scale)
                                   + 1e-9) + int(y_qp.zero_point), y_qp.qmin, y_qp.qmax)  # no exact ties here
    assert torch.equal(r.double(), ref_)
    with pytest.raises(ValueError, match="rounding"):
        QuantCat([x_qp], y_qp, rounding="single")
