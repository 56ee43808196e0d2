"""Simulated whole-model quantization (lesson 04's accuracy cliff)."""

from __future__ import annotations

import pytest
import torch

from qkit import models
from qkit.activations import capture
from qkit.simulate import simulate

pytestmark = pytest.mark.lesson04


@pytest.mark.parametrize("bits", [2, 3, 8])
def test_weights_hold_only_grid_values_and_the_original_is_untouched(bits):
    mlp = models.load("mlp")
    before = mlp.fc1.weight.clone()
    sim = simulate(mlp, bits)
    assert torch.equal(mlp.fc1.weight, before)
    for layer in (sim.fc1, sim.fc2):
        for row in layer.weight:
            levels = row.unique().numel()
            assert levels <= 2**bits - 1  # narrow symmetric grid: 2**bits - 1 levels
            assert torch.allclose(row.abs().max(), layer.weight.new_tensor(0.0)) or levels >= 2


def test_activations_are_quantized_when_calibrated(zoo, calibration):
    X = calibration
    sim = simulate(zoo["mlp"], 8, X[:128], act_bits=3)
    hidden = capture(sim, "relu", X[:64])
    assert hidden.unique().numel() <= 2**3  # an unsigned 3-bit grid
    float_hidden = capture(zoo["mlp"], "relu", X[:64])
    assert float_hidden.unique().numel() > 100


def test_fewer_bits_never_help_much_and_two_bits_hurt(zoo, calibration, digits_test):
    from qkit.train import evaluate

    Xt, yt = digits_test
    mlp = zoo["mlp"]
    acc = {b: evaluate(simulate(mlp, b, calibration), Xt, yt) for b in (8, 2)}
    assert acc[8] >= evaluate(mlp, Xt, yt) - 0.01
    assert acc[2] < acc[8] - 0.1


def test_bad_arguments(zoo):
    mlp = zoo["mlp"]
    with pytest.raises(ValueError, match="bits must be an int in"):
        simulate(mlp, 1)
    with pytest.raises(ValueError, match="unknown observer"):
        simulate(mlp, 8, torch.zeros(2, 1, 8, 8), observer="median")
