"""The panel machinery shared by every lesson: layout, refresh, friendly errors.

A panel = controls + a picture (an ``ipywidgets.Image`` that receives a fresh
PNG on every change, drawn by a ``qkit.viz`` plot) + a one-paragraph readout.
Every control change runs ``update()``; an invalid combination (say A1 > A2)
shows the library's error message in the readout instead of a traceback.

In a test, drive a panel exactly as a learner does: ``panel.controls["bits"].value = 4``.
"""

from __future__ import annotations

import html

import ipywidgets as w



class Panel:
    """Base class: lays out ``controls``, the picture and the readout; calls ``update`` on change."""

    title = ""

    def __init__(self, controls: dict[str, w.ValueWidget], plot, rows: list[list[str]] | None = None) -> None:
        self.controls = controls
        self.plot = plot
        self.image = w.Image(format="png", layout=w.Layout(width="100%", max_width="900px"))
        self.readout = w.HTML()
        for c in controls.values():
            c.observe(self._on_change, names="value")
        rows = rows or [list(controls)]
        boxes = [w.HBox([controls[k] for k in row], layout=w.Layout(flex_flow="row wrap")) for row in rows]
        self.widget = w.VBox([*boxes, self.image, self.readout])
        self.error: str | None = None
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
            self.image.layout.opacity = "0.3"  # the picture no longer matches the controls
            return
        self.error = None
        self.image.value = self.plot.render()
        self.image.layout.opacity = "1"
        self.readout.value = text

    def update(self, **values) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"{type(self).__name__}({', '.join(self.controls)}): "
                                "run this cell to get the interactive panel")
        return bundle


def slider(kind, description: str, value, lo, hi, step, **kw):
    return kind(
        value=value, min=lo, max=hi, step=step, description=description,
        continuous_update=True, style={"description_width": "initial"},
        layout=w.Layout(width="230px"), **kw,
    )


def toggle(description: str, options, value):
    """Toggle buttons wide enough for their longest label (about 8 px a character)."""
    labels = [str(o[0] if isinstance(o, tuple) else o) for o in options]
    width = max(64, 8 * max(len(label) for label in labels) + 20)
    return w.ToggleButtons(
        options=options, value=value, description=description,
        style={"description_width": "initial", "button_width": f"{width}px"},
    )


def fmt(v: float) -> str:
    return f"{v:.4g}"
