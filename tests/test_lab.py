"""`make lab`, the README's first command, starts a JupyterLab that answers on its port.

The learner's target runs as is; the test only adds the Makefile's overrides
(``LAB_PORT``, ``LAB_ARGS``: no browser, loopback, a known token) and the stamp is
taken as built (``-o``: installing is `make test`'s first step, not this test's).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

from browser import server

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".venv/.installed"


def _make_lab_cmd(port: int, token: str) -> list[str]:
    args = f"--no-browser --ip=127.0.0.1 --IdentityProvider.token={token}"
    return ["make", "--no-print-directory", "-C", str(ROOT), "-o", STAMP, "lab",
            f"LAB_PORT={port}", f"LAB_ARGS={args}"]


def test_make_lab_allows_root_only_for_root():
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "-o", STAMP, "lab"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    lab_line = next(line for line in dry.splitlines() if "jupyter lab" in line)
    assert ("--allow-root" in lab_line) == (os.geteuid() == 0), lab_line
    assert lab_line.rstrip().endswith("notebooks/"), f"a learner's `make lab` serves notebooks/: {lab_line}"


def test_make_lab_serves_the_notebooks(tmp_path):
    port, token = server.free_port(), secrets.token_hex(8)
    log = tmp_path / "lab.log"
    proc = server.start(_make_lab_cmd(port, token), log, env=server.isolated_env(tmp_path))
    base = f"http://127.0.0.1:{port}"
    try:
        status, body = server.wait_http(f"{base}/api/status?token={token}", timeout=120, proc=proc, log=log)
        assert status == 200, f"/api/status answered {status}: {body[:300]}"
        assert "started" in json.loads(body), body[:300]

        status, _ = server.wait_http(f"{base}/api/status", timeout=10)
        assert status == 403, f"without the token the server should refuse (403), got {status}"

        status, body = server.wait_http(f"{base}/api/contents?token={token}", timeout=10)
        served = {item["name"] for item in json.loads(body)["content"]}
        lessons = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
        assert lessons and lessons <= served, f"served {sorted(served)}, expected the lessons {sorted(lessons)}"

        status, body = server.wait_http(f"{base}/lab?token={token}", timeout=10)
        assert status == 200 and "JupyterLab" in body, f"/lab answered {status}: {body[:300]}"
    finally:
        server.stop(proc)
    assert "Running as root is not recommended" not in log.read_text(errors="replace")
