"""Helpers for the tests that run the lessons the way a learner sees them.

- ``server``: start a JupyterLab server on loopback and stop it (process group).
- ``chromium``: launch Debian's Chromium through Playwright (never a downloaded browser).
- ``notebook``: open a notebook in Lab, restart and run all, read the outputs.
- ``panels``: find every qkit panel on the page, move its controls, check what changed.

Run by ``tests/test_lab.py`` (``make lab`` answers) and ``tests/test_browser.py``.
"""
