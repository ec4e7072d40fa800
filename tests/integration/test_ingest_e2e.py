"""Ingest end to end through the CLI: every format, collection rules, segments, duplicates, refusals, provenance
and erasure, on a real node home.

Recordings are written with the real libraries (asammdf, pyarrow, cantools, mcap) by
``trustlane.ingest.readers.samples``; the CLI runs in this process (``trustlane.cli.main.run``, as the console
script does) or, for the slow contract test, as ``python -m trustlane`` in a subprocess. What a refusal must leave
unchanged is read back from the node itself: the ledger tree size, ``trustlane catalog --json``, the vehicles'
upload chains and every file under ``<home>/blobs``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.clirun import Result, cli
from tests.conftest import shared_path
from trustlane.catalog.home import master_key, open_catalog
from trustlane.crypto.envelope import context_aad, open_sealed
from trustlane.ingest.model import ConsentRecord
from trustlane.ingest.readers.samples import (
    CanFrame,
    RawCanFrame,
    Samples,
    write_candump,
    write_csv,
    write_mcap,
    write_mdf4,
    write_parquet,
)
from trustlane.ledger.events import check_disclosure
from trustlane.node import Node
from trustlane.vehicles.registry import VehicleRegistry

VIN = "1M8GDM9AXKP042788"
VIN_B = "1HGCM82633A004352"
VIN_C = "WVWZZZ1JZXW000001"
ORIGIN = "holder.example/log"
S = 1_000_000_000
T0 = 1_700_000_000 * S  # a multiple of 10 s: the first default segment window starts here
GENESIS = "0" * 64
HYUNDAI_DBC = ("vectors", "dbc", "hyundai_2015_ccan.dbc")


# --- running the CLI ----------------------------------------------------------------------------------------------


def cli_process(*args: str | Path) -> Result:
    """The CLI as a separate process (`python -m trustlane`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRUSTLANE_HOME", "TRUSTLANE_DEBUG")}
    done = subprocess.run(
        [sys.executable, "-m", "trustlane", *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def ok(*args: str | Path) -> Result:
    result = cli(*args)
    assert result.code == 0, f"{args}: exit {result.code}: {result.err}"
    return result


def ingest(home: Path, files: Sequence[Path], *extra: str | Path, vin: str = VIN) -> Any:
    """Ingest through the CLI with --json; the receipt (a list for several files)."""
    return ok("ingest", *files, "--vehicle", vin, "--home", home, "--json", *extra).json()


def clean_refusal(result: Result) -> str:
    """``result`` is a refusal with one clear message; return the message."""
    assert result.code != 0, f"accepted: {result.out}"
    assert result.err.startswith("error: "), result.err
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    return result.err


# --- node state ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node home with VIN and VIN_B registered (no device keys)."""
    home = tmp_path_factory.mktemp("ingest-e2e") / "holder"
    ok("init", "--home", home, "--origin", ORIGIN)
    ok("vehicle", "register", VIN, "--home", home)
    ok("vehicle", "register", VIN_B, "--home", home)
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "holder"
    shutil.copytree(template, copy)
    return copy


def tree_size(home: Path) -> int:
    with Node.open(home) as node:
        return node.store.tree_size()


def blob_files(home: Path) -> dict[str, str]:
    """Every file under <home>/blobs, by relative path, with the SHA-256 of its content."""
    root = home / "blobs"
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def state(home: Path) -> tuple[int, Any, Any, dict[str, str]]:
    """What a refused command must leave as it was: ledger size, catalog, upload chains, blobs."""
    catalog = ok("catalog", "--home", home, "--json").json()
    vehicles = ok("vehicle", "list", "--home", home, "--json").json()
    return tree_size(home), catalog, vehicles, blob_files(home)


def ledger_event(home: Path, index: int) -> dict[str, Any]:
    """The event at ``index``, checked against its ledger commitment."""
    with Node.open(home) as node:
        entry = node.store.entry(index)
        secret = node.store.event_secret(index)
    assert entry is not None and secret is not None and secret.event is not None and secret.salt is not None
    check_disclosure(entry.data, secret.event, secret.salt)
    event: dict[str, Any] = json.loads(secret.event)
    return event


def all_events(home: Path) -> list[tuple[int, dict[str, Any]]]:
    """Every event whose secret the node still holds, by ledger index."""
    with Node.open(home) as node:
        secrets = [node.store.event_secret(i) for i in range(node.store.tree_size())]
    return [(s.index, json.loads(s.event)) for s in secrets if s is not None and s.event is not None]


def ledger_events(home: Path, dataset: str, kind: str) -> list[dict[str, Any]]:
    """The events of ``dataset`` of type ``kind``, each checked against its commitment."""
    found = [i for i, e in all_events(home) if e.get("dataset") == dataset and e["type"] == kind]
    return [ledger_event(home, index) for index in found]


def check_receipt(home: Path, receipt: dict[str, Any], fmt: str) -> None:
    """The receipt fields of the contract, and each segment's ledger entry opening to its ingest.segment event."""
    assert receipt["dataset"].startswith("ds-") and receipt["duplicate"] is False
    assert receipt["format"] == fmt
    assert receipt["vehicle"].startswith("veh-")
    assert receipt["segments"], receipt
    size = tree_size(home)
    for seq, segment in enumerate(receipt["segments"]):
        assert re.fullmatch(r"[0-9a-f]{64}", segment["digest"]), segment
        assert receipt["t_start_ns"] <= segment["t_start_ns"] <= segment["t_end_ns"] <= receipt["t_end_ns"]
        assert 0 <= segment["ledger_index"] < size
        event = ledger_event(home, segment["ledger_index"])
        assert event["type"] == "ingest.segment"
        assert event["segment_sha256"] == segment["digest"]
        assert (event["dataset"], event["vehicle"], event["seq"]) == (receipt["dataset"], receipt["vehicle"], seq)
        assert (int(event["t_start_ns"]), int(event["t_end_ns"])) == (segment["t_start_ns"], segment["t_end_ns"])
    dataset_event = ledger_event(home, receipt["ledger_index"])
    assert dataset_event["type"] == "ingest.dataset"
    assert dataset_event["segments"] == [s["digest"] for s in receipt["segments"]]
    assert {"kept", "dropped"} <= set(receipt["signals"])


def export(home: Path, dataset: str, out: Path, *signals: str) -> dict[str, list[tuple[int, Any]]]:
    """`trustlane data export` to ``out`` (.csv or .parquet); the samples read back, by signal path."""
    args: list[str | Path] = ["data", "export", dataset, "-o", out, "--home", home, "--json"]
    for signal in signals:
        args += ["--signals", signal]
    written = ok(*args).json()
    table = pq.read_table(out) if out.suffix == ".parquet" else pacsv.read_csv(out)
    assert table.column_names == ["path", "t_ns", "value", "text"]
    assert written["rows"] == table.num_rows
    samples: dict[str, list[tuple[int, Any]]] = {}
    for row in table.to_pylist():
        value = row["text"] if row["value"] is None else row["value"]
        samples.setdefault(str(row["path"]), []).append((int(row["t_ns"]), value))
    return samples


def export_both(home: Path, dataset: str, folder: Path, *signals: str) -> dict[str, list[tuple[int, Any]]]:
    """Export as Parquet and as CSV; both must read back the same samples."""
    from_parquet = export(home, dataset, folder / "export.parquet", *signals)
    from_csv = export(home, dataset, folder / "export.csv", *signals)
    assert from_csv.keys() == from_parquet.keys()
    for path, samples in from_parquet.items():
        assert [t for t, _ in from_csv[path]] == [t for t, _ in samples]
        for (_, a), (_, b) in zip(from_csv[path], samples, strict=True):
            assert a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=1e-12)), (path, a, b)
    return from_parquet


def times(start_s: float, stop_s: float, step_s: float) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Epoch nanoseconds from T0 + start to T0 + stop (exclusive), every step seconds."""
    return T0 + np.round(np.arange(start_s, stop_s, step_s) * S).astype(np.int64)


def values_of(samples: dict[str, list[tuple[int, Any]]], path: str) -> list[Any]:
    return [v for _, v in samples[path]]


def approx(a: Sequence[float], b: Sequence[float], tol: float = 1e-9) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=tol, abs_tol=tol) for x, y in zip(a, b, strict=True))


# --- 1. every format, through the CLI --------------------------------------------------------------------------------


def write_mdf4_multirate(path: Path) -> dict[str, Any]:
    """Three rates in three MDF data groups; speed in m/s and acceleration in g (converted on ingest)."""
    real = path.with_name(path.name + ".mf4")  # asammdf saves under an MDF extension; renamed below
    speed_t = np.arange(0, 25, 0.125)  # 8 Hz, exact in binary
    accel_t = np.arange(0, 25, 0.25)  # 4 Hz
    steer_t = np.arange(0, 25, 1.0)  # 1 Hz
    speed = 10.0 + speed_t
    accel = np.sin(accel_t) * 0.5
    steer = np.arange(len(steer_t), dtype=np.float64) - 12.0
    write_mdf4(
        real,
        {
            "Vehicle.Speed": (speed_t, speed, "m/s"),
            "Vehicle.Acceleration.Longitudinal": (accel_t, accel, "g"),
            "Vehicle.Chassis.SteeringWheel.Angle": (steer_t, steer, "deg"),
        },
        T0,
    )
    real.rename(path)
    return {
        "Vehicle.Speed": (T0 + np.round(speed_t * S).astype(np.int64), speed * 3.6),
        "Vehicle.Acceleration.Longitudinal": (T0 + np.round(accel_t * S).astype(np.int64), accel * 9.80665),
        "Vehicle.Chassis.SteeringWheel.Angle": (T0 + np.round(steer_t * S).astype(np.int64), steer),
    }


def write_csv_sparse(path: Path) -> dict[str, Any]:
    """A CSV whose rows are the union of a 10 Hz and a 1 Hz signal: most cells of the slow one are empty."""
    fast_t, slow_t = times(0, 15, 0.1), times(0.05, 15, 1.0)
    fast = np.round(np.linspace(0, 60, len(fast_t)), 3)
    slow = np.round(np.linspace(20, 25, len(slow_t)), 3)
    write_csv(path, {"Vehicle.Speed": (fast_t, fast, "mph"), "Vehicle.Exterior.AirTemperature": (slow_t, slow, "°F")})
    return {
        "Vehicle.Speed": (fast_t, fast * 1.609344),
        "Vehicle.Exterior.AirTemperature": (slow_t, (slow - 32) * 5 / 9),
    }


def write_parquet_file(path: Path) -> dict[str, Any]:
    t = times(0, 12, 0.5)
    speed = np.linspace(0, 100, len(t))
    braking = np.arange(len(t)) % 3 == 0
    write_parquet(
        path,
        {"Vehicle.Speed": (t, speed, "km/h"), "Vehicle.Chassis.Brake.IsPedalPressed": (t, braking, None)},
        time_format="timestamp",
    )
    return {"Vehicle.Speed": (t, speed), "Vehicle.Chassis.Brake.IsPedalPressed": (t, braking.astype(np.float64))}


def write_hyundai_candump(path: Path, dbc: Path) -> dict[str, Any]:
    """Hyundai C-CAN frames encoded with cantools: wheel speeds, steering, SCC takeover requests, ESP, cluster."""
    frames: list[CanFrame | RawCanFrame] = []
    wheel_t, sas_t, scc_t = times(0, 12, 0.05), times(0.01, 12, 0.1), times(0.02, 12, 0.5)
    wheel = 36.0 + (np.arange(len(wheel_t)) % 8) * 0.03125  # km/h, on the DBC's 0.03125 grid
    for t, v in zip(wheel_t.tolist(), wheel.tolist(), strict=True):
        frames.append(
            CanFrame(t, "WHL_SPD11", {"WHL_SPD_FL": v, "WHL_SPD_FR": v, "WHL_SPD_RL": v - 1, "WHL_SPD_RR": v - 1})
        )
    for i, t in enumerate(sas_t.tolist()):
        frames.append(CanFrame(t, "SAS11", {"SAS_Angle": -12.5 + i * 0.5}))
        frames.append(CanFrame(t + 1000, "ESP12", {"LONG_ACCEL": 1.5, "YAW_RATE": 0.0}))
        frames.append(CanFrame(t + 2000, "CLU11", {"CF_Clu_Vanz": 60.0, "CF_Clu_SPEED_UNIT": 1}))
    takeover = [i % 4 == 1 for i in range(len(scc_t))]
    for t, request in zip(scc_t.tolist(), takeover, strict=True):
        frames.append(CanFrame(t, "SCC12", {"TakeOverReq": int(request)}))
    frames.sort(key=lambda f: f.timestamp_ns)
    write_candump(path, dbc, frames)
    return {
        "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed": (wheel_t, wheel),
        "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed": (wheel_t, wheel - 1),
        "Vehicle.Chassis.SteeringWheel.Angle": (sas_t, -12.5 + np.arange(len(sas_t)) * 0.5),
        "Vehicle.Acceleration.Longitudinal": (sas_t + 1000, np.full(len(sas_t), 1.5)),
        "Vehicle.Speed": (sas_t + 2000, np.full(len(sas_t), 60 * 1.609344)),  # 60 mph by CF_Clu_SPEED_UNIT = 1
        "Vehicle.ADAS.TransitionDemand.IsActive": (scc_t, np.array(takeover, dtype=np.float64)),
    }


MCAP_MAPPING = """\
version: 1
vendor: acme
signals:
  /vehicle/speed_mps: {vss: Vehicle.Speed, from_unit: m/s}
  /vehicle/brake: Vehicle.Chassis.Brake.IsPedalPressed
  /vehicle/mode: Vehicle.Powertrain.Transmission.PerformanceMode
"""


def write_mcap_file(path: Path) -> dict[str, Any]:
    t = times(0, 21, 0.25)
    speed = [12.5 + i * 0.25 for i in range(len(t))]
    brake = [i % 5 == 0 for i in range(len(t))]
    mode = ["NORMAL" if i < 40 else "SPORT" for i in range(len(t))]
    write_mcap(
        path,
        [
            ("/vehicle", ts, {"speed_mps": v, "brake": b, "mode": m})
            for ts, v, b, m in zip(t.tolist(), speed, brake, mode, strict=True)
        ],
    )
    (path.parent / "acme.yaml").write_text(MCAP_MAPPING, encoding="utf-8")
    return {
        "Vehicle.Speed": (t, np.array(speed) * 3.6),
        "Vehicle.Chassis.Brake.IsPedalPressed": (t, np.array(brake, dtype=np.float64)),
        "Vehicle.Powertrain.Transmission.PerformanceMode": (t, mode),
    }


# (format, a misleading file name, writer, extra CLI arguments)
FORMATS: list[tuple[str, str, Callable[[Path], dict[str, Any]], Callable[[Path], list[str | Path]]]] = [
    ("mdf4", "recording.csv", write_mdf4_multirate, lambda _: []),
    ("csv", "table.parquet", write_csv_sparse, lambda _: []),
    ("parquet", "frames.mf4", write_parquet_file, lambda _: []),
    (
        "candump",
        "trace.mcap",
        lambda p: write_hyundai_candump(p, shared_path(*HYUNDAI_DBC)),
        lambda _: ["--dbc", shared_path(*HYUNDAI_DBC)],
    ),
    ("mcap", "log.csv", write_mcap_file, lambda folder: ["--mapping", folder / "acme.yaml"]),
]


@pytest.mark.parametrize(("fmt", "name", "writer", "extra"), FORMATS, ids=[f[0] for f in FORMATS])
def test_each_format_round_trips_through_the_cli(
    home: Path,
    tmp_path: Path,
    fmt: str,
    name: str,
    writer: Callable[[Path], dict[str, Any]],
    extra: Callable[[Path], list[str | Path]],
) -> None:
    path = tmp_path / name  # the extension names another format: detection goes by content
    expected = writer(path)
    size = tree_size(home)
    receipt = ingest(home, [path], *extra(tmp_path))
    check_receipt(home, receipt, fmt)
    assert receipt["file"] == name
    assert tree_size(home) > size
    kept = {s["path"] for s in receipt["signals"]["kept"]}
    assert set(expected) <= kept, kept - set(expected)

    samples = export_both(home, receipt["dataset"], tmp_path, *expected)
    assert set(samples) == set(expected)
    for path_, (want_t, want_v) in expected.items():
        got_t = [t for t, _ in samples[path_]]
        assert got_t == [int(t) for t in want_t], path_
        got_v = values_of(samples, path_)
        if isinstance(want_v, list):
            assert got_v == want_v, path_
        else:
            assert approx(got_v, [float(v) for v in want_v]), (path_, got_v[:5], list(want_v[:5]))

    catalog = ok("catalog", "--home", home, "--json").json()
    (dataset,) = [d for d in catalog["datasets"] if d["id"] == receipt["dataset"]]
    assert (dataset["format"], dataset["vehicle"]) == (fmt, receipt["vehicle"])
    assert (dataset["t_start_ns"], dataset["t_end_ns"]) == (receipt["t_start_ns"], receipt["t_end_ns"])
    assert set(expected) <= {s["path"] for s in dataset["signals"]}
    assert receipt["vehicle"] in {v["pseudonym"] for v in catalog["vehicles"]}
    assert set(expected) <= {s["path"] for s in catalog["signals"]}


def test_hyundai_takeover_request_is_the_overlay_transition_demand(home: Path, tmp_path: Path) -> None:
    """TakeOverReq lands on the overlay path the shipped overlay defines, as a boolean; km/h wheel speeds stay."""
    overlay = Path(__file__).parents[2] / "src/trustlane/ingest/data/overlay.csv"
    rows = {line.split(",")[0]: line for line in overlay.read_text(encoding="utf-8").splitlines()}
    assert rows["Vehicle.ADAS.TransitionDemand.IsActive"].split(",")[1:3] == ["sensor", "boolean"]
    dbc = shared_path(*HYUNDAI_DBC)
    log = tmp_path / "drive.log"
    expected = write_hyundai_candump(log, dbc)
    receipt = ingest(home, [log], "--dbc", dbc)
    kept = {s["path"]: s for s in receipt["signals"]["kept"]}
    demand = kept["Vehicle.ADAS.TransitionDemand.IsActive"]
    assert demand["source"] == "SCC12.TakeOverReq" and demand["categories"] == ["adas-state"]
    assert kept["Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed"]["unit"] == "km/h"
    assert kept["Vehicle.Speed"]["source"] == "CLU11.CF_Clu_Vanz"
    samples = export(home, receipt["dataset"], tmp_path / "takeover.parquet", "Vehicle.ADAS.TransitionDemand.IsActive")
    assert list(samples) == ["Vehicle.ADAS.TransitionDemand.IsActive"]
    assert values_of(samples, "Vehicle.ADAS.TransitionDemand.IsActive") == list(
        expected["Vehicle.ADAS.TransitionDemand.IsActive"][1]
    )
    assert 1.0 in values_of(samples, "Vehicle.ADAS.TransitionDemand.IsActive")


def test_format_flag_overrides_detection_and_a_wrong_one_is_refused(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "speed.dat"
    write_csv_sparse(path)
    before = state(home)
    message = clean_refusal(cli("ingest", path, "--vehicle", VIN, "--home", home, "--format", "parquet"))
    assert "speed.dat" in message
    assert state(home) == before
    assert ingest(home, [path], "--format", "csv")["format"] == "csv"


def test_export_refuses_cleanly_and_writes_one_schema(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "partly_empty.csv"
    t = times(0, 5, 1.0)
    path.write_text(
        "timestamp_ns,Vehicle.Speed[km/h],Vehicle.Exterior.AirTemperature[Celsius]\n"
        + "".join(f"{ts},{i},\n" for i, ts in enumerate(t.tolist())),
        encoding="utf-8",
    )
    receipt = ingest(home, [path])
    dataset = receipt["dataset"]
    assert "Vehicle.Exterior.AirTemperature" in {s["path"] for s in receipt["signals"]["kept"]}  # no samples
    full, empty = tmp_path / "full.parquet", tmp_path / "empty.parquet"
    assert export(home, dataset, full)
    assert export(home, dataset, empty, "Vehicle.Exterior.AirTemperature") == {}
    assert pq.read_schema(empty).remove_metadata() == pq.read_schema(full).remove_metadata()
    for args, needle in (
        (["no-such-dataset", "-o", tmp_path / "x.csv"], "no dataset"),
        ([dataset, "-o", tmp_path / "x.csv", "--signals", "Vehicle.Cabin.Camera.Frame"], "Vehicle.Cabin.Camera.Frame"),
        ([dataset, "-o", tmp_path / "x.json"], "x.json"),
        ([dataset, "-o", tmp_path / "missing" / "x.csv"], "missing"),
    ):
        message = clean_refusal(cli("data", "export", *args, "--home", home))
        assert needle in message, message
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".csv", ".parquet", ".json", ".tmp")) == [
        "empty.parquet",
        "full.parquet",
        "partly_empty.csv",
    ]


# --- 2. default non-collection, consents, location precision -----------------------------------------------------

LAT, LON = 48.137154, 11.576124
SENSITIVE = {
    "Vehicle.Cabin.Microphone.Audio": "cabin-audio",
    "Vehicle.Cabin.Camera.Frame": "cabin-imagery",
    "Vehicle.Driver.HeartRate": "biometrics",
}


def sensitive_channels() -> dict[str, Samples]:
    t = times(0, 12, 1.0)
    n = len(t)
    return {
        "Vehicle.Speed": (t, np.linspace(30, 50, n), "km/h"),
        "Vehicle.CurrentLocation.Latitude": (t, LAT + np.arange(n) * 1e-5, "degrees"),
        "Vehicle.CurrentLocation.Longitude": (t, LON + np.arange(n) * 1e-5, "degrees"),
        "Vehicle.Cabin.Microphone.Audio": (t, np.array([f"sha256:{i:064x}" for i in range(n)]), None),
        "Vehicle.Cabin.Camera.Frame": (t, np.array([f"sha256:{i + 100:064x}" for i in range(n)]), None),
        "Vehicle.Driver.HeartRate": (t, np.full(n, 72.0), "bpm"),
    }


def write_sensitive(path: Path, carrier: str, consents: Sequence[ConsentRecord]) -> None:
    """The sensitive recording in ``carrier`` format, the consent records in that format's carrier."""
    channels = sensitive_channels()
    if carrier == "mdf4":
        real = path.with_name(path.name + ".mf4")  # asammdf saves under an MDF extension
        write_mdf4(
            real,
            {name: ((np.asarray(t) - T0) / S, v, u) for name, (t, v, u) in channels.items()},
            T0,
            consents=consents,
        )
        real.rename(path)
    elif carrier == "parquet":
        write_parquet(path, channels, consents=consents)
    else:
        t = np.asarray(channels["Vehicle.Speed"][0])
        rows = [
            ("/car", int(ts), {name.replace(".", "_"): np.asarray(v)[i].item() for name, (_, v, _) in channels.items()})
            for i, ts in enumerate(t.tolist())
        ]
        write_mcap(path, rows, consents=consents)
        mapping = "version: 1\nvendor: acme\nsignals:\n" + "".join(
            f"  /car/{name.replace('.', '_')}: {{vss: {name}{f', from_unit: {unit}' if unit else ''}}}\n"
            for name, (_, _, unit) in channels.items()
        )
        (path.parent / "car.yaml").write_text(mapping, encoding="utf-8")


def mapping_args(path: Path, carrier: str) -> list[str | Path]:
    return ["--mapping", path.parent / "car.yaml"] if carrier == "mcap" else []


CONSENTED = [
    ConsentRecord("cabin-audio", "consent", T0 - 3600 * S, reference="consent-db/17"),
    ConsentRecord("cabin-imagery", "consent", T0 - 3600 * S, T0 + 3600 * S),
    ConsentRecord("biometrics", "consent", T0, None),
    ConsentRecord("location", "legal-obligation", T0 - S),
]


@pytest.mark.parametrize("carrier", ["mdf4", "parquet", "mcap"])
def test_sensitive_categories_are_dropped_by_default_and_kept_with_consent(
    home: Path, tmp_path: Path, carrier: str
) -> None:
    plain = tmp_path / "plain" / "rec.bin"
    plain.parent.mkdir()
    write_sensitive(plain, carrier, [])
    receipt = ingest(home, [plain], *mapping_args(plain, carrier))
    dropped = {d["path"]: d for d in receipt["signals"]["dropped"]}
    assert set(dropped) == set(SENSITIVE)
    for path, category in SENSITIVE.items():
        assert dropped[path]["category"] == category
        assert "not collected by default" in dropped[path]["reason"]
        assert f"no consent record for {category}" in dropped[path]["reason"]
        assert dropped[path]["citation"]
    drops = ledger_events(home, receipt["dataset"], "ingest.drop")
    assert {(e["path"], e["category"]) for e in drops} == set(SENSITIVE.items())
    assert all(e["vehicle"] == receipt["vehicle"] for e in drops)
    (adjust,) = [a for a in receipt["signals"]["adjusted"] if a["path"].endswith("Latitude")]
    assert adjust["kind"] == "location-precision"

    samples = export_both(home, receipt["dataset"], plain.parent)
    assert not set(SENSITIVE) & set(samples)
    assert values_of(samples, "Vehicle.CurrentLocation.Latitude")[:3] == [48.137, 48.137, 48.137]
    assert values_of(samples, "Vehicle.CurrentLocation.Longitude")[-1] == 11.576
    catalog = ok("catalog", "--home", home, "--json").json()
    (entry,) = [d for d in catalog["datasets"] if d["id"] == receipt["dataset"]]
    assert not set(SENSITIVE) & {s["path"] for s in entry["signals"]}
    assert {d["source_name"] for d in entry["dropped"]} == {dropped[p]["source_name"] for p in SENSITIVE}
    assert "location" not in catalog["categories"] and catalog["categories"]["location-coarse"] == 2

    consented = tmp_path / "consented" / "rec.bin"
    consented.parent.mkdir()
    write_sensitive(consented, carrier, CONSENTED)
    receipt = ingest(home, [consented], *mapping_args(consented, carrier))
    assert receipt["signals"]["dropped"] == []
    assert not [a for a in receipt["signals"]["adjusted"] if a["kind"] == "location-precision"]
    assert ledger_events(home, receipt["dataset"], "ingest.drop") == []
    samples = export_both(home, receipt["dataset"], consented.parent)
    assert set(SENSITIVE) <= set(samples)
    assert values_of(samples, "Vehicle.Cabin.Microphone.Audio")[1] == f"sha256:{1:064x}"
    assert values_of(samples, "Vehicle.Driver.HeartRate") == [72.0] * 12
    assert approx(values_of(samples, "Vehicle.CurrentLocation.Latitude")[:2], [LAT, LAT + 1e-5])


def test_consents_that_do_not_cover_the_recording_unlock_nothing(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "rec.mf4"
    late = [
        ConsentRecord("cabin-audio", "consent", T0 + 5 * S),  # granted after the recording starts
        ConsentRecord("cabin-imagery", "consent", T0 - S, T0 + 5 * S),  # expires before it ends
        ConsentRecord("biometrics", "contract", T0 - S),  # a legal basis not accepted for special categories
    ]
    write_sensitive(path, "mdf4", late)
    receipt = ingest(home, [path], "--location-decimals", "2")
    reasons = {d["path"]: d["reason"] for d in receipt["signals"]["dropped"]}
    assert set(reasons) == set(SENSITIVE)
    assert "after the recording starts" in reasons["Vehicle.Cabin.Microphone.Audio"]
    assert "before the recording ends" in reasons["Vehicle.Cabin.Camera.Frame"]
    assert "'contract' is not accepted" in reasons["Vehicle.Driver.HeartRate"]
    samples = export(home, receipt["dataset"], tmp_path / "out.csv", "Vehicle.CurrentLocation.Latitude")
    assert set(values_of(samples, "Vehicle.CurrentLocation.Latitude")) == {48.14}


# --- 3. segments ---------------------------------------------------------------------------------------------------


def windows(t: np.ndarray[Any, np.dtype[np.int64]], length_ns: int) -> list[tuple[int, int, int]]:
    """(first, last, count) of the samples in each window [k·L, (k+1)·L) that holds any."""
    keys = t // length_ns
    return [(int(t[keys == k].min()), int(t[keys == k].max()), int((keys == k).sum())) for k in np.unique(keys)]


@pytest.mark.parametrize(("seconds", "length_ns"), [(None, 10 * S), ("4", 4 * S), ("8.2", 8_200_000_000)])
def test_segments_are_epoch_aligned_windows(home: Path, tmp_path: Path, seconds: str | None, length_ns: int) -> None:
    t = times(3, 47, 1.0)
    path = tmp_path / "speed.csv"
    write_csv(path, {"Vehicle.Speed": (t, np.arange(len(t), dtype=np.float64), "km/h")})
    extra = [] if seconds is None else ["--segment-seconds", seconds]
    receipt = ingest(home, [path], *extra)
    got = [(s["t_start_ns"], s["t_end_ns"], s["rows"]) for s in receipt["segments"]]
    assert got == windows(t, length_ns)
    assert [s["seq"] for s in receipt["segments"]] == list(range(len(got)))
    assert len({s["ledger_index"] for s in receipt["segments"]}) == len(got)


@pytest.mark.parametrize("seconds", ["0", "-5", "nan", "inf", "1e300", "86401"])
def test_a_bad_segment_length_is_refused(home: Path, tmp_path: Path, seconds: str) -> None:
    path = tmp_path / "speed.csv"
    write_csv(path, {"Vehicle.Speed": (times(0, 5, 1.0), np.arange(5.0), "km/h")})
    before = state(home)
    message = clean_refusal(cli("ingest", path, "--vehicle", VIN, "--home", home, "--segment-seconds", seconds))
    assert "--segment-seconds" in message
    assert state(home) == before


def test_blobs_hold_no_plaintext(home: Path, tmp_path: Path) -> None:
    marker = 4242.4242424242
    rng = np.random.default_rng(7)
    t = times(0, 30, 0.5)
    speed = rng.uniform(0, 200, len(t))  # incompressible: the Parquet pages keep the float bytes as they are
    speed[17] = marker
    path = tmp_path / "speed.parquet"
    write_parquet(path, {"Vehicle.Speed": (t, speed, "km/h")})
    receipt = ingest(home, [path])
    blobs = blob_files(home)
    assert len(blobs) == len(receipt["segments"]) == 3
    needle = struct.pack("<d", marker)
    with Node.open(home) as node, open_catalog(node) as catalog:
        key = VehicleRegistry(catalog, master_key(node), node.log).data_key(receipt["vehicle"])
    for segment in receipt["segments"]:
        digest = segment["digest"]
        sealed = (home / "blobs" / digest[:2] / f"{digest}.tle").read_bytes()
        plain = open_sealed(key, sealed, context_aad(purpose="segment", vehicle=receipt["vehicle"], digest=digest))
        assert hashlib.sha256(plain).hexdigest() == digest
        assert plain.startswith(b"PAR1") and b"PAR1" not in sealed
        assert b"Vehicle.Speed" in plain and b"Vehicle.Speed" not in sealed
        if segment["t_start_ns"] <= int(t[17]) <= segment["t_end_ns"]:
            assert needle in plain  # the check below could fail
        assert needle not in sealed


# --- 4. duplicates -------------------------------------------------------------------------------------------------


def test_reingesting_a_file_is_a_duplicate_and_stores_nothing(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    write_csv_sparse(path)
    first = ingest(home, [path])
    before = state(home)
    copy = tmp_path / "renamed.bin"
    shutil.copyfile(path, copy)
    for again in (path, copy):
        receipt = ingest(home, [again], "--segment-seconds", "3")
        assert receipt["duplicate"] is True and receipt["dataset"] == first["dataset"]
        assert receipt["segments"] == first["segments"]
        assert receipt["file"] == again.name
        assert state(home) == before
    # the same file twice in one call: stored once
    other = tmp_path / "b.csv"
    write_csv(other, {"Vehicle.Speed": (times(100, 110, 1.0), np.arange(10.0), "km/h")})
    both = ingest(home, [other, other])
    assert [r["duplicate"] for r in both] == [False, True]
    assert both[0]["dataset"] == both[1]["dataset"]


def test_the_same_data_in_another_file_or_for_another_vehicle_is_refused_before_storing(
    home: Path, tmp_path: Path
) -> None:
    channels: dict[str, Samples] = {"Vehicle.Speed": (times(0, 25, 0.5), np.linspace(0, 90, 50), "km/h")}
    as_csv = write_csv(tmp_path / "a.csv", channels)
    as_parquet = write_parquet(tmp_path / "a.parquet", channels)
    first = ingest(home, [as_csv])
    before = state(home)
    for path, vin in (
        (as_parquet, VIN),  # the same samples, another format
        (as_csv, VIN_B),  # the same file, another vehicle (would overwrite VIN's blobs)
    ):
        message = clean_refusal(cli("ingest", path, "--vehicle", vin, "--home", home))
        assert path.name in message and first["dataset"] in message
        assert state(home) == before
    samples = export(home, first["dataset"], tmp_path / "first.csv")
    assert approx(values_of(samples, "Vehicle.Speed"), list(np.linspace(0, 90, 50)))
    # two files of one call that hold the same data: nothing stored for either
    twin = tmp_path / "twin.csv"
    write_csv(twin, {"Vehicle.Speed": (times(200, 210, 1.0), np.arange(10.0), "km/h")})
    twin_parquet = write_parquet(
        tmp_path / "twin.parquet", {"Vehicle.Speed": (times(200, 210, 1.0), np.arange(10.0), "km/h")}
    )
    message = clean_refusal(cli("ingest", twin, twin_parquet, "--vehicle", VIN, "--home", home))
    assert "twin.parquet" in message and "twin.csv" in message
    assert state(home) == before


# --- 5. bad input: a clear message, nothing stored ---------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """A node home holding a dataset of VIN and an accepted signed upload of VIN_C (device key ``key``)."""

    home: Path
    key: Path
    first: Path  # VIN_C's accepted upload
    manifest: Path  # its manifest
    head: str


@pytest.fixture(scope="module")
def loaded_template(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    folder = tmp_path_factory.mktemp("loaded")
    home = folder / "holder"
    shutil.copytree(template, home)
    base = write_csv(folder / "base.csv", {"Vehicle.Speed": (times(0, 20, 0.5), np.linspace(0, 80, 40), "km/h")})
    ingest(home, [base])
    key = folder / "dev.key"
    (folder / "dev.vkey").write_text(ok("vehicle", "keygen", "--out", key).out, encoding="utf-8")
    ok("vehicle", "register", VIN_C, "--key", folder / "dev.vkey", "--home", home)
    first = write_csv(folder / "first.csv", {"Vehicle.Speed": (times(50, 60, 1.0), np.arange(10.0), "km/h")})
    manifest = folder / "m1.json"
    head = ok("vehicle", "sign", first, "--key", key, "--prev", GENESIS, "-o", manifest).out.strip()
    ingest(home, [first], "--manifest", manifest, vin=VIN_C)
    return Loaded(home, key, first, manifest, head)


@pytest.fixture
def loaded(loaded_template: Loaded, tmp_path: Path) -> Loaded:
    home = tmp_path / "holder"
    shutil.copytree(loaded_template.home, home)
    return Loaded(home, loaded_template.key, loaded_template.first, loaded_template.manifest, loaded_template.head)


def good_csv(folder: Path, name: str = "good.csv", start: float = 100) -> Path:
    return write_csv(folder / name, {"Vehicle.Speed": (times(start, start + 10, 1.0), np.arange(10.0), "km/h")})


def case_truncated_mdf4(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    full = d / "full.mf4"
    write_mdf4(full, {"Vehicle.Speed": (np.arange(0, 20, 0.01), np.arange(2000.0), "km/h")}, T0)
    data = full.read_bytes()
    (d / "truncated.mf4").write_bytes(data[: len(data) // 2])
    return [d / "truncated.mf4", "--vehicle", VIN], ["truncated.mf4"]


def case_corrupt_parquet(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    path = write_parquet(d / "corrupt.parquet", {"Vehicle.Speed": (times(0, 50, 0.1), np.arange(500.0), "km/h")})
    data = bytearray(path.read_bytes())
    data[64:512] = b"\xa5" * 448
    path.write_bytes(bytes(data))
    return [path, "--vehicle", VIN], ["corrupt.parquet"]


def case_garbage_csv(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    path = d / "garbage.csv"
    path.write_text(f"timestamp_ns,Vehicle.Speed[km/h]\n{T0},10\n{T0 + S},fast\n{T0 + 2 * S},12\n", encoding="utf-8")
    return [path, "--vehicle", VIN], ["garbage.csv", "line 3", "'fast'"]


def case_binary_garbage(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    path = d / "noise.csv"
    path.write_bytes(bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)))
    return [path, "--vehicle", VIN], ["noise.csv"]


def case_non_monotonic(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    path = d / "backwards.csv"
    path.write_text(f"timestamp_ns,Vehicle.Speed[km/h]\n{T0},10\n{T0 + 2 * S},11\n{T0 + S},12\n", encoding="utf-8")
    return [path, "--vehicle", VIN], ["backwards.csv", "line 4", "back in time"]


def case_before_1970(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    path = d / "old.csv"
    write_csv(path, {"Vehicle.Speed": (np.array([-2 * S, -S], dtype=np.int64), np.array([1.0, 2.0]), "km/h")})
    return [path, "--vehicle", VIN], ["old.csv", "1970"]


def case_dbc_length(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    dbc = shared_path(*HYUNDAI_DBC)
    path = d / "short.log"
    write_candump(path, dbc, [CanFrame(T0, "WHL_SPD11", {"WHL_SPD_FL": 36.0}), RawCanFrame(T0 + S, 0x386, b"\0\1\2\3")])
    return [path, "--vehicle", VIN, "--dbc", dbc], ["short.log", "line 2", "WHL_SPD11", "8 bytes"]


def case_unknown_unit(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    mapping = d / "odd.yaml"
    mapping.write_text(
        "version: 1\nvendor: acme\nsignals:\n  Vehicle.Speed: {vss: Vehicle.Speed, from_unit: furlong/fortnight}\n",
        encoding="utf-8",
    )
    return [good_csv(d), "--vehicle", VIN, "--mapping", mapping], ["odd.yaml:4", "furlong/fortnight"]


def case_unregistered_vin(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    return [good_csv(d), "--vehicle", "5YJ3E1EA7KF317000"], ["no vehicle with this VIN is registered"]


def case_no_manifest(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    return [good_csv(d), "--vehicle", VIN_C], ["no upload manifest"]


def case_manifest_without_device_key(d: Path, loaded: Loaded) -> tuple[list[str | Path], list[str]]:
    path = good_csv(d)
    manifest = d / "m.json"
    ok("vehicle", "sign", path, "--key", loaded.key, "--prev", GENESIS, "-o", manifest)
    return [path, "--vehicle", VIN, "--manifest", manifest], ["no registered device key"]


def signed(d: Path, loaded: Loaded, files: Sequence[Path], prev: str, sequence: int) -> Path:
    manifest = d / "m.json"
    args: list[str | Path] = ["vehicle", "sign", *files, "--key", loaded.key, "--prev", prev, "-o", manifest]
    ok(*args, "--sequence", str(sequence))
    return manifest


def case_wrong_signature(d: Path, loaded: Loaded) -> tuple[list[str | Path], list[str]]:
    path = good_csv(d)
    manifest = signed(d, loaded, [path], loaded.head, 2)
    body = json.loads(manifest.read_text(encoding="utf-8"))
    sig = bytearray(base64.b64decode(body["signature"]["sig"]))
    sig[0] ^= 1
    body["signature"]["sig"] = base64.b64encode(bytes(sig)).decode()
    manifest.write_text(json.dumps(body), encoding="utf-8")
    return [path, "--vehicle", VIN_C, "--manifest", manifest], ["signature does not verify"]


def case_foreign_key(d: Path, loaded: Loaded) -> tuple[list[str | Path], list[str]]:
    other = d / "other.key"
    ok("vehicle", "keygen", "--out", other)
    path = good_csv(d)
    manifest = d / "m.json"
    ok("vehicle", "sign", path, "--key", other, "--prev", loaded.head, "--sequence", "2", "-o", manifest)
    return [path, "--vehicle", VIN_C, "--manifest", manifest], ["device"]


def case_gap(d: Path, loaded: Loaded) -> tuple[list[str | Path], list[str]]:
    path = good_csv(d)
    manifest = signed(d, loaded, [path], loaded.head, 3)
    return [path, "--vehicle", VIN_C, "--manifest", manifest], ["gap"]


def case_replay(d: Path, loaded: Loaded) -> tuple[list[str | Path], list[str]]:
    return [loaded.first, "--vehicle", VIN_C, "--manifest", loaded.manifest], ["replay"]


def case_tampered(d: Path, loaded: Loaded) -> tuple[list[str | Path], list[str]]:
    path = good_csv(d, "signed.csv")
    manifest = signed(d, loaded, [path], loaded.head, 2)
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{T0 + 200 * S},99\n")
    return [path, "--vehicle", VIN_C, "--manifest", manifest], ["signed.csv", "item 1"]


def case_second_file_garbage(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    garbage, needles = case_garbage_csv(d, _)
    return [good_csv(d), garbage[0], "--vehicle", VIN], needles


def case_second_file_before_1970(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    old, needles = case_before_1970(d, _)
    return [good_csv(d), old[0], "--vehicle", VIN], needles


def case_second_file_dbc_mismatch(d: Path, _: Loaded) -> tuple[list[str | Path], list[str]]:
    dbc = shared_path(*HYUNDAI_DBC)
    good = d / "good.log"
    write_candump(good, dbc, [CanFrame(T0 + i * S // 10, "SAS11", {"SAS_Angle": 1.0 * i}) for i in range(30)])
    bad, needles = case_dbc_length(d, _)
    return [good, bad[0], "--vehicle", VIN, "--dbc", dbc], needles


def case_second_file_tampered(d: Path, loaded: Loaded) -> tuple[list[str | Path], list[str]]:
    a, b = good_csv(d, "a.csv", 100), good_csv(d, "b.csv", 200)
    manifest = signed(d, loaded, [a, b], loaded.head, 2)
    b.write_text(b.read_text(encoding="utf-8").replace(",9\n", ",9.5\n"), encoding="utf-8")
    return [a, b, "--vehicle", VIN_C, "--manifest", manifest], ["b.csv", "item 2"]


BAD_CASES = [
    case_truncated_mdf4,
    case_corrupt_parquet,
    case_garbage_csv,
    case_binary_garbage,
    case_non_monotonic,
    case_before_1970,
    case_dbc_length,
    case_unknown_unit,
    case_unregistered_vin,
    case_no_manifest,
    case_manifest_without_device_key,
    case_wrong_signature,
    case_foreign_key,
    case_gap,
    case_replay,
    case_tampered,
    case_second_file_garbage,
    case_second_file_before_1970,
    case_second_file_dbc_mismatch,
    case_second_file_tampered,
]


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.__name__.removeprefix("case_") for c in BAD_CASES])
def test_bad_input_is_refused_and_stores_nothing(
    loaded: Loaded, tmp_path: Path, case: Callable[[Path, Loaded], tuple[list[str | Path], list[str]]]
) -> None:
    folder = tmp_path / "input"
    folder.mkdir()
    args, needles = case(folder, loaded)
    before = state(loaded.home)
    assert before[0] > 0 and before[1]["datasets"] and before[3]
    message = clean_refusal(cli("ingest", *args, "--home", loaded.home, "--json"))
    for needle in needles:
        assert needle in message, (needle, message)
    assert state(loaded.home) == before


# --- 6. provenance: signed, chained uploads -------------------------------------------------------------------------


def chain_of(home: Path, pseudonym: str) -> tuple[str, int]:
    (vehicle,) = [v for v in ok("vehicle", "list", "--home", home, "--json").json() if v["pseudonym"] == pseudonym]
    return vehicle["chain_head"], vehicle["chain_length"]


def test_signed_uploads_chain_and_refuse_replays_and_reordering(home: Path, tmp_path: Path) -> None:
    key, vkey = tmp_path / "dev.key", tmp_path / "dev.vkey"
    vkey.write_text(ok("vehicle", "keygen", "--out", key, "--name", "device/truck-17").out, encoding="utf-8")
    pseudonym = ok("vehicle", "register", VIN_C, "--key", vkey, "--home", home).out.strip()
    a, b, c, d, e = (
        good_csv(tmp_path, f"{n}.csv", start) for n, start in zip("abcde", (0, 20, 40, 60, 80), strict=True)
    )

    m1 = tmp_path / "m.json"
    head = ok("vehicle", "sign", a, b, "--key", key, "--prev", GENESIS, "-o", m1).out.strip()
    assert head == hashlib.sha256(b.read_bytes()).hexdigest()
    receipts = ingest(home, [a, b], "--manifest", m1, vin=VIN_C)
    assert [r["file"] for r in receipts] == ["a.csv", "b.csv"] and not any(r["duplicate"] for r in receipts)
    assert chain_of(home, pseudonym) == (head, 2)

    before = state(home)
    assert "replay" in clean_refusal(cli("ingest", a, b, "--vehicle", VIN_C, "--manifest", m1, "--home", home))
    assert state(home) == before

    m2 = tmp_path / "m2.json"
    signed_ = ok("vehicle", "sign", c, d, "--key", key, "--prev", head, "--sequence", "3", "-o", m2, "--json").json()
    assert (signed_["head"], signed_["items"], signed_["sequence"]) == (
        hashlib.sha256(d.read_bytes()).hexdigest(),
        2,
        3,
    )
    message = clean_refusal(cli("ingest", d, c, "--vehicle", VIN_C, "--manifest", m2, "--home", home))
    assert "d.csv" in message and "order" in message
    assert state(home) == before
    ingest(home, [c, d], "--manifest", m2, vin=VIN_C)
    assert chain_of(home, pseudonym) == (signed_["head"], 4)

    # the next upload must continue from the new head: one signed onto the old head is refused
    stale = tmp_path / "stale.json"
    ok("vehicle", "sign", e, "--key", key, "--prev", head, "--sequence", "5", "-o", stale)
    before = state(home)
    message = clean_refusal(cli("ingest", e, "--vehicle", VIN_C, "--manifest", stale, "--home", home))
    assert "chain head" in message
    assert state(home) == before
    fresh = tmp_path / "fresh.json"
    ok("vehicle", "sign", e, "--key", key, "--prev", signed_["head"], "--sequence", "5", "-o", fresh)
    assert ingest(home, [e], "--manifest", fresh, vin=VIN_C)["duplicate"] is False
    assert chain_of(home, pseudonym) == (hashlib.sha256(e.read_bytes()).hexdigest(), 5)


def test_a_signed_upload_whose_last_file_was_stored_before_still_moves_the_chain(home: Path, tmp_path: Path) -> None:
    """b.csv was ingested before the vehicle had a device key; the signed upload [a, b] must still move the chain."""
    a, b, c = good_csv(tmp_path, "a.csv", 0), good_csv(tmp_path, "b.csv", 20), good_csv(tmp_path, "c.csv", 40)
    earlier = ingest(home, [b])
    key, vkey = tmp_path / "dev.key", tmp_path / "dev.vkey"
    vkey.write_text(ok("vehicle", "keygen", "--out", key).out, encoding="utf-8")
    ok("vehicle", "register", VIN, "--key", vkey, "--home", home)
    m1 = tmp_path / "m1.json"
    head = ok("vehicle", "sign", a, b, "--key", key, "--prev", GENESIS, "-o", m1).out.strip()
    receipts = ingest(home, [a, b], "--manifest", m1)
    assert [r["duplicate"] for r in receipts] == [False, True]
    assert receipts[1]["dataset"] == earlier["dataset"]
    assert chain_of(home, earlier["vehicle"]) == (head, 2)
    m2 = tmp_path / "m2.json"
    ok("vehicle", "sign", c, "--key", key, "--prev", head, "--sequence", "3", "-o", m2)
    assert ingest(home, [c], "--manifest", m2)["duplicate"] is False
    assert chain_of(home, earlier["vehicle"])[1] == 3


# --- 7. erasure ----------------------------------------------------------------------------------------------------


def test_erasure_deletes_the_vehicles_blobs_and_a_legal_hold_blocks_it(home: Path, tmp_path: Path) -> None:
    a = ingest(home, [good_csv(tmp_path, "a.csv", 0)])
    b = ingest(home, [good_csv(tmp_path, "b.csv", 30)])
    other = ingest(home, [good_csv(tmp_path, "other.csv", 60)], vin=VIN_B)
    mine = {s["digest"] for r in (a, b) for s in r["segments"]}
    theirs = {s["digest"] for s in other["segments"]}
    stored = {Path(p).name.removesuffix(".tle") for p in blob_files(home)}
    assert stored == mine | theirs

    # a legal hold blocks erasure, and nothing changes
    held = ok("vehicle", "hold", VIN_B, "--reason", "case 42", "--home", home, "--json").json()
    assert held["legal_hold"] is True
    before = state(home)
    message = clean_refusal(cli("vehicle", "erase", VIN_B, "--yes", "--home", home))
    assert "legal hold" in message and "case 42" in message
    assert state(home) == before
    assert export(home, other["dataset"], tmp_path / "held.csv")

    # erasure: data key and salts destroyed, encrypted segments deleted, the ledger still verifies
    events = [i for i, e in all_events(home) if e.get("vehicle") == a["vehicle"]]
    assert len(events) == 1 + len(mine) + 2  # registration, one per segment, one per dataset
    receipt = ok("vehicle", "erase", VIN, "--yes", "--home", home, "--json").json()
    assert receipt["vehicle"] == a["vehicle"]
    assert receipt["blobs_deleted"] == len(mine) and receipt["blobs_not_deleted"] == 0
    assert receipt["events_shredded"] == len(events)
    assert {Path(p).name.removesuffix(".tle") for p in blob_files(home)} == theirs
    for r in (a, b):
        out = tmp_path / f"{r['dataset']}.csv"
        message = clean_refusal(cli("data", "export", r["dataset"], "-o", out, "--home", home))
        assert "erased" in message and "can no longer be read" in message
        assert not out.exists()
    assert not {i for i, _ in all_events(home)} & set(events)
    verify = ok("ledger", "verify", "--home", home)
    assert "intact" in verify.out
    vehicles = {v["pseudonym"]: v for v in ok("catalog", "--home", home, "--json").json()["vehicles"]}
    assert vehicles[a["vehicle"]]["erased"] is True and vehicles[other["vehicle"]]["legal_hold"] is True
    assert export(home, other["dataset"], tmp_path / "still.parquet")

    before = state(home)
    message = clean_refusal(cli("ingest", good_csv(tmp_path, "late.csv", 90), "--vehicle", VIN, "--home", home))
    assert "erased" in message
    assert "already erased" in clean_refusal(cli("vehicle", "erase", VIN, "--yes", "--home", home))
    assert state(home) == before


# --- the contract, process by process ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_contract_in_separate_processes(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "drive.dat"
    expected = write_csv_sparse(path)
    receipt = cli_process("ingest", path, "--vehicle", VIN, "--home", home, "--json").json()
    check_receipt(home, receipt, "csv")
    catalog = cli_process("catalog", "--home", home, "--json").json()
    assert [d["id"] for d in catalog["datasets"]] == [receipt["dataset"]]
    out = tmp_path / "speed.parquet"
    result = cli_process("data", "export", receipt["dataset"], "--signals", "Vehicle.Speed", "-o", out, "--home", home)
    assert result.code == 0, result.err
    table = pq.read_table(out)
    assert approx(table.column("value").to_pylist(), [float(v) for v in expected["Vehicle.Speed"][1]])
    before = state(home)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_ns,Vehicle.Speed[km/h]\n5,1\n4,2\n", encoding="utf-8")
    message = clean_refusal(cli_process("ingest", path, bad, "--vehicle", VIN, "--home", home))
    assert "bad.csv" in message and "line 3" in message
    assert state(home) == before
    erased = cli_process("vehicle", "erase", VIN, "--yes", "--home", home, "--json").json()
    assert erased["blobs_deleted"] == len(receipt["segments"]) and blob_files(home) == {}
    assert cli_process("ledger", "verify", "--home", home).code == 0
    assert "erased" in clean_refusal(cli("data", "export", receipt["dataset"], "-o", out, "--home", home))
