"""A recording file read into the inputs of the accident algorithm, the way a node stages them for the sandbox.

Every series becomes float64 (booleans 0/1); text signals become their code, the position of the value in the
signal's allowed list (``timeline.ENUM_CODES``), with NaN for values outside it. Accelerations are settled to
m/s² with the same unit checks as ``trustlane accident detect``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from trustlane.accident.analyse import AXES, _factor, _settle_unit
from trustlane.accident.core.events import Finding
from trustlane.accident.core.timeline import ENUM_CODES
from trustlane.errors import UsageError
from trustlane.ingest.model import Channel
from trustlane.ingest.readers import read_recording


@dataclass(frozen=True)
class LocalSeries:
    """One input series: ``t_ns`` (int64 ns, UTC) and float64 ``values``."""

    t_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.t_ns)


def encode_text(name: str, values: npt.NDArray[Any]) -> npt.NDArray[np.float64] | None:
    """Codes of a text signal (None when the signal has no known allowed list)."""
    codes = ENUM_CODES.get(name)
    if codes is None:
        return None
    index = {code: float(i) for i, code in enumerate(codes)}
    return np.array([index.get(str(v), np.nan) for v in values.tolist()], dtype=np.float64)


def _as_float(channel: Channel) -> npt.NDArray[np.float64] | None:
    if channel.values.dtype == object:
        return encode_text(channel.name, channel.values)
    return np.asarray(channel.values, dtype=np.float64)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def recording_inputs(path: Path) -> tuple[dict[str, LocalSeries], dict[str, str], list[Finding]]:
    """(inputs by VSS name, the file's metadata, findings about units) for one recording."""
    recording = read_recording(path)
    channels = {c.name: c for c in recording.channels if len(c)}
    lon_name = next((n for n in AXES["longitudinal"] if n in channels), None)
    if lon_name is None:
        raise UsageError(
            f"{path}: no longitudinal acceleration (looked for {', '.join(AXES['longitudinal'])})",
            hint="the accident report needs the vehicle's acceleration in m/s² under a VSS name",
        )
    lon = channels[lon_name]
    findings: list[Finding] = []
    vertical = next((channels[n] for n in AXES["vertical"] if n in channels), None)
    z = None if vertical is None else np.interp(lon.timestamps_ns, vertical.timestamps_ns, _float(vertical))
    scale = _settle_unit(
        path, lon, _factor(lon, path), lon.timestamps_ns, _float(lon), z, channels.get("Vehicle.Speed"), findings
    )
    inputs: dict[str, LocalSeries] = {}
    accelerations = {n for names in AXES.values() for n in names}
    for name, channel in channels.items():
        values = _as_float(channel)
        if values is None:
            continue
        if name in accelerations:
            own = _factor(channel, path)
            values = values * (own if own is not None else scale)
        inputs[name] = LocalSeries(channel.timestamps_ns, values)
    return inputs, dict(recording.metadata), findings


def _float(channel: Channel) -> npt.NDArray[np.float64]:
    return np.asarray(channel.values, dtype=np.float64)
