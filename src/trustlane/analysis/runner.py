"""The program that runs one algorithm inside the sandbox.

It is started as ``python -I -S -B runner.py CONFIG`` and uses only the standard library and numpy: it must not
import trustlane (the project is not visible inside the sandbox). It applies the resource limits to itself,
memory-maps the input series, imports the package's ``algorithm.py``, calls ``run(inputs, params)`` and writes
either ``output.json`` (the returned dict) or ``error.json`` (what went wrong) into the output directory.

Exit status: 0 output written, 1 the algorithm failed (error.json says how), 2 the runner itself could not start.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import resource
import signal
import site
import sys
import traceback
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

OUTPUT_FILE = "output.json"
ERROR_FILE = "error.json"
USAGE_FILE = "usage.json"
_MESSAGE_CHARS = 500


class Series:
    """One input series: ``t_ns`` (int64 ns since the Unix epoch) and ``values``, both read-only numpy arrays."""

    __slots__ = ("name", "t_ns", "values")

    def __init__(self, name: str, t_ns: Any, values: Any) -> None:
        self.name = name
        self.t_ns = t_ns
        self.values = values

    def __len__(self) -> int:
        return len(self.t_ns)

    def __repr__(self) -> str:
        return f"Series({self.name!r}, {len(self)} samples, {self.values.dtype})"


def _set_limits(limits: Mapping[str, int | None]) -> None:
    pairs = {
        "cpu_seconds": resource.RLIMIT_CPU,
        "memory_bytes": resource.RLIMIT_AS,
        "processes": resource.RLIMIT_NPROC,
        "file_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
    }
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in pairs.items():
        value = limits.get(key)
        if value is None:
            continue
        # CPU: SIGXCPU at the soft limit, SIGKILL one second later if it is caught.
        hard = value + 1 if which == resource.RLIMIT_CPU else value
        resource.setrlimit(which, (value, hard))


def _load_inputs(inputs_dir: str) -> Mapping[str, Series]:
    import numpy as np

    manifest = json.loads((Path(inputs_dir) / "manifest.json").read_text(encoding="utf-8"))
    series: dict[str, Series] = {}
    for item in manifest["series"]:
        arrays = []
        for key in ("t_ns", "values"):
            mapped = np.load(Path(inputs_dir) / item[key], mmap_mode="r", allow_pickle=False)
            array = np.asarray(mapped)
            array.flags.writeable = False
            arrays.append(array)
        series[item["name"]] = Series(item["name"], arrays[0], arrays[1])
    return types.MappingProxyType(series)


def _import_algorithm(algorithm_dir: str) -> types.ModuleType:
    sys.path.insert(0, algorithm_dir)
    spec = importlib.util.spec_from_file_location("algorithm", Path(algorithm_dir) / "algorithm.py")
    if spec is None or spec.loader is None:
        raise ImportError("algorithm.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules["algorithm"] = module
    spec.loader.exec_module(module)
    return module


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def _report_error(output_dir: str, kind: str, exc: BaseException | None, message: str = "") -> None:
    record = {
        "kind": kind,
        "type": type(exc).__name__ if exc is not None else "",
        "message": (message or (str(exc) if exc is not None else ""))[:_MESSAGE_CHARS],
    }
    if isinstance(exc, OSError) and exc.errno is not None:
        record["errno"] = errno.errorcode.get(exc.errno, str(exc.errno))
    try:
        _write_new(Path(output_dir) / ERROR_FILE, json.dumps(record).encode())
    except OSError as write_error:
        print(f"runner: cannot write {ERROR_FILE}: {write_error}", file=sys.stderr)


def _encode_output(result: object, output_bytes: int) -> tuple[bytes | None, str, str]:
    """The JSON bytes of ``result``, or None with an error kind and message."""
    if not isinstance(result, dict):
        return None, "bad_return", f"run() returned {type(result).__name__}, not dict"
    try:
        encoded = json.dumps(result, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        return None, "not_json", f"run() returned a value that is not JSON: {exc}"
    if len(encoded) > output_bytes:
        return None, "too_large", f"{len(encoded)} bytes"
    return encoded, "", ""


def _run(config: Mapping[str, Any], main_pid: int) -> int:
    output_dir = config["output_dir"]
    try:
        inputs = _load_inputs(config["inputs_dir"])
        module = _import_algorithm(config["algorithm_dir"])
        run = getattr(module, "run", None)
        if not callable(run):
            _report_error(output_dir, "bad_package", None, "algorithm.py defines no callable run")
            return 1
        result = run(inputs, config["params"])
        encoded, kind, message = _encode_output(result, config["output_bytes"])
    except MemoryError as exc:
        if os.getpid() != main_pid:
            os._exit(1)
        _report_error(output_dir, "memory", exc)
        return 1
    except BaseException as exc:
        if os.getpid() != main_pid:
            os._exit(1)  # a forked child of the algorithm must not report for the run
        traceback.print_exc(limit=-8)
        _report_error(output_dir, "raised", exc)
        return 1
    if os.getpid() != main_pid:
        os._exit(0)
    if encoded is None:
        _report_error(output_dir, kind, None, message)
        return 1
    try:
        _write_new(Path(output_dir) / OUTPUT_FILE, encoded)
    except OSError as exc:
        _report_error(output_dir, "output_write", exc)
        return 1
    return 0


def main(argv: list[str]) -> int:
    main_pid = os.getpid()
    try:
        config = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        _set_limits(config["limits"])
        # Over-large writes fail with EFBIG instead of killing the process, so the reason can be reported.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        for directory in config["site_dirs"]:
            site.addsitedir(directory)
        os.chdir(config["work_dir"])
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print(f"runner: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        return _run(config, main_pid)
    finally:
        if os.getpid() == main_pid:
            _report_usage(config["output_dir"])


def _report_usage(output_dir: str) -> None:
    """CPU time and peak memory of the runner and the children it waited for (informational)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = {
        "cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        "max_rss_bytes": max(own.ru_maxrss, children.ru_maxrss) * 1024,
    }
    with contextlib.suppress(OSError):
        _write_new(Path(output_dir) / USAGE_FILE, json.dumps(usage).encode())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
