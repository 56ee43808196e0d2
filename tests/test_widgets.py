"""Lesson 01's panels, driven from pytest exactly as a learner drives them: by setting .value."""

from __future__ import annotations

import pytest
import torch

from qkit import data, models, widgets

pytestmark = pytest.mark.lesson01


@pytest.fixture(scope="module")
def number_line():
    return widgets.NumberLinePanel(a1=-1.0, a2=2.0, bits=3)


@pytest.fixture(scope="module")
def weight_panel():
    X, y = data.digits("test")
    return widgets.WeightBitsPanel(models.load("mlp"), "fc1", X, y, bits=4)


def _reset(panel, **values):
    for k, v in values.items():
        panel.controls[k].value = v


def test_bits_slider_changes_the_grid_and_the_picture(number_line):
    _reset(number_line, a1=-1.0, a2=2.0, scheme="affine", signed=True, narrow=False, bits=3)
    before = number_line.image.value
    number_line.controls["bits"].value = 5
    assert number_line.qp.qmin == -16 and number_line.qp.qmax == 15
    assert "32 levels" in number_line.readout.value
    assert number_line.image.value != before and number_line.image.value[:4] == b"\x89PNG"
    # the shown scale is the lesson's formula, computed here independently
    assert float(number_line.qp.scale) == pytest.approx(3.0 / 31, rel=1e-6)


def test_scale_scheme_has_zero_point_zero(number_line):
    _reset(number_line, a1=-0.5, a2=2.0, bits=4, signed=True, narrow=False)
    number_line.controls["scheme"].value = "scale"
    assert int(number_line.qp.zero_point) == 0
    assert float(number_line.qp.scale) == pytest.approx(2.0 / 7, rel=1e-6)
    assert "zero_point</b> = 0" in number_line.readout.value
    number_line.controls["scheme"].value = "affine"


def test_unsigned_and_narrow_toggles(number_line):
    _reset(number_line, a1=0.0, a2=6.0, bits=8, scheme="affine", narrow=False)
    number_line.controls["signed"].value = False
    assert (number_line.qp.qmin, number_line.qp.qmax) == (0, 255)
    number_line.controls["signed"].value = True
    number_line.controls["narrow"].value = True
    assert (number_line.qp.qmin, number_line.qp.qmax) == (-127, 127)
    number_line.controls["narrow"].value = False


def test_a_bad_combination_is_a_message_not_a_traceback(number_line):
    _reset(number_line, a1=-1.0, a2=1.0, bits=3, scheme="affine", signed=True, narrow=False)
    good_picture = number_line.image.value
    number_line.controls["a1"].value = 1.5  # now A1 > A2
    assert "A1 = 1.5 is above A2 = 1" in number_line.error
    assert "is above" in number_line.readout.value
    assert number_line.image.value == good_picture  # the last good picture stays, dimmed
    assert number_line.image.layout.opacity == "0.3"
    number_line.controls["signed"].value = False
    number_line.controls["narrow"].value = True  # narrow unsigned: refused politely
    number_line.controls["a1"].value = -1.0
    assert "signed grids only" in number_line.error
    _reset(number_line, narrow=False, signed=True)
    assert number_line.error is None and "scale" in number_line.readout.value
    assert number_line.image.layout.opacity == "1"


def test_every_control_survives_its_whole_range(number_line):
    _reset(number_line, a1=-1.0, a2=2.0, bits=3, scheme="affine", signed=True, narrow=False)
    for name, c in number_line.controls.items():
        start = c.value
        values = ([o[1] if isinstance(o, tuple) else o for o in c.options] if hasattr(c, "options")
                  else [True, False] if isinstance(c.value, bool)
                  else [c.min, (c.min + c.max) / 2 if isinstance(c.min, float) else (c.min + c.max) // 2, c.max])
        for v in values:
            c.value = v  # must not raise, whatever the combination
        c.value = start
    assert number_line.error is None


def test_worst_error_inside_the_range_is_at_most_half_a_step(number_line):
    for bits in (2, 3, 6, 8):
        _reset(number_line, a1=-1.3, a2=2.2, scheme="affine", signed=True, narrow=False, bits=bits)
        step = float(number_line.qp.scale)
        assert number_line.measured["worst_in_range"] <= step / 2 * (1 + 1e-4)


def test_weight_panel_more_bits_less_error(weight_panel):
    sqnr = {}
    for bits in (2, 4, 8):
        weight_panel.controls["bits"].value = bits
        sqnr[bits] = weight_panel.sqnr
        assert 0.0 <= weight_panel.accuracy <= 1.0
    assert sqnr[2] < sqnr[4] < sqnr[8]
    assert sqnr[8] - sqnr[4] == pytest.approx(4 * 6.02, abs=3.0)  # the 6 dB-per-bit rule


def test_weight_panel_leaves_the_model_unchanged(weight_panel):
    original = models.load("mlp").fc1.weight
    weight_panel.controls["bits"].value = 2
    weight_panel.controls["scheme"].value = "scale"
    assert torch.equal(weight_panel.model.fc1.weight, original)
    assert "float 97" in weight_panel.readout.value or "float" in weight_panel.readout.value
    weight_panel.controls["scheme"].value = "affine"


def test_panels_have_a_stable_text_repr(number_line, weight_panel):
    bundle = number_line._repr_mimebundle_()
    assert bundle["text/plain"].startswith("NumberLinePanel(a1, a2, bits, scheme, signed, narrow)")
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert weight_panel._repr_mimebundle_()["text/plain"].startswith("WeightBitsPanel(bits, scheme)")
    assert "run this cell" in bundle["text/plain"]


def test_weight_panel_names_the_layers_it_can_show():
    with pytest.raises(ValueError, match=r"one of \['fc1', 'fc2'\]; got 'fc9'"):
        widgets.WeightBitsPanel(models.load("mlp"), "fc9")
    with pytest.raises(ValueError, match="both X and y"):
        widgets.WeightBitsPanel(models.load("mlp"), "fc1", X=torch.zeros(2, 1, 8, 8))
    panel = widgets.WeightBitsPanel(models.load("mlp"), "fc2")  # no data: no accuracy shown
    assert "accuracy" not in panel.readout.value and panel.error is None
