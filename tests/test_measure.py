"""Size, latency and comparison tables (lesson 04). Timings are never asserted, only their structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qkit import measure, ptq

pytestmark = pytest.mark.lesson04


def test_model_size_counts_the_serialized_state_dict():
    layer = nn.Linear(256, 64)
    assert measure.tensor_bytes(layer) == (256 * 64 + 64) * 4
    assert measure.tensor_bytes(layer) < measure.model_size(layer) < measure.tensor_bytes(layer) + 2048
    assert measure.model_size(layer.half()) < measure.model_size(nn.Linear(256, 64)) / 1.9
    assert measure.format_bytes(measure.model_size(nn.Linear(1, 1))).endswith(("B", "KiB"))


def test_tensor_bytes_counts_shared_storage_once():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            table = torch.zeros(100)
            self.register_buffer("a", table)
            self.register_buffer("b", table[10:20])  # a view of the same storage

    assert measure.tensor_bytes(Shared()) == 400


def test_converted_models_store_their_real_dtypes():
    model = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)).eval()
    fp32 = measure.model_size(model)
    half = ptq.convert(model, "fp16")
    q = ptq.convert(model, "int8", calibration=torch.randn(32, 512))
    assert fp32 / measure.model_size(half) > 1.9 and fp32 / measure.model_size(q) > 3.5
    assert q.state_dict()["0.q_w"].dtype == torch.int8 and half.state_dict()["0.weight"].dtype == torch.float16


def test_latency_returns_sane_structure():
    t = measure.latency(nn.Linear(16, 4), torch.randn(32, 16), repeat=5, warmup=1)
    assert set(t) == {"median_ms", "p95_ms", "batch", "threads", "repeat"}
    assert 0 < t["median_ms"] <= t["p95_ms"] and t["batch"] == 32 and t["repeat"] == 5
    assert t["threads"] == torch.get_num_threads()


def test_latency_runs_in_inference_mode():
    seen = []
    layer = nn.Linear(4, 2)
    layer.register_forward_hook(lambda m, i, o: seen.append(torch.is_inference_mode_enabled()))
    measure.latency(layer, torch.randn(2, 4), repeat=2, warmup=1)
    assert seen == [True, True, True]


def test_compare_rows_and_ratios():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    X, y = torch.randn(40, 1, 4, 4), torch.randint(0, 3, (40,))
    rows = measure.compare({"fp32": model, "fp16": ptq.convert(model, "fp16")}, X, y, batch=8, repeat=2,
                           warmup=1)
    assert [r["name"] for r in rows] == ["fp32", "fp16"]
    base, half = rows
    assert base["size_ratio"] == 1.0 and base["speedup"] == 1.0 and base["accuracy_drop"] == 0.0
    assert half["size_ratio"] == pytest.approx(base["size"] / half["size"])
    assert half["batch"] == 8 and half["latency_ms"] > 0 and 0 <= half["accuracy"] <= 1
    assert half["payload_ratio"] == pytest.approx(base["tensor_bytes"] / half["tensor_bytes"])
    assert base["payload_ratio"] == 1.0
    quick = measure.compare({"fp32": model}, X, y, timing=False)
    assert quick[0]["latency_ms"] is None and quick[0]["speedup"] is None


def test_compare_times_round_robin_after_warmup():
    order, models = [], {}
    for name in ("a", "b"):
        models[name] = nn.Linear(4, 2)
        models[name].register_forward_hook(
            lambda m, i, o, name=name: order.append(name) if torch.is_inference_mode_enabled() else None)
    measure.compare(models, torch.randn(6, 4), torch.zeros(6, dtype=torch.long), repeat=3, warmup=2)
    assert order == ["a", "a", "b", "b"] + ["a", "b"] * 3  # warm-ups, then every model once per round


def test_format_table_aligns_compare_rows():
    rows = [{"name": "fp32", "accuracy": 0.9721, "accuracy_drop": 0.0, "size": 40_760, "size_ratio": 1.0,
             "latency_ms": 0.5, "speedup": 1.0},
            {"name": "int8 (all)", "accuracy": 0.975, "accuracy_drop": -0.29, "size": 13_400, "size_ratio": 3.04,
             "latency_ms": None, "speedup": None}]
    lines = measure.format_table(rows).splitlines()
    assert lines[0].split() == ["model", "accuracy", "drop", "(pt)", "size", "×", "smaller", "ms", "×", "faster"]
    assert set(lines[1]) == {"-"} and len(lines[1]) == len(lines[0])
    assert lines[2].split() == ["fp32", "97.21%", "+0.00", "39.8", "KiB", "1.00", "0.50", "1.00"]
    assert lines[3].split() == ["int8", "(all)", "97.50%", "-0.29", "13.1", "KiB", "3.04", "-", "-"]
    assert len({len(line) for line in lines[:3]}) == 1  # numbers right-aligned under their header
    custom = measure.format_table(rows, [("name", "variant", "s"), ("size", "bytes", "d")]).splitlines()
    assert custom[0].split() == ["variant", "bytes"] and custom[3].split() == ["int8", "(all)", "13400"]


@pytest.mark.parametrize("call, error", [
    (lambda: measure.latency("model", torch.zeros(1)), TypeError),
    (lambda: measure.latency(nn.Linear(1, 1), [1.0]), TypeError),
    (lambda: measure.latency(nn.Linear(1, 1), torch.zeros(1, 1), repeat=0), ValueError),
    (lambda: measure.tensor_bytes(None), TypeError),
    (lambda: measure.compare({}, torch.zeros(1, 1), torch.zeros(1)), ValueError),
])
def test_bad_input(call, error):
    with pytest.raises(error):
        call()
