"""The panel machinery shared by every lesson: layout, refresh, friendly errors.

A panel = controls + a picture (an ``ipywidgets.Image`` that receives a fresh
PNG on every change, drawn by a ``qkit.viz`` plot) + a one-paragraph readout.
Every control change runs ``update()``; an invalid combination (say A1 > A2)
shows the library's error message in the readout instead of a traceback, and
the last good picture stays, greyed out, so it never looks current.

What the browser sees (ipywidgets 8 syncs DOM classes, not arbitrary CSS, so
the look is one ``<style>`` element plus classes on the widgets)::

    VBox.qkit-panel
      HTML <style>          defines .qkit-stale, .qkit-control, .qkit-label, ...
      HBox (a row, wraps between units, never inside one)
        HBox.qkit-control   one labelled control: Label.qkit-label + ToggleButtons,
                            or a slider / checkbox with its own description beside it
      Image.qkit-picture    + .qkit-stale while the settings are invalid
      HTML.qkit-readout

In a test, drive a panel exactly as a learner does: ``panel.controls["bits"].value = 4``.
"""

from __future__ import annotations

import html

import ipywidgets as w

STALE_OPACITY = 0.3
STYLE = f"""<style>
.qkit-stale {{ opacity: {STALE_OPACITY}; filter: grayscale(1); }}
.qkit-picture {{ transition: opacity 0.1s; }}
.qkit-control {{ flex: 0 0 auto !important; flex-wrap: nowrap !important; align-items: center;
  width: auto !important; margin: 2px 28px 2px 0 !important; }}
.qkit-control > * {{ flex-shrink: 0 !important; }}
.qkit-control .widget-toggle-buttons {{ width: auto !important; flex-wrap: nowrap !important; }}
.qkit-control .widget-toggle-buttons > div {{ display: flex; flex-wrap: nowrap; }}
.qkit-label {{ width: auto !important; margin: 0 8px 0 0 !important; font-weight: 600; }}
</style>"""


def picture_width(plot) -> int:
    """Pixel width of the PNGs ``plot`` renders (its figure's inches times dpi), 900 if unknown."""
    fig = getattr(plot, "fig", None)
    return round(fig.get_figwidth() * fig.dpi) if fig is not None else 900


def control_unit(control: w.DOMWidget) -> w.HBox:
    """One labelled control that never splits: ``HBox.qkit-control`` of its label and its buttons.

    A ``ToggleButtons``' description is moved into a ``Label.qkit-label`` beside
    it (the widget's own description label and its buttons wrap apart); a
    slider or checkbox keeps its own description, which sits inside its element.

    Example:
        >>> tb = toggle("scheme", ["affine", "scale"], "affine")
        >>> unit = control_unit(tb)
        >>> [type(c).__name__ for c in unit.children], unit.children[0].value, tb.description
        (['Label', 'ToggleButtons'], 'scheme', '')
        >>> sorted(unit._dom_classes), unit.layout.flex_flow
        (['qkit-control'], 'row nowrap')
    """
    children = [control]
    if isinstance(control, w.ToggleButtons) and control.description:
        label = w.Label(control.description)
        label.add_class("qkit-label")
        control.description = ""
        children = [label, control]
    box = w.HBox(children, layout=w.Layout(flex_flow="row nowrap", width="auto", align_items="center",
                                           margin="2px 28px 2px 0"))
    box.add_class("qkit-control")
    return box


class Panel:
    """Base class: lays out ``controls``, the picture and the readout; calls ``update`` on change.

    ``stale`` is True while the settings are invalid (the picture then carries
    the DOM class ``qkit-stale``). ``close()`` closes every widget of the panel,
    after which nothing in ipywidgets refers to it any more.
    """

    title = ""

    def __init__(self, controls: dict[str, w.ValueWidget], plot, rows: list[list[str]] | None = None) -> None:
        self.controls = controls
        self.plot = plot
        px = picture_width(plot)  # shown at the PNG's own width (1 image pixel = 1 screen pixel)
        self.image = w.Image(format="png", layout=w.Layout(width=f"{px}px", max_width="100%", height="auto"))
        self.image.add_class("qkit-picture")
        self.readout = w.HTML()
        self.readout.add_class("qkit-readout")
        self.style = w.HTML(STYLE, layout=w.Layout(height="0px", margin="0px", overflow="hidden"))  # no blank row
        for c in controls.values():
            c.observe(self._on_change, names="value")
        rows = rows or [list(controls)]
        self.units = {k: control_unit(c) for k, c in controls.items()}
        boxes = [w.HBox([self.units[k] for k in row], layout=w.Layout(flex_flow="row wrap")) for row in rows]
        self.widget = w.VBox([self.style, *boxes, self.image, self.readout])
        self.widget.add_class("qkit-panel")
        self._boxes = boxes
        self.error: str | None = None
        self.stale = False
        self.refresh()

    def _on_change(self, _change=None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute and redraw; a bad combination of values becomes a readout message."""
        try:
            values = {k: c.value for k, c in self.controls.items()}
            text = self.update(**values)
        except (ValueError, TypeError) as e:
            self.error = str(e)
            self.readout.value = f"<span style='color:#b00'>⚠ {html.escape(str(e))}</span>"
            self.stale = True  # the picture no longer matches the controls: grey it out in the page
            self.image.add_class("qkit-stale")
            return
        self.error = None
        self.image.value = self.plot.render()
        self.stale = False
        self.image.remove_class("qkit-stale")
        self.readout.value = text

    def update(self, **values) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Close every widget of the panel (the page drops it; Python can free the panel)."""
        for c in self.controls.values():
            c.unobserve(self._on_change, names="value")
        for unit in self.units.values():
            for child in unit.children:
                child.close()
            unit.close()
        for box in (*self._boxes, self.style, self.image, self.readout, self.widget):
            box.close()

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"{type(self).__name__}({', '.join(self.controls)}): "
                                "run this cell to get the interactive panel")
        return bundle


def slider(kind, description: str, value, lo, hi, step, **kw):
    """A slider whose description sits beside it, wide enough for the label (about 7 px a character)."""
    width = 180 + 7 * len(description)
    kw.setdefault("layout", w.Layout(width=f"{width}px"))
    return kind(
        value=value, min=lo, max=hi, step=step, description=description,
        continuous_update=True, style={"description_width": "initial"}, **kw,
    )


def toggle(description: str, options, value):
    """Toggle buttons wide enough for their longest label (about 8 px a character).

    ``description`` becomes the label that ``Panel`` puts beside the buttons
    (``control_unit``), so label and buttons stay on one line.
    """
    labels = [str(o[0] if isinstance(o, tuple) else o) for o in options]
    width = max(64, 8 * max(len(label) for label in labels) + 20)
    return w.ToggleButtons(
        options=options, value=value, description=description,
        style={"description_width": "initial", "button_width": f"{width}px"},
        layout=w.Layout(width="auto"),
    )


def fmt(v: float) -> str:
    return f"{v:.4g}"
