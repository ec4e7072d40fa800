"""Run an algorithm package on granted input series inside a bubblewrap sandbox; only its JSON output comes back.

One run is one ``bwrap`` process tree: new mount, PID, network, IPC, UTS (and cgroup) namespaces, an empty root
(read-only) holding read-only binds of the Python install, its site-packages, the system libraries, the runner,
the package and the staged inputs; a private size-limited /tmp; a writable output folder; a minimal /proc and
/dev; a synthetic /etc; an empty environment. Resource limits are set by the runner on itself before the
algorithm is imported. The wall-clock limit is kept here: the bwrap process is killed, and with it (through
``--die-with-parent`` and the PID namespace) every process of the run.

The kernel does not apply RLIMIT_NPROC to user 0, so as root the sandbox drops to an unprivileged uid picked per
run (``setpriv``) before Python starts; as another user bwrap's user namespace keeps the process count per run.
See docs/SANDBOX.md for the threat model.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import shutil
import signal
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trustlane.analysis import runner as runner_module
from trustlane.analysis.package import AlgorithmPackage, tree_digest
from trustlane.errors import UsageError, VerificationError

Status = Literal["ok", "failed", "timeout", "killed"]

RUNNER_PATH = Path(runner_module.__file__).resolve()
STDERR_TAIL_BYTES = 8192
_ERROR_READ_CAP = 64 * 1024
_MAX_SERIES = 256
_MAX_NAME_CHARS = 256
_SANDBOX_ROOT = "/sandbox"
_SANDBOX_UID_FLOOR = 200_000
_SANDBOX_UID_SPAN = 1 << 20
_NOBODY = 65534
_SANDBOX_TMP = "/tmp"  # noqa: S108 - the sandbox's own private tmpfs, not the host's /tmp
_PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one run. Memory, CPU and file size are per process; ``processes`` per run."""

    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    memory_bytes: int = 2 * 1024**3
    processes: int = 32
    output_bytes: int = 1024**2
    tmp_bytes: int = 64 * 1024**2
    open_files: int = 1024

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_bytes", "processes", "output_bytes", "tmp_bytes"):
            if getattr(self, name) <= 0:
                raise UsageError(f"sandbox limit {name} must be positive", hint="give a positive limit")
        if self.processes < 2:
            raise UsageError("sandbox limit processes must be at least 2", hint="the runner itself needs one")


@dataclass(frozen=True)
class InputSeries:
    """One granted input series: ``t_ns`` (int64, ns since the Unix epoch) and numeric ``values`` of equal length."""

    t_ns: np.ndarray[Any, Any]
    values: np.ndarray[Any, Any]

    def __post_init__(self) -> None:
        t_ns, values = self.t_ns, self.values
        if not isinstance(t_ns, np.ndarray) or t_ns.ndim != 1 or t_ns.dtype != np.int64:
            raise UsageError("an input series' t_ns must be a one-dimensional int64 numpy array", hint="np.int64")
        if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind not in "biuf":
            raise UsageError(
                "an input series' values must be a one-dimensional numeric (bool, int or float) numpy array",
                hint="convert text or object columns before the analysis",
            )
        if len(t_ns) != len(values):
            raise UsageError(
                f"an input series has {len(t_ns)} timestamps but {len(values)} values",
                hint="give one timestamp per value",
            )

    def __len__(self) -> int:
        return len(self.t_ns)


@dataclass(frozen=True)
class RunResult:
    """What came back from one run. ``output`` is set only when ``status`` is "ok" (and is not yet gated)."""

    status: Status
    output: dict[str, Any] | None
    reason: str
    stderr_tail: str
    cpu_s: float
    wall_s: float
    isolated: bool
    max_rss_bytes: int = 0
    exit_code: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def _human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


# --- staging ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stage:
    root: Path
    job: Path
    inputs: Path
    output: Path
    etc: Path
    work: Path


