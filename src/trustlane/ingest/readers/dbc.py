"""Load a CAN database (DBC) and lay out each signal for vectorised decoding.

A loaded database is cached per (path, modification time, size), so reading many logs decodes with one parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cantools

from trustlane.errors import MalformedInput, UsageError

_DBC_HINT = "pass a valid CAN database (DBC) with --dbc"


@dataclass(frozen=True)
class SignalLayout:
    """Where one signal lies in its message's payload, and how raw bits become a physical value.

    The raw value is read from a window of ``nbytes`` bytes starting at ``first_byte`` (little-endian order
    for Intel signals, big-endian for Motorola), shifted right by ``shift`` and masked to ``length`` bits.
    """

    name: str
    unit: str | None
    comment: str | None
    first_byte: int
    nbytes: int
    shift: int
    length: int
    little_endian: bool
    signed: bool
    is_float: bool
    scale: float
    offset: float
    integral: bool  # physical values are whole numbers that fit int64
    multiplexer: str | None  # the multiplexer signal this one depends on
    multiplexer_ids: frozenset[int]


@dataclass(frozen=True)
class MessageLayout:
    name: str
    frame_id: int
    extended: bool
    length: int
    signals: tuple[SignalLayout, ...]
    problem: str | None  # why the DBC's definition cannot be decoded, if it cannot


@dataclass(frozen=True)
class CanDatabase:
    path: Path
    messages: dict[tuple[int, bool], MessageLayout]  # by (frame id, extended)


def _layout(signal: cantools.database.can.Signal, message_length: int) -> tuple[SignalLayout, str | None]:
    start, length = int(signal.start), int(signal.length)
    little = signal.byte_order == "little_endian"
    if little:
        first, last = start // 8, (start + length - 1) // 8
        nbytes = last - first + 1
        shift = start - 8 * first
    else:
        msb = 8 * (start // 8) + (7 - start % 8)  # bit index counted from the first byte's most significant bit
        first, last = msb // 8, (msb + length - 1) // 8
        nbytes = last - first + 1
        shift = 8 * nbytes - (msb - 8 * first + length)
    scale, offset = float(signal.scale), float(signal.offset)
    integral = (
        not signal.is_float
        and scale.is_integer()
        and offset.is_integer()
        and abs(scale) * 2.0**length + abs(offset) < 2.0**62
    )
    problem = None
    if length < 1 or length > 64 or first < 0 or last >= message_length:
        problem = f"signal {signal.name} ({length} bits at bit {start}) lies outside the {message_length}-byte payload"
    elif signal.is_float and length not in (32, 64):
        problem = f"signal {signal.name} is a {length}-bit float"
    layout = SignalLayout(
        name=signal.name,
        unit=signal.unit or None,
        comment=signal.comment if isinstance(signal.comment, str) and signal.comment else None,
        first_byte=first,
        nbytes=nbytes,
        shift=shift,
        length=length,
        little_endian=little,
        signed=bool(signal.is_signed),
        is_float=bool(signal.is_float),
        scale=scale,
        offset=offset,
        integral=integral,
        multiplexer=signal.multiplexer_signal,
        multiplexer_ids=frozenset(int(i) for i in signal.multiplexer_ids or ()),
    )
    return layout, problem


def _message(message: cantools.database.can.Message) -> MessageLayout:
    layouts, problems = [], []
    for signal in message.signals:
        layout, problem = _layout(signal, int(message.length))
        layouts.append(layout)
        if problem:
            problems.append(problem)
    return MessageLayout(
        name=message.name,
        frame_id=int(message.frame_id),
        extended=bool(message.is_extended_frame),
        length=int(message.length),
        signals=tuple(layouts),
        problem="; ".join(problems) or None,
    )


@lru_cache(maxsize=8)
def _load(path: Path, _mtime_ns: int, _size: int) -> CanDatabase:
    try:
        database = cantools.database.load_file(str(path), strict=False)
    except Exception as exc:  # cantools raises parse errors of several types, plus OSError/UnicodeDecodeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MalformedInput(f"{path}: not a usable CAN database ({first})", hint=_DBC_HINT) from None
    if not isinstance(database, cantools.database.can.Database):
        raise MalformedInput(f"{path}: is not a CAN database", hint=_DBC_HINT)
    messages = {}
    for message in database.messages:
        layout = _message(message)
        messages[(layout.frame_id, layout.extended)] = layout
    return CanDatabase(path=path, messages=messages)


def load_dbc(path: Path) -> CanDatabase:
    """The CAN database at ``path``, laid out for decoding (cached while the file is unchanged)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the CAN database ({exc.strerror})", hint=_DBC_HINT) from None
    if not path.is_file():
        raise UsageError(f"{path}: the CAN database is not a file", hint=_DBC_HINT)
    return _load(path.resolve(), stat.st_mtime_ns, stat.st_size)
