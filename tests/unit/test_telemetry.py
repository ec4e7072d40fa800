"""The live telemetry formats (JSON, TLT1 binary), the seq-number set, and the window buffers, without a broker."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustlane.crypto.envelope import context_aad
from trustlane.errors import ConflictError, MalformedInput
from trustlane.ingest.mapping import shipped_mapping
from trustlane.ingest.mqtt import _wal_aad
from trustlane.ingest.telemetry import (
    MAX_MESSAGE_BYTES,
    MAX_SIGNALS,
    SIGNAL_TABLE,
    Telemetry,
    Value,
    _decode_json_reference,
    canonical_record,
    decode_message,
    encode_binary,
    encode_json,
    message_vin,
    replace_vin,
    split_records,
    telemetry_topic,
    value_types,
    vin_from_topic,
)
from trustlane.ingest.telemetry_buffer import Bucket, SampleCheck
from trustlane.ingest.telemetry_state import (
    MAX_RANGES,
    BucketRow,
    PendingRow,
    SeqSet,
    TelemetryState,
    VehicleRow,
)
from trustlane.ingest.vss import default_catalog

VIN = "1M8GDM9AXKP042788"
WHERE = "vehicles/veh-test/telemetry"


def decode(payload: bytes) -> Telemetry:
    return decode_message(payload, where=WHERE)


def types(message: Telemetry) -> tuple[type, ...]:
    return tuple(map(type, message.values))


# --- formats -------------------------------------------------------------------------------------------------

SIGNALS: dict[str, Value] = {
    "Vehicle.Speed": 12.5,
    "Vehicle.IsMoving": True,
    "Vehicle.ADAS.ActiveAutonomyLevel": "SAE_2",
    "Vendor.acme.Gauge": -0.0,
    "Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen": False,
}


@pytest.mark.parametrize(
    ("signals", "binary"),
    [
        ({"Vehicle.Speed": 1.5, "Vehicle.IsMoving": 2.0}, True),  # table ids, all float64: the fast path
        ({"Vehicle.Speed": 1.5, "Vendor.x": -3.0}, True),  # an inline path
        ({"Vehicle.Speed": 1.5, "Vehicle.IsMoving": True}, True),
        ({"Vehicle.Speed": 1.5, "Vendor.x": 3}, False),  # a JSON integer becomes a float
        ({"Vehicle.Speed": 1.5, "Vendor.x": "text"}, False),
        ({"Vehicle.Speed": 1e308, "Vendor.x": 1e308}, False),  # finite, though their sum is not
    ],
)
def test_value_types_match_the_decoded_values(signals: dict[str, Value], binary: bool) -> None:
    message = decode(encode_binary(3, 5, signals) if binary else encode_json(3, 5, signals))
    assert value_types(message) == tuple(map(type, message.values))
    assert message.values == tuple(float(v) if type(v) is int else v for v in signals.values())


def test_a_repeated_table_id_is_refused_on_the_fast_path_too() -> None:
    good = encode_binary(1, 5, {"Vehicle.Speed": 1.0, "Vehicle.IsMoving": 2.0})
    assert decode(good).names == ("Vehicle.Speed", "Vehicle.IsMoving")
    repeated = good[:22] + good[22:33] + good[22:33]  # the same id twice
    with pytest.raises(MalformedInput, match="names a signal twice"):
        decode(repeated)


@pytest.mark.parametrize("binary", [False, True])
def test_both_forms_decode_to_the_same_message(binary: bool) -> None:
    payload = (
        encode_binary(7, 1_767_225_600_123_456_789, SIGNALS)
        if binary
        else encode_json(7, 1_767_225_600_123_456_789, SIGNALS)
    )
    message = decode(payload)
    assert (message.seq, message.t_ns, message.vin) == (7, 1_767_225_600_123_456_789, None)
    assert message.signals == SIGNALS
    assert types(message) == (float, bool, str, float, bool)


def test_binary_uses_table_ids_and_inline_paths() -> None:
    payload = encode_binary(1, 2, {"Vehicle.Speed": 1.0, "Vendor.x": 2.0})
    assert payload[:4] == b"TLT1"
    header = struct.calcsize(">4sQqH")
    assert payload[header : header + 2] == (1).to_bytes(2, "big")  # Vehicle.Speed is id 1
    assert payload[header + 11 : header + 14] == b"\x00\x00\x08"  # key 0: an inline path of 8 bytes
    assert len(payload) == header + 11 + 3 + 8 + 9


def test_all_float_table_messages_take_the_fast_path_with_the_same_result() -> None:
    values = {path: float(i) for i, path in enumerate(SIGNAL_TABLE[:50])}
    fast = decode(encode_binary(3, 4, values))
    assert fast.signals == values and types(fast) == (float,) * 50


def test_json_accepts_numbers_as_strings_and_ints_as_floats() -> None:
    message = decode(b'{"v":1,"vehicle":"1m8gdm9axkp042788","seq":"18446744073709551615","t_ns":5,"signals":{"a":3}}')
    assert message.seq == 2**64 - 1 and message.t_ns == 5 and message.vin == "1m8gdm9axkp042788"
    assert message.values == (3.0,) and types(message) == (float,)


def outcome(read: Callable[[bytes, str], Telemetry], payload: bytes) -> object:
    """What a decoder makes of ``payload``: every field of the message (values by repr, so that 3 != 3.0 and
    -0.0 != 0.0), or the refusal's text and hint."""
    try:
        m = read(payload, WHERE)
    except MalformedInput as err:
        return err.message, err.hint
    return m.seq, m.t_ns, m.names, tuple(map(repr, m.values)), m.vin, value_types(m)


