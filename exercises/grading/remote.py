"""A learner's functions run in a process of their own; the official check calls them from outside.

The grader must not run a learner's code where the check runs: code that can run there
can rewrite the check (``q1.check = ...``, a patched ``exercises.core``, a pickle whose
``__reduce__`` does either). So the functions collected from the learner's kernel (as
cloudpickle bytes) are loaded only in a *runner* child process, and the checker holds
:class:`RemoteFunction` stand-ins::

    checker process                          runner process (learner code)
    q.grade(RemoteFunction) ──args (pickle)──▶ fn(*args)
                            ◀──result (JSON)── codec.encode(result), args after the call

Arguments go out as pickles (the checker made them: safe for the runner to load);
results come back as JSON through :mod:`exercises.grading.codec`, so nothing the learner
made is ever unpickled by the checker. A call that outlives the check's time limit, or
a runner that dies, is killed; the next call starts a fresh runner.

Run as ``python -m exercises.grading.remote`` (the runner's side, spoken to on stdin/stdout).
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, BinaryIO

from exercises.grading import codec

KIT_PREFIXES = ("exercises",)  # code of the checker itself: a learner's function may not be or call it


def _send(stream: BinaryIO, payload: bytes) -> None:
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def _receive(stream: BinaryIO) -> bytes:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError("the other side closed the pipe")
    (n,) = struct.unpack("<Q", head)
    body = stream.read(n)
    if len(body) < n:
        raise EOFError("the other side closed the pipe")
    return body


# ---------------------------------------------------------------- runner side (learner code)

def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _is_kit(obj: Any) -> bool:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    elif isinstance(obj, (types.FunctionType, types.MethodType, type)):
        name = getattr(obj, "__module__", "") or ""
    else:
        name = type(obj).__module__ or ""
    return any(name == p or name.startswith(p + ".") for p in KIT_PREFIXES)


def kit_references(fn: Any) -> list[str]:
    """The names through which ``fn`` reaches the checker's own code (``exercises``), if any.

    Example:
        Two functions as a notebook defines them (in ``__main__``), and one of the kit's:

        >>> import exercises.core
        >>> notebook = {"__name__": "__main__", "exercises": exercises}
        >>> exec("def honest(n): return 2 * n", notebook)
        >>> exec("def sly(n): return exercises.core.Question", notebook)
        >>> honest, sly = notebook["honest"], notebook["sly"]
        >>> kit_references(honest), kit_references(sly), kit_references(exercises.core.solution_source)
        ([], ['exercises'], ['solution_source itself'])
    """
    if _is_kit(fn):
        return [f"{getattr(fn, '__name__', type(fn).__name__)} itself"]
    code = getattr(fn, "__code__", None)
    found = []
    if code is not None:
        g = getattr(fn, "__globals__", {})
        found += sorted(n for n in _code_names(code) if n in g and _is_kit(g[n]))
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            if _is_kit(cell.cell_contents):
                found.append("a closure variable")
        except ValueError:  # an empty cell
            pass
    return found


def _learner_line(exc: BaseException, fn: Any) -> int | None:
    filename = getattr(getattr(fn, "__code__", None), "co_filename", None)
    line, tb = None, exc.__traceback__
    while tb is not None:
        line = tb.tb_lineno if tb.tb_frame.f_code.co_filename == filename else line
        tb = tb.tb_next
    return line


def _serve() -> None:
    """The runner's loop: load the functions, then answer calls until the pipe closes."""
    out = os.fdopen(os.dup(1), "wb")  # the protocol's channel; the learner's prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = os.fdopen(os.dup(0), "rb")
    import cloudpickle  # noqa: F401, PLC0415  (the functions' pickles may need it)

    from exercises.sandbox import is_placeholder  # noqa: PLC0415

    blobs: dict[str, bytes] = pickle.loads(_receive(inp))
    fns, status = {}, {}
    for name, blob in blobs.items():
        try:
            fn = pickle.loads(blob)
        except BaseException as e:  # noqa: BLE001 (a learner's pickle may fail in any way)
            status[name] = {"loaded": False, "error": f"{type(e).__name__}: {e}"[:200]}
            continue
        fns[name] = fn
        status[name] = {"loaded": True, "callable": callable(fn), "placeholder": bool(is_placeholder(fn)),
                        "kit": kit_references(fn), "type": type(fn).__name__,
                        "repr": repr(fn)[:120] if not callable(fn) else ""}
    _send(out, json.dumps(status).encode())
    while True:
        try:
            call, name, args = pickle.loads(_receive(inp))
        except EOFError:
            return
        fn = fns[name]
        try:
            result = fn(*args)
        except BaseException as e:  # noqa: BLE001 (SystemExit, KeyboardInterrupt: reported, not obeyed)
            reply = {"raised": type(e).__name__, "message": str(e)[:500], "line": _learner_line(e, fn)}
        else:
            try:
                reply = {"result": codec.encode(result), "args": [codec.encode(a) for a in args]}
            except BaseException as e:  # noqa: BLE001
                reply = {"raised": type(e).__name__, "message": f"the result could not be read back: {e}"[:500],
                         "line": None}
        _send(out, json.dumps({"call": call, **reply}).encode())


