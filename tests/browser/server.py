"""Start a Jupyter server on 127.0.0.1 in its own process group, wait for it, stop it.

Every wait is bounded; the server's log goes to a file whose tail is quoted when the
server dies or does not answer in time.

Example:
    >>> port = free_port()
    >>> 1024 < port < 65536
    True
    >>> wait_http(f"http://127.0.0.1:{port}/api/status", timeout=0.3)
    Traceback (most recent call last):
    ...
    TimeoutError: nothing answered http://127.0.0.1:.../api/status within 0.3 s
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None,
              log: Path | None = None) -> tuple[int, str]:
    """Poll ``url`` until it answers (any HTTP status); return ``(status, body)``.

    Raises:
        RuntimeError: ``proc`` exited before answering (its log's tail is quoted).
        TimeoutError: no answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before "
                               f"answering {url}; its log ends:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answered {url} within {timeout} s"
                               + (f"; the server's log ends:\n{_tail(log)}" if log else ""))
        time.sleep(0.25)


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Run ``cmd`` in a new process group (so ``stop`` ends it and its kernels)."""
    out = open(log, "wb")  # noqa: SIM115 - closed by the child's exit
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=cwd, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """End ``proc``'s whole process group: SIGTERM, then SIGKILL after ``timeout`` s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
        except ProcessLookupError:
            pass
    try:  # kernels started by the server share its group; leave none behind
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def isolated_env(tmp: Path, pythonpath: str | None = None) -> dict[str, str]:
    """The environment for a Lab that reads and writes only under ``tmp``.

    Jupyter's config, data (notebook signatures, kernelspecs), runtime, Lab user
    settings and workspaces all live in ``tmp``; the learner's own are not touched.
    ``pythonpath`` (if given) goes first on the kernel's ``PYTHONPATH``, so a copy of
    the repository can win over the editable install.
    """
    env = dict(os.environ)
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "user-settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython")]:
        (tmp / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(tmp / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.pop("MPLBACKEND", None)  # `make test` sets Agg; a learner's kernel draws inline
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in [pythonpath, env.get("PYTHONPATH", "")] if p)
    return env
