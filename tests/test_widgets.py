"""Lesson 01's panels, driven from pytest exactly as a learner drives them: by setting .value."""

from __future__ import annotations

import gc
import re
import struct
import weakref

import ipywidgets as w
from matplotlib.text import Text
import numpy as np
import pytest
import torch

from qkit import data, models, viz, widgets

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
    assert number_line.image.value == good_picture  # the last good picture stays, greyed out
    assert number_line.stale and "qkit-stale" in number_line.image._dom_classes
    number_line.controls["signed"].value = False
    number_line.controls["narrow"].value = True  # narrow unsigned: refused politely
    number_line.controls["a1"].value = -1.0
    assert "signed grids only" in number_line.error
    _reset(number_line, narrow=False, signed=True)
    assert number_line.error is None and "scale" in number_line.readout.value
    assert not number_line.stale and "qkit-stale" not in number_line.image._dom_classes


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


# --- what the page shows: the contract the browser test relies on ---------------------------------

def png_width(png: bytes) -> int:
    """Width from the PNG's IHDR chunk (bytes 16-20, big-endian)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", png[16:20])[0]


@pytest.fixture(scope="module")
def accumulator():
    return widgets.AccumulatorPanel(k=4096)


@pytest.fixture(params=["number_line", "weight_panel", "accumulator"])
def any_panel(request):
    return request.getfixturevalue(request.param)


def test_panel_carries_the_stale_style_and_its_dom_classes(any_panel):
    styles = [c for c in any_panel.widget.children if isinstance(c, w.HTML) and "<style>" in c.value]
    assert len(styles) == 1
    rule = re.search(r"\.qkit-stale\s*\{([^}]*)\}", styles[0].value).group(1)
    decls = {k.strip(): v.strip() for k, v in (d.split(":") for d in rule.split(";") if d.strip())}
    assert decls == {"opacity": "0.3", "filter": "grayscale(1)"}
    assert "qkit-panel" in any_panel.widget._dom_classes
    assert "qkit-picture" in any_panel.image._dom_classes
    assert "qkit-readout" in any_panel.readout._dom_classes
    assert not any_panel.stale and "qkit-stale" not in any_panel.image._dom_classes


def _units(panel):
    return [u for box in panel.widget.children if isinstance(box, w.HBox) for u in box.children]


def test_every_control_is_one_unit_that_never_splits(any_panel):
    units = _units(any_panel)
    assert len(units) == len(any_panel.controls)
    found = set()
    for unit in units:
        assert "qkit-control" in unit._dom_classes and unit.layout.flex_flow == "row nowrap"
        widgets_in = [c for c in unit.children if not isinstance(c, w.Label)]
        assert len(widgets_in) == 1
        control = widgets_in[0]
        found.add(id(control))
        if isinstance(control, w.ToggleButtons):  # the label is its own element, right before the buttons
            labels = [c for c in unit.children if isinstance(c, w.Label)]
            assert control.description == "" and unit.children[-1] is control
            assert all("qkit-label" in lab._dom_classes and lab.value for lab in labels)
    assert found == {id(c) for c in any_panel.controls.values()}


def test_named_toggles_keep_their_label_beside_them(number_line, accumulator):
    def label_of(panel, name):
        unit = panel.units[name]
        return [c.value for c in unit.children if isinstance(c, w.Label)]
    assert label_of(number_line, "scheme") == ["scheme"] and label_of(number_line, "signed") == []
    assert label_of(accumulator, "acc_bits") == ["accumulator"] and label_of(accumulator, "data") == ["data"]


def test_picture_is_shown_at_the_width_it_was_rendered(any_panel):
    px = png_width(any_panel.image.value)
    assert any_panel.image.layout.width == f"{px}px" and any_panel.image.layout.max_width == "100%"


def test_a_closed_panel_can_be_freed():
    panel = widgets.NumberLinePanel()
    ref = weakref.ref(panel)
    panel.close()
    del panel
    gc.collect()
    assert ref() is None


# --- lesson 03: the wrapped register is visible ---------------------------------------------------

@pytest.mark.lesson03
def test_int16_wrap_is_visible_and_told_in_words(accumulator):
    c = accumulator.controls
    c["data"].value, c["k"].value, c["acc_bits"].value = "worst case", 4096, 16
    ax = accumulator.plot.ax_sum
    assert ax.get_yscale() == "symlog"  # a linear ±140 M axis would flatten the register to 0
    y = accumulator.plot.wrapped.get_ydata()
    assert y.min() >= -2**15 and y.max() <= 2**15 - 1
    pixels = ax.transData.transform(np.c_[np.ones_like(y), y])[:, 1]
    assert np.ptp(pixels) > 0.3 * ax.get_window_extent().height  # the register's swing fills its band
    text = accumulator.readout.value
    assert "holds only -32,768 … 32,767" in text and "0 instead of -133,693,440" in text
    assert accumulator.wraps > 1000 and f"{accumulator.wraps:,} times" in text
    c["acc_bits"].value = 32
    assert ax.get_yscale() == "linear" and "no overflow" in accumulator.readout.value


def test_envelope_keeps_every_extreme():
    from qkit.viz.kernels import envelope

    y = np.where(np.arange(10_000) % 2 == 0, -30_000, 30_000)  # wraps on every step
    k, v = envelope(y, max_points=100)
    assert len(v) <= 202 and v.min() == -30_000 and v.max() == 30_000
    assert (np.diff(k) >= 0).all() and k[0] == 1


# --- lesson 04's curves: the highlight stands out, labels never pile up ---------------------------

def test_curves_plot_highlight_on_top_and_labels_apart():
    bits = list(range(2, 9))
    curves = {f"model{i}": (bits, [20 + i, 80, 95, 97.5 + 0.1 * i, 98, 98.2, 98.3 + 0.05 * i]) for i in range(6)}
    plot = viz.CurvesPlot(curves, xlabel="bits", ylabel="%", title="t", ylim=(0, 101))
    ys = plot.update(8, "model3")
    assert ys["model3"] == pytest.approx(98.45)
    plot.render()
    others = [plot.lines[n] for n in curves if n != "model3"]
    assert plot.chosen.get_linewidth() >= 2.5 * max(line.get_linewidth() for line in others)
    assert plot.chosen.get_zorder() > max(line.get_zorder() for line in others)
    assert all(line.get_alpha() <= 0.5 for line in others)
    assert plot.chosen.get_color() == plot.lines["model3"].get_color()
    renderer = plot.fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(plot.labels[n], renderer) for n in curves]  # the text, not its leader
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)
    assert all(box.x1 <= plot.fig.bbox.x1 for box in boxes)  # inside the picture, not cut off


# --- lesson 01's error plot explains its marks ---------------------------------------------------

def test_number_line_error_plot_has_a_legend(number_line):
    legend = number_line.plot.legend  # a figure legend just above the error plot
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == 3 and any("clipped" in t for t in texts) and any("scale/2" in t for t in texts)