def fast_and_reference(payload: bytes) -> tuple[object, object]:
    return outcome(lambda p, w: decode_message(p, where=w), payload), outcome(_decode_json_reference, payload)


ENVELOPE = b'{"v":1,"seq":1,"t_ns":1,"signals":{"s":1.5,"a":%b}}'


@pytest.mark.parametrize(
    "payload",
    [
        *(
            ENVELOPE % value
            for value in [
                b"1",
                b"-0",
                b"-0.0",
                b"1e20",
                b"-1e20",
                b"1180591620717411303424",  # 2**70: beyond 64 bits, a float in orjson
                b"-9223372036854775809",  # -2**63 - 1
                b"18446744073709551615",
                b"18446744073709551616",
                b"1" + b"0" * 400,  # too large for a float
                b"1e400",
                b"5e-324",
                b"1e-400",
                b'"\\ud800"',
                b'"\\ud83d\\ude00"',
                b'"\xed\xa0\x80"',  # an encoded surrogate: not UTF-8
                b'"\x00"',
                b"NaN",
                b"[1]",
                b"01",
                b'"' + "é".encode() * 300 + b'"',
                b'1,"a":"x"',  # a key twice: the last value wins
                b'"x","b":1180591620717411303424',
                b'"\xc3\xa9","b":' + str(2**1023 + 1).encode(),  # large, and the text sends it value by value
            ]
        ),
        b'\xef\xbb\xbf{"v":1,"seq":1,"t_ns":1,"signals":{"a":1}}',  # a byte order mark
        b'{"v":18446744073709551617,"seq":1,"t_ns":1,"signals":{"a":1}}',
        b'{"v":1,"seq":18446744073709551616,"t_ns":1,"signals":{"a":1}}',
        b'{"v":1,"seq":1,"t_ns":9223372036854775808,"signals":{"a":1}}',
        b'{"v":1.0,"seq":1,"t_ns":1,"signals":{"a":1}}',
        b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":1}} ',
        b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":1}}x',
        b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}",
    ],
)
def test_json_reads_every_message_as_the_standard_parser_does(payload: bytes) -> None:
    fast, reference = fast_and_reference(payload)
    assert fast == reference


JSON_TOKENS = st.sampled_from(
    [
        "0",
        "1",
        "9",
        "-",
        "+",
        ".",
        "e",
        "E",
        "00",
        "18446744073709551616",
        "1e308",
        '"',
        "\\",
        "\\u",
        "d800",
        "dc00",
        "é",
        "\x00",
        "\x7f",
        ",",
        ":",
        "[",
        "]",
        "{",
        "}",
        "true",
        "null",
        "NaN",
        " ",
    ]
)


def test_json_messages_with_the_same_names_share_one_names_tuple_once_checked() -> None:
    first = decode(encode_json(1, 1, {"Vehicle.Speed": 1.0, "Vendor.x": True}))
    second = decode(encode_json(2, 2, {"Vehicle.Speed": 2.0, "Vendor.x": False}))
    assert first.names is second.names  # the window buffers look a run up by identity first
    with pytest.raises(MalformedInput, match="unprintable"):
        decode(encode_json(3, 3, {"Vehicle.Speed": 2.0, "Vendor.\x07": False}))


