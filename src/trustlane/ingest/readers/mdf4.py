"""ASAM MDF 4.x recordings, read with asammdf.

Every channel except master (time) and sync channels becomes a :class:`Channel` with its unit and comment,
values physical (conversion rules applied, so value-to-text conversions give text channels). Samples flagged by
invalidation bits are left out. Timestamps are the header start time (UTC) plus the channel's master time,
rounded to the nearest nanosecond. Channels that are not one number or string per sample (structures, arrays,
byte arrays) are skipped and listed in ``metadata["skipped_channels"]``.

Names: a name's first occurrence (lowest data group, then lowest channel index) keeps the plain name; each later
occurrence is named ``name@G`` with G its 0-based data group index, or ``name@G.C`` (C its channel index in the
group) when the name repeats within one group.

The header comment carries metadata and consent records (see :mod:`.mdf4_header`).

asammdf runs in a forked child process (see :mod:`.sandbox`) after the declared layout was checked
(:mod:`.mdf4_check`): a damaged file cannot crash or exhaust the caller. The child may use
``max(4 GiB, 50 × file size)`` of memory and ``60 s + 1 s per 5 MB`` of time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from trustlane.errors import MalformedInput, TrustlaneError
from trustlane.ingest.model import Channel, RawRecording, TimeArray
from trustlane.ingest.readers.base import summary
from trustlane.ingest.readers.checks import INT64_MAX, require_increasing
from trustlane.ingest.readers.detect import MDF_MAGICS, check_mdf_version
from trustlane.ingest.readers.mdf4_check import check_layout
from trustlane.ingest.readers.mdf4_header import parse_header_comment
from trustlane.ingest.readers.mdf4_open import DAMAGED_HINT, open_mdf
from trustlane.ingest.readers.sandbox import run_sandboxed
from trustlane.ingest.readers.values import normalise

_MASTER_TYPES = frozenset((2, 3, 4))  # master, virtual master, synchronisation
_TEXT_ENCODINGS = {6: "latin-1", 7: "utf-8", 8: "utf-16-le", 9: "utf-16-be"}
_LOCAL_TIME_FLAG = 1


def _start_ns(path: Path, header: Any) -> int:
    if int(header.time_flags) & _LOCAL_TIME_FLAG:
        raise MalformedInput(
            f"{path}: the MDF start time is a local time of unknown timezone",
            hint="record with a UTC start time (MDF header time flags: offsets valid, not local time)",
        )
    return int(header.abs_time)


def _unique_name(name: str, group: int, index: int, used: set[str]) -> str:
    for candidate in (name, f"{name}@{group}", f"{name}@{group}.{index}"):
        if candidate not in used:
            used.add(candidate)
            return candidate
    raise MalformedInput(f"channel name {name!r} cannot be made unique")  # pragma: no cover - names above differ


def _timestamps(path: Path, where: str, raw_seconds: npt.ArrayLike, start_ns: int) -> TimeArray:
    seconds = np.asarray(raw_seconds, dtype=np.float64)
    if len(seconds):
        # the extremes are NaN or infinite when any time is: no temporary array the size of the channel
        low, high = float(seconds.min()), float(seconds.max())
        if not (math.isfinite(low) and math.isfinite(high)) or max(-low, high) * 1e9 + abs(start_ns) >= INT64_MAX:
            raise MalformedInput(f"{path}: {where}: master times are not finite or out of range", hint=DAMAGED_HINT)
    nanoseconds = seconds * 1e9
    np.rint(nanoseconds, out=nanoseconds)
    times = nanoseconds.astype(np.int64)
    times += np.int64(start_ns)
    return times


def read_mdf4(path: Path, *, dbc: Path | None = None, isolated: bool = True) -> RawRecording:
    """Read an MDF 4.x recording (``dbc`` is ignored); ``isolated=False`` parses in this process (trusted files)."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    if not head.startswith(MDF_MAGICS):
        raise MalformedInput(f"{path}: not an MDF file (no MDF file identifier)", hint="check the file and its format")
    check_mdf_version(path, head)
    if not isolated:
        return parse_mdf4(path)
    size = path.stat().st_size
    recording: RawRecording = run_sandboxed(
        f"{__name__}:parse_mdf4",
        path,
        timeout_s=60 + size / 5e6,
        memory_bytes=max(4 << 30, 50 * size),
        hint=DAMAGED_HINT,
    )
    return recording


def parse_mdf4(path: Path) -> RawRecording:
    """Parse the MDF 4.x file at ``path`` with asammdf, in this process."""
    with open_mdf(path) as mdf:
        try:
            return _read(path, mdf)
        except TrustlaneError:
            raise
        except Exception as exc:  # asammdf fails in many ways on damaged blocks
            raise MalformedInput(f"{path}: damaged MDF file ({summary(exc)})", hint=DAMAGED_HINT) from None


def _read(path: Path, mdf: Any) -> RawRecording:
    check_layout(path, mdf)
    start_ns = _start_ns(path, mdf.header)
    metadata, consents = parse_header_comment(path, str(mdf.header.comment or ""))
    entries = [
        (group_index, channel_index, channel)
        for group_index, group in enumerate(mdf.groups)
        for channel_index, channel in enumerate(group.channels)
        if int(channel.channel_type) not in _MASTER_TYPES
    ]
    signals = mdf.select([(None, g, c) for g, c, _ in entries], raw=False, copy_master=False) if entries else []
    used: set[str] = set()
    skipped: list[str] = []
    channels: list[Channel] = []
    # Channels of one data group share its master channel: convert and check those times once and share the
    # array (which also halves what the isolated parser sends back).
    group_times: dict[int, TimeArray] = {}
    for (group_index, channel_index, block), signal in zip(entries, signals, strict=True):
        name = _unique_name(str(signal.name), group_index, channel_index, used)
        encoding = _TEXT_ENCODINGS.get(int(block.data_type), "utf-8")
        values = normalise(np.asarray(signal.samples), text_encoding=encoding)
        if values is None:
            skipped.append(name)
            continue
        where = f"channel {name!r} (group {group_index})"
        shared = group_times.get(group_index)
        if shared is None or len(shared) != len(values):
            timestamps = _timestamps(path, where, signal.timestamps, start_ns)
            checked = False
        else:
            timestamps, checked = shared, True
        if len(timestamps) != len(values):
            raise MalformedInput(f"{path}: {where}: samples and master times differ in number", hint=DAMAGED_HINT)
        if signal.invalidation_bits is not None:
            keep = ~np.asarray(signal.invalidation_bits, dtype=bool)
            timestamps, values, checked = timestamps[keep], values[keep], False
        if not checked:
            require_increasing(
                timestamps,
                where=f"{path}: {where}",
                locate=lambda i: f"sample {i}",
                hint="the recording's master channel must strictly increase; re-export the file",
            )
            if signal.invalidation_bits is None:
                group_times.setdefault(group_index, timestamps)
        comment = str(signal.comment).strip() if signal.comment else None
        channels.append(
            Channel(name=name, unit=str(signal.unit) or None, timestamps_ns=timestamps, values=values, comment=comment)
        )
    if skipped:
        metadata["skipped_channels"] = ",".join(skipped)
    return RawRecording(source=path, format="mdf4", channels=tuple(channels), metadata=metadata, consents=consents)
