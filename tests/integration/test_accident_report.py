"""`trustlane accident report` end to end, and the accident algorithm in the real sandbox behind the output gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import IN_CI
from trustlane.accident import algorithm_entry
from trustlane.accident.generator.recording import generate
from trustlane.accident.generator.writer import write_csv
from trustlane.accident.package import build_algorithm_package
from trustlane.accident.report.inputs import recording_inputs
from trustlane.accident.report.schema import OUTPUT_SCHEMA
from trustlane.analysis.gate import check_output
from trustlane.analysis.package import load_package
from trustlane.analysis.sandbox import InputSeries, run_algorithm, sandbox_problem
from trustlane.cli import accident_cmd
from trustlane.errors import MalformedInput, UsageError

runner = CliRunner()
PARAMS = {"case_id": "case-7", "vehicle": "veh-3c9d", "clock_source": "GNSS", "input_digests": {"segments": 3}}


def recording_file(folder: Path, name: str, seed: int) -> Path:
    path = folder / f"{name}.csv"
    write_csv(generate(name, seed, duration_s=30.0), path)
    return path


@pytest.mark.slow
def test_report_command_writes_json_html_and_pdf(tmp_path: Path) -> None:
    source = recording_file(tmp_path, "l3-takeover", 1)
    out = tmp_path / "out"
    result = runner.invoke(accident_cmd.app, ["report", str(source), "--out", str(out), "--vehicle", "veh-3c9d"])
    assert result.exit_code == 0, result.output
    assert "non-binding" in result.output
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, OUTPUT_SCHEMA)
    assert report["liability"]["indication"]["system_side"] == "full"  # crash within the 10 s of the demand
    assert report["digests"]["inputs"]["sha256"].startswith("sha256:")
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Type /Page" in pdf


def test_report_without_acceleration_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "speed.csv"
    source.write_text("timestamp_ns,Vehicle.Speed\n" + "".join(f"{i * 10**7},50\n" for i in range(100)))
    out = tmp_path / "out"
    result = runner.invoke(accident_cmd.app, ["report", str(source), "--out", str(out)])
    assert result.exit_code != 0
    assert isinstance(result.exception, UsageError | MalformedInput)
    assert "acceleration" in str(result.exception)
    assert not out.exists()


def sandbox_inputs(path: Path) -> dict[str, InputSeries]:
    inputs, _, _ = recording_inputs(path)
    return {name: InputSeries(s.t_ns, s.values) for name, s in inputs.items()}


@pytest.fixture(scope="module")
def isolation() -> None:
    problem = sandbox_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox tests, but: {problem}")
        pytest.skip(f"no isolation on this machine: {problem}")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "seed"), [("l3-takeover", 0), ("l2-override", 1), ("side-left", 2)])
def test_entry_runs_in_the_sandbox_and_passes_the_gate(isolation: None, tmp_path: Path, name: str, seed: int) -> None:
    package = load_package(build_algorithm_package(tmp_path / "pkg"))
    inputs = sandbox_inputs(recording_file(tmp_path, name, seed))
    result = run_algorithm(package, inputs, PARAMS)
    assert result.status == "ok", (result.reason, result.stderr_tail)
    assert result.isolated
    output: dict[str, Any] = result.output or {}
    assert check_output(output, package.schema, inputs, max_bytes=1024**2) == []
    in_process = algorithm_entry.run(inputs, PARAMS)
    assert json.loads(json.dumps(in_process)) == output  # the same code gives the same report in and out
    assert output["vehicle"] == "veh-3c9d" and output["collision"]


def test_gate_blocks_a_pulse_of_raw_samples(tmp_path: Path) -> None:
    """The pulse summary must be filtered: the same figures as raw samples would be refused."""
    path = recording_file(tmp_path, "front", 4)
    inputs = sandbox_inputs(path)
    output = algorithm_entry.run(inputs, PARAMS)
    assert check_output(output, OUTPUT_SCHEMA, inputs, max_bytes=1024**2) == []
    accel = inputs["Vehicle.Acceleration.Longitudinal"]
    i = int(np.searchsorted(accel.t_ns, output["t0_ns"]))
    output["pulse"]["longitudinal_ms2"] = [float(v) for v in accel.values[i : i + 50]]
    problems = check_output(output, OUTPUT_SCHEMA, inputs, max_bytes=1024**2)
    assert any("pulse" in p for p in problems)


def test_package_command_is_deterministic_and_registers(tmp_path: Path) -> None:
    from tests.clirun import cli, ok

    first = ok("accident", "package", "--out", tmp_path / "a").out.split()
    second = ok("accident", "package", "--out", tmp_path / "b").out.split()
    assert first[1] == second[1] and first[1].startswith("sha256:")
    assert cli("accident", "package", "--out", tmp_path / "a").code == 2  # never overwrites
    home = tmp_path / "home"
    ok("init", "--home", home)
    registered = ok(
        "algorithm", "register", tmp_path / "a", "--name", "accident-analysis", "--version", "1", "--home", home
    ).out.strip()
    assert registered == first[1]
