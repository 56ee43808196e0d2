"""Debian's Chromium driven by Playwright: the only browser the tests use.

Playwright's own browser download (``playwright install``) is never used: it
fetches a browser build from outside the package registries. ``make test``
installs Debian's ``chromium`` and ``chromium-driver`` instead (see the Makefile's
``$(CHROMIUM)`` target) and the Python package from ``pyproject.toml``'s
``browser`` extra. When either is missing the browser test fails and says how to
get it; it is never skipped.

Example:
    >>> "--no-sandbox" in ARGS and "--disable-background-networking" in ARGS
    True
    >>> print(missing_message("/nowhere/chromium").splitlines()[0])
    no Chromium at /nowhere/chromium: the browser test needs Debian's chromium package.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM = os.environ.get("QKIT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-default-apps", "--disable-extensions"]


def missing_message(path: str = CHROMIUM) -> str:
    """What to do when there is no browser at ``path``."""
    return (f"no Chromium at {path}: the browser test needs Debian's chromium package.\n"
            "  `make test` installs it where apt exists (as root, or with passwordless sudo);\n"
            "  by hand: sudo apt-get install -y chromium chromium-driver\n"
            "  (elsewhere: point QKIT_CHROMIUM at a Chromium or Chrome binary; "
            "never `playwright install`)")


def playwright_missing_message(err: Exception) -> str:
    return (f"the Python package playwright is not installed ({err}):\n"
            "  `make test` installs it; by hand: .venv/bin/python -m pip install -e '.[test,browser]'")


@contextmanager
def browser_context(viewport: tuple[int, int] = (1500, 1150)) -> Iterator:
    """A headless Chromium context with a fresh, throw-away profile.

    Raises:
        FileNotFoundError: no Chromium binary (the message says how to install one).
        ImportError: Playwright is not installed (the message says how).
    """
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        raise FileNotFoundError(missing_message())
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise ImportError(playwright_missing_message(e)) from e
    profile = tempfile.mkdtemp(prefix="qkit-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": viewport[0], "height": viewport[1]})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
