"""candump log files (``candump -l``), decoded with a CAN database.

Each line is ``(SECONDS.FRACTION) INTERFACE FRAME`` with an optional trailing direction ``R``/``T``. FRAME is
``ID#DATA`` (classic CAN, up to 8 bytes) or ``ID##FDATA`` (CAN FD: one hex digit of flags, then up to 64
bytes). IDs have 3 hex digits (standard) or 8 (extended). Remote frames (``ID#R``), error frames (CAN_ERR_FLAG
in the ID) and CAN XL frames are refused; blank lines are skipped.

Each decoded signal becomes the channel ``MESSAGE.SIGNAL`` with the DBC's unit and comment and the scaled
numeric value (choice names are not applied). When one message arrives on several interfaces, the interface
where it appears first keeps the plain name and the others get ``MESSAGE.SIGNAL@INTERFACE``.

Frames whose ID the DBC does not define are counted in ``metadata["undecoded_frames"]`` (their IDs in
``metadata["undecoded_ids"]``). A frame whose length differs from its DBC message, and a frame that repeats
(or goes back from) the timestamp of the previous frame of the same ID on the same interface, are errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from trustlane.errors import MalformedInput
from trustlane.ingest.model import Channel, RawRecording
from trustlane.ingest.readers.base import describe_value
from trustlane.ingest.readers.can_decode import decode
from trustlane.ingest.readers.dbc import CanDatabase, MessageLayout, load_dbc

_LINE_PATTERN = (
    r"^\s*\((?P<sec>\d{1,10})(?:\.(?P<frac>\d{0,9}))?\)\s+(?P<bus>[\x21\x22\x24-\x27\x2a-\x7e]+)\s+"
    r"(?P<id>[0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})(?P<sep>##?)(?P<data>[0-9A-Fa-f]*)(?:\s+[RT])?\s*$"
)
_FD_LENGTHS = frozenset((0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64))
_MAX_SECONDS = 9_223_372_035
_CAN_EFF_MASK = 0x1FFFFFFF
_LINE_HINT = "a candump log line looks like (1700000000.123456) can0 421#0011223344556677"
_HEX = np.full(256, 255, dtype=np.uint8)
for _digit, _char in enumerate(b"0123456789abcdef"):
    _HEX[_char] = _digit
    _HEX[ord(chr(_char).upper())] = _digit


@dataclass(frozen=True)
class _Frames:
    """The parsed non-blank lines, as columns."""

    lines: npt.NDArray[np.int64]  # 1-based line numbers
    times: npt.NDArray[np.int64]
    bus: npt.NDArray[np.int64]  # index into buses
    buses: list[str]
    ident: npt.NDArray[np.int64]  # index into ids
    ids: list[tuple[int, bool]]  # (frame id, extended)
    fd: npt.NDArray[np.bool_]
    sizes: npt.NDArray[np.int64]  # payload bytes
    hex_offsets: npt.NDArray[np.int64]  # where each frame's data hex starts in hex_bytes (after FD flags)
    hex_bytes: npt.NDArray[np.uint8]


def _explain(line: str) -> str:
    text = line.strip()
    parts = text.split()
    if len(parts) not in (3, 4) or not (parts[0].startswith("(") and parts[0].endswith(")")):
        return "is not a candump log line"
    if not re.fullmatch(r"\(\d{1,10}(\.\d{0,9})?\)", parts[0]):
        return f"has a bad timestamp {describe_value(parts[0])}"
    if len(parts) == 4 and parts[3] not in ("R", "T"):
        return f"has an unexpected trailing field {describe_value(parts[3])}"
    frame = parts[2]
    if "###" in frame:
        return "is a CAN XL frame, which is not supported"
    if re.fullmatch(r"[0-9A-Fa-f]+#[Rr]\d*", frame):
        return "is a remote (RTR) frame, which is not supported (only data frames are)"
    ident, _, data = frame.partition("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{3}|[0-9A-Fa-f]{8}", ident):
        return f"has a bad CAN ID {describe_value(ident)} (3 hex digits standard, 8 extended)"
    if not re.fullmatch(r"#?[0-9A-Fa-f]*", data):
        return f"has bad frame data {describe_value(data)} (hex byte pairs expected)"
    return "is not a candump log line"


def _bad_line(source: Path, number: int, why: str, line: str | bytes) -> MalformedInput:
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    return MalformedInput(f"{source}: line {number} {why}: {describe_value(text.strip(), 80)}", hint=_LINE_HINT)


def _locate_unreadable(source: Path) -> MalformedInput:
    """Explain why pyarrow could not split the file into lines."""
    with open(source, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if b"\0" in line or b"\x1f" in line:
                return _bad_line(source, number, "holds binary data", line)
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return _bad_line(source, number, "is not text", line)
    return MalformedInput(f"{source}: the candump log could not be read", hint=_LINE_HINT)


def _read_lines(source: Path) -> pa.Array:
    try:
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=["line"], block_size=1 << 22),
            parse_options=pacsv.ParseOptions(
                delimiter="\x1f", quote_char=False, double_quote=False, escape_char=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={"line": pa.binary()}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise _locate_unreadable(source) from None
    return table.column(0).combine_chunks()


def _field(parsed: pa.Array, name: str) -> pa.Array:
    """One capture group of the parsed lines (offset-aware, unlike ``StructArray.field``)."""
    return pc.struct_field(parsed, [name])


def _first(mask: npt.NDArray[np.bool_]) -> int:
    return int(np.argmax(mask))


def _numbers(values: pa.Array) -> npt.NDArray[np.int64]:
    text = pc.cast(values, pa.string())
    return np.asarray(pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _binary_buffers(values: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, dtype=np.uint8)
    return offsets.astype(np.int64), data


def _parse(source: Path) -> _Frames:
    lines = _read_lines(source)
    parsed = pc.extract_regex(lines, _LINE_PATTERN)
    blank = ~np.asarray(parsed.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    for row in np.flatnonzero(blank).tolist():  # lines that did not parse must be blank
        text = lines[row].as_py()
        if text.strip():
            raise _bad_line(source, row + 1, _explain(text.decode("utf-8", errors="replace")), text)
    keep = pa.array(~blank)
    parsed = pc.filter(parsed, keep)
    numbers = np.flatnonzero(~blank).astype(np.int64) + 1
    if not len(numbers):
        raise MalformedInput(f"{source}: the candump log holds no frames", hint=_LINE_HINT)

    seconds = _numbers(_field(parsed, "sec"))
    if (seconds > _MAX_SECONDS).any():
        row = _first(seconds > _MAX_SECONDS)
        number = int(numbers[row])
        raise _bad_line(source, number, "has a timestamp beyond the year 2262", lines[number - 1].as_py())
    fraction = _numbers(pc.utf8_rpad(pc.cast(pc.fill_null(_field(parsed, "frac"), b""), pa.string()), 9, "0"))
    times = seconds * np.int64(1_000_000_000) + fraction

    bus_codes = pc.dictionary_encode(_field(parsed, "bus"))
    buses = [b.decode("utf-8", errors="replace") for b in bus_codes.dictionary.to_pylist()]
    id_codes = pc.dictionary_encode(_field(parsed, "id"))
    ids = [(int(text, 16), len(text) == 8) for text in id_codes.dictionary.to_pylist()]
    ident = np.asarray(id_codes.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    for code, (frame_id, _extended) in enumerate(ids):
        if frame_id > _CAN_EFF_MASK:
            row = _first(ident == code)
            number = int(numbers[row])
            why = "is an error frame (CAN_ERR_FLAG), which is not supported"
            raise _bad_line(source, number, why, lines[number - 1].as_py())

    fd = np.asarray(pc.equal(_field(parsed, "sep"), b"##").to_numpy(zero_copy_only=False), dtype=bool)
    offsets, hex_bytes = _binary_buffers(_field(parsed, "data"))
    digits = np.diff(offsets) - fd
    sizes = digits // 2
    valid = (digits % 2 == 0) & np.where(fd, np.isin(sizes, list(_FD_LENGTHS)) & (digits >= 0), sizes <= 8)
    if not valid.all():
        row = _first(~valid)
        if digits[row] % 2:
            why = "has an odd number of hex digits of data"
        elif fd[row]:
            why = "has a CAN FD payload of a length CAN FD does not have"
        else:
            why = "has more than 8 bytes of data in a classic CAN frame"
        raise _bad_line(source, int(numbers[row]), why, lines[int(numbers[row]) - 1].as_py())
    return _Frames(
        lines=numbers,
        times=times,
        bus=np.asarray(bus_codes.indices.to_numpy(zero_copy_only=False), dtype=np.int64),
        buses=buses,
        ident=ident,
        ids=ids,
        fd=fd,
        sizes=sizes.astype(np.int64),
        hex_offsets=offsets[:-1] + fd,
        hex_bytes=hex_bytes,
    )


def _payloads(frames: _Frames, rows: npt.NDArray[np.int64], length: int) -> npt.NDArray[np.uint8]:
    if not length:
        return np.zeros((len(rows), 0), dtype=np.uint8)
    chars = frames.hex_bytes[frames.hex_offsets[rows][:, None] + np.arange(2 * length)]
    nibbles = _HEX[chars]
    return np.asarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2], dtype=np.uint8)


def _check_group(
    source: Path, frames: _Frames, rows: npt.NDArray[np.int64], message: MessageLayout, database: CanDatabase
) -> None:
    label = f"{message.name} (0x{message.frame_id:X})"
    if message.problem:
        raise MalformedInput(
            f"{source}: line {int(frames.lines[rows[0]])}: {database.path} cannot decode {label}: {message.problem}",
            hint="fix the message in the DBC",
        )
    wrong = frames.sizes[rows] != message.length
    if wrong.any():
        row = int(rows[_first(wrong)])
        raise MalformedInput(
            f"{source}: line {int(frames.lines[row])}: DBC mismatch: {label} has {message.length} bytes in "
            f"{database.path.name}, the frame has {int(frames.sizes[row])}",
            hint="use the DBC that belongs to this vehicle and bus",
        )
    times = frames.times[rows]
    back = np.flatnonzero(times[1:] <= times[:-1])
    if len(back):
        row = int(rows[back[0] + 1])
        what = "repeats the timestamp of" if times[back[0] + 1] == times[back[0]] else "goes back in time from"
        raise MalformedInput(
            f"{source}: line {int(frames.lines[row])}: frame {label} on {frames.buses[int(frames.bus[row])]} {what} "
            f"the previous one (line {int(frames.lines[rows[back[0]]])})",
            hint="remove duplicated frames; a log's frames of one ID must have increasing timestamps",
        )


def read_candump(path: Path, *, dbc: Path | None = None) -> RawRecording:
    """Read a candump log and decode it with the DBC ``dbc`` (required)."""
    if dbc is None:
        raise MalformedInput(
            f"{path}: a candump log holds raw CAN frames and needs a CAN database to decode them",
            hint="pass the vehicle's DBC file with --dbc",
        )
    database = load_dbc(dbc)
    frames = _parse(path)
    key = frames.bus * max(len(frames.ids), 1) + frames.ident
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    groups = np.split(order, starts[1:])
    groups.sort(key=lambda rows: int(rows[0]))  # by first appearance in the log

    undecoded = 0
    undecoded_ids: set[str] = set()
    first_bus: dict[str, int] = {}
    channels: list[Channel] = []
    for rows in groups:
        frame_id, extended = frames.ids[int(frames.ident[rows[0]])]
        message = database.messages.get((frame_id, extended))
        if message is None:
            undecoded += len(rows)
            undecoded_ids.add(f"0x{frame_id:08X}" if extended else f"0x{frame_id:03X}")
            continue
        _check_group(path, frames, rows, message, database)
        bus = int(frames.bus[rows[0]])
        suffix = "" if first_bus.setdefault(message.name, bus) == bus else f"@{frames.buses[bus]}"
        times = frames.times[rows]
        decoded = decode(message, _payloads(frames, rows, message.length))
        for signal in message.signals:
            values, mask = decoded[signal.name]
            channels.append(
                Channel(
                    name=f"{message.name}.{signal.name}{suffix}",
                    unit=signal.unit,
                    timestamps_ns=times[mask],
                    values=values,
                    comment=signal.comment,
                )
            )
    metadata = {
        "dbc": dbc.name,
        "buses": ",".join(frames.buses),
        "frames": str(len(frames.lines)),
        "undecoded_frames": str(undecoded),
    }
    if undecoded_ids:
        metadata["undecoded_ids"] = ",".join(sorted(undecoded_ids))
    return RawRecording(source=path, format="candump", channels=tuple(channels), metadata=metadata)