@given(st.lists(JSON_TOKENS, min_size=1, max_size=12), st.integers(-(2**80), 2**80))
def test_json_value_fragments_read_as_the_standard_parser_reads_them(tokens: list[str], number: int) -> None:
    for value in ("".join(tokens).encode(), str(number).encode(), repr(number / 3).encode()):
        fast, reference = fast_and_reference(ENVELOPE % value)
        assert fast == reference


@given(
    st.dictionaries(
        st.text(st.characters(codec="utf-8", categories=["L", "N", "P"]), min_size=1, max_size=40),
        st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text(max_size=50)),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**63 - 1),
    st.booleans(),
)
def test_any_valid_message_round_trips(
    signals: dict[str, float | bool | str], seq: int, t_ns: int, binary: bool
) -> None:
    payload = encode_binary(seq, t_ns, signals) if binary else encode_json(seq, t_ns, signals)
    message = decode(payload)
    assert (message.seq, message.t_ns) == (seq, t_ns)
    assert message.signals == signals
    assert types(message) == tuple(type(v) for v in signals.values())


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"\xff\xfe garbage", "JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":NaN}}', "not valid JSON"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":1e999}}', "not a finite number"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":null}}', "is null"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":{"b":1}}}', "an object or array"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":"\\ud800"}}', "not UTF-8 text"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"\\u0007":1}}', "unprintable"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{}}', "1 to 1024"),
        (b'{"v":1,"seq":-1,"t_ns":1,"signals":{"a":1}}', "needs seq"),
        (b'{"v":1,"seq":1,"t_ns":"1.5","signals":{"a":1}}', "needs t_ns"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":1},"extra":0}', "unknown field 'extra'"),
        (b'{"v":true,"seq":1,"t_ns":1,"signals":{"a":1}}', "version True"),
        (b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":1},"vehicle":5}', "VIN as text"),
        (b"TLT1\x00", "shorter than its header"),
        (encode_binary(1, 1, {"Vehicle.Speed": 1.0})[:-1], "truncated"),
        (encode_binary(1, 1, {"Vehicle.Speed": 1.0}) + b"\x00", "bytes after"),
        (
            encode_binary(1, 1, {"Vehicle.Speed": 1.0, "Vehicle.IsMoving": 2.0}).replace(
                b"\x00\x01\x01", b"\x00\x01\x07", 1
            ),
            "unknown type 7",
        ),
        (struct.pack(">4sQqHHBd", b"TLT1", 1, 1, 1, 60_000, 1, 1.0), "signal id 60000"),
        (struct.pack(">4sQqHHBdHBd", b"TLT1", 1, 1, 2, 1, 1, 1.0, 1, 1, 2.0), "names a signal twice"),
        (struct.pack(">4sQqHHBd", b"TLT1", 1, 1, 1, 1, 1, math.inf), "not a finite number"),
        (struct.pack(">4sQqHHBB", b"TLT1", 1, 1, 1, 2, 2, 5), "boolean byte 5"),
        (struct.pack(">4sQqH", b"TLT1", 1, -5, 1), "negative t_ns"),
    ],
)
def test_malformed_messages_name_topic_seq_and_problem(payload: bytes, problem: str) -> None:
    with pytest.raises(MalformedInput) as info:
        decode(payload)
    assert WHERE in info.value.message and "(seq " in info.value.message
    assert problem in info.value.message
    assert info.value.hint


def test_limits() -> None:
    with pytest.raises(MalformedInput, match="more than the 65536-byte limit"):
        decode(b"{" + b" " * MAX_MESSAGE_BYTES + b"}")
    with pytest.raises(MalformedInput, match="1025 signals"):
        decode(encode_json(1, 1, {f"s{i}": 1.0 for i in range(MAX_SIGNALS + 1)}))
    with pytest.raises(MalformedInput, match="at most 1024 bytes"):
        decode(encode_json(1, 1, {"s": "é" * 600}))
    assert decode(encode_json(1, 1, {"s": "é" * 500})).values == ("é" * 500,)


def test_topics_name_the_vehicle() -> None:
    assert telemetry_topic(" 1m8gdm9axkp042788") == f"vehicles/{VIN}/telemetry"
    assert vin_from_topic(f"fleet/a/vehicles/{VIN}/telemetry") == VIN
    assert vin_from_topic("vehicles/telemetry") is None and vin_from_topic("x/y/z") is None
    assert replace_vin(f"fleet/vehicles/{VIN}/telemetry", "veh-x") == "fleet/vehicles/veh-x/telemetry"
    plain = Telemetry(1, 1, ("a",), (1.0,))
    named = Telemetry(1, 1, ("a",), (1.0,), vin=VIN.lower())
    assert message_vin(VIN, plain, WHERE) == VIN == message_vin(None, named, WHERE) == message_vin(VIN, named, WHERE)
    with pytest.raises(MalformedInput, match="names no vehicle"):
        message_vin(None, plain, WHERE)
    with pytest.raises(MalformedInput, match="another vehicle") as info:
        message_vin("1HGCM82633A004352", named, WHERE)
    assert VIN not in info.value.message
    with pytest.raises(MalformedInput, match="invalid VIN"):
        message_vin("NOT-A-VIN", plain, WHERE)


