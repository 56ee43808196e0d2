"""Every lesson as a learner sees it: JupyterLab 4 + Debian's Chromium, driven by Playwright.

For each ``notebooks/NN_*.ipynb`` (new lessons join by their file name): restart
and run all; no error output, every widget rendered; every control of every panel
moved, and the page must show its effect (picture pixels or readout); labels sit
beside their buttons, one row per toggle group. In lesson 01 a range with A1 above
A2 must show in the page as a ⚠ readout over a greyed-out picture (computed style,
not a Python attribute). Screenshots go to ``build/browser-screenshots/``.

Without Chromium or Playwright this fails and says how to install them; it is
never skipped. ``QKIT_BROWSER_PYTHONPATH`` (optional) is put first on the kernel's
``PYTHONPATH``: point it at a copy of the repository to run that copy's ``qkit``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from browser import chromium, notebook, panels

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SHOTS = ROOT / "build" / "browser-screenshots"
INVALID = {"01": ("A1", "A2")}  # lesson: (lower, upper) sliders; pushing upper below lower is invalid
TIMES: dict[str, float] = {}


class _Summary:
    """Prints where the screenshots are (and how long each lesson took) at the end of the run."""

    def pytest_terminal_summary(self, terminalreporter):
        if TIMES:
            times = ", ".join(f"{k} {v:.0f} s" for k, v in TIMES.items())
            terminalreporter.write_line(f"browser test: screenshots in {SHOTS} ({times})")


@pytest.fixture(scope="module")
def lab_browser(request, tmp_path_factory):
    """``(base URL, browser context)``, or ``(None, why)`` when there is no browser to use."""
    if not request.config.pluginmanager.has_plugin("qkit-browser-summary"):
        request.config.pluginmanager.register(_Summary(), "qkit-browser-summary")
    browser = chromium.browser_context()
    try:
        ctx = browser.__enter__()
    except (FileNotFoundError, ImportError) as e:
        yield None, str(e)  # each test fails with this message (never skipped)
        return
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    try:
        with notebook.lab(tmp_path_factory.mktemp("lab"), os.environ.get("QKIT_BROWSER_PYTHONPATH")) as base:
            yield base, ctx
    finally:
        browser.__exit__(None, None, None)


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 4, f"expected the lessons 01-04 at least, found {NOTEBOOKS}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_lesson_in_the_browser(lab_browser, name):
    base, ctx = lab_browser
    if base is None:
        pytest.fail(ctx, pytrace=False)
    lesson = name[:2]
    t0 = time.monotonic()
    page = ctx.new_page()
    try:
        notebook.open_notebook(page, base, name)
        notebook.restart_and_run_all(page, base, name)
        TIMES[f"{lesson} run all"] = time.monotonic() - t0
        page.wait_for_timeout(500)
        notebook.screenshot_notebook(page, SHOTS / f"{lesson}-notebook.png")
        failures = _check_panels(page, lesson)
        notebook.screenshot_notebook(page, SHOTS / f"{lesson}-notebook-after-moves.png")
        state = page.evaluate(notebook._READ)
        failures += notebook.problems_in(state)  # e.g. a traceback from a callback
    finally:
        TIMES[f"{lesson} total"] = time.monotonic() - t0
        page.close()
        notebook.shutdown_kernels(base)
    assert not failures, f"{name} in the browser (screenshots in {SHOTS}):\n  " + "\n  ".join(failures)


def _shot(page, panel, path: str, pad: int = 10) -> None:
    """A screenshot of the panel with a margin of the page around it (what the learner sees)."""
    panel.scroll_into_view_if_needed()
    box = panel.bounding_box()
    clip = {"x": max(0, box["x"] - pad), "y": max(0, box["y"] - pad),
            "width": box["width"] + 2 * pad, "height": box["height"] + 2 * pad}
    page.screenshot(path=path, clip=clip)


def _check_panels(page, lesson: str) -> list[str]:
    count = page.locator(".qkit-panel").count()
    if count == 0:
        return ["no .qkit-panel on the page: every lesson has interactive panels"]
    failures: list[str] = []
    invalid_done = lesson not in INVALID
    for k in range(count):
        panel = page.locator(".qkit-panel").nth(k)
        title = f"{lesson}-panel{k + 1}"
        panel.scroll_into_view_if_needed()
        try:
            page.wait_for_function(f"p => ({panels.FINGERPRINT})(p).pic !== null",
                                   arg=panel.element_handle(), timeout=30_000)
        except Exception:
            failures.append(f"{title}: its picture never loaded")
            continue
        _shot(page, panel, str(SHOTS / f"{title}-normal.png"))
        units = panels.units(panel)
        if not units or not units[0]["contract"]:
            failures.append(f"{title}: no .qkit-control in the panel (each labelled control should be one)")
        for u in units:
            failures += [f"{title}: {p}" for p in panels.layout_problems(u)]
        shot = False
        for u in units:
            for what, move in panels.moves(panel, u):
                before = panels.fingerprint(panel)
                try:
                    move()
                    panels.wait_changed(page, panel, before, f"{title}: {what}")
                except AssertionError as e:
                    failures.append(str(e))
                    continue
                except Exception as e:  # playwright: the control could not be used at all
                    failures.append(f"{title}: {what}: {str(e).splitlines()[0]}")
                    continue
                if not shot:
                    page.wait_for_timeout(200)
                    _shot(page, panel, str(SHOTS / f"{title}-moved.png"))
                    shot = True
        labels = {u["label"]: u for u in units}
        if lesson in INVALID and all(s in labels for s in INVALID[lesson]):
            failures += _check_invalid(page, panel, title, labels[INVALID[lesson][0]], labels[INVALID[lesson][1]])
            invalid_done = True
    if not invalid_done:
        failures.append(f"no panel with sliders {INVALID[lesson]} to put in an invalid state")
    return failures


def _check_invalid(page, panel, title: str, lower: dict, upper: dict) -> list[str]:
    """Push the upper slider below the lower one: the page must show ⚠ and a greyed-out picture."""
    def value(u):
        return float(panel.locator(f'[data-qkit-unit="{u["index"]}"]').locator(".noUi-handle").first
                     .get_attribute("aria-valuenow"))
    presses = 0
    while value(upper) >= value(lower) and presses < 400:
        panels.press(panel, upper["index"], "ArrowLeft")
        presses += 1
    failures = []
    what = f"{title}: {upper['label']} below {lower['label']}"
    try:
        page.wait_for_function(
            f"p => {{ const s = ({panels.FINGERPRINT})(p); return s.readout.includes('⚠') && s.opacity < 0.5; }}",
            arg=panel.element_handle(), polling=100, timeout=15_000)
    except Exception:
        pass
    state = panels.fingerprint(panel)
    _shot(page, panel, str(SHOTS / f"{title}-invalid.png"))
    if "⚠" not in (state["readout"] or ""):
        failures.append(f"{what}: the readout shows no ⚠ ({state['readout'][:200]!r})")
    if state["opacity"] is None or state["opacity"] >= 0.5:
        failures.append(f"{what}: the stale picture is drawn at opacity {state['opacity']} in the page "
                        "(expected < 0.5: it must not look current)")
    panels.press(panel, upper["index"], "ArrowRight", presses)
    try:
        page.wait_for_function(
            f"p => {{ const s = ({panels.FINGERPRINT})(p); return s.pic && !s.readout.includes('⚠') && s.opacity > 0.9; }}",
            arg=panel.element_handle(), polling=100, timeout=15_000)
    except Exception:
        failures.append(f"{title}: back to a valid range, the panel still shows ⚠ or a greyed-out picture")
    return failures
