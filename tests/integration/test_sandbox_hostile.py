"""The hostile-algorithm suite: each attack runs in the real bubblewrap sandbox and is blocked with its reason."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import IN_CI, ROOT
from trustlane.analysis.gate import check_output
from trustlane.analysis.package import AlgorithmPackage, load_package
from trustlane.analysis.sandbox import InputSeries, RunResult, SandboxLimits, run_algorithm, sandbox_problem

ALGORITHMS = ROOT / "tests" / "data" / "algorithms"
SECRET = "s3cr3t-token-do-not-leak"
VIN = "1M8GDM9AXKP042788"


@pytest.fixture(scope="module", autouse=True)
def isolation() -> None:
    problem = sandbox_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox suite, but: {problem}")
        pytest.skip(f"no isolation on this machine: {problem}")


def drive(n: int = 30_000) -> dict[str, InputSeries]:
    rng = np.random.default_rng(3)
    t_ns = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 1_000_000
    speed = np.clip(60 + np.cumsum(rng.normal(0, 0.3, n)), 0, None)
    return {"Vehicle.Speed": InputSeries(t_ns, speed)}


INPUTS = drive()


def package(name: str) -> AlgorithmPackage:
    return load_package(ALGORITHMS / name)


def run(name: str, params: dict[str, Any] | None = None, **limits: Any) -> RunResult:
    result = run_algorithm(package(name), INPUTS, params or {}, SandboxLimits(**limits))
    assert result.isolated
    return result


def processes_of(uid: int) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                found.append(pid)
        except FileNotFoundError:
            pass
    return found


def test_well_behaved_output_passes_and_equals_the_in_process_result() -> None:
    pkg = package("speed_stats")
    result = run_algorithm(pkg, INPUTS, {"bins": 8})
    assert (result.status, result.reason, result.isolated) == ("ok", "completed", True)
    assert check_output(result.output, pkg.schema, INPUTS, max_bytes=1 << 20, identifiers=[VIN]) == []
    spec = importlib.util.spec_from_file_location("speed_stats_here", pkg.root / "algorithm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(pkg.root))
    try:
        spec.loader.exec_module(module)
        assert result.output == module.run(INPUTS, {"bins": 8})
    finally:
        sys.path.remove(str(pkg.root))
    assert result.output["samples"] == len(INPUTS["Vehicle.Speed"].values)


def test_network_is_unreachable() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(listener.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    result = run("net_connect", {"port": listener.getsockname()[1], "outside_ip": "1.1.1.1"})
    thread.join()
    listener.close()
    assert result.status == "ok"
    assert result.output is not None
    assert all(outcome != "connected" and outcome != "resolved" for outcome in result.output.values()), result.output
    assert "Network is unreachable" in result.output["outside"]
    assert accepted == []


def test_files_outside_the_inputs_are_invisible(tmp_path: Path) -> None:
    node_home = tmp_path / "node-home"
    (node_home / "keys").mkdir(parents=True)
    key = node_home / "keys" / "holder.key"
    key.write_text("PRIVATE KEY MATERIAL")
    key.chmod(0o644)  # even a world-readable key stays out of reach
    paths = [
        str(key),
        str(node_home),
        "/etc/shadow",
        "/etc/hostname",
        str(ROOT / "pyproject.toml"),
        str(ROOT),
        "/root/.bashrc",
        "/home",
        "/var",
    ]
    result = run("read_files", {"paths": paths})
    assert result.status == "ok" and result.output is not None
    found = result.output["found"]
    assert all(outcome.startswith("blocked") for outcome in found.values()), found
    assert set(result.output["root"]) <= {"usr", "lib", "lib64", "etc", "sandbox", "proc", "dev", "tmp", "root", "bin"}


def test_secrets_in_the_environment_do_not_reach_the_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTLANE_NODE_SECRET", SECRET)
    result = run("read_env")
    assert result.status == "ok" and result.output is not None
    assert SECRET not in str(result.output)
    assert "TRUSTLANE_NODE_SECRET" not in result.output["environment"]


def test_inputs_code_and_system_are_read_only() -> None:
    pkg = package("write_back")
    before = pkg.digest
    result = run_algorithm(pkg, INPUTS, {}, SandboxLimits())
    assert result.status == "ok" and result.output is not None
    assert all(outcome.startswith("blocked") for outcome in result.output.values()), result.output
    assert load_package(pkg.root).digest == before


def test_forks_stop_at_the_process_limit_and_nothing_survives() -> None:
    result = run("fork_count", {"attempts": 300, "child_sleep_s": 30}, processes=16)
    assert result.status == "ok" and result.output is not None
    assert 0 < result.output["started"] < 16
    assert "Resource temporarily unavailable" in result.output["error"]
    uid = result.details.get("uid")
    if uid is not None:  # root: the run had its own uid, whose processes must all be gone
        assert processes_of(uid) == []


def test_fork_bomb_is_contained_and_killed() -> None:
    started = time.monotonic()
    result = run("fork_bomb", processes=16, wall_seconds=3, cpu_seconds=2)
    assert time.monotonic() - started < 15
    assert result.status == "timeout"
    assert "wall limit" in result.reason or "CPU limit" in result.reason
    uid = result.details.get("uid")
    if uid is not None:
        assert processes_of(uid) == []
    assert os.system("true") == 0  # the host can still start processes


def test_memory_bomb_hits_the_memory_limit() -> None:
    result = run("memory_bomb", {"chunks": 64}, memory_bytes=512 * 1024**2)
    assert result.status == "killed"
    assert result.reason == "exceeded the 512 MiB memory limit (MemoryError)"


def test_endless_computation_hits_the_cpu_limit() -> None:
    result = run("cpu_loop", cpu_seconds=1, wall_seconds=30)
    assert (result.status, result.reason) == ("timeout", "used up its 1 s CPU limit")
    assert result.wall_s < 10


def test_sleeping_forever_hits_the_wall_limit_and_its_children_die() -> None:
    result = run("sleep_forever", {"children": 3}, wall_seconds=1.5)
    assert (result.status, result.reason) == ("timeout", "ran past the 1.5 s wall limit")
    assert result.wall_s < 5
    uid = result.details.get("uid")
    if uid is not None:
        time.sleep(0.2)
        assert processes_of(uid) == []


def test_huge_output_is_refused() -> None:
    result = run("huge_output", {"bytes": 3 * 1024**2})
    assert result.status == "failed" and result.output is None
    assert "exceeds the 1 MiB output limit" in result.reason
    direct = run("huge_output", {"bytes": 3 * 1024**2, "write_directly": True})
    assert direct.status in ("failed", "killed") and direct.output is None
    assert "1 MiB output limit" in direct.reason or "limit" in direct.reason


def test_output_replaced_by_a_link_is_not_followed() -> None:
    result = run("output_symlink", {"target": "/etc/passwd"})
    assert result.status == "failed" and result.output is None
    assert "not a regular file" in result.reason


def test_raw_series_pass_the_sandbox_but_not_the_gate() -> None:
    for mode in ("exact", "rounded", "scaled", "objects", "base64", "text"):
        params = {"signal": "Vehicle.Speed", "start": 1000, "count": 50, "mode": mode}
        result = run("raw_series", params)
        assert result.status == "ok", result.reason
        problems = check_output(result.output, package("raw_series").schema, INPUTS, max_bytes=1 << 20)
        assert any("reproduce consecutive samples" in p and "Vehicle.Speed" in p for p in problems), (mode, problems)


def test_a_vin_in_the_output_is_blocked() -> None:
    result = run("leak_vin", {"vin": VIN})
    assert result.status == "ok"
    problems = check_output(result.output, package("leak_vin").schema, INPUTS, max_bytes=1 << 20, identifiers=[VIN])
    assert (
        "$.vehicle: holds a VIN-like identifier (ISO 3779, valid check digit); use the vehicle's pseudonym" in problems
    )
    assert any(p.startswith("$.note: holds the identifier of a vehicle") for p in problems)


def test_an_exception_is_reported_with_its_message() -> None:
    result = run("raises")
    assert (result.status, result.output) == ("failed", None)
    assert result.reason == "raised ValueError: calibration table missing for this vehicle"
    assert "algorithm.py" in result.stderr_tail and len(result.stderr_tail) <= 8192


def test_a_package_changed_after_pinning_is_refused(tmp_path: Path) -> None:
    from trustlane.analysis.package import copy_package
    from trustlane.errors import VerificationError

    pinned = copy_package(package("speed_stats"), tmp_path / "pinned")
    (pinned.root / "events.py").write_text("def hard_braking_events(*args):\n    return 0\n")
    with pytest.raises(VerificationError, match="not the pinned"):
        run_algorithm(pinned, INPUTS, {})
