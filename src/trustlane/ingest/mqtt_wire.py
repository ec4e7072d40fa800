"""MQTT 5 packets for a QoS 1 subscriber, pure (no I/O): encode what it sends, parse what a broker sends.

:class:`PacketReader` takes bytes as they arrive, in chunks of any size, and returns every complete packet
in them; a chunk of 256 kB holds hundreds of PUBLISH packets, parsed with slicing and no loop per byte.
Anything a broker must not send to this client (a wrong flag, a truncated field, a packet type a subscriber
never receives) raises :class:`ProtocolError` naming what was wrong: the connection is then closed.
A PUBLISH larger than the reader's limit is not buffered: it comes back as :class:`Oversized` (topic and
packet id, so it can be acknowledged and counted) and its remaining bytes are skipped as they arrive.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

PROTOCOL_LEVEL = 5  # MQTT 5.0
MAX_REMAINING_LENGTH = 268_435_455  # the largest a four-byte variable integer holds

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # reason 0: normal disconnection (the session is kept)
RETAIN_IF_NEW_SUBSCRIPTION = 1  # subscription option "retain handling": retained messages only when new

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_PUBACK = struct.Struct(">BBH")

# property identifier -> how its value is encoded (MQTT 5.0, section 2.2.2.2)
_BYTE, _TWO, _FOUR, _VARINT, _TEXT, _BINARY, _PAIR = range(7)
_PROPERTY_KINDS: dict[int, int] = {
    0x01: _BYTE, 0x02: _FOUR, 0x03: _TEXT, 0x08: _TEXT, 0x09: _BINARY, 0x0B: _VARINT, 0x11: _FOUR,
    0x12: _TEXT, 0x13: _TWO, 0x15: _TEXT, 0x16: _BINARY, 0x17: _BYTE, 0x18: _FOUR, 0x19: _BYTE,
    0x1A: _TEXT, 0x1C: _TEXT, 0x1F: _TEXT, 0x21: _TWO, 0x22: _TWO, 0x23: _TWO, 0x24: _BYTE, 0x25: _BYTE,
    0x26: _PAIR, 0x27: _FOUR, 0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip
REASON_STRING = 0x1F
SERVER_KEEP_ALIVE = 0x13
TOPIC_ALIAS = 0x23
_USER_PROPERTY = 0x26

Properties = dict[int, int | bytes]


class ProtocolError(Exception):
    """The broker sent something this client cannot accept; the connection must be closed."""


# --- what the broker sends ------------------------------------------------------------------------------


Publish = tuple[bytes, int, int, bytes]
"""A PUBLISH: topic (UTF-8 as received, checked by whoever reads it), packet id (0 for QoS 0), QoS, payload.
A plain tuple: built hundreds of times per read, where a class would cost more than the parsing."""


@dataclass(frozen=True)
class Oversized:
    """A PUBLISH over the reader's limit: counted and acknowledged, never buffered."""

    topic: bytes
    packet_id: int
    qos: int
    size: int  # its remaining length in bytes


@dataclass(frozen=True)
class ConnAck:
    session_present: bool
    reason: int
    properties: Properties


@dataclass(frozen=True)
class SubAck:
    packet_id: int
    reasons: bytes  # one per filter; 0, 1, 2 granted QoS, >= 0x80 refused


@dataclass(frozen=True)
class UnsubAck:
    packet_id: int
    reasons: bytes


@dataclass(frozen=True)
class PingResp:
    pass


@dataclass(frozen=True)
class Disconnect:
    reason: int
    properties: Properties


Packet = Publish | Oversized | ConnAck | SubAck | UnsubAck | PingResp | Disconnect


def reason_text(reason: int, properties: Properties | None = None) -> str:
    """``0x87`` style, with the broker's reason string when it gave one."""
    detail = (properties or {}).get(REASON_STRING)
    return f"reason 0x{reason:02x}" + (f" ({detail.decode(errors='replace')})" if isinstance(detail, bytes) else "")


