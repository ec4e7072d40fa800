"""One recording in, its collisions out: read the file, settle units, run the core, explain every problem.

Signals are found by their VSS names. The crash pulse channels (``Vehicle.Safety.CrashPulse.*``) are preferred
when present; otherwise ``Vehicle.Acceleration.*``. Units come from the file (a ``name[unit]`` header, MDF or
Parquet unit); ``g`` is converted. A missing unit is checked against gravity on the vertical axis and against
``Vehicle.Speed``; data that contradict their declared unit are refused.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from trustlane.accident.core import SignalError, detect_collisions
from trustlane.accident.core.events import Finding
from trustlane.accident.core.quality import UnitEvidence, unit_from_gravity, unit_from_speed
from trustlane.errors import MalformedInput, UsageError
from trustlane.ingest.model import Channel
from trustlane.ingest.readers import read_recording
from trustlane.ingest.readers.checks import require_increasing
from trustlane.ingest.readers.headers import TIME_COLUMN_NAMES, find_time_column, split_unit
from trustlane.ingest.readers.timecol import time_column_ns
from trustlane.ingest.units import find_unit

AXES = {
    "longitudinal": ("Vehicle.Safety.CrashPulse.Longitudinal", "Vehicle.Acceleration.Longitudinal"),
    "lateral": ("Vehicle.Safety.CrashPulse.Lateral", "Vehicle.Acceleration.Lateral"),
    "vertical": ("Vehicle.Safety.CrashPulse.Vertical", "Vehicle.Acceleration.Vertical"),
}
SPEED = "Vehicle.Speed"
NEEDED = frozenset((*AXES["longitudinal"], *AXES["lateral"], *AXES["vertical"], SPEED))
_ORDER_HINT = "sort the rows by time and remove duplicate rows (several signals at one time belong in one row)"


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MalformedInput(f"{path}: unreadable CSV header ({exc})", hint="a CSV recording is UTF-8 text") from None


def read_csv_signals(path: Path) -> dict[str, Channel]:
    """Only the time column and the signals collision timing uses, parsed as numbers by pyarrow.

    Empty cells are times at which a signal has no sample (multi-rate rows). A 30-minute, 1 kHz recording with
    dozens of other columns reads in a second or two instead of converting every column from text.
    """
    headers = _csv_header(path)
    time_index = find_time_column(headers)
    if time_index is None:
        raise MalformedInput(
            f"{path}: no time column among {', '.join(repr(h) for h in headers[:12])}",
            hint=f"name the time column one of: {', '.join(TIME_COLUMN_NAMES)}",
        )
    wanted = {h: split_unit(h) for h in headers if split_unit(h)[0] in NEEDED}
    time_header = headers[time_index]
    options = pacsv.ConvertOptions(
        include_columns=[time_header, *wanted],
        column_types={h: pa.float64() for h in wanted},
        null_values=[""],
        strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise MalformedInput(
            f"{path}: {str(exc).splitlines()[0]} (columns read: {', '.join([time_header, *wanted])})",
            hint="signal columns hold numbers (empty where a signal has no sample); every line has every field",
        ) from None

    def row(i: int) -> str:
        return f"data row {i + 1}"

    times = time_column_ns(table.column(time_header), where=f"{path}: time column {time_header!r}", name_row=row)
    require_increasing(times, where=str(path), locate=row, hint=_ORDER_HINT)
    out: dict[str, Channel] = {}
    for header, (name, unit) in wanted.items():
        values = table.column(header).to_numpy().astype(np.float64, copy=False)
        present = ~np.isnan(values)
        out[name] = Channel(name, unit, times[present], values[present])
    return out


def _signals(path: Path) -> dict[str, Channel]:
    if path.suffix.lower() == ".csv":
        return read_csv_signals(path)
    return {c.name: c for c in read_recording(path).channels}


def _pick(channels: dict[str, Channel], names: tuple[str, ...]) -> Channel | None:
    found = [channels[n] for n in names if n in channels and len(channels[n])]
    return max(found, key=len) if found else None


def _numbers(channel: Channel, source: Path) -> np.ndarray[Any, np.dtype[np.float64]]:
    try:
        return np.asarray(channel.values, dtype=np.float64)
    except (TypeError, ValueError):
        raise MalformedInput(
            f"{source}: {channel.name} holds text, not numbers", hint="acceleration must be numeric"
        ) from None


def _factor(channel: Channel, source: Path) -> float | None:
    """m/s² per unit of the channel's declared unit; None when it declares none."""
    if not channel.unit:
        return None
    unit = find_unit(channel.unit)
    if unit is None or unit.quantity != "acceleration":
        raise MalformedInput(
            f"{source}: {channel.name} is declared in {channel.unit!r}, which is not an acceleration unit",
            hint="declare m/s^2 or g (e.g. a CSV header 'Vehicle.Acceleration.Longitudinal[m/s^2]')",
        )
    return unit.factor


