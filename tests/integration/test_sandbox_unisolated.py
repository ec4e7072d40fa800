"""Runs without bubblewrap: refused by default, allowed (and marked unisolated) only when asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from trustlane.analysis import sandbox
from trustlane.analysis.package import load_package
from trustlane.analysis.sandbox import InputSeries, SandboxLimits, run_algorithm, sandbox_problem
from trustlane.errors import UsageError

ALGORITHMS = ROOT / "tests" / "data" / "algorithms"
INPUTS = {
    "Vehicle.Speed": InputSeries(
        1_700_000_000_000_000_000 + np.arange(5000, dtype=np.int64) * 10_000_000,
        np.linspace(0, 120, 5000) + np.sin(np.arange(5000)),
    )
}


@pytest.fixture
def no_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A PATH without bubblewrap: the probe must notice and say how to fix it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    sandbox_problem.cache_clear()
    problem = sandbox_problem()
    assert problem is not None
    yield problem
    monkeypatch.undo()
    sandbox_problem.cache_clear()


def test_the_probe_names_the_missing_tool_and_the_fix(no_bwrap: str) -> None:
    assert "bubblewrap is not installed" in no_bwrap and "apt-get install bubblewrap" in no_bwrap


def test_without_isolation_a_run_is_refused(no_bwrap: str) -> None:
    with pytest.raises(UsageError, match="sandbox is unavailable") as caught:
        run_algorithm(load_package(ALGORITHMS / "speed_stats"), INPUTS, {})
    assert "development only" in (caught.value.hint or "")


def test_an_unisolated_run_is_marked_and_still_limited(no_bwrap: str) -> None:
    pkg = load_package(ALGORITHMS / "speed_stats")
    result = run_algorithm(pkg, INPUTS, {}, allow_unisolated=True)
    assert (result.status, result.isolated) == ("ok", False)
    assert result.output is not None and result.output["samples"] == 5000
    failed = run_algorithm(load_package(ALGORITHMS / "raises"), INPUTS, {}, allow_unisolated=True)
    assert failed.reason == "raised ValueError: calibration table missing for this vehicle"
    slow = run_algorithm(
        load_package(ALGORITHMS / "sleep_forever"), INPUTS, {}, SandboxLimits(wall_seconds=1), allow_unisolated=True
    )
    assert (slow.status, slow.reason) == ("timeout", "ran past the 1 s wall limit")
    memory = run_algorithm(
        load_package(ALGORITHMS / "memory_bomb"),
        INPUTS,
        {"chunks": 64},
        SandboxLimits(memory_bytes=512 * 1024**2),
        allow_unisolated=True,
    )
    assert memory.reason == "exceeded the 512 MiB memory limit (MemoryError)"


def test_bad_arguments_are_refused_before_anything_runs() -> None:
    pkg = load_package(ALGORITHMS / "speed_stats")
    with pytest.raises(UsageError, match="not plain JSON"):
        run_algorithm(pkg, INPUTS, {"x": float("nan")})
    with pytest.raises(UsageError, match="one-dimensional int64"):
        InputSeries(np.arange(3, dtype=np.int32), np.zeros(3))
    with pytest.raises(UsageError, match="numeric"):
        InputSeries(np.arange(3, dtype=np.int64), np.array(["a", "b", "c"]))
    with pytest.raises(UsageError, match="3 timestamps but 2 values"):
        InputSeries(np.arange(3, dtype=np.int64), np.zeros(2))
    with pytest.raises(UsageError, match="must be positive"):
        SandboxLimits(wall_seconds=0)
    assert sandbox.STDERR_TAIL_BYTES == 8192
