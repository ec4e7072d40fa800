"""MQTT 5 packet encoding and the chunked packet reader: round trips, reads split anywhere, malformed input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustlane.ingest.mqtt_wire import (
    ConnAck,
    Disconnect,
    Oversized,
    Packet,
    PacketReader,
    PingResp,
    ProtocolError,
    SubAck,
    UnsubAck,
    encode_connect,
    encode_pubacks,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
    encode_varint,
    parse_properties,
    reason_text,
)

TOPIC = "fleet/vehicles/1M8GDM9AXKP042788/telemetry"


def frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def feed_all(reader: PacketReader, chunks: list[bytes]) -> list[Packet]:
    out: list[Packet] = []
    for chunk in chunks:
        out.extend(reader.feed(chunk))
    return out


def parse_one(data: bytes, max_packet: int = 1 << 20) -> Packet:
    packets = PacketReader(max_packet).feed(data)
    assert len(packets) == 1, packets
    return packets[0]


# a stream with one of every packet a broker sends a subscriber
CONNACK = frame(0x20, b"\x01\x00" + b"\x08" + b"\x13\x00\x3c" + b"\x21\x01\x00" + b"\x24\x01")
SUBACK = frame(0x90, b"\x00\x07\x00\x01\x80")
UNSUBACK = frame(0xB0, b"\x00\x08\x00\x00")
PINGRESP = b"\xd0\x00"
DISCONNECT = frame(0xE0, b"\x8b" + b"\x05" + b"\x1f\x00\x02ok")
STREAM = [
    CONNACK,
    encode_publish(TOPIC, b"first", packet_id=1, qos=1),
    encode_publish("t", b"", packet_id=0, qos=0),
    SUBACK,
    encode_publish(TOPIC, bytes(range(256)) * 3, packet_id=65535, qos=1),  # two-byte remaining length
    UNSUBACK,
    PINGRESP,
    encode_publish(TOPIC, b"x" * 20_000, packet_id=2, qos=1),  # three-byte remaining length
    DISCONNECT,
]
EXPECTED: list[Packet] = [
    ConnAck(True, 0, {0x13: 60, 0x21: 256, 0x24: 1}),
    (TOPIC.encode(), 1, 1, b"first"),
    (b"t", 0, 0, b""),
    SubAck(7, b"\x01\x80"),
    (TOPIC.encode(), 65535, 1, bytes(range(256)) * 3),
    UnsubAck(8, b"\x00"),
    PingResp(),
    (TOPIC.encode(), 2, 1, b"x" * 20_000),
    Disconnect(0x8B, {0x1F: b"ok"}),
]


# --- round trips ----------------------------------------------------------------------------------------


def test_every_packet_of_one_chunk_is_parsed_in_order() -> None:
    reader = PacketReader()
    assert reader.feed(b"".join(STREAM)) == EXPECTED
    assert reader.buffered == 0


@pytest.mark.parametrize("size", [0, 1, 100, 127 - 48, 128, 16_383, 16_384, 200_000])
def test_publish_round_trips_across_remaining_length_sizes(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    packet = encode_publish(TOPIC, payload, packet_id=513, qos=1)
    assert parse_one(packet) == (TOPIC.encode(), 513, 1, payload)


def test_a_stream_split_at_every_byte_boundary_parses_the_same() -> None:
    stream = b"".join(STREAM[:7])  # without the 20 kB publish: the loop is quadratic in the stream size
    expected = EXPECTED[:7]
    for cut in range(1, len(stream)):
        reader = PacketReader()
        assert feed_all(reader, [stream[:cut], stream[cut:]]) == expected, cut
        assert reader.buffered == 0


def test_a_stream_fed_one_byte_at_a_time_parses_the_same() -> None:
    stream = b"".join(STREAM)
    reader = PacketReader()
    assert feed_all(reader, [stream[i : i + 1] for i in range(len(stream))]) == EXPECTED


@given(st.lists(st.integers(min_value=1, max_value=5000), max_size=30))
def test_a_stream_split_anywhere_parses_the_same(sizes: list[int]) -> None:
    stream = b"".join(STREAM)
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(stream[pos : pos + size])
        pos += size
    chunks.append(stream[pos:])
    assert feed_all(PacketReader(), chunks) == EXPECTED


def test_encoded_pubacks_are_back_to_back_four_byte_packets() -> None:
    assert encode_pubacks([1, 0x1234, 65535]) == b"\x40\x02\x00\x01" + b"\x40\x02\x12\x34" + b"\x40\x02\xff\xff"
    assert encode_pubacks([]) == b""


def test_connect_asks_for_a_kept_session_with_expiry_and_receive_maximum() -> None:
    packet = encode_connect(
        "trustlane-abc", keepalive=30, clean_start=False, session_expiry=604_800, receive_maximum=65_535
    )
    assert packet[0] == 0x10
    body = packet[2:]
    assert len(body) == packet[1]
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0  # no clean start, no credentials
    assert struct.unpack(">H", body[8:10]) == (30,)
    props, after = parse_properties(body, 10, len(body), "CONNECT")
    assert props == {0x11: 604_800, 0x21: 65_535}
    assert body[after:] == b"\x00\x0dtrustlane-abc"


def test_connect_with_credentials_sets_their_flags() -> None:
    packet = encode_connect(
        "c", keepalive=0, clean_start=True, session_expiry=0, receive_maximum=1, username="u", password="pw"
    )
    assert packet[2 + 7] == 0x80 | 0x40 | 0x02
    assert packet.endswith(b"\x00\x01c\x00\x01u\x00\x02pw")


def test_subscribe_and_unsubscribe_packets() -> None:
    sub = encode_subscribe(9, ["a/+/telemetry"])
    assert sub == frame(0x82, b"\x00\x09\x00" + b"\x00\x0da/+/telemetry" + b"\x11")  # QoS 1, retain if new
    assert encode_unsubscribe(10, ["x"]) == frame(0xA2, b"\x00\x0a\x00\x00\x01x")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"), (16_384, b"\x80\x80\x01"),
     (268_435_455, b"\xff\xff\xff\x7f")],
)  # fmt: skip
def test_variable_byte_integers(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded


def test_variable_byte_integers_out_of_range_are_refused() -> None:
    for value in (-1, 268_435_456):
        with pytest.raises(ValueError, match="variable byte integer"):
            encode_varint(value)


def test_reason_text_names_the_code_and_the_brokers_words() -> None:
    assert reason_text(0x87) == "reason 0x87"
    assert reason_text(0x87, {0x1F: b"not authorized"}) == "reason 0x87 (not authorized)"


# --- oversized messages ----------------------------------------------------------------------------------


def test_an_oversized_publish_is_reported_and_skipped_unbuffered() -> None:
    big = encode_publish(TOPIC, b"z" * 5000, packet_id=77, qos=1)
    after = encode_publish(TOPIC, b"next", packet_id=78, qos=1)
    reader = PacketReader(max_packet=1024)
    packets = reader.feed(big[:200])
    assert packets == [Oversized(TOPIC.encode(), 77, 1, len(big) - 3)]
    assert reader.buffered == 0  # nothing of it is kept
    assert reader.feed(big[200:3000]) == []
    assert reader.buffered == 0
    assert reader.feed(big[3000:] + after) == [(TOPIC.encode(), 78, 1, b"next")]


def test_an_oversized_publish_split_at_every_byte_boundary() -> None:
    stream = encode_publish(TOPIC, b"z" * 300, packet_id=5, qos=1) + PINGRESP
    for cut in range(1, len(stream)):
        packets = feed_all(PacketReader(max_packet=128), [stream[:cut], stream[cut:]])
        assert packets == [Oversized(TOPIC.encode(), 5, 1, len(stream) - 3 - 2), PingResp()], cut


def test_other_packets_over_the_limit_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="is 200 bytes long"):
        PacketReader(max_packet=64).feed(frame(0x90, b"\x00\x01\x00" + b"\x00" * 197))


# --- malformed input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),
        (frame(0x36, b"\x00\x01t\x00\x01\x00"), "QoS 3"),
        (frame(0x34, b"\x00\x01t\x00\x01\x00"), "QoS 2"),
        (frame(0x38, b"\x00\x01t\x00"), "DUP flag"),
        (frame(0x32, b"\x00\x01t\x00\x00\x00"), "packet id 0"),
        (frame(0x32, b"\x00\x09t\x00\x01\x00"), "runs past its end"),
        (frame(0x30, b"\x00\x00\x00"), "empty topic"),
        (frame(0x32, b"\x00\x01t\x00"), "inside its packet id"),
        (frame(0x30, b"\x00\x01t"), "before its properties"),
        (frame(0x30, b"\x00\x01t\x03\x23\x00\x01"), "topic alias"),
        (frame(0x30, b"\x00\x01t\x02\x7f\x00"), "unknown property 0x7f"),
        (frame(0x30, b"\x00\x01t\x04\x01\x01\x01\x00"), "property 0x01 twice"),
        (frame(0x30, b"\x00\x01t\x09\x03\x00\x01x"), "run past its end"),
        (frame(0x30, b"\x00\x01t\x03\x03\x00\x05"), "truncated"),
        (frame(0x30, b"\x00\x01t\x04\x03\x00\x01\xff"), "not UTF-8"),
        (frame(0x20, b"\x02\x00\x00"), "CONNACK is malformed"),
        (frame(0x20, b"\x00\x00\x00\x00"), "after its properties"),
        (frame(0x21, b"\x00\x00\x00"), "reserved flags"),
        (frame(0x90, b"\x00\x01\x00"), "no reason codes"),
        (frame(0x90, b"\x00"), "SUBACK is malformed"),
        (b"\xd0\x01\x00", "PINGRESP has a body"),
        (frame(0x40, b"\x00\x01"), "PUBACK packet"),
        (frame(0x62, b"\x00\x01"), "PUBREL packet"),
        (frame(0xF0, b""), "AUTH packet"),
        (frame(0x10, b""), "CONNECT packet"),
        (frame(0x00, b""), "reserved type 0"),
    ],
)
def test_malformed_packets_raise_a_protocol_error_naming_the_problem(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        PacketReader().feed(data)


def test_a_truncated_packet_waits_for_more_instead_of_failing() -> None:
    packet = encode_publish(TOPIC, b"payload", packet_id=3, qos=1)
    reader = PacketReader()
    assert reader.feed(packet[:-1]) == []
    assert reader.buffered == len(packet) - 1
    assert reader.feed(packet[-1:]) == [(TOPIC.encode(), 3, 1, b"payload")]


def test_the_reader_limit_must_be_sensible() -> None:
    with pytest.raises(ValueError, match="max_packet"):
        PacketReader(max_packet=10)