# --- encoding -------------------------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{value} does not fit an MQTT variable byte integer")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _text(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) > 0xFFFF:
        raise ValueError("an MQTT string holds at most 65,535 bytes")
    return _U16.pack(len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + encode_varint(len(body)) + body


def encode_connect(
    client_id: str,
    *,
    keepalive: int,
    clean_start: bool,
    session_expiry: int,
    receive_maximum: int,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    if not 0 <= keepalive <= 0xFFFF or not 1 <= receive_maximum <= 0xFFFF or not 0 <= session_expiry <= 0xFFFFFFFF:
        raise ValueError("keepalive, receive maximum or session expiry out of range")
    flags = (0x02 if clean_start else 0) | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    props = b"\x11" + _U32.pack(session_expiry) + b"\x21" + _U16.pack(receive_maximum)
    body = _text("MQTT") + bytes([PROTOCOL_LEVEL, flags]) + _U16.pack(keepalive) + encode_varint(len(props)) + props
    body += _text(client_id)
    if username is not None:
        body += _text(username)
    if password is not None:
        body += _text(password)
    return _packet(CONNECT << 4, body)


def encode_subscribe(packet_id: int, filters: Iterable[str], *, qos: int = 1) -> bytes:
    options = bytes([qos | RETAIN_IF_NEW_SUBSCRIPTION << 4])
    body = _U16.pack(packet_id) + b"\x00" + b"".join(_text(f) + options for f in filters)
    return _packet(SUBSCRIBE << 4 | 0x2, body)


def encode_unsubscribe(packet_id: int, filters: Iterable[str]) -> bytes:
    body = _U16.pack(packet_id) + b"\x00" + b"".join(_text(f) for f in filters)
    return _packet(UNSUBSCRIBE << 4 | 0x2, body)


def encode_pubacks(packet_ids: Iterable[int]) -> bytes:
    """PUBACKs (reason: success) for these packet ids, back to back: one write acknowledges them all."""
    pack = _PUBACK.pack
    return b"".join([pack(0x40, 2, pid) for pid in packet_ids])


def encode_publish(topic: str, payload: bytes, *, packet_id: int = 0, qos: int = 0) -> bytes:
    """A PUBLISH as a broker would send it (for tests and tools; the subscriber never publishes)."""
    head = _text(topic) + (_U16.pack(packet_id) if qos else b"") + b"\x00"
    return _packet(PUBLISH << 4 | qos << 1, head + payload)


# --- decoding -------------------------------------------------------------------------------------------------


def _varint_at(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """(value, position after it), or None when ``end`` comes first; ProtocolError past four bytes."""
    value = shift = 0
    for i in range(pos, min(pos + 4, end)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    if end - pos >= 4:
        raise ProtocolError("a variable byte integer runs longer than four bytes")
    return None


def _field_varint(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    found = _varint_at(data, pos, end)
    if found is None:
        raise ProtocolError(f"{what} is truncated")
    return found


def parse_properties(data: bytes, pos: int, end: int, what: str) -> tuple[Properties, int]:
    """The properties at ``pos`` (their length first) as {identifier: int or raw bytes}; user properties
    are checked and dropped. Returns them and the position after them."""
    length, pos = _field_varint(data, pos, end, f"the properties of a {what}")
    stop = pos + length
    if stop > end:
        raise ProtocolError(f"the properties of a {what} run past its end")
    props: Properties = {}
    while pos < stop:
        ident, pos = _field_varint(data, pos, stop, f"a property of a {what}")
        kind = _PROPERTY_KINDS.get(ident)
        if kind is None:
            raise ProtocolError(f"a {what} has unknown property 0x{ident:02x}")
        value: int | bytes
        if kind == _BYTE:
            size = 1
            value = data[pos] if pos < stop else -1
        elif kind in (_TWO, _FOUR):
            size = 2 if kind == _TWO else 4
            value = int.from_bytes(data[pos : pos + size], "big")
        elif kind == _VARINT:
            value, after = _field_varint(data, pos, stop, f"property 0x{ident:02x} of a {what}")
            size = after - pos
        else:
            size = 0
            for _ in range(2 if kind == _PAIR else 1):
                if pos + size + 2 > stop:
                    raise ProtocolError(f"property 0x{ident:02x} of a {what} is truncated")
                size += 2 + (data[pos + size] << 8 | data[pos + size + 1])
            value = bytes(data[pos + 2 : pos + size])
            if kind == _TEXT and not _is_utf8(value):
                raise ProtocolError(f"property 0x{ident:02x} of a {what} is not UTF-8")
        if pos + size > stop:
            raise ProtocolError(f"property 0x{ident:02x} of a {what} is truncated")
        pos += size
        if ident == _USER_PROPERTY:
            continue
        if ident in props:
            raise ProtocolError(f"a {what} carries property 0x{ident:02x} twice")
        props[ident] = value
    return props, stop


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_FLAGS_ZERO = frozenset({CONNACK, SUBACK, UNSUBACK, PINGRESP, DISCONNECT})
_NAMES = {
    CONNECT: "CONNECT", PUBACK: "PUBACK", PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP",
    SUBSCRIBE: "SUBSCRIBE", UNSUBSCRIBE: "UNSUBSCRIBE", PINGREQ: "PINGREQ", AUTH: "AUTH", 0: "reserved type 0",
}  # fmt: skip


class PacketReader:
    """Complete packets from a byte stream fed in chunks of any size.

    ``max_packet`` bounds what is buffered: a PUBLISH whose remaining length exceeds it becomes
    :class:`Oversized`; any other packet that large is a :class:`ProtocolError`."""

    def __init__(self, max_packet: int = 1 << 20) -> None:
        if not 64 <= max_packet <= MAX_REMAINING_LENGTH:
            raise ValueError("max_packet must be between 64 bytes and the MQTT maximum")
        self.max_packet = max_packet
        self._chunks: list[bytes] = []
        self._have = 0  # bytes in _chunks
        self._need = 1  # bytes needed in _chunks before parsing can make progress
        self._skip = 0  # bytes of an oversized PUBLISH still to drop

    @property
    def buffered(self) -> int:
        return self._have

    def feed(self, chunk: bytes) -> list[Packet]:
        if self._skip:
            dropped = min(self._skip, len(chunk))
            self._skip -= dropped
            chunk = chunk[dropped:]
        if not chunk:
            return []
        self._chunks.append(chunk)
        self._have += len(chunk)
        if self._have < self._need:
            return []
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        packets: list[Packet] = []
        pos = self._parse(data, packets)
        rest = data[pos:] if pos < len(data) else b""
        self._chunks = [rest] if rest else []
        self._have = len(rest)
        return packets

    def _parse(self, data: bytes, out: list[Packet]) -> int:
        """Append every complete packet of ``data`` to ``out``; the position where the incomplete rest starts.
        Sets ``_need`` to how many bytes that rest must reach, ``_skip`` when it starts an oversized PUBLISH."""
        pos, size, limit = 0, len(data), self.max_packet
        append = out.append
        while True:
            if size - pos < 2:
                self._need = 2
                return pos
            first = data[pos]
            # the remaining length: one byte up to 127 (most telemetry packets use two)
            rl = data[pos + 1]
            if rl < 0x80:
                start = pos + 2
            elif size - pos > 2 and data[pos + 2] < 0x80:  # two bytes: up to 16 kB
                rl = (rl & 0x7F) | data[pos + 2] << 7
                start = pos + 3
            else:
                found = _varint_at(data, pos + 1, size)
                if found is None:
                    self._need = size - pos + 1
                    return pos
                rl, start = found
            end = start + rl
            kind = first >> 4
            if rl > limit:
                if kind != PUBLISH:
                    raise ProtocolError(f"a packet of type {kind} is {rl} bytes long")
                oversized = self._oversized(data, first, start, end)
                if oversized is None:
                    self._need = start - pos + min(rl, 2 + 0xFFFF + 2)
                    return pos
                append(oversized)
                if end > size:
                    self._skip = end - size
                    self._need = 1
                    return size
                pos = end
                continue
            if end > size:
                self._need = end - pos
                return pos
            if kind == PUBLISH:
                append(_publish(data, first, start, end))
            else:
                append(_control(data, kind, first & 0x0F, start, end))
            pos = end

    def _oversized(self, data: bytes, first: int, start: int, end: int) -> Oversized | None:
        """The head of an oversized PUBLISH once its topic and packet id are in; None until then."""
        qos = _publish_qos(first)
        size = len(data)
        if start + 2 > size:
            return None
        topic_end = start + 2 + (data[start] << 8 | data[start + 1])
        id_end = topic_end + (2 if qos else 0)
        if id_end > size:
            return None
        packet_id = data[topic_end] << 8 | data[topic_end + 1] if qos else 0
        if qos and packet_id == 0:
            raise ProtocolError("a QoS 1 PUBLISH has packet id 0")
        return Oversized(data[start + 2 : topic_end], packet_id, qos, end - start)


def _publish_qos(first: int) -> int:
    qos = first >> 1 & 0x3
    if qos == 3:
        raise ProtocolError("a PUBLISH has QoS 3")
    if qos == 2:
        raise ProtocolError("a PUBLISH has QoS 2, above the QoS 1 this client subscribes with")
    if qos == 0 and first & 0x08:
        raise ProtocolError("a QoS 0 PUBLISH has the DUP flag set")
    return qos


def _publish(data: bytes, first: int, start: int, end: int) -> Publish:
    qos = _publish_qos(first) if first & 0x0E else 0
    if end - start < 3:
        raise ProtocolError("a PUBLISH is too short for its topic")
    topic_end = start + 2 + (data[start] << 8 | data[start + 1])
    if topic_end == start + 2:
        raise ProtocolError("a PUBLISH has an empty topic")
    if topic_end > end:
        raise ProtocolError("a PUBLISH's topic runs past its end")
    pos = topic_end
    packet_id = 0
    if qos:
        pos += 2
        if pos > end:
            raise ProtocolError("a PUBLISH ends inside its packet id")
        packet_id = data[topic_end] << 8 | data[topic_end + 1]
        if packet_id == 0:
            raise ProtocolError("a QoS 1 PUBLISH has packet id 0")
    if pos >= end:
        raise ProtocolError("a PUBLISH ends before its properties")
    if data[pos] == 0:  # no properties: the usual case
        pos += 1
    else:
        props, pos = parse_properties(data, pos, end, "PUBLISH")
        if TOPIC_ALIAS in props:
            raise ProtocolError("a PUBLISH uses a topic alias, which this client never allowed")
    return data[start + 2 : topic_end], packet_id, qos, data[pos:end]


def _control(data: bytes, kind: int, flags: int, start: int, end: int) -> Packet:
    if kind in _FLAGS_ZERO and flags:
        raise ProtocolError(f"packet type {kind} has reserved flags {flags:#x}")
    length = end - start
    if kind == CONNACK:
        if length < 2 or data[start] & 0xFE:
            raise ProtocolError("a CONNACK is malformed")
        props, after = parse_properties(data, start + 2, end, "CONNACK")
        _all_read(after, end, "CONNACK")
        return ConnAck(bool(data[start] & 1), data[start + 1], props)
    if kind in (SUBACK, UNSUBACK):
        what = "SUBACK" if kind == SUBACK else "UNSUBACK"
        if length < 3:
            raise ProtocolError(f"a {what} is malformed")
        _, after = parse_properties(data, start + 2, end, what)
        if after == end:
            raise ProtocolError(f"a {what} has no reason codes")
        packet_id = data[start] << 8 | data[start + 1]
        reasons = bytes(data[after:end])
        return SubAck(packet_id, reasons) if kind == SUBACK else UnsubAck(packet_id, reasons)
    if kind == PINGRESP:
        if length:
            raise ProtocolError("a PINGRESP has a body")
        return PingResp()
    if kind == DISCONNECT:
        if not length:
            return Disconnect(0, {})
        if length == 1:
            return Disconnect(data[start], {})
        details, after = parse_properties(data, start + 1, end, "DISCONNECT")
        _all_read(after, end, "DISCONNECT")
        return Disconnect(data[start], details)
    raise ProtocolError(f"the broker sent a {_NAMES.get(kind, str(kind))} packet, which a subscriber never receives")


def _all_read(pos: int, end: int, what: str) -> None:
    if pos != end:
        raise ProtocolError(f"a {what} has {end - pos} bytes after its properties")


__all__ = [
    "DISCONNECT_PACKET",
    "PINGREQ_PACKET",
    "ConnAck",
    "Disconnect",
    "Oversized",
    "Packet",
    "PacketReader",
    "PingResp",
    "ProtocolError",
    "Publish",
    "SubAck",
    "UnsubAck",
    "encode_connect",
    "encode_pubacks",
    "encode_publish",
    "encode_subscribe",
    "encode_unsubscribe",
    "encode_varint",
    "parse_properties",
    "reason_text",
]
