"""Generator and detector end to end through the typer apps: files, ground truth, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trustlane.cli import accident_cmd, sample_cmd
from trustlane.errors import MalformedInput, UsageError

runner = CliRunner()


def _generate(out: Path, *names: str, seed: int = 3, rate: int = 1000, fmt: str = "csv") -> None:
    args = ["generate", "--out", str(out), "--seed", str(seed), "--duration", "25", "--rate", str(rate)]
    for name in names:
        args += ["--scenario", name]
    args += ["--format", fmt]
    result = runner.invoke(sample_cmd.app, args)
    assert result.exit_code == 0, result.output


def _detect(path: Path) -> dict[str, object]:
    result = runner.invoke(accident_cmd.app, ["detect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_generator_is_deterministic(tmp_path: Path) -> None:
    _generate(tmp_path / "a", "front")
    _generate(tmp_path / "b", "front")
    assert (tmp_path / "a/front.csv").read_bytes() == (tmp_path / "b/front.csv").read_bytes()
    truth = json.loads((tmp_path / "a/front.truth.json").read_text())
    assert truth["time_base"]["clock_source"]
    assert truth["collisions"][0]["contact_ns"] > truth["time_base"]["start_ns"]
    assert truth["automation"]["intervals"]


@pytest.mark.parametrize("fmt", ["csv", "mdf4", "parquet"])
def test_front_collision_found_in_every_format(tmp_path: Path, fmt: str) -> None:
    _generate(tmp_path, "front", fmt=fmt)
    suffix = {"csv": "csv", "mdf4": "mf4", "parquet": "parquet"}[fmt]
    out = _detect(tmp_path / f"front.{suffix}")
    truth = json.loads((tmp_path / "front.truth.json").read_text())["collisions"][0]
    (event,) = out["events"]  # type: ignore[misc]
    assert event["direction"] == "front"
    assert abs(event["contact_ns"] - truth["contact_ns"]) < 20_000_000
    assert event["delta_v_kmh"] == pytest.approx(truth["delta_v_kmh"], rel=0.25)
    assert set(event) >= {"t0_ns", "contact_ns", "contact_sigma_ms", "delta_v_kmh", "max_delta_v_kmh", "direction"}


@pytest.mark.parametrize("name", ["pothole", "curb-strike", "door-slam", "harsh-braking"])
def test_non_collisions_are_not_reported(tmp_path: Path, name: str) -> None:
    _generate(tmp_path, name)
    assert _detect(tmp_path / f"{name}.csv")["events"] == []


def test_missing_acceleration_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "speed.csv"
    path.write_text("timestamp_ns,Vehicle.Speed\n" + "".join(f"{i * 10_000_000},50\n" for i in range(100)))
    result = runner.invoke(accident_cmd.app, ["detect", str(path), "--json"])
    assert isinstance(result.exception, UsageError)
    assert "no longitudinal acceleration" in str(result.exception)


def test_acceleration_in_g_declared_as_m_s2_is_refused(tmp_path: Path) -> None:
    _generate(tmp_path, "normal")
    csv = tmp_path / "normal.csv"
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    cols = [i for i, h in enumerate(header) if "Vehicle.Acceleration" in h]
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        for i in cols:
            if cells[i]:
                cells[i] = repr(float(cells[i]) / 9.80665)
        rows.append(",".join(cells))
    csv.write_text("\n".join([lines[0], *rows]) + "\n")
    result = runner.invoke(accident_cmd.app, ["detect", str(csv), "--json"])
    assert isinstance(result.exception, MalformedInput)
    assert "behaves like g" in str(result.exception)


def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(sample_cmd.app, ["generate", "--out", str(tmp_path), "--scenario", "meteor"])
    assert isinstance(result.exception, UsageError)


def test_repeated_timestamp_in_csv_is_a_clear_error(tmp_path: Path) -> None:
    rows = ["timestamp_ns,Vehicle.Acceleration.Longitudinal[m/s^2],Vehicle.Speed[km/h],Other"]
    rows += [f"{1_700_000_000_000_000_000 + i * 1_000_000},0.1,{'50' if i % 10 == 0 else ''},x" for i in range(300)]
    rows[151] = rows[150]
    path = tmp_path / "dup.csv"
    path.write_text("\n".join(rows) + "\n")
    result = runner.invoke(accident_cmd.app, ["detect", str(path), "--json"])
    assert isinstance(result.exception, MalformedInput)
    assert "data row 151 repeats the previous timestamp" in str(result.exception)


def test_text_in_an_acceleration_column_is_a_clear_error(tmp_path: Path) -> None:
    rows = ["timestamp_ns,Vehicle.Acceleration.Longitudinal"]
    rows += [f"{1_700_000_000_000_000_000 + i * 1_000_000},{'oops' if i == 40 else '0.1'}" for i in range(100)]
    path = tmp_path / "text.csv"
    path.write_text("\n".join(rows) + "\n")
    result = runner.invoke(accident_cmd.app, ["detect", str(path), "--json"])
    assert isinstance(result.exception, MalformedInput)
    assert "'oops'" in str(result.exception) and "Vehicle.Acceleration.Longitudinal" in str(result.exception)