def _validate_inputs(inputs: Mapping[str, InputSeries]) -> None:
    if len(inputs) > _MAX_SERIES:
        raise UsageError(f"{len(inputs)} input series exceed the limit of {_MAX_SERIES}", hint="grant fewer series")
    for name, series in inputs.items():
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME_CHARS:
            raise UsageError(
                f"input series names must be non-empty strings of at most {_MAX_NAME_CHARS} characters",
                hint="name series by their VSS path",
            )
        if not isinstance(series, InputSeries):
            raise UsageError(f"input {name!r} is not an InputSeries", hint="wrap arrays in InputSeries(t_ns, values)")


def _params_json(params: Mapping[str, Any]) -> Any:
    try:
        return json.loads(json.dumps(dict(params), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"algorithm parameters are not plain JSON: {exc}", hint="pass numbers, strings, lists and dicts"
        ) from None


def _stage(staging_dir: Path | None, inputs: Mapping[str, InputSeries], uid: int | None) -> _Stage:
    root = Path(tempfile.mkdtemp(prefix="trustlane-run-", dir=staging_dir))
    stage = _Stage(root, root / "job", root / "inputs", root / "output", root / "etc", root / "work")
    for folder in (stage.job, stage.inputs, stage.etc):
        folder.mkdir(mode=0o755)
    for folder in (stage.output, stage.work):
        folder.mkdir(mode=0o700)
        if uid is not None:
            os.chown(folder, uid, uid)
    manifest = []
    for index, (name, series) in enumerate(inputs.items()):
        entry = {"name": name, "t_ns": f"{index}.t_ns.npy", "values": f"{index}.values.npy"}
        np.save(stage.inputs / entry["t_ns"], np.ascontiguousarray(series.t_ns), allow_pickle=False)
        np.save(stage.inputs / entry["values"], np.ascontiguousarray(series.values), allow_pickle=False)
        manifest.append(entry)
    (stage.inputs / "manifest.json").write_text(json.dumps({"series": manifest}), encoding="utf-8")
    for path in stage.inputs.iterdir():
        path.chmod(0o444)
    inner = uid if uid is not None else os.getuid()
    (stage.etc / "passwd").write_text(f"sandbox:x:{inner}:{inner}:sandbox:/tmp:/usr/sbin/nologin\n")
    (stage.etc / "group").write_text(f"sandbox:x:{inner}:\n")
    return stage


def _remove_tree(root: Path) -> None:
    """Remove a staging tree whatever the algorithm left in it (links are removed, never followed)."""

    def make_writable_and_retry(function: Any, path: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            target = Path(path)
            target.parent.chmod(0o700)
            if target.is_dir() and not target.is_symlink():
                target.chmod(0o700)
            function(path)

    shutil.rmtree(root, onerror=make_writable_and_retry)


# --- the sandbox command ------------------------------------------------------------------------------------------


def _site_dirs() -> list[str]:
    candidates = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    seen: list[str] = []
    for candidate in candidates:
        resolved = os.path.realpath(candidate)
        if Path(resolved).is_dir() and resolved not in seen:
            seen.append(resolved)
    return seen


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _interpreter() -> str:
    return os.path.realpath(sys.executable)


def _library_mounts(made: set[str]) -> list[str]:
    """bwrap arguments that make the system's shared libraries and dynamic loader visible, read-only."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    args: list[str] = []
    for top in (Path("/usr/lib"), Path("/usr/lib64"), Path("/lib"), Path("/lib64")):
        if top.is_symlink():
            args += ["--symlink", str(top.readlink()), str(top)]
        elif top.is_dir():
            specific = top / multiarch if multiarch else top
            source = specific if specific.is_dir() else top
            args += [*_parent_dirs(str(source), made), "--ro-bind", str(source), str(source)]
    if Path("/etc/ld.so.cache").is_file():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args


def _parent_dirs(path: str, made: set[str]) -> list[str]:
    """``--dir`` arguments creating the parents of ``path`` world-traversable (bwrap would make them 0700)."""
    args: list[str] = []
    parts = Path(path).parts[1:-1]
    current = ""
    for part in parts:
        current += "/" + part
        if current not in made:
            made.add(current)
            args += ["--perms", "0755", "--dir", current]
    return args


@dataclass(frozen=True)
class _Plan:
    argv: list[str]
    config: dict[str, Any]


def _sandbox_uid() -> int:
    """An unprivileged uid for one run, so that the process limit counts this run's processes only."""
    try:
        lines = Path("/proc/self/uid_map").read_text().split()
        ranges = [(int(lines[i]), int(lines[i + 2])) for i in range(0, len(lines), 3)]
    except (OSError, ValueError, IndexError):
        return _NOBODY
    for start, count in ranges:
        low, high = max(start, _SANDBOX_UID_FLOOR), min(start + count, _SANDBOX_UID_FLOOR + _SANDBOX_UID_SPAN)
        if high - low > 1000:
            return random.SystemRandom().randrange(low, high)
    return _NOBODY


def _runner_limits(limits: SandboxLimits) -> dict[str, int]:
    return {
        "cpu_seconds": limits.cpu_seconds,
        "memory_bytes": limits.memory_bytes,
        "processes": limits.processes,
        "file_bytes": max(limits.output_bytes, limits.tmp_bytes) + 65536,
        "open_files": limits.open_files,
    }


def _isolated_plan(package_root: Path, stage: _Stage, limits: SandboxLimits, uid: int | None) -> _Plan:
    base = os.path.realpath(sys.base_prefix)
    python = _interpreter()
    made: set[str] = {"/etc", "/usr", "/usr/bin", _SANDBOX_ROOT}
    args = [
        "bwrap",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv",
        "HOME",
        _SANDBOX_TMP,
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--perms",
        "0755",
        "--dir",
        "/usr",
        "--perms",
        "0755",
        "--dir",
        "/usr/bin",
        "--perms",
        "0755",
        "--dir",
        "/etc",
        "--perms",
        "0755",
        "--dir",
        _SANDBOX_ROOT,
    ]
    if uid is None:
        args[1:1] = ["--unshare-user", "--disable-userns"]
    else:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        setpriv = os.path.realpath(shutil.which("setpriv") or "/usr/bin/setpriv")
        args += [*_parent_dirs(setpriv, made), "--ro-bind", setpriv, setpriv]
    args += _library_mounts(made)
    args += [*_parent_dirs(base + "/x", made), "--ro-bind", base, base]
    if not _under(python, base):
        args += [*_parent_dirs(python, made), "--ro-bind", python, python]
    site_dirs: list[str] = []
    for index, directory in enumerate(_site_dirs()):
        if _under(directory, base):
            site_dirs.append(directory)
        else:
            inside = f"{_SANDBOX_ROOT}/site-{index}"
            args += ["--ro-bind", directory, inside]
            site_dirs.append(inside)
    args += [
        "--ro-bind",
        str(RUNNER_PATH),
        f"{_SANDBOX_ROOT}/runner.py",
        "--ro-bind",
        str(package_root),
        f"{_SANDBOX_ROOT}/algorithm",
        "--ro-bind",
        str(stage.inputs),
        f"{_SANDBOX_ROOT}/inputs",
        "--ro-bind",
        str(stage.job),
        f"{_SANDBOX_ROOT}/job",
        "--bind",
        str(stage.output),
        f"{_SANDBOX_ROOT}/output",
        "--ro-bind",
        str(stage.etc / "passwd"),
        "/etc/passwd",
        "--ro-bind",
        str(stage.etc / "group"),
        "/etc/group",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(limits.tmp_bytes),
        "--tmpfs",
        _SANDBOX_TMP,
        "--remount-ro",
        "/",
        "--chdir",
        _SANDBOX_TMP,
        "--",
    ]
    if uid is not None:
        args += [
            setpriv,
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]
    args += [python, "-I", "-S", "-B", "-X", "utf8", f"{_SANDBOX_ROOT}/runner.py", f"{_SANDBOX_ROOT}/job/config.json"]
    config = {
        "algorithm_dir": f"{_SANDBOX_ROOT}/algorithm",
        "inputs_dir": f"{_SANDBOX_ROOT}/inputs",
        "output_dir": f"{_SANDBOX_ROOT}/output",
        "work_dir": _SANDBOX_TMP,
        "site_dirs": site_dirs,
    }
    return _Plan(args, config)


def _plain_plan(package_root: Path, stage: _Stage) -> _Plan:
    argv = [_interpreter(), "-I", "-S", "-B", "-X", "utf8", str(RUNNER_PATH), str(stage.job / "config.json")]
    config = {
        "algorithm_dir": str(package_root),
        "inputs_dir": str(stage.inputs),
        "output_dir": str(stage.output),
        "work_dir": str(stage.work),
        "site_dirs": _site_dirs(),
    }
    return _Plan(argv, config)


# --- running and watching -----------------------------------------------------------------------------------------


@dataclass
class _Exit:
    code: int | None = None
    signal: int | None = None
    cpu_s: float = 0.0
    max_rss_bytes: int = 0
    wall_s: float = 0.0
    wall_exceeded: bool = False


class _TailReader(threading.Thread):
    """Drains a pipe, keeping only its last bytes."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self.tail = bytearray()

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self._stream.read1(65536):
                self.tail += chunk
                if len(self.tail) > STDERR_TAIL_BYTES:
                    del self.tail[: len(self.tail) - STDERR_TAIL_BYTES]


def _execute(argv: list[str], wall_seconds: float) -> tuple[_Exit, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError as exc:
        raise UsageError(f"cannot start the analysis sandbox: {exc}", hint="check the bubblewrap installation") from exc
    reader = _TailReader(process.stdout)
    reader.start()
    outcome = _Exit()

    def wait_unreaped() -> None:
        # WNOWAIT keeps the process a zombie, so its pid (and process group) cannot be reused before the kill below.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)

    waiter = threading.Thread(target=wait_unreaped, daemon=True)
    waiter.start()
    waiter.join(wall_seconds)
    if waiter.is_alive():
        outcome.wall_exceeded = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        waiter.join()
    outcome.wall_s = time.monotonic() - started
    # Whatever the run left in its process group goes too (it has no business outliving the run).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    outcome.cpu_s = usage.ru_utime + usage.ru_stime
    outcome.max_rss_bytes = usage.ru_maxrss * 1024
    if os.WIFSIGNALED(status):
        outcome.signal = os.WTERMSIG(status)
    else:
        outcome.code = os.WEXITSTATUS(status)
    reader.join(2.0)
    with contextlib.suppress(OSError):
        if process.stdout is not None:
            process.stdout.close()
    return outcome, bytes(reader.tail).decode("utf-8", "replace")


def _await_no_processes(uid: int, timeout_s: float = 5.0) -> None:
    """Wait until the kernel has finished killing the run's PID namespace (no process of its uid is left)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = False
        with os.scandir("/proc") as entries:
            for entry in entries:
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        alive = alive or entry.stat().st_uid == uid
        if not alive:
            return
        time.sleep(0.02)


class _NotRegular(Exception):
    """The algorithm left a link, FIFO or other non-file where the runner writes its results."""


def _read_capped(path: Path, cap: int) -> bytes | None:
    """The bytes (at most ``cap + 1``) of a file written inside the sandbox, or None when it is absent.

    Links are never followed and FIFOs never block: the algorithm may have planted either.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _NotRegular(path.name) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegular(path.name)
        chunks = bytearray()
        while len(chunks) <= cap and (chunk := os.read(fd, min(1 << 20, cap + 1 - len(chunks)))):
            chunks += chunk
        return bytes(chunks)
    finally:
        os.close(fd)


def _usage(stage: _Stage, outcome: _Exit) -> None:
    """Take the runner's own CPU and memory figures where bwrap's exit status cannot carry them."""
    with contextlib.suppress(_NotRegular, ValueError, TypeError, UnicodeDecodeError):
        raw = _read_capped(stage.output / runner_module.USAGE_FILE, 4096)
        usage = json.loads(raw) if raw else {}
        outcome.cpu_s = max(outcome.cpu_s, float(usage.get("cpu_s", 0.0)))
        outcome.max_rss_bytes = max(outcome.max_rss_bytes, int(usage.get("max_rss_bytes", 0)))


def _error_reason(error: Mapping[str, Any], limits: SandboxLimits) -> tuple[Status, str]:
    kind = str(error.get("kind", ""))
    kind_type, message = str(error.get("type", "")), str(error.get("message", ""))
    if kind == "memory":
        return "killed", f"exceeded the {_human_bytes(limits.memory_bytes)} memory limit (MemoryError)"
    if kind == "too_large":
        return "failed", f"its output ({message}) exceeds the {_human_bytes(limits.output_bytes)} output limit"
    if kind == "raised":
        reason = f"raised {kind_type}: {message}" if message else f"raised {kind_type}"
        if kind_type == "BlockingIOError" or error.get("errno") == "EAGAIN":
            reason += f" (the sandbox allows {limits.processes} processes)"
        if error.get("errno") == "EFBIG":
            reason += f" (files are limited to {_human_bytes(limits.tmp_bytes)})"
        return "failed", reason
    return "failed", message or f"failed ({kind or 'unknown error'})"


def _signal_reason(sig: int, limits: SandboxLimits) -> tuple[Status, str]:
    if sig == signal.SIGXCPU:
        return "timeout", f"used up its {limits.cpu_seconds} s CPU limit"
    if sig == signal.SIGXFSZ:
        return "killed", f"wrote a file over the {_human_bytes(max(limits.output_bytes, limits.tmp_bytes))} limit"
    name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
    hint = " (often memory exhaustion)" if sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS) else ""
    return "killed", f"was killed by {name}{hint}"


def _collect(
    stage: _Stage, outcome: _Exit, limits: SandboxLimits, stderr: str
) -> tuple[Status, dict[str, Any] | None, str]:
    if outcome.wall_exceeded:
        return "timeout", None, f"ran past the {limits.wall_seconds:g} s wall limit"
    _usage(stage, outcome)
    try:
        raw_error = _read_capped(stage.output / runner_module.ERROR_FILE, _ERROR_READ_CAP)
        raw_output = _read_capped(stage.output / runner_module.OUTPUT_FILE, limits.output_bytes)
    except _NotRegular as exc:
        return "failed", None, f"its {exc} in the output folder is not a regular file (a link or special file)"
    code = outcome.code
    if code is not None and code >= 128:  # bwrap reports a signal death of the sandboxed process as 128 + signal
        outcome.signal, code = code - 128, None
    if outcome.signal is not None:
        status, reason = _signal_reason(outcome.signal, limits)
        if status == "timeout":
            outcome.cpu_s = max(outcome.cpu_s, float(limits.cpu_seconds))
        return status, None, reason
    if code == 0 and raw_output is not None and raw_error is None:
        if len(raw_output) > limits.output_bytes:
            return "failed", None, f"its output exceeds the {_human_bytes(limits.output_bytes)} output limit"
        try:
            output = json.loads(raw_output)
        except (UnicodeDecodeError, ValueError):
            return "failed", None, "its output file is not valid JSON"
        if not isinstance(output, dict):
            return "failed", None, "its output is not a JSON object"
        return "ok", output, "completed"
    if raw_error is not None:
        try:
            error = json.loads(raw_error)
        except (UnicodeDecodeError, ValueError):
            error = None
        if isinstance(error, dict):
            status, reason = _error_reason(error, limits)
            return status, None, reason
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if code == 2:
        return "failed", None, f"the runner could not start: {last}"
    return "failed", None, f"ended without output (exit status {code}){': ' + last if last else ''}"


def _launch(
    package_root: Path,
    inputs: Mapping[str, InputSeries],
    params: Any,
    limits: SandboxLimits,
    isolated: bool,
    staging_dir: Path | None,
) -> RunResult:
    uid = _sandbox_uid() if isolated and os.geteuid() == 0 else None
    stage = _stage(staging_dir, inputs, uid)
    try:
        plan = _isolated_plan(package_root, stage, limits, uid) if isolated else _plain_plan(package_root, stage)
        config = {
            **plan.config,
            "params": params,
            "limits": _runner_limits(limits),
            "output_bytes": limits.output_bytes,
        }
        (stage.job / "config.json").write_text(json.dumps(config), encoding="utf-8")
        outcome, stderr = _execute(plan.argv, limits.wall_seconds)
        if uid is not None:
            _await_no_processes(uid)
        status, output, reason = _collect(stage, outcome, limits, stderr)
    finally:
        _remove_tree(stage.root)
    return RunResult(
        status=status,
        output=output,
        reason=reason,
        stderr_tail=stderr,
        cpu_s=outcome.cpu_s,
        wall_s=outcome.wall_s,
        isolated=isolated,
        max_rss_bytes=outcome.max_rss_bytes,
        exit_code=outcome.code,
        details={"uid": uid} if uid is not None else {},
    )


# --- public API ---------------------------------------------------------------------------------------------------

_PROBE_ALGORITHM = "import os\n\ndef run(inputs, params):\n    return {'uid': os.getuid(), 'n': len(inputs['x'])}\n"


@functools.cache
def sandbox_problem() -> str | None:
    """None when bubblewrap can isolate a run on this machine (tried once, then cached), else why not and the fix."""
    if not sys.platform.startswith("linux"):
        return "the analysis sandbox needs Linux namespaces (bubblewrap); this platform is " + sys.platform
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed: install it (Debian/Ubuntu: apt-get install bubblewrap)"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv is missing (needed to drop root inside the sandbox): install util-linux"
    with tempfile.TemporaryDirectory(prefix="trustlane-probe-") as folder:
        package = Path(folder)
        (package / "algorithm.py").write_text(_PROBE_ALGORITHM)
        package.chmod(0o755)
        (package / "algorithm.py").chmod(0o644)
        probe_input = {"x": InputSeries(np.arange(3, dtype=np.int64), np.zeros(3))}
        limits = SandboxLimits(wall_seconds=_PROBE_TIMEOUT_S)
        result = _launch(package, probe_input, {}, limits, True, None)
    if result.status != "ok" or result.output is None or result.output.get("n") != 3:
        detail = result.stderr_tail.strip().splitlines()[-1] if result.stderr_tail.strip() else result.reason
        return (
            f"bubblewrap cannot isolate a run here ({detail}); allow user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1, or AppArmor's kernel.apparmor_restrict_unprivileged_userns=0)"
            " or give the node's container the rights to create namespaces"
        )
    if os.geteuid() == 0 and result.output.get("uid") == 0:
        return "the sandbox could not drop root (setpriv kept uid 0)"
    return None


def run_algorithm(
    package: AlgorithmPackage,
    inputs: Mapping[str, InputSeries],
    params: Mapping[str, Any],
    limits: SandboxLimits = SandboxLimits(),
    *,
    allow_unisolated: bool = False,
    staging_dir: Path | None = None,
) -> RunResult:
    """Run ``package`` on ``inputs`` inside the sandbox and return what happened; never raises for what it does.

    Without bubblewrap the run is refused (UsageError) unless ``allow_unisolated`` (development only): then it runs
    in a plain subprocess under the same resource limits and the result says ``isolated=False``.
    """
    _validate_inputs(inputs)
    params_json = _params_json(params)
    problem = sandbox_problem()
    if problem is not None and not allow_unisolated:
        raise UsageError(
            f"the analysis sandbox is unavailable: {problem}",
            hint="fix the sandbox; running without isolation (allow_unisolated) is for development only",
        )
    _check_pinned(package, world_readable=problem is None and os.geteuid() == 0)
    return _launch(package.root, inputs, params_json, limits, problem is None, staging_dir)


def _check_pinned(package: AlgorithmPackage, *, world_readable: bool) -> None:
    """The package on disk must still be the one pinned by its digest (and readable by the sandbox's user)."""
    found = tree_digest(package.root)
    if found != package.digest:
        raise VerificationError(
            f"algorithm package {package.root} now has digest {found}, not the pinned {package.digest}",
            hint="the package changed on disk; restore it from the registry or register the new version",
        )
    if not world_readable:
        return
    for relative in (".", *package.directories, *(f.path for f in package.files)):
        mode = (package.root / relative).stat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            raise UsageError(
                f"algorithm package file {package.root / relative} is not readable by other users",
                hint=f"the sandbox runs the algorithm as an unprivileged user: chmod -R a+rX {package.root}",
            )