def analyse_file(path: Path) -> dict[str, Any]:
    """``{"file", "events", "findings", "sample_rate_hz", "acceleration"}`` for one recording."""
    channels = _signals(path)
    lon = _pick(channels, AXES["longitudinal"])
    if lon is None:
        raise UsageError(
            f"{path}: no longitudinal acceleration (looked for {', '.join(AXES['longitudinal'])})",
            hint="collision timing needs the vehicle's acceleration in m/s² under a VSS name",
        )
    lat = _pick(channels, AXES["lateral"])
    vert = _pick(channels, AXES["vertical"])
    speed = channels.get(SPEED)
    findings: list[Finding] = []
    t_ns = lon.timestamps_ns
    x = _numbers(lon, path)
    y = np.interp(t_ns, lat.timestamps_ns, _numbers(lat, path)) if lat is not None else None
    z = np.interp(t_ns, vert.timestamps_ns, _numbers(vert, path)) if vert is not None else None
    if lat is not None and not np.array_equal(lat.timestamps_ns, t_ns):
        findings.append(Finding("resampled", "info", f"{lat.name} was interpolated onto {lon.name}'s times"))
    declared = _factor(lon, path)
    scale = _settle_unit(path, lon, declared, t_ns, x, z, speed, findings)
    for name, values, channel in (("lateral", y, lat), ("vertical", z, vert)):
        if values is not None and channel is not None:
            own = _factor(channel, path)
            values *= own if own is not None else scale
            _ = name
    x = x * scale
    speed_t = speed.timestamps_ns if speed is not None else None
    speed_v = _numbers(speed, path) if speed is not None else None
    try:
        detection = detect_collisions(t_ns, x, y, vertical=z, speed_t_ns=speed_t, speed_kmh=speed_v)
    except SignalError as exc:
        raise MalformedInput(f"{path}: {exc.message}", hint=exc.hint) from None
    return {
        "file": str(path),
        "events": [e.to_json() for e in detection.events],
        "findings": [f.to_json() for f in findings + detection.findings],
        "sample_rate_hz": round(detection.sample_rate_hz, 3),
        "acceleration": lon.name,
    }


def _settle_unit(
    path: Path,
    lon: Channel,
    declared: float | None,
    t_ns: np.ndarray[Any, np.dtype[np.int64]],
    x: np.ndarray[Any, np.dtype[np.float64]],
    z: np.ndarray[Any, np.dtype[np.float64]] | None,
    speed: Channel | None,
    findings: list[Finding],
) -> float:
    """The factor to m/s² of the longitudinal channel, checked against the physics where possible."""
    evidence: UnitEvidence | None = None
    if z is not None:
        evidence = unit_from_gravity(z)
    if (evidence is None or evidence.unit is None) and speed is not None and len(speed):
        evidence = unit_from_speed(t_ns, x, speed.timestamps_ns, np.asarray(speed.values, dtype=np.float64), [])
    found = {"m/s^2": 1.0, "g": 9.80665}.get(evidence.unit) if evidence and evidence.unit else None
    if declared is not None:
        if found is not None and abs(np.log(found / declared)) > 1.0:
            raise MalformedInput(
                f"{path}: {lon.name} is declared in {lon.unit} but behaves like {evidence.unit if evidence else '?'} "
                f"({evidence.basis if evidence else ''})",
                hint="fix the unit in the file (e.g. a CSV header name[g]) or the data",
            )
        return declared
    if found is not None and evidence is not None:
        findings.append(
            Finding(
                "unit-inferred",
                "info" if found == 1.0 else "warning",
                f"{lon.name} has no unit; taken as {evidence.unit}: {evidence.basis}",
            )
        )
        return found
    findings.append(
        Finding(
            "unit-unverified",
            "warning",
            f"{lon.name} has no unit and it could not be checked "
            f"({evidence.basis if evidence else 'no vertical or speed'}); taken as m/s² (the VSS unit)",
        )
    )
    return 1.0