def test_canonical_records_concatenate_and_split() -> None:
    data = canonical_record(5, b"abc") + canonical_record(2**64 - 1, b"")
    assert split_records(data) == [(5, b"abc"), (2**64 - 1, b"")]
    with pytest.raises(MalformedInput):
        split_records(data[:-1] + b"\x00\x00")


# --- seq numbers ---------------------------------------------------------------------------------------------


def test_seq_set_keeps_exact_ranges_and_round_trips() -> None:
    seen = SeqSet()
    for seq in [5, 1, 2, 3, 9, 4, 7, 2**64 - 1]:
        seen.add(seq)
    assert seen.ranges() == [(1, 5), (7, 7), (9, 9), (2**64 - 1, 2**64 - 1)]
    assert 3 in seen and 6 not in seen and 0 not in seen and 2**64 - 1 in seen
    seen.add(8)
    assert seen.ranges()[1] == (7, 9)
    again = SeqSet.from_bytes(seen.to_bytes())
    assert again.ranges() == seen.ranges()
    assert SeqSet([(10, 20), (0, 5), (6, 8)]).ranges() == [(0, 8), (10, 20)]


def test_seq_set_bounds_its_size_by_filling_the_lowest_gap() -> None:
    seen = SeqSet()
    for seq in range(0, 2 * (MAX_RANGES + 10), 2):
        seen.add(seq)
    assert len(seen) <= MAX_RANGES
    assert 1 in seen  # the lowest gaps count as seen
    assert 2 * (MAX_RANGES + 10) - 3 not in seen  # recent gaps stay exact


# --- window buffers ------------------------------------------------------------------------------------------


def test_bucket_orders_samples_by_time_and_keeps_the_highest_seq_at_equal_times() -> None:
    bucket = Bucket("veh-x", "w:1", "vehicles/veh-x/telemetry", 0, 0)
    messages = [
        Telemetry(2, 300, ("Vehicle.Speed", "Vehicle.IsMoving"), (3.0, True)),
        Telemetry(1, 100, ("Vehicle.Speed", "Vehicle.IsMoving"), (1.0, False)),
        Telemetry(4, 100, ("Vehicle.Speed",), (9.0,)),  # same time as seq 1, later seq: wins
        Telemetry(3, 200, ("Vehicle.Speed", "Vehicle.ADAS.ActiveAutonomyLevel"), (2.0, "SAE_2")),
    ]
    for m in messages:
        assert bucket.add(canonical_record(m.seq, b"x"), m, types(m)) is None
    recording = bucket.recording()
    channels = {c.name: c for c in recording.channels}
    speed = channels["Vehicle.Speed"]
    assert speed.timestamps_ns.tolist() == [100, 200, 300] and speed.values.tolist() == [9.0, 2.0, 3.0]
    assert channels["Vehicle.IsMoving"].values.dtype == np.bool_
    assert channels["Vehicle.ADAS.ActiveAutonomyLevel"].values.tolist() == ["SAE_2"]
    assert recording.format == "mqtt" and bucket.messages == 4 and bucket.name == "mqtt:vehicles/veh-x/telemetry:1"


def test_bucket_refuses_a_signal_that_turns_from_number_to_text_and_adds_nothing() -> None:
    bucket = Bucket("veh-x", "late:0", "t", 0, 0)
    first = Telemetry(1, 1, ("a", "b"), (1.0, 2.0))
    bucket.add(canonical_record(1, b"1"), first, types(first))
    digest = bucket.source_sha256
    clash = Telemetry(2, 2, ("b", "a"), (True, "text"))
    assert bucket.add(canonical_record(2, b"2"), clash, types(clash)) == "a"
    assert bucket.messages == 1 and bucket.source_sha256 == digest and bucket.late
    mixed = Telemetry(3, 3, ("a",), (True,))  # a boolean where numbers were: fine (stored as 1.0)
    assert bucket.add(canonical_record(3, b"3"), mixed, types(mixed)) is None
    assert {c.name: c.values.tolist() for c in bucket.recording().channels}["a"] == [1.0, 1.0]


