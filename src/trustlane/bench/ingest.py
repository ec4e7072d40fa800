"""End-to-end ingest of a large MDF4 recording beside the raw asammdf read rate and SHA-256 rate.

The recording is generated (VSS-named channels at 1 kHz: smooth, quantised random walks, like sensor data),
written with asammdf, then read three ways in the same run:
* raw: ``asammdf.MDF(path).select(all channels)`` into numpy arrays, what a user of asammdf would write;
  the faster read is the physical limit for getting samples out of the file (the first read of a process
  pays for fresh memory, and the ratio must not flatter the ingest);
* hash: hashlib SHA-256 over the file bytes;
* end to end: ``Ingestor.ingest`` into a fresh node (read, map, classify, segment to Parquet, AES-GCM,
  blobs, ledger events, catalog).

Raw reads and ingests alternate, twice each, and the faster of each is compared: on a shared machine the load
changes within a run, and alternating gives both the same chance of a quiet moment. Beside the wall times, the
CPU seconds of each (all its processes, the isolated parser included) tell what the work costs whatever the load.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SIGNALS = (
    "Vehicle.Speed",
    "Vehicle.Acceleration.Longitudinal",
    "Vehicle.Acceleration.Lateral",
    "Vehicle.Acceleration.Vertical",
    "Vehicle.AngularVelocity.Yaw",
    "Vehicle.AngularVelocity.Roll",
    "Vehicle.AngularVelocity.Pitch",
    "Vehicle.Chassis.SteeringWheel.Angle",
    "Vehicle.Chassis.Brake.PedalPosition",
    "Vehicle.Chassis.Accelerator.PedalPosition",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
    "Vehicle.Powertrain.TractionBattery.CurrentCurrent",
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed",
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed",
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Speed",
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed",
)
RATE_HZ = 1000
START_NS = 1_764_288_000_000_000_000

Progress = Callable[[str, float], None]


def _noop(_: str, __: float) -> None:
    return None


def write_recording(path: Path, size_mb: int, progress: Progress = _noop) -> Path:
    """An MDF4 file of about ``size_mb`` MB, written in chunks of 10 minutes."""
    from asammdf import MDF, Signal

    bytes_per_second = RATE_HZ * 8 * (len(SIGNALS) + 1)
    seconds = max(1, int(size_mb * 1e6 / bytes_per_second))
    chunk = 600
    rng = np.random.default_rng(7)
    level = np.zeros(len(SIGNALS))
    with MDF(version="4.10") as mdf:
        mdf.header.start_time = _start_time()
        for begin in range(0, seconds, chunk):
            n = min(chunk, seconds - begin) * RATE_HZ
            times = begin + np.arange(n) / RATE_HZ
            steps = rng.normal(0.0, 0.01, (n, len(SIGNALS)))
            walks = level + np.cumsum(steps, axis=0)
            level = walks[-1]
            signals = [Signal(np.round(walks[:, i], 3), times, name=name, unit="") for i, name in enumerate(SIGNALS)]
            if begin == 0:
                mdf.append(signals, common_timebase=True)
            else:
                mdf.extend(0, [(times, None)] + [(s.samples, None) for s in signals])
            progress("write", (begin + chunk) / seconds)
        mdf.save(path, overwrite=True, compression=0)
    return path


def _start_time() -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(START_NS / 1e9, tz=UTC)


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process, and by its finished children and finished parses."""
    from trustlane.ingest.readers.sandbox import parser_cpu_seconds

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime + (parser_cpu_seconds() or 0.0)


