"""qkit panels in the page: find them, move their controls, see what the learner sees.

The DOM contract (``qkit/widgets/base.py``): a panel is ``.qkit-panel``; its picture
``img.qkit-picture``; its readout ``.qkit-readout``; each labelled control a
``.qkit-control`` holding its label (``.qkit-label`` or ipywidgets' ``.widget-label``)
and its toggle buttons, slider or checkbox.

"Changed" is judged on what is drawn, not on the ``<img>``'s URL (every new PNG gets a
new blob URL even when its pixels are identical): a hash of the picture's pixels,
read through a canvas, or the readout's text.

Example:
    >>> layout_problems({"label": "scheme", "kind": "toggle", "overlap": 30, "gap": 8, "rows": 1})
    []
    >>> layout_problems({"label": "data", "kind": "toggle", "overlap": -4, "gap": -120, "rows": 2})[0]
    "label 'data' is not on its buttons' row (vertical overlap -4 px)"
"""

from __future__ import annotations

MAX_GAP = 30  # px: a label ends at most this far left of its first button
MOVE_TIMEOUT = 15_000  # ms for the page to show a control's effect

# A fingerprint of what a panel shows: pixels of its picture, its readout, the picture's opacity.
FINGERPRINT = r"""(panel) => {
  const img = panel.querySelector('img.qkit-picture') || panel.querySelector('img');
  const readout = panel.querySelector('.qkit-readout');
  let pic = null;
  if (img && img.complete && img.naturalWidth > 0) {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let i = 0; i < d.length; i += 4) {
      h ^= d[i] | (d[i + 1] << 8) | (d[i + 2] << 16);
      h = Math.imul(h, 16777619);
    }
    pic = `${c.width}x${c.height}:${h >>> 0}`;
  }
  return {pic, readout: readout ? readout.innerText.trim() : null,
          opacity: img ? parseFloat(getComputedStyle(img).opacity) : null,
          stale: img ? img.classList.contains('qkit-stale') : null};
}"""

_CHANGED = f"""([panel, before]) => {{
  const now = ({FINGERPRINT})(panel);
  if (now.pic === null) return false;           // a new picture is still loading
  return (now.pic !== before.pic || now.readout !== before.readout) ? now : false;
}}"""

# Every control unit of a panel: its kind, label text and geometry (item 2 of issue 7).
# Without any .qkit-control (the contract broken), each ipywidgets control counts as a unit,
# so the layout checks still run; every unit is tagged data-qkit-unit=<index> for the moves.
_UNITS = r"""(panel) => {
  let found = [...panel.querySelectorAll('.qkit-control')];
  const contract = found.length > 0;
  if (!contract) found = [...panel.querySelectorAll('.widget-toggle-buttons, .widget-slider, .widget-checkbox')];
  return found.map((u, index) => {
  u.setAttribute('data-qkit-unit', index);
  const named = l => l && l.textContent.replace(/\u200b/g, '').trim();
  const label = u.querySelector('.qkit-label') || [...u.querySelectorAll('.widget-label')].find(named);
  const buttons = [...u.querySelectorAll('button.widget-toggle-button')];
  const slider = u.querySelector('.widget-slider .slider-container');
  const box = u.querySelector('.widget-checkbox input');
  const kind = buttons.length ? 'toggle' : slider ? 'slider' : box ? 'checkbox' : 'other';
  const first = buttons[0] || slider;
  const out = {index, kind, contract: true, label: named(label) || named(u.querySelector('.widget-label-basic')) || '',
               buttons: buttons.map(b => b.innerText.trim()), enabled: buttons.map(b => !b.disabled),
               disabled: kind === 'slider' ? !!u.querySelector('.slider[disabled], .noUi-target[disabled]')
                       : kind === 'checkbox' ? box.disabled : buttons.length > 0 && buttons.every(b => b.disabled),
               overlap: null, gap: null, rows: 0};
  if (label && first && named(label)) {
    const a = label.getBoundingClientRect(), b = first.getBoundingClientRect();
    out.overlap = Math.round(Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
    out.gap = Math.round(b.left - a.right);
  }
  const tops = [];
  for (const b of buttons) {
    const r = b.getBoundingClientRect();
    if (!tops.some(t => Math.abs(t - r.top) < r.height / 2)) tops.push(r.top);
  }
  out.rows = tops.length;
  out.contract = contract;
  return out;
});
}"""


