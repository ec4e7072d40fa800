"""Cross-border transfer end to end: plan (decision with citations), run (processing, package), offline verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.clirun import cli, ok, refused
from trustlane.ingest.readers.samples import write_csv

VIN = "1M8GDM9AXKP042788"
S = 1_000_000_000
T0 = 1_700_000_000 * S
HOME_LAT, HOME_LON = 31.23, 121.47


def _trip(path: Path) -> Path:
    """10 min parked at home, a 10 min drive, 10 min parked at work: 2 Hz position and speed."""
    t = T0 + np.arange(0, 1800 * S, S // 2, dtype=np.int64)
    n, third = t.size, t.size // 3
    ramp = np.linspace(0, 1, n - 2 * third)
    lat = HOME_LAT + 0.05 * np.concatenate([np.zeros(third), ramp, np.ones(third)])
    lon = HOME_LON + 0.08 * np.concatenate([np.zeros(third), ramp, np.ones(third)])
    speed = np.concatenate([np.zeros(third), 40 + 10 * np.sin(np.arange(n - 2 * third) / 50), np.zeros(third)])
    return write_csv(
        path,
        {
            "Vehicle.Speed": (t, speed, "km/h"),
            "Vehicle.CurrentLocation.Latitude": (t, lat, "degrees"),
            "Vehicle.CurrentLocation.Longitude": (t, lon, "degrees"),
        },
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("transfer")
    home = root / "holder"
    ok("init", "--home", home, "--origin", "oem.example/log")
    ok("vehicle", "register", VIN, "--home", home)
    dataset = ok("ingest", _trip(root / "trip.csv"), "--vehicle", VIN, "--home", home, "--json").json()["dataset"]
    ok("party", "add", "eu-insurer", "--role", "insurer", "--home", home)
    vkey = ok("ledger", "vkey", "--home", home).out.strip()
    return {"home": home, "dataset": dataset, "vkey": vkey}


def _plan(node: dict[str, Any], out: Path, *extra: str) -> dict[str, Any]:
    result = ok("transfer", "plan", "--dataset", node["dataset"], "--to", "EU", "--recipient", "eu-insurer",
                "--purpose", "claims", "--out", out, "--home", node["home"], "--json", *extra)  # fmt: skip
    return dict(result.json())


def test_missing_facts_and_missing_mechanisms_stop_the_transfer(node: dict[str, Any], tmp_path: Path) -> None:
    unknown = _plan(node, tmp_path / "a.json")
    assert unknown["decision"] == "needs_info" and "exporter.ciio" in unknown["missing"]
    big = _plan(node, tmp_path / "b.json", "--no-ciio", "--no-important-data-notified", "--persons", "150000")
    assert big["decision"] == "deny"
    assert any(r["citation"] for r in big["rules"])
    message = refused(cli("transfer", "run", tmp_path / "b.json", "--out", tmp_path / "pkg", "--home", node["home"]), 2)
    assert "deny" in message and not (tmp_path / "pkg").exists()


def test_allowed_transfer_is_processed_packaged_and_verifiable(node: dict[str, Any], tmp_path: Path) -> None:
    plan = _plan(node, tmp_path / "p.json", "--no-ciio", "--no-important-data-notified")
    assert plan["decision"] == "allow"
    assert plan["steps"][:3] == ["location.zones", "location.trim", "location.coarsen"]
    package = tmp_path / "pkg"
    ran = ok("transfer", "run", tmp_path / "p.json", "--out", package, "--home", node["home"], "--json").json()
    assert ran["files"][0]["rows"] > 0
    verified = ok("transfer", "verify", package, "--trust", node["vkey"], "--json").json()
    assert verified["valid"] and verified["to"] == "EU"
    table = pq.read_table(package / "data.parquet").to_pydict()
    lat = np.array([v for p, v in zip(table["path"], table["value"], strict=True) if p.endswith("Latitude")])
    lon = np.array([v for p, v in zip(table["path"], table["value"], strict=True) if p.endswith("Longitude")])
    # the home and work stops are gone, the rest is on a 1 km grid
    near_home = np.hypot((lat - HOME_LAT) * 111_000, (lon - HOME_LON) * 95_000) < 500
    assert lat.size > 0 and not near_home.any()
    assert len(np.unique(lat)) < 20
    manifest = json.loads((package / "manifest.json").read_bytes())
    assert manifest["vehicle"] and VIN not in json.dumps(manifest)
    # any change to the data or the manifest is detected
    data = (package / "data.parquet").read_bytes()
    (package / "data.parquet").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert cli("transfer", "verify", package, "--trust", node["vkey"]).code == 1
    (package / "data.parquet").write_bytes(data)
    manifest["steps"] = manifest["steps"][1:]
    (package / "manifest.json").write_text(json.dumps(manifest))
    assert cli("transfer", "verify", package, "--trust", node["vkey"]).code == 1


def test_a_changed_plan_is_refused(node: dict[str, Any], tmp_path: Path) -> None:
    _plan(node, tmp_path / "p.json", "--no-ciio", "--no-important-data-notified")
    plan = json.loads((tmp_path / "p.json").read_bytes())
    plan["steps"] = []  # drop the processing
    (tmp_path / "p.json").write_text(json.dumps(plan))
    result = cli("transfer", "run", tmp_path / "p.json", "--out", tmp_path / "pkg", "--home", node["home"])
    assert result.code == 6 and "transfer plan" in result.err and not (tmp_path / "pkg").exists()


def test_a_risk_threshold_can_stop_the_package(node: dict[str, Any], tmp_path: Path) -> None:
    _plan(node, tmp_path / "p.json", "--no-ciio", "--no-important-data-notified", "--max-unique-fraction", "0.5")
    result = cli("transfer", "run", tmp_path / "p.json", "--out", tmp_path / "pkg", "--home", node["home"])
    assert "unique" in refused(result, 2) and not (tmp_path / "pkg").exists()
    assert cli("transfer", "plan", "--dataset", node["dataset"], "--to", "EU", "--recipient", "eu-insurer",
               "--purpose", "x", "--max-unique-fraction", "2", "--home", node["home"]).code == 2  # fmt: skip
