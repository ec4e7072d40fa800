"""MCAP recordings whose messages are JSON (``message_encoding == "json"``).

Each number, boolean or string field of a message becomes the channel ``TOPIC/FIELD``; nested objects are
flattened with ``.`` (``/imu/accel.x``). ``null`` fields are times without a sample; arrays are not signals and
are listed in ``metadata["skipped_fields"]``. A field's samples are ordered by the message ``log_time`` (ns) and
must not repeat a time. A field keeps one kind: integers (int64; floats make it float64), booleans, or strings.

Metadata records: ``trustlane`` → recording metadata (its key/value map); ``trustlane.consent`` → consent records,
its map holding the JSON list under the key ``consents`` (see :mod:`.consent`). Other metadata records are
ignored. Channels of any other message encoding are refused. The file is read as a stream with CRC checks, so a
truncated or corrupted file is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mcap.records import Channel as McapChannel
from mcap.records import Chunk, Message, Metadata
from mcap.stream_reader import StreamReader, breakup_chunk

from trustlane.errors import MalformedInput, TrustlaneError
from trustlane.ingest.model import Channel, ConsentRecord, RawRecording
from trustlane.ingest.readers.base import summary
from trustlane.ingest.readers.checks import INT64_MAX, require_increasing
from trustlane.ingest.readers.consent import CONSENT_KEY, parse_consents
from trustlane.ingest.readers.values import AnyArray

SUPPORTED_ENCODINGS = ("json",)
METADATA_NAME = "trustlane"
CONSENT_FIELD = "consents"
_MAX_CHUNK = 1 << 30
_DAMAGED_HINT = "the MCAP file is damaged or truncated; record or copy it again"


@dataclass
class _Series:
    kind: str  # "bool" | "int" | "float" | "text"
    times: list[int] = field(default_factory=list)
    values: list[object] = field(default_factory=list)


def _kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -INT64_MAX - 1 <= value <= INT64_MAX else "float"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    return None


def _flatten(message: dict[str, object]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pending: list[tuple[str, dict[str, object]]] = [("", message)]
    while pending:
        prefix, obj = pending.pop()
        for key, value in obj.items():
            if isinstance(value, dict):
                pending.append((f"{prefix}{key}.", value))
            else:
                out.append((prefix + key, value))
    return out


@dataclass
class _Collector:
    source: Path
    series: dict[str, _Series] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    metadata: dict[str, str] = field(default_factory=dict)
    consents: tuple[ConsentRecord, ...] = ()
    topics: dict[int, str] = field(default_factory=dict)

    def channel(self, record: McapChannel) -> None:
        if record.message_encoding not in SUPPORTED_ENCODINGS:
            raise MalformedInput(
                f"{self.source}: topic {record.topic!r} has message encoding {record.message_encoding!r}; "
                f"supported: {', '.join(SUPPORTED_ENCODINGS)}",
                hint="record (or convert) the topics with JSON-encoded messages",
            )
        self.topics[record.id] = record.topic

    def message(self, record: Message) -> None:
        topic = self.topics.get(record.channel_id)
        if topic is None:
            raise MalformedInput(
                f"{self.source}: a message at log time {record.log_time} refers to unknown channel {record.channel_id}",
                hint=_DAMAGED_HINT,
            )
        where = f"{self.source}: topic {topic!r}, message at log time {record.log_time}"
        if record.log_time > INT64_MAX:
            raise MalformedInput(f"{where}: log time beyond int64 nanoseconds", hint=_DAMAGED_HINT)
        try:
            payload = json.loads(record.data)
        except (ValueError, RecursionError) as exc:
            raise MalformedInput(
                f"{where}: not valid JSON ({exc})", hint="messages must be UTF-8 JSON objects"
            ) from None
        if not isinstance(payload, dict):
            raise MalformedInput(
                f"{where}: a JSON {type(payload).__name__}, not an object", hint="publish JSON objects"
            )
        for name, value in _flatten(payload):
            full = f"{topic}/{name}"
            kind = _kind(value)
            if kind is None:
                if value is not None:
                    self.skipped.add(full)
                continue
            series = self.series.get(full)
            if series is None:
                series = self.series[full] = _Series(kind)
            elif series.kind != kind:
                if {series.kind, kind} == {"int", "float"}:
                    series.kind = "float"
                else:
                    raise MalformedInput(
                        f"{where}: field {name!r} is {kind} but was {series.kind} in earlier messages",
                        hint="keep each field to one type (number, boolean or string)",
                    )
            series.times.append(int(record.log_time))
            series.values.append(value)

    def meta(self, record: Metadata) -> None:
        if record.name == METADATA_NAME:
            self.metadata.update({str(k): str(v) for k, v in record.metadata.items()})
        elif record.name == CONSENT_KEY:
            carrier = f"metadata record {CONSENT_KEY!r}"
            unknown = sorted(set(record.metadata) - {CONSENT_FIELD})
            if unknown or CONSENT_FIELD not in record.metadata:
                raise MalformedInput(
                    f"{self.source}: {carrier} must hold exactly the key {CONSENT_FIELD!r}",
                    hint=f"put the JSON list of consent records under the key {CONSENT_FIELD!r}",
                )
            self.consents += parse_consents(record.metadata[CONSENT_FIELD], source=self.source, carrier=carrier)


_DTYPES = {"bool": np.bool_, "int": np.int64, "float": np.float64, "text": object}


def _channel(source: Path, name: str, series: _Series) -> Channel:
    times = np.asarray(series.times, dtype=np.int64)
    values: AnyArray = np.asarray(series.values, dtype=_DTYPES[series.kind])
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    require_increasing(
        times,
        where=f"{source}: channel {name!r}",
        locate=lambda i: f"the message at log time {int(times[i])}",
        hint="each topic may publish one message per log time",
    )
    return Channel(name=name, unit=None, timestamps_ns=times, values=values)


def read_mcap(path: Path, *, dbc: Path | None = None) -> RawRecording:
    """Read an MCAP recording of JSON messages (``dbc`` is ignored)."""
    collector = _Collector(path)
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            reader = StreamReader(handle, emit_chunks=True, validate_crcs=True, record_size_limit=max(size, 1))
            for record in reader.records:
                records = [record]
                if isinstance(record, Chunk):
                    if record.uncompressed_size > _MAX_CHUNK:
                        raise MalformedInput(
                            f"{path}: a chunk claims {record.uncompressed_size} bytes", hint=_DAMAGED_HINT
                        )
                    records = breakup_chunk(record, validate_crc=True)
                for item in records:
                    if isinstance(item, McapChannel):
                        collector.channel(item)
                    elif isinstance(item, Message):
                        collector.message(item)
                    elif isinstance(item, Metadata):
                        collector.meta(item)
    except TrustlaneError:
        raise
    except Exception as exc:  # the mcap library raises its own errors, struct.error, ValueError, ...
        raise MalformedInput(f"{path}: not a readable MCAP file ({summary(exc)})", hint=_DAMAGED_HINT) from None
    channels = tuple(_channel(path, name, series) for name, series in sorted(collector.series.items()))
    metadata = dict(collector.metadata)
    if collector.skipped:
        metadata["skipped_fields"] = ",".join(sorted(collector.skipped))
    return RawRecording(source=path, format="mcap", channels=channels, metadata=metadata, consents=collector.consents)