def layout_problems(unit: dict) -> list[str]:
    """What is wrong with one control unit's layout (label beside its buttons, one row)."""
    found = []
    if unit["overlap"] is not None:
        if unit["overlap"] <= 0:
            found.append(f"label {unit['label']!r} is not on its buttons' row "
                         f"(vertical overlap {unit['overlap']} px)")
        elif not 0 <= unit["gap"] <= MAX_GAP:
            found.append(f"label {unit['label']!r} ends {unit['gap']} px before its first "
                         f"{'button' if unit['kind'] == 'toggle' else 'slider'} (expected 0-{MAX_GAP} px)")
    if unit["kind"] == "toggle" and unit["rows"] > 1:
        found.append(f"toggle {unit['label'] or unit['buttons']!r} spreads its buttons over {unit['rows']} rows")
    return found


def fingerprint(panel) -> dict:
    return panel.evaluate(FINGERPRINT)


def units(panel) -> list[dict]:
    return panel.evaluate(_UNITS)


def wait_changed(page, panel, before: dict, what: str) -> dict:
    """Wait until the panel's picture or readout differs from ``before``; return the new state."""
    try:
        handle = page.wait_for_function(_CHANGED, arg=[panel.element_handle(), before],
                                        polling=100, timeout=MOVE_TIMEOUT)
    except Exception as e:  # playwright's TimeoutError
        raise AssertionError(f"{what}: neither the picture nor the readout changed within "
                             f"{MOVE_TIMEOUT / 1000:.0f} s (readout: {before['readout'][:200]!r})") from e
    return handle.json_value()


def _slider_handle(panel, index: int):
    return panel.locator(f'[data-qkit-unit="{index}"]').locator(".noUi-handle").first


def slider_key(panel, index: int) -> tuple[str, str]:
    """(key that moves the slider one step, key that moves it back): right unless at its max."""
    h = _slider_handle(panel, index)
    now, top = float(h.get_attribute("aria-valuenow")), float(h.get_attribute("aria-valuemax"))
    return ("ArrowRight", "ArrowLeft") if now < top else ("ArrowLeft", "ArrowRight")


def press(panel, index: int, key: str, times: int = 1) -> None:
    h = _slider_handle(panel, index)
    h.focus()
    for _ in range(times):
        h.press(key)


def click_button(panel, index: int, button: int) -> None:
    panel.locator(f'[data-qkit-unit="{index}"]').locator("button.widget-toggle-button").nth(button).click(timeout=5_000)


def active_button(panel, index: int) -> int:
    return panel.locator(f'[data-qkit-unit="{index}"]').evaluate(
        "u => [...u.querySelectorAll('button.widget-toggle-button')].findIndex(b => b.classList.contains('mod-active'))")


def click_checkbox(panel, index: int) -> None:
    panel.locator(f'[data-qkit-unit="{index}"]').locator("input[type=checkbox]").click(timeout=5_000)


def moves(panel, unit: dict) -> list[tuple[str, callable]]:
    """The moves that try every setting of one control once and return it to where it was.

    A slider: one step and back. Toggle buttons: each other enabled button in turn,
    then the first one again. A checkbox: on/off and back. Each move must change what is
    shown. A disabled control (greyed out, say 02's percentile under minmax) is not moved.
    """
    i, name = unit["index"], unit["label"] or unit["buttons"]
    if unit["disabled"]:  # greyed out in the page: the learner cannot move it either
        return []
    if unit["kind"] == "slider":
        there, back = slider_key(panel, i)
        return [(f"slider {name!r} {there}", lambda: press(panel, i, there)),
                (f"slider {name!r} {back}", lambda: press(panel, i, back))]
    if unit["kind"] == "toggle":
        start = active_button(panel, i)  # a disabled button is one the learner cannot press either
        order = [b for b, on in enumerate(unit["enabled"]) if on and b != start] + [start]
        if len(order) == 1:
            return []
        return [(f"toggle {name!r} -> {unit['buttons'][b]!r}", lambda b=b: click_button(panel, i, b)) for b in order]
    if unit["kind"] == "checkbox":
        return [(f"checkbox {name!r} (on/off)", lambda: click_checkbox(panel, i)),
                (f"checkbox {name!r} (back)", lambda: click_checkbox(panel, i))]
    return []
