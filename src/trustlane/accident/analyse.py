"""One recording in, its collisions out: read the file, settle units, run the core, explain every problem.

Signals are found by their VSS names. The crash pulse channels (``Vehicle.Safety.CrashPulse.*``) are preferred
when present; otherwise ``Vehicle.Acceleration.*``. Units come from the file (a ``name[unit]`` header, MDF or
Parquet unit); ``g`` is converted. A missing unit is checked against gravity on the vertical axis and against
``Vehicle.Speed``; data that contradict their declared unit are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trustlane.accident.core import SignalError, detect_collisions
from trustlane.accident.core.events import Finding
from trustlane.accident.core.quality import UnitEvidence, unit_from_gravity, unit_from_speed
from trustlane.errors import MalformedInput, UsageError
from trustlane.ingest.model import Channel
from trustlane.ingest.readers import read_recording
from trustlane.ingest.units import find_unit

AXES = {
    "longitudinal": ("Vehicle.Safety.CrashPulse.Longitudinal", "Vehicle.Acceleration.Longitudinal"),
    "lateral": ("Vehicle.Safety.CrashPulse.Lateral", "Vehicle.Acceleration.Lateral"),
    "vertical": ("Vehicle.Safety.CrashPulse.Vertical", "Vehicle.Acceleration.Vertical"),
}
SPEED = "Vehicle.Speed"


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
    recording = read_recording(path)
    channels = {c.name: c for c in recording.channels}
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