def raw_read(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of reading every channel with asammdf."""
    from asammdf import MDF

    cpu_begin = cpu_seconds()[0]
    begin = time.perf_counter()
    with MDF(path) as mdf:
        groups: list[Any] = list(mdf.groups)
        entries = [
            (None, g, c)
            for g, group in enumerate(groups)
            for c, channel in enumerate(group.channels)
            if int(channel.channel_type) not in (2, 3, 4)
        ]
        signals = mdf.select(entries, raw=False)
        total = sum(int(np.asarray(s.samples).nbytes) for s in signals)
    assert total > 0
    return time.perf_counter() - begin, cpu_seconds()[0] - cpu_begin


def sha256_seconds(path: Path) -> float:
    begin = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return time.perf_counter() - begin


def end_to_end_seconds(path: Path, workdir: Path) -> tuple[float, dict[str, Any]]:
    from contextlib import ExitStack

    from trustlane.cli.ingest_cmd import HolderServices
    from trustlane.ingest.pipeline import IngestOptions, Ingestor
    from trustlane.node import Node

    vin = "WVWZZZ1JZXW000001"
    workdir.mkdir(parents=True, exist_ok=True)
    with Node.init(workdir / "node", origin="bench.example/ingest") as node, ExitStack() as stack:
        services = HolderServices(node, stack)
        services.registry.register(vin)
        ingestor = Ingestor(node.log, services.catalog, services.registry, services.blobs)
        warm_start = time.perf_counter()
        _warm_up(workdir)
        warm = time.perf_counter() - warm_start
        cpu_begin = sum(cpu_seconds())
        begin = time.perf_counter()
        receipts = ingestor.ingest([path], vin, IngestOptions())
        elapsed = time.perf_counter() - begin
        cpu = sum(cpu_seconds()) - cpu_begin
    return elapsed, {**receipts[0], "isolation_start_s": warm, "cpu_s": cpu}


def _warm_up(workdir: Path) -> None:
    """Start the isolated MDF4 parser once (a long-running node pays this once, not per file)."""
    from trustlane.ingest.readers import read_recording

    tiny = workdir / "warm-up.mf4"
    from trustlane.ingest.readers.samples import write_mdf4

    write_mdf4(tiny, {"Vehicle.Speed": (np.arange(10) * 0.01, np.arange(10.0), "km/h")}, START_NS)
    read_recording(tiny)


def ingest_mdf4(size_mb: int, progress: Progress = _noop, keep: Path | None = None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="trustlane-bench-ingest-"))
    try:
        path = write_recording(workdir / "recording.mf4", size_mb, progress)
        size = path.stat().st_size
        load_before = os.getloadavg()[0]
        raw_reads: list[tuple[float, float]] = []
        ingests: list[tuple[float, float]] = []
        for attempt in range(2):
            progress("raw asammdf read", attempt / 2)
            raw_reads.append(raw_read(path))
            progress("end-to-end ingest", attempt / 2)
            seconds, receipt = end_to_end_seconds(path, workdir / f"run{attempt}")
            ingests.append((seconds, receipt["cpu_s"]))
        raw, e2e = min(r[0] for r in raw_reads), min(r[0] for r in ingests)
        raw_cpu, e2e_cpu = min(r[1] for r in raw_reads), min(r[1] for r in ingests)
        progress("sha256", 0.0)
        sha = sha256_seconds(path)
        load_after = os.getloadavg()[0]
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        blobs = sum(p.stat().st_size for p in (workdir / "run0" / "node" / "blobs").rglob("*.tle"))
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    mb = size / 1e6
    return {
        "file_mb": round(mb, 1),
        "signals": len(SIGNALS),
        "rate_hz": RATE_HZ,
        "segments": len(receipt["segments"]),
        "stored_mb": round(blobs / 1e6, 1),
        "raw_asammdf_mb_per_s": mb / raw,
        "raw_asammdf_reads_s": [round(seconds, 3) for seconds, _ in raw_reads],
        "raw_asammdf_cpu_s": round(raw_cpu, 2),
        "sha256_mb_per_s": mb / sha,
        "end_to_end_mb_per_s": mb / e2e,
        "end_to_end_s": e2e,
        "end_to_end_runs_s": [round(seconds, 3) for seconds, _ in ingests],
        "end_to_end_cpu_s": round(e2e_cpu, 2),
        "isolation_start_s": receipt["isolation_start_s"],
        "ratio_to_raw_read": raw / e2e,
        "peak_rss_mb": round(peak_rss_mb),
        "hours_for_100_GB_one_core": 100_000 / (mb / e2e) / 3600,
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
    }
