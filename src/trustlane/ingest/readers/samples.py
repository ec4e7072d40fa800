"""Write small valid recordings of every supported format with the real libraries (for tests and benchmarks).

Times: MDF4 channels take seconds relative to ``start_ns`` (as MDF stores them); every other writer takes int64
nanoseconds since the Unix epoch. Values may be numbers, booleans or strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trustlane.ingest.model import ConsentRecord
from trustlane.ingest.readers.consent import CONSENT_KEY, consents_to_json

#: (times, values, unit) of one channel
Samples = tuple[npt.ArrayLike, npt.ArrayLike, str | None]
TimeFormat = Literal["ns", "us", "ms", "s", "iso"]


# --- MDF4 -------------------------------------------------------------------------------------------------------


def mdf_header_comment(
    comment: str | None = None, metadata: Mapping[str, str] | None = None, consents: Sequence[ConsentRecord] = ()
) -> str:
    """The XML header comment that carries ``metadata`` and ``consents`` (what :mod:`.mdf4_header` reads)."""
    entries = dict(metadata or {})
    if consents:
        entries[CONSENT_KEY] = consents_to_json(tuple(consents))
    properties = "".join(f"<e name={quoteattr(k)}>{escape(v)}</e>" for k, v in entries.items())
    return f"<HDcomment><TX>{escape(comment or '')}</TX><common_properties>{properties}</common_properties></HDcomment>"


def _mdf_signal(name: str, samples: Samples, comment: str | None) -> Any:
    from asammdf import Signal

    times, values, unit = samples
    array = np.asarray(values)
    encoding = None
    if array.dtype.kind in "UO":
        array = np.array([str(v).encode("utf-8") for v in array.tolist()])
        encoding = "utf-8"
    return Signal(
        array,
        np.asarray(times, dtype=np.float64),
        name=name,
        unit=unit or "",
        comment=comment or "",
        encoding=encoding,
    )


def write_mdf4(
    path: Path,
    channels: Mapping[str, Samples],
    start_ns: int,
    *,
    groups: Sequence[Mapping[str, Samples]] = (),
    comment: str | None = None,
    metadata: Mapping[str, str] | None = None,
    consents: Sequence[ConsentRecord] = (),
    channel_comments: Mapping[str, str] | None = None,
    compression: Literal[0, 1, 2, 3, 4, 5] = 0,
) -> Path:
    """An MDF 4.10 file: ``channels`` sharing one time array go to one data group (so several rates give several
    groups); each mapping of ``groups`` is one more data group (names may repeat across them)."""
    from asammdf import MDF

    shared: list[tuple[npt.NDArray[np.float64], dict[str, Samples]]] = []
    for name, samples in channels.items():
        times = np.asarray(samples[0], dtype=np.float64)
        for group_times, members in shared:
            if np.array_equal(group_times, times):
                members[name] = samples
                break
        else:
            shared.append((times, {name: samples}))
    notes = channel_comments or {}
    mdf = MDF(version="4.10")
    try:
        for members in [m for _, m in shared] + [dict(g) for g in groups]:
            mdf.append([_mdf_signal(name, samples, notes.get(name)) for name, samples in members.items()])
        header: Any = mdf.header
        header.abs_time = int(start_ns)
        header.time_flags = 2  # time offsets valid: abs_time is UTC
        header.tz_offset = 0
        header.daylight_save_time = 0
        header.comment = mdf_header_comment(comment, metadata, consents)
        mdf.save(path, overwrite=True, compression=compression)
    finally:
        mdf.close()
    return path


# --- CSV and Parquet --------------------------------------------------------------------------------------------


def _format_times(times_ns: npt.NDArray[np.int64], how: TimeFormat) -> pa.Array:
    if how == "ns":
        return pa.array(times_ns, type=pa.int64())
    if how == "iso":
        texts = []
        for ns in times_ns.tolist():
            seconds, fraction = divmod(int(ns), 1_000_000_000)
            stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            texts.append(f"{stamp}.{fraction:09d}Z")
        return pa.array(texts, type=pa.string())
    power = {"us": 3, "ms": 6, "s": 9}[how]
    texts = []
    for ns in times_ns.tolist():
        whole, fraction = divmod(abs(int(ns)), 10**power)
        texts.append(f"{'-' if ns < 0 else ''}{whole}.{fraction:0{power}d}")
    return pa.array(texts, type=pa.string())


def _column(times: npt.NDArray[np.int64], samples: Samples) -> pa.Array:
    own = np.asarray(samples[0], dtype=np.int64)
    values = np.asarray(samples[1])
    rows = np.searchsorted(times, own)
    present = np.zeros(len(times), dtype=bool)
    present[rows] = True
    if values.dtype.kind in "UO":
        cells: list[object] = [None] * len(times)
        for row, value in zip(rows.tolist(), values.tolist(), strict=True):
            cells[row] = str(value)
        return pa.array(cells, type=pa.string())
    full = np.zeros(len(times), dtype=values.dtype)
    full[rows] = values
    return pa.array(full, mask=~present)


def signal_table(
    channels: Mapping[str, Samples],
    *,
    time_column: str = "timestamp_ns",
    time_format: TimeFormat = "ns",
    units_in_names: bool = True,
) -> pa.Table:
    """One row per distinct time of any channel; cells where a channel has no sample are null."""
    stamps = [np.asarray(samples[0], dtype=np.int64) for samples in channels.values()]
    times = np.unique(np.concatenate(stamps)) if stamps else np.zeros(0, dtype=np.int64)
    columns: dict[str, pa.Array] = {time_column: _format_times(times, time_format)}
    fields = [pa.field(time_column, columns[time_column].type)]
    for name, samples in channels.items():
        unit = samples[2]
        header = f"{name}[{unit}]" if unit and units_in_names else name
        columns[header] = _column(times, samples)
        meta = {b"unit": unit.encode()} if unit and not units_in_names else None
        fields.append(pa.field(header, columns[header].type, metadata=meta))
    return pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields))


def write_csv(
    path: Path,
    channels: Mapping[str, Samples],
    *,
    time_column: str = "timestamp_ns",
    time_format: TimeFormat = "ns",
) -> Path:
    """A CSV file: the time column, then one ``name[unit]`` column per channel (empty cells where none)."""
    table = signal_table(channels, time_column=time_column, time_format=time_format)
    pacsv.write_csv(table, path)
    return path


def write_parquet(
    path: Path,
    channels: Mapping[str, Samples],
    *,
    time_column: str = "timestamp_ns",
    time_format: TimeFormat | Literal["timestamp"] = "ns",
    metadata: Mapping[str, str] | None = None,
    consents: Sequence[ConsentRecord] = (),
) -> Path:
    """A Parquet file: units in field metadata ``unit``; ``metadata`` and consents in key-value metadata.

    ``time_format="timestamp"`` stores the time column as ``timestamp[ns, tz=UTC]``.
    """
    fmt: TimeFormat = "ns" if time_format == "timestamp" else time_format
    table = signal_table(channels, time_column=time_column, time_format=fmt, units_in_names=False)
    if time_format == "timestamp":
        stamps = table.column(0).cast(pa.timestamp("ns", tz="UTC"))
        table = table.set_column(0, pa.field(time_column, stamps.type), stamps)
    kv = {k.encode(): v.encode() for k, v in (metadata or {}).items()}
    if consents:
        kv[CONSENT_KEY.encode()] = consents_to_json(tuple(consents)).encode()
    pq.write_table(table.replace_schema_metadata(kv or None), path)
    return path


# --- candump ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanFrame:
    """A frame of the DBC message ``message`` whose signals are encoded with cantools (raw 0 where not given)."""

    timestamp_ns: int
    message: str
    signals: Mapping[str, float] = field(default_factory=dict)
    bus: str = "can0"


@dataclass(frozen=True)
class RawCanFrame:
    """A frame written as given (for IDs outside the DBC, wrong lengths, CAN FD)."""

    timestamp_ns: int
    can_id: int
    data: bytes
    bus: str = "can0"
    extended: bool = False
    fd: bool = False
    fd_flags: int = 0


def candump_line(frame: RawCanFrame) -> str:
    """The candump log line of ``frame``: microsecond timestamps when exact, nanoseconds otherwise."""
    seconds, fraction = divmod(frame.timestamp_ns, 1_000_000_000)
    stamp = f"{seconds}.{fraction // 1000:06d}" if fraction % 1000 == 0 else f"{seconds}.{fraction:09d}"
    ident = f"{frame.can_id:08X}" if frame.extended else f"{frame.can_id:03X}"
    separator = f"##{frame.fd_flags:X}" if frame.fd else "#"
    return f"({stamp}) {frame.bus} {ident}{separator}{frame.data.hex().upper()}"


def write_candump(path: Path, dbc: Path, frames: Iterable[CanFrame | RawCanFrame]) -> Path:
    """A candump log of ``frames`` in the given order, named messages encoded with the DBC ``dbc``."""
    import cantools

    database = cantools.database.load_file(str(dbc), strict=False)
    if not isinstance(database, cantools.database.can.Database):
        raise TypeError(f"{dbc} is not a CAN database")
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for frame in frames:
            if isinstance(frame, CanFrame):
                message = database.get_message_by_name(frame.message)
                values = {signal.name: signal.offset for signal in message.signals}  # raw 0 where not given
                values.update(frame.signals)
                data = message.encode(values, strict=False)
                fd = bool(message.is_fd) or message.length > 8
                frame = RawCanFrame(
                    frame.timestamp_ns, message.frame_id, data, frame.bus, message.is_extended_frame, fd
                )
            out.write(candump_line(frame) + "\n")
    return path


# --- MCAP -------------------------------------------------------------------------------------------------------


def write_mcap(
    path: Path,
    messages: Iterable[tuple[str, int, Mapping[str, object]]],
    *,
    metadata: Mapping[str, str] | None = None,
    consents: Sequence[ConsentRecord] = (),
    message_encoding: str = "json",
    compression: Literal["zstd", "lz4", "none"] = "zstd",
) -> Path:
    """An MCAP file of (topic, log time ns, JSON object) messages, one channel per topic."""
    from mcap.writer import CompressionType, Writer

    kinds = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}
    channel_ids: dict[str, int] = {}
    with open(path, "wb") as out:
        writer: Any = Writer(out, compression=kinds[compression])
        writer.start(profile="", library="trustlane-samples")
        schema_encoding = "jsonschema" if message_encoding == "json" else message_encoding
        for sequence, (topic, log_time, payload) in enumerate(messages):
            if topic not in channel_ids:
                schema = writer.register_schema(topic, schema_encoding, json.dumps({"type": "object"}).encode())
                channel_ids[topic] = writer.register_channel(topic, message_encoding, schema)
            data = json.dumps(dict(payload)).encode()
            writer.add_message(channel_ids[topic], log_time, data, log_time, sequence)
        if metadata:
            writer.add_metadata("trustlane", dict(metadata))
        if consents:
            writer.add_metadata(CONSENT_KEY, {"consents": consents_to_json(tuple(consents))})
        writer.finish()
    return path
