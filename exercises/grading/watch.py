"""Run a command under a wall-clock and a memory limit that cover every process it starts.

A learner's notebook runs in a Jupyter kernel, a grandchild of the grader: a limit on one
process would miss it. So the watcher polls the whole process tree (``/proc``: each
process's parent, and its resident memory), every ``POLL`` seconds, and kills the tree
when the summed resident memory passes ``memory_bytes`` or the time passes ``timeout``.
Processes the command started and left behind are killed at the end too.

Without ``/proc`` (macOS, Windows) only the time limit applies, to the command itself.

Example:
    >>> import sys
    >>> run_limited([sys.executable, "-c", "print('hi')"], timeout=60, memory_bytes=2**31).reason
    'ok'
    >>> run_limited([sys.executable, "-c", "while True: pass"], timeout=1, memory_bytes=2**31).reason
    'timeout'
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL = 0.1  # s
PROC = Path("/proc")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Limited:
    """How a limited run ended: ``reason`` "ok" (exited by itself), "timeout" or "memory"."""

    reason: str
    returncode: int | None
    seconds: float
    peak_bytes: int


def _parents() -> dict[int, int]:
    out = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            out[int(entry.name)] = int(fields[1])
    return out


def descendants(pid: int) -> set[int]:
    """``pid``'s children, their children, … (from ``/proc``; empty where there is none)."""
    if not PROC.is_dir():
        return set()
    parents = _parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks (tells a live process from a new one with its pid)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def resident_bytes(pids) -> int:
    total = 0
    for pid in pids:
        try:
            total += int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_limited(cmd: list[str], *, timeout: float, memory_bytes: int, env: dict | None = None,
                cwd: str | os.PathLike | None = None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) -> Limited:
    """Run ``cmd`` until it exits, or kill its whole process tree at the first limit it passes."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=stderr, start_new_session=True)
    seen: dict[int, str | None] = {}
    peak, reason = 0, "ok"
    while proc.poll() is None:
        tree = descendants(proc.pid) | {proc.pid}
        seen.update((pid, _started(pid)) for pid in tree - seen.keys())
        used = resident_bytes(tree) if PROC.is_dir() else 0
        peak = max(peak, used)
        if used > memory_bytes:
            reason = "memory"
        elif time.monotonic() - start > timeout:
            reason = "timeout"
        if reason != "ok":
            _kill(tree)
            break
        time.sleep(POLL)
    returncode = proc.wait()
    _kill(pid for pid, started in seen.items()  # a kernel its parent left behind (the same process still)
          if pid != proc.pid and started is not None and _started(pid) == started)
    return Limited(reason, returncode, time.monotonic() - start, peak)