# ---------------------------------------------------------------- checker side

def _exception(name: str, message: str, line: int | None) -> Exception:
    """An exception to raise in the checker that looks like the learner's (its type name and message)."""
    name = name if re.fullmatch(r"[A-Za-z_]\w{0,60}", str(name)) else "Error"
    cls = getattr(builtins, name, None)
    ok = isinstance(cls, type) and issubclass(cls, Exception) and cls is not KeyError  # KeyError quotes its text
    try:
        exc = cls(message) if ok else type(name, (Exception,), {})(message)
    except Exception:
        exc = type(name, (Exception,), {})(message)
    exc.qkit_line = line
    return exc


class Runner:
    """The learner's functions, loaded in a child process (started now, restarted after a kill)."""

    def __init__(self, log: Path | None = None, env: dict | None = None):
        """Start the runner process now (it imports torch while the notebook runs); :meth:`load` gives it work."""
        self.log, self.env = log, env
        self.blobs: dict[str, bytes] | None = None
        self.proc: subprocess.Popen | None = None
        self.status: dict[str, dict] = {}
        self._spawn()

    def _spawn(self) -> None:
        err = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "exercises.grading.remote"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, env=self.env)
        if self.log:
            err.close()

    def load(self, blobs: dict[str, bytes]) -> dict[str, dict]:
        """Send the learner's pickled functions; returns what the runner could make of each."""
        self.blobs = blobs
        if self.proc is None:
            self._spawn()
        try:
            _send(self.proc.stdin, pickle.dumps(blobs))
            self.status = json.loads(_receive(self.proc.stdout))
        except BaseException:  # a time limit, or a runner that died loading: never leave a half-talked pipe
            self.kill()
            raise
        return self.status

    def ensure(self) -> None:
        """Start a fresh runner if the last one was killed (call it outside a check's time limit)."""
        if self.proc is None:
            self.load(self.blobs or {})

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    close = kill

    def call(self, name: str, args: tuple) -> tuple[Any, list]:
        """``fn(*args)`` in the runner: (result, the arguments as the function left them)."""
        self.ensure()
        self.calls = getattr(self, "calls", 0) + 1
        try:
            _send(self.proc.stdin, pickle.dumps((self.calls, name, tuple(args))))
            reply = json.loads(_receive(self.proc.stdout))
        except EOFError:
            code = self.proc.wait()
            self.proc = None
            raise _exception("ProcessDied", f"your function ended the Python process (exit code {code})", None)
        except BaseException:  # the check's time limit (or Ctrl-C): the runner is mid-call, start afresh next time
            self.kill()
            raise
        if not isinstance(reply, dict) or reply.get("call") != self.calls:  # out of step: never trust it
            self.kill()
            raise _exception("GraderError", "the process running your function answered out of turn", None)
        if "raised" in reply:
            raise _exception(reply["raised"], reply["message"], reply["line"])
        return codec.decode(reply["result"]), [codec.decode(a) for a in reply["args"]]

    def function(self, name: str) -> RemoteFunction:
        return RemoteFunction(self, name)


class RemoteFunction:
    """What the checker calls in place of the learner's function ``name``."""

    def __init__(self, runner: Runner, name: str):
        self.runner, self.__name__ = runner, name
        self.qkit_placeholder = bool(runner.status.get(name, {}).get("placeholder"))

    def __call__(self, *args: Any) -> Any:
        import torch  # noqa: PLC0415

        result, after = self.runner.call(self.__name__, args)
        for given, back in zip(args, after):  # in-place changes made in the runner show here too
            if isinstance(given, torch.Tensor) and isinstance(back, torch.Tensor) and not torch.equal(given, back):
                with torch.no_grad():
                    if given.shape == back.shape and given.dtype == back.dtype:
                        given.copy_(back)
                    else:
                        given.set_(back.detach().clone())
        return result

    def __repr__(self) -> str:
        return f"<your function {self.__name__}>"


if __name__ == "__main__":
    _serve()
