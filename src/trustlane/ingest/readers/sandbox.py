"""Parse untrusted files in forked child processes, so that a crash or a runaway parse cannot take the caller down.

Some parsers (asammdf's C helpers) can read or write out of bounds on damaged files and kill the interpreter, or
allocate without bound. :func:`run_sandboxed` hands the file to a small *fork server*: a helper process started
once (it imports the parser up front) that forks a fresh child per file. The child runs under a memory limit,
its output goes nowhere, and its result comes back pickled through a private temporary file, its sample arrays
mapped rather than copied (:mod:`.handover`). The caller waits at
most a time limit; on timeout the server and its child are killed (the next call starts a new server).

The child's :class:`TrustlaneError` comes back as the same error; a crash, a timeout, exhaustion of the memory
limit or any other exception becomes a :class:`MalformedInput` naming the file. Where ``os.fork`` is missing
(Windows) the parse runs in the calling process.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trustlane import errors
from trustlane.errors import MalformedInput, TrustlaneError
from trustlane.ingest.readers.base import summary
from trustlane.ingest.readers.handover import HandoverError, read_result, write_result

_SERVER_CODE = "from trustlane.ingest.readers.sandbox import serve; serve()"
_lock = threading.Lock()
_server: subprocess.Popen[bytes] | None = None


# --- inside the fork server and its children ---------------------------------------------------------------------


def _resolve(target: str) -> Callable[[Path], Any]:
    module, _, name = target.partition(":")
    function: Callable[[Path], Any] = getattr(importlib.import_module(module), name)
    return function


def _limit_memory(budget: int) -> None:
    try:
        import resource

        with open("/proc/self/statm") as handle:
            used = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + budget if hard == resource.RLIM_INFINITY else min(used + budget, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):  # no limit where the platform cannot set one
        pass


def _run_child(request: dict[str, Any]) -> None:
    """In the forked child: parse, and write ("ok", result) or ("error", (kind, message, hint)) to the result file."""
    outcome: tuple[str, Any]
    try:
        _limit_memory(int(request["memory"]))
        outcome = ("ok", _resolve(request["target"])(Path(request["path"])))
    except TrustlaneError as exc:
        outcome = ("error", (type(exc).__name__, exc.message, exc.hint))
    except MemoryError:
        outcome = ("error", ("MalformedInput", "parsing it needed more memory than allowed", None))
    except Exception as exc:  # the child reports every failure; the caller turns it into MalformedInput
        outcome = ("error", ("MalformedInput", summary(exc), None))
    try:
        write_result(request["result"], outcome)
    except Exception as exc:  # e.g. a result that does not pickle
        write_result(request["result"], ("error", ("MalformedInput", summary(exc), None)))


def serve() -> None:
    """The fork server: one JSON request per line on stdin, one JSON status per line back."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray prints of parsers must not reach the reply channel
    first = json.loads(sys.stdin.readline())
    sys.path[:0] = [entry for entry in first["sys_path"] if entry not in sys.path]
    for module in first["preload"]:
        importlib.import_module(module)
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child
            os.dup2(devnull, 2)
            try:
                _run_child(request)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        replies.write(
            json.dumps(
                {
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                    "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                }
            )
            + "\n"
        )


# --- in the caller ------------------------------------------------------------------------------------------------


class _ServerGone(Exception):
    """The fork server closed its reply channel (it died or was killed)."""


def _read_reply(server: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any] | None:
    """The server's next reply line, or None when none came in time; :class:`_ServerGone` when it died."""
    assert server.stdout is not None
    descriptor = server.stdout.fileno()
    data = b""
    deadline = _now() + timeout_s
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([descriptor], [], [], max(deadline - _now(), 0))
        if not ready:
            return None
        chunk = os.read(descriptor, 4096)
        if not chunk:
            raise _ServerGone
        data += chunk
    reply: dict[str, Any] = json.loads(data)
    return reply


def _now() -> float:
    import time

    return time.monotonic()


def _stop_server() -> None:
    global _server
    server, _server = _server, None
    if server is None:
        return
    with contextlib.suppress(OSError, ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    for stream in (server.stdin, server.stdout):
        if stream is not None:
            stream.close()


def _start_server(preload: tuple[str, ...]) -> subprocess.Popen[bytes]:
    global _server
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER_CODE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    _server = server
    assert server.stdin is not None
    server.stdin.write((json.dumps({"sys_path": sys.path, "preload": list(preload)}) + "\n").encode())
    server.stdin.flush()
    try:
        started = _read_reply(server, 120) is not None
    except _ServerGone:
        started = False
    if not started:
        _stop_server()
        raise TrustlaneError("could not start the parser process", hint="check the Python environment of trustlane")
    return server


def _result_folder() -> str | None:
    """Where results travel: shared memory when the system has it (no disk writes), else the temp folder."""
    shared = Path("/dev/shm")  # noqa: S108 - files are made there with mkstemp (exclusive, mode 0600)
    return str(shared) if shared.is_dir() and os.access(shared, os.W_OK) else None


def _rebuild(source: Path, kind: str, message: str, hint: str | None, fallback_hint: str) -> TrustlaneError:
    error_type = getattr(errors, kind, None)
    if isinstance(error_type, type) and issubclass(error_type, TrustlaneError) and kind != "MalformedInput":
        return error_type(message, hint=hint)
    if str(source) not in message:
        message = f"{source}: could not be parsed ({message})"
    return MalformedInput(message, hint=hint or fallback_hint)


def run_sandboxed(target: str, path: Path, *, timeout_s: float, memory_bytes: int, hint: str) -> Any:
    """``module:function`` ``target`` applied to ``path`` in a forked child; its result or its error."""
    if not hasattr(os, "fork"):  # pragma: no cover - Windows
        return _resolve(target)(path)
    descriptor, result = tempfile.mkstemp(prefix="trustlane-parse-", suffix=".pickle", dir=_result_folder())
    os.close(descriptor)
    try:
        with _lock:
            server = _server if _server is not None and _server.poll() is None else None
            if server is None:
                _stop_server()
                server = _start_server((target.partition(":")[0],))
            request = {"target": target, "path": str(path), "result": result, "memory": memory_bytes}
            assert server.stdin is not None
            try:
                server.stdin.write((json.dumps(request) + "\n").encode())
                server.stdin.flush()
            except OSError:
                _stop_server()
                raise TrustlaneError("the parser process stopped", hint="retry; report it if it persists") from None
            try:
                reply = _read_reply(server, timeout_s)
            except _ServerGone:
                _stop_server()
                raise MalformedInput(f"{path}: the parser process stopped while reading this file", hint=hint) from None
            except BaseException:  # interrupted while waiting: the server's next reply would be out of step
                _stop_server()
                raise
            if reply is None:
                _stop_server()
                raise MalformedInput(f"{path}: parsing took longer than {timeout_s:.0f} s and was stopped", hint=hint)
        if reply["signal"]:
            number = int(reply["signal"])
            name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
            raise MalformedInput(f"{path}: the parser crashed on this file ({name})", hint=hint)
        status, payload = read_result(result)
    except HandoverError:
        raise MalformedInput(f"{path}: the parser stopped without a result", hint=hint) from None
    finally:
        with contextlib.suppress(OSError):
            Path(result).unlink()
    if status == "ok":
        return payload
    kind, message, error_hint = payload
    raise _rebuild(path, kind, message, error_hint, hint)


def parser_cpu_seconds() -> float | None:
    """CPU seconds used by the finished parses of the running parser process (Linux; None elsewhere or when
    none runs): benchmarks compare it before and after a parse."""
    server = _server
    if server is None or server.poll() is not None:
        return None
    try:
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # its waited-for children's time
    except (OSError, IndexError, ValueError):
        return None


atexit.register(_stop_server)
