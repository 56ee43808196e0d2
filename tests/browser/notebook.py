"""A lesson in JupyterLab as a learner runs it: open, restart and run all, read the outputs.

The Lab serves a temporary copy of ``notebooks/`` with autosave off, so nothing
is ever written back into the repository. Every cell stays in the DOM
(``windowingMode: none``) so the checks see the whole notebook.

Example:
    >>> problems_in({"prompts": ["[1]:"], "stderr": ["Traceback (most recent call last):"],
    ...              "fallbacks": [], "loading": 0, "dialogs": []})
    ['error output: Traceback (most recent call last):']
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from browser import server

ROOT = Path(__file__).resolve().parents[2]
USER_SETTINGS = {  # Lab user settings (JUPYTERLAB_SETTINGS_DIR) for the test's Lab
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
RUN_TIMEOUT = 240  # s for one notebook's "restart and run all" (04 takes 30-70 s on 2 cores)


@contextmanager
def lab(tmp: Path, pythonpath: str | None = None) -> Iterator[str]:
    """A JupyterLab on 127.0.0.1 (free port, no token) serving a copy of ``notebooks/``.

    Lab's settings are the ones ``make`` installs (``binder/overrides.json``: no news
    pop-up) plus ``USER_SETTINGS``. Yields the base URL; stops the server (and its
    kernels) on exit.
    """
    nb_dir = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", nb_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = server.isolated_env(tmp, pythonpath)
    app_settings = tmp / "app-settings"
    app_settings.mkdir()
    shutil.copy(ROOT / "binder" / "overrides.json", app_settings / "overrides.json")
    for plugin, values in USER_SETTINGS.items():
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    jupyter = [sys.executable, "-m", "jupyter"]
    subprocess.run([*jupyter, "trust", *map(str, sorted(nb_dir.glob("*.ipynb")))], env=env,
                   check=True, capture_output=True, timeout=60)  # as `make lab` does
    port = server.free_port()
    cmd = [*jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--IdentityProvider.token=", "--ServerApp.password=",
           "--ServerApp.disable_check_xsrf=True",  # loopback, no token: lets the test DELETE sessions
           f"--ServerApp.root_dir={nb_dir}", f"--LabApp.app_settings_dir={app_settings}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = tmp / "lab.log"
    proc = server.start(cmd, log, env=env, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        status, body = server.wait_http(f"{base}/api/status", timeout=120, proc=proc, log=log)
        if status != 200:
            raise RuntimeError(f"JupyterLab answered /api/status with {status}: {body[:300]}")
        yield base
    finally:
        server.stop(proc)


def _api(base: str, path: str, method: str = "GET"):
    req = urllib.request.Request(base + path, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def _kernel_state(base: str, name: str) -> str | None:
    for s in _api(base, "/api/sessions"):
        if s.get("path") == name:
            return s["kernel"]["execution_state"]
    return None


def shutdown_kernels(base: str) -> None:
    """Shut every session down (one notebook's kernel at a time stays in memory)."""
    for s in _api(base, "/api/sessions"):
        _api(base, f"/api/sessions/{s['id']}", method="DELETE")


# What the page shows, read in one go: prompts, error outputs, unrendered widgets, dialogs.
_READ = r"""() => {
  const outs = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output')];
  const text = e => (e.innerText || e.textContent || '').trim();
  return {
    prompts: [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
               .map(e => e.textContent.trim()),
    stderr: outs.filter(e => e.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr').map(text),
    fallbacks: outs.map(text).filter(t => /Error displaying widget|run this cell to get the interactive panel/.test(t)),
    loading: outs.filter(e => /Loading widget/.test(text(e))).length,
    dialogs: [...document.querySelectorAll('.jp-Dialog')].map(text),
  };
}"""
_ERROR = re.compile(r"Traceback|Error|Exception|Warning")


def problems_in(page_state: dict) -> list[str]:
    """Everything a learner should not see, one line each (empty: all is well)."""
    found = [f"error output: {t[:1500]}" for t in page_state["stderr"] if _ERROR.search(t)]
    found += [f"widget not rendered: {t[:300]}" for t in page_state["fallbacks"]]
    found += [f"dialog open: {t[:300]}" for t in page_state["dialogs"]]
    return found


def open_notebook(page, base: str, name: str) -> None:
    """Open ``name`` in a clean workspace and wait until its kernel is idle."""
    page.goto(f"{base}/lab/tree/{name}?reset", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt", timeout=60_000)
    _wait(lambda: _kernel_state(base, name) == "idle", 90, f"{name}: the kernel never became idle")
    tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if tab.count():  # fold the file browser away: more room for the lesson
        tab.first.click()


def _wait(ok, timeout: float, message: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = ok()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(every)


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}")).first.click()


def restart_and_run_all(page, base: str, name: str) -> dict:
    """Clear every output, "Restart Kernel and Run All Cells", wait until every code cell ran.

    Done means: every code cell shows an execution count (a cell with hidden input
    shows no prompt), the kernel is idle and no
    widget is still loading. Returns the final page state (see ``problems_in``).

    Raises:
        AssertionError: the page shows an error (at once, not after the timeout).
        TimeoutError: not done within ``RUN_TIMEOUT`` seconds (the message says where it stood).
    """
    _menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function("() => ![...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                           ".jp-CodeCell .jp-InputPrompt')].some(e => /\\d/.test(e.textContent))", timeout=30_000)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) [data-command='notebook:restart-run-all']").click()
    page.locator(".jp-Dialog .jp-mod-accept").click(timeout=15_000)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        state = page.evaluate(_READ)
        problems = problems_in(state)
        assert not problems, f"{name}:\n" + "\n".join(problems)
        shown = [p for p in state["prompts"] if p]  # a cell whose input is hidden shows no prompt
        ran = bool(shown) and all(re.fullmatch(r"\[\d+\]:", p) for p in shown)
        if ran and not state["loading"] and _kernel_state(base, name) == "idle":
            return state
        if time.monotonic() > deadline:
            waiting = sum(p == "[*]:" for p in state["prompts"])
            raise TimeoutError(f"{name}: not done after {RUN_TIMEOUT} s: {waiting} cells still "
                               f"running or queued, {state['loading']} widgets loading; prompts {state['prompts']}")
        time.sleep(1)


def screenshot_notebook(page, path: Path, max_height: int = 16_000) -> None:
    """The whole notebook in one picture (the viewport is stretched to its height)."""
    size = page.viewport_size
    height = page.evaluate("() => { const n = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
                           ".jp-WindowedPanel-outer') || document.body; return n.scrollHeight; }")
    page.set_viewport_size({"width": size["width"], "height": min(max_height, height + 200)})
    try:
        page.wait_for_timeout(500)
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)