def test_sample_check_refuses_what_the_mapping_would_refuse() -> None:
    check = SampleCheck(shipped_mapping("trustlane_generic"), default_catalog())

    def problem(**signals: float | bool | str) -> str | None:
        names = tuple(n.replace("_", ".") for n in signals)
        m = Telemetry(1, 1, names, tuple(signals.values()))
        return check.problem(m, types(m))

    assert problem(Vehicle_Speed=1.0, Vehicle_IsMoving=True) is None
    assert problem(Vehicle_IsMoving=1.0) is None  # 0/1 for a boolean
    assert "Vehicle.IsMoving" in (problem(Vehicle_IsMoving=2.0) or "")
    assert "Vehicle.Speed" in (problem(Vehicle_Speed="fast") or "")
    assert problem(**{"Vehicle_ADAS_ActiveAutonomyLevel": "SAE_2"}) is None
    assert "SAE_9" in (problem(**{"Vehicle_ADAS_ActiveAutonomyLevel": "SAE_9"}) or "")
    assert problem(Vendor_anything="text") is None  # unmapped: kept as a vendor signal


# --- the state file ------------------------------------------------------------------------------------------


def test_state_file_keeps_the_write_ahead_and_has_one_owner(tmp_path: Path) -> None:
    state = TelemetryState(tmp_path)
    with pytest.raises(ConflictError, match="another `trustlane ingest mqtt`"):
        TelemetryState(tmp_path)
    seqs = SeqSet([(0, 9)])
    rows = [PendingRow(i, "veh-a", "w:5", f"sealed {i}".encode()) for i in state.next_ids(2)]
    state.commit(rows, [VehicleRow("veh-a", seqs, None, 0)], [BucketRow("veh-a", "w:5", "t", "open", 7)])
    state.commit([], [VehicleRow("veh-a", seqs, 5, 1)], [], [("veh-a", "w:5")])
    state.close()

    again = TelemetryState(tmp_path)
    try:
        vehicle = again.vehicles()["veh-a"]
        assert (vehicle.seqs.ranges(), vehicle.flushed_through, vehicle.late_count) == ([(0, 9)], 5, 1)
        assert again.buckets() == [BucketRow("veh-a", "w:5", "t", "sealed", 7)]
        assert list(again.pending("veh-a", "w:5")) == [(1, b"sealed 1"), (2, b"sealed 2")]
        assert list(again.next_ids(1)) == [3]
        again.fail("veh-a", "w:5", "the mapping refused it")
        assert again.buckets()[0].problem == "the mapping refused it"
        again.finish("veh-a", "w:5")
        assert again.buckets() == [] and list(again.pending("veh-a", "w:5")) == []
        assert (tmp_path / "telemetry" / "state.db").stat().st_mode & 0o777 == 0o600
    finally:
        again.close()


@pytest.mark.parametrize(
    ("vehicle", "bucket", "row"),
    [
        ("veh-3xsyznvuh77fhvcoxyz5kq7inq", "w:179591731", 1),
        ("veh-a", "late:0", 0),
        ("veh-a", "w:1", (1 << 53) - 1),
        ("v", "w:1", -3),
        ('q"uote', "back\\slash", 7),  # escaped: the general path
        ("tab\there", "w:1", 7),
        ("fahrzeug-ä", "w:1", 7),
        ("", "", 7),
    ],
)
def test_the_write_ahead_aad_is_the_canonical_context(vehicle: str, bucket: str, row: int) -> None:
    expected = context_aad(purpose="telemetry-wal", vehicle=vehicle, bucket=bucket, row=row)
    assert _wal_aad(vehicle, bucket, row) == expected


@pytest.mark.parametrize(
    ("value", "accepted"), [(2**1023 + 1, True), (2**1024 - 2**971, True), (2**1024 - 2**970, False), (2**1024, False)]
)
def test_a_large_integer_is_judged_the_same_whatever_the_other_signals(value: int, accepted: bool) -> None:
    plain = b'{"v":1,"seq":1,"t_ns":1,"signals":{"a":%b}}' % str(value).encode()
    beside_text = b'{"v":1,"seq":1,"t_ns":1,"signals":{"t":"\xc3\xa9","a":%b}}' % str(value).encode()
    for message in (plain, beside_text):  # whole-message check / value-by-value check
        if accepted:
            assert decode_message(message, where=WHERE).values[-1] == float(value)
        else:
            with pytest.raises(MalformedInput, match="too large a number"):
                decode_message(message, where=WHERE)
