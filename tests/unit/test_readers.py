"""Readers of vehicle recordings: real sample files written with the real libraries, read back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import shared_path
from tests.unit.readers_support import CONSENTS, START_NS, mdf_channels, table_channels, write_all, write_test_dbc
from trustlane.errors import MalformedInput, TrustlaneError, UsageError
from trustlane.ingest.model import Channel, RawRecording
from trustlane.ingest.readers import FORMATS, READERS, detect_format, read_recording, register_reader, samples
from trustlane.ingest.readers.consent import parse_consents
from trustlane.ingest.readers.mdf4_header import parse_header_comment
from trustlane.ingest.readers.samples import CanFrame, RawCanFrame


@pytest.fixture
def dbc(tmp_path: Path) -> Path:
    return write_test_dbc(tmp_path)


def by_name(recording: RawRecording) -> dict[str, Channel]:
    return {channel.name: channel for channel in recording.channels}


def malformed(path: Path, *needles: str, fmt: str = "auto", dbc: Path | None = None) -> MalformedInput:
    """Read ``path`` expecting MalformedInput whose message names the file and contains every needle."""
    with pytest.raises(MalformedInput) as caught:
        read_recording(path, format=fmt, dbc=dbc)
    error = caught.value
    assert str(path) in error.message
    for needle in needles:
        assert needle in error.message, error.message
    assert error.hint
    assert error.exit_code == 2
    return error


# --- registry and detection -------------------------------------------------------------------------------------


def test_formats_and_registry() -> None:
    assert FORMATS == ("mdf4", "csv", "parquet", "candump", "mcap")
    assert set(FORMATS) <= set(READERS)


@pytest.mark.parametrize("misleading", ["recording.csv", "recording.mf4", "recording.parquet", "x.log", "x.mcap"])
def test_detects_every_format_from_content_not_name(tmp_path: Path, dbc: Path, misleading: str) -> None:
    for fmt, (path, _) in write_all(tmp_path, dbc).items():
        moved = tmp_path / f"{fmt}-{misleading}"
        moved.write_bytes(path.read_bytes())
        assert detect_format(moved) == fmt


def test_read_recording_auto_detects_and_dispatches(tmp_path: Path, dbc: Path) -> None:
    for fmt, (path, needs_dbc) in write_all(tmp_path, dbc).items():
        recording = read_recording(path, dbc=needs_dbc)
        assert recording.format == fmt
        assert recording.source == path
        assert recording.channels


def test_detect_refuses_empty_and_blank_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    error = malformed(empty, "empty")
    assert "empty" in error.message
    blank = tmp_path / "blank.csv"
    blank.write_text("\n  \n")
    malformed(blank, "blank")


def test_detect_refuses_unknown_content_listing_formats(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    error = malformed(junk, "supported formats")
    for fmt in FORMATS:
        assert fmt in error.message
    text = tmp_path / "notes.txt"
    text.write_text("just some words\nand more\n")
    malformed(text, "supported formats")


def test_detect_csv_without_time_column_names_accepted_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    error = malformed(path, "time column")
    assert error.hint is not None and "timestamp_ns" in error.hint


def test_detect_refuses_mdf3(tmp_path: Path) -> None:
    from asammdf import MDF, Signal

    path = tmp_path / "old.mdf"
    mdf = MDF(version="3.30")
    mdf.append([Signal(np.arange(3.0), np.arange(3) * 0.1, name="a")])
    mdf.save(path, overwrite=True)
    mdf.close()
    error = malformed(path, "MDF version 3.30", "only MDF 4")
    assert error.hint is not None and "convert" in error.hint
    malformed(path, "3.30", fmt="mdf4")


def test_detect_refuses_truncated_parquet_and_unknown_mcap_version(tmp_path: Path, dbc: Path) -> None:
    files = write_all(tmp_path, dbc)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(files["parquet"][0].read_bytes()[:-10])
    malformed(cut, "truncated")
    future = tmp_path / "future.mcap"
    future.write_bytes(b"\x89MCAP9\r\n" + b"\0" * 40)
    malformed(future, "unknown version")


def test_unknown_format_name_missing_file_and_directory(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("t,a\n1,2\n")
    with pytest.raises(UsageError, match="unknown recording format 'xls'"):
        read_recording(path, format="xls")
    with pytest.raises(UsageError, match="no such file"):
        read_recording(tmp_path / "missing.csv")
    with pytest.raises(UsageError, match="not a regular file"):
        read_recording(tmp_path)


def test_explicit_format_that_does_not_match_the_content(tmp_path: Path, dbc: Path) -> None:
    files = write_all(tmp_path, dbc)
    csv_path = files["csv"][0]
    for fmt in ("mdf4", "parquet", "mcap"):
        malformed(csv_path, fmt=fmt)
    malformed(csv_path, fmt="candump", dbc=dbc)
    malformed(files["mdf4"][0], fmt="csv")


def test_register_reader_plugin_with_sniffer(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_bytes(b"XYZ1 payload")

    def read_xyz(source: Path, *, dbc: Path | None = None) -> RawRecording:
        channel = Channel("x", None, np.array([1], dtype=np.int64), np.array([1.0]))
        return RawRecording(source=source, format="xyz", channels=(channel,))

    register_reader("xyz", read_xyz, sniff=lambda head: head.startswith(b"XYZ1"))
    try:
        assert read_recording(path).format == "xyz"
        assert read_recording(path, format="xyz").channels[0].name == "x"
        with pytest.raises(UsageError, match="already registered"):
            register_reader("xyz", read_xyz)
    finally:
        from trustlane.ingest import readers

        readers.READERS.pop("xyz")
        readers.SNIFFERS.pop("xyz")


# --- MDF4 -------------------------------------------------------------------------------------------------------


def test_mdf4_round_trip_groups_rates_units_text_and_time(tmp_path: Path) -> None:
    channels = mdf_channels()
    path = samples.write_mdf4(
        tmp_path / "r.mf4",
        channels,
        START_NS,
        metadata={"vin": "WVW<&>1", "driver": "anon"},
        consents=CONSENTS,
        comment="test drive",
        channel_comments={"speed": "vehicle speed"},
    )
    recording = read_recording(path)
    assert recording.format == "mdf4"
    got = by_name(recording)
    assert list(got) == ["speed", "rpm", "torque", "gear_text"]  # master channels skipped
    for name, (times, values, unit) in channels.items():
        channel = got[name]
        expected_ns = START_NS + np.rint(np.asarray(times) * 1e9).astype(np.int64)
        np.testing.assert_array_equal(channel.timestamps_ns, expected_ns)
        assert channel.timestamps_ns.dtype == np.int64
        assert channel.unit == unit
        if name == "gear_text":
            assert channel.values.dtype == object
            assert channel.values.tolist() == ["P", "R", "N", "D", "D\u00e9"]
        else:
            np.testing.assert_array_equal(channel.values, values)
    assert got["speed"].values.dtype == np.float64
    assert got["rpm"].values.dtype == np.int64
    assert got["speed"].comment == "vehicle speed"
    assert recording.metadata == {"comment": "test drive", "vin": "WVW<&>1", "driver": "anon"}
    assert recording.consents == CONSENTS
    assert recording.start_ns == START_NS


def test_mdf4_repeated_names_are_disambiguated_by_group(tmp_path: Path) -> None:
    times = np.arange(3) * 0.1
    path = samples.write_mdf4(
        tmp_path / "dup.mf4",
        {"speed": (times, np.arange(3.0), "km/h")},
        START_NS,
        groups=[
            {"speed": (times + 0.05, np.array([7.0, 8.0, 9.0]), "m/s"), "other": (times + 0.05, np.ones(3), None)},
            {"speed": (times, np.array([1, 2, 3], dtype=np.int8), None)},
        ],
    )
    got = by_name(read_recording(path))
    assert list(got) == ["speed", "speed@1", "other", "speed@2"]
    assert got["speed@1"].unit == "m/s"
    np.testing.assert_array_equal(got["speed@1"].values, [7.0, 8.0, 9.0])
    np.testing.assert_array_equal(got["speed@2"].values, [1, 2, 3])


def test_mdf4_applies_conversions_and_drops_invalid_samples(tmp_path: Path) -> None:
    from asammdf import MDF, Signal

    times = np.arange(4) * 0.1
    mdf = MDF(version="4.10")
    mdf.append(
        [
            Signal(np.arange(4, dtype=np.uint8), times, name="linear", unit="V", conversion={"a": 2.0, "b": 1.0}),
            Signal(
                np.array([0, 1, 0, 1], dtype=np.uint8),
                times,
                name="state",
                conversion={"val_0": 0, "text_0": b"off", "val_1": 1, "text_1": b"on"},
            ),
            Signal(np.arange(4.0), times, name="flaky", invalidation_bits=np.array([False, True, False, False])),
        ]
    )
    mdf.header.abs_time = START_NS
    path = tmp_path / "conv.mf4"
    mdf.save(path, overwrite=True)
    mdf.close()
    got = by_name(read_recording(path))
    np.testing.assert_array_equal(got["linear"].values, [1.0, 3.0, 5.0, 7.0])
    assert got["state"].values.tolist() == ["off", "on", "off", "on"]
    np.testing.assert_array_equal(got["flaky"].values, [0.0, 2.0, 3.0])
    np.testing.assert_array_equal(got["flaky"].timestamps_ns - START_NS, [0, 200_000_000, 300_000_000])


def _mdf_with(tmp_path: Path, *, times: np.ndarray, comment: str | None = None, time_flags: int = 2) -> Path:
    from asammdf import MDF, Signal

    mdf = MDF(version="4.10")
    mdf.append([Signal(np.arange(len(times), dtype=np.float64), times, name="x")])
    mdf.header.abs_time = START_NS
    mdf.header.time_flags = time_flags
    if comment is not None:
        mdf.header.comment = comment
    path = tmp_path / "special.mf4"
    mdf.save(path, overwrite=True)
    mdf.close()
    return path


def test_mdf4_refuses_repeated_times_local_time_and_bad_header(tmp_path: Path) -> None:
    malformed(_mdf_with(tmp_path, times=np.array([0.0, 0.1, 0.1, 0.2])), "channel 'x'", "sample 2", "repeats")
    malformed(_mdf_with(tmp_path, times=np.array([0.0, 0.2, 0.1])), "sample 2", "goes back")
    malformed(_mdf_with(tmp_path, times=np.arange(2) * 0.1, time_flags=1), "local time")
    bad_json = (
        '<HDcomment><TX>x</TX><common_properties><e name="trustlane.consent">[{</e></common_properties></HDcomment>'
    )
    malformed(_mdf_with(tmp_path, times=np.arange(2) * 0.1, comment=bad_json), "trustlane.consent", "not valid JSON")
    dtd = '<!DOCTYPE x [<!ENTITY a "b">]><HDcomment><TX>&a;</TX></HDcomment>'
    with pytest.raises(MalformedInput, match="DTD"):
        parse_header_comment(tmp_path / "f.mf4", dtd)
    with pytest.raises(MalformedInput, match="not well-formed XML"):
        parse_header_comment(tmp_path / "f.mf4", "<HDcomment><TX>x</HDcomment>")


def test_mdf4_plain_text_comment_and_nested_properties(tmp_path: Path) -> None:
    recording = read_recording(_mdf_with(tmp_path, times=np.arange(2) * 0.1, comment="just text"))
    assert recording.metadata == {"comment": "just text"}
    xml = (
        '<HDcomment xmlns="http://www.asam.net/mdf/v4"><TX>t</TX><common_properties>'
        '<e name="a">1</e><tree name="vehicle"><e name="vin">V1</e></tree></common_properties></HDcomment>'
    )
    recording = read_recording(_mdf_with(tmp_path, times=np.arange(2) * 0.1, comment=xml))
    assert recording.metadata == {"comment": "t", "a": "1", "vehicle.vin": "V1"}


def test_mdf4_truncated_and_corrupt_files_name_the_file(tmp_path: Path) -> None:
    path = samples.write_mdf4(tmp_path / "ok.mf4", mdf_channels(), START_NS)
    data = path.read_bytes()
    for cut in (30, 64, 200, len(data) // 2, len(data) - 8):
        damaged = tmp_path / f"cut{cut}.mf4"
        damaged.write_bytes(data[:cut])
        malformed(damaged)
    not_mdf = tmp_path / "fake.mf4"
    not_mdf.write_bytes(b"MDF     4.10    " + b"\xff" * 100)
    malformed(not_mdf)


def _patched(path: Path, block: bytes, occurrence: int, offset: int, value: int, size: int) -> Path:
    data = bytearray(path.read_bytes())
    start = -1
    for _ in range(occurrence + 1):
        start = data.index(block, start + 1)
    data[start + offset : start + offset + size] = value.to_bytes(size, "little")
    patched = path.with_name(f"patched-{path.name}")
    patched.write_bytes(bytes(data))
    return patched


def test_mdf4_layout_checks_refuse_impossible_declarations(tmp_path: Path) -> None:
    path = samples.write_mdf4(tmp_path / "ok.mf4", mdf_channels(), START_NS)
    # CG block: 24-byte header, 6 links, record id, then the record count
    malformed(_patched(path, b"##CG", 0, 24 + 6 * 8 + 8, 10**9, 8), "data group 0 claims 1000000000 records")
    # CN block: 24-byte header, 8 links, 4 one-byte fields, then the byte offset
    malformed(_patched(path, b"##CN", 1, 24 + 8 * 8 + 4, 4000, 4), "lies outside its 18-byte record")


def test_mdf4_in_process_parse_matches_the_sandboxed_one(tmp_path: Path) -> None:
    from trustlane.ingest.readers.mdf4 import read_mdf4

    path = samples.write_mdf4(tmp_path / "ok.mf4", mdf_channels(), START_NS, consents=CONSENTS)
    sandboxed, local = read_mdf4(path), read_mdf4(path, isolated=False)
    assert [c.name for c in sandboxed.channels] == [c.name for c in local.channels]
    for a, b in zip(sandboxed.channels, local.channels, strict=True):
        np.testing.assert_array_equal(a.timestamps_ns, b.timestamps_ns)
        assert a.values.tolist() == b.values.tolist()
    assert sandboxed.consents == local.consents == CONSENTS


# --- CSV --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("time_format", ["ns", "us", "ms", "s", "iso"])
def test_csv_round_trip_every_time_format(tmp_path: Path, time_format: samples.TimeFormat) -> None:
    channels = table_channels()
    path = samples.write_csv(tmp_path / "r.csv", channels, time_column="time", time_format=time_format)
    recording = read_recording(path)
    assert recording.format == "csv"
    got = by_name(recording)
    assert list(got) == list(channels)
    for name, (times, values, unit) in channels.items():
        np.testing.assert_array_equal(got[name].timestamps_ns, times)
        assert got[name].values.tolist() == np.asarray(values).tolist()
        assert got[name].unit == unit
    assert got["speed"].values.dtype == np.float64
    assert got["gear"].values.dtype == np.int64
    assert got["braking"].values.dtype == np.bool_
    assert got["driver_note"].values.dtype == object


@pytest.mark.parametrize(
    ("cell", "expected_ns"),
    [
        ("1700000000", 1_700_000_000_000_000_000),  # seconds
        ("1700000000.5", 1_700_000_000_500_000_000),
        ("1700000000.1234567894", 1_700_000_000_123_456_789),  # rounds at the 10th decimal
        ("1700000000.1234567895", 1_700_000_000_123_456_790),
        ("1.7e9", 1_700_000_000_000_000_000),
        ("1700000000123", 1_700_000_000_123_000_000),  # milliseconds
        ("1700000000123.25", 1_700_000_000_123_250_000),
        ("1700000000123456", 1_700_000_000_123_456_000),  # microseconds
        ("1700000000123456789", 1_700_000_000_123_456_789),  # nanoseconds
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123_456_789),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000_000_000),
        ("2023-11-14 22:13:20.5z", 1_700_000_000_500_000_000),
        ("100", 100_000_000_000),  # small numbers are seconds
    ],
)
def test_csv_time_units_by_magnitude(tmp_path: Path, cell: str, expected_ns: int) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"Timestamp,v\n{cell},1\n")
    channel = read_recording(path).channels[0]
    assert channel.timestamps_ns.tolist() == [expected_ns]


def test_csv_units_sparse_rows_bom_crlf_and_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(
        "\ufeffts, speed [km/h] ,temp[degC],note,flag[]\r\n"
        "1700000000.0, 1.5 ,,hello,TRUE\r\n"
        "1700000000.1,,-4,,\r\n"
        "1700000000.2,2.5,5,,false\r\n".encode()
    )
    got = by_name(read_recording(path))
    assert list(got) == ["speed", "temp", "note", "flag"]
    assert got["speed"].unit == "km/h"
    assert got["temp"].unit == "degC"
    assert got["flag"].unit is None
    base = 1_700_000_000_000_000_000
    assert (got["speed"].timestamps_ns - base).tolist() == [0, 200_000_000]
    assert got["speed"].values.tolist() == [1.5, 2.5]
    assert (got["temp"].timestamps_ns - base).tolist() == [100_000_000, 200_000_000]
    assert got["temp"].values.tolist() == [-4, 5]
    assert got["note"].values.tolist() == ["hello"]
    assert got["flag"].values.tolist() == [True, False]


def test_csv_header_only_gives_empty_channels(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("time_ns,a[V]\n")
    recording = read_recording(path)
    assert [(c.name, c.unit, len(c)) for c in recording.channels] == [("a", "V", 0)]


def test_csv_non_monotonic_and_duplicate_times_name_row_and_line(tmp_path: Path) -> None:
    path = tmp_path / "order.csv"
    path.write_text("t_ns,a\n\n1700000000000000000,1\n1700000000000000002,2\n\n1700000000000000001,3\n")
    malformed(path, "row 3 (line 6)", "goes back in time")
    path.write_text("t_ns,a\n1700000000000000000,1\n1700000000000000000,2\n")
    malformed(path, "row 2 (line 3)", "repeats")


def test_csv_refuses_naive_iso_times(tmp_path: Path) -> None:
    path = tmp_path / "naive.csv"
    path.write_text("time,a\n2023-11-14T22:13:20Z,1\n2023-11-14T22:13:21,2\n")
    error = malformed(path, "row 2 (line 3)", "no timezone")
    assert error.hint is not None and "Z" in error.hint and "offset" in error.hint


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("a,b\n1,2\n", ("time column",)),
        ("time,a\n1,2\n3,4,5\n", ("line 3", "3 fields")),
        ("time,a\n1,2\n3\n", ("line 3", "1 fields")),
        ("time,speed\n1,2\n2,fast\n", ("row 2 (line 3)", "column 'speed'", "'fast'", "not a number")),
        ("time,flag\n1,true\n2,maybe\n", ("row 2 (line 3)", "column 'flag'", "true or false")),
        ("time,a\n1,2\n,3\n", ("row 2 (line 3)", "no time")),
        ("time,a\n1,2\nsoon,3\n", ("row 2 (line 3)", "not a number")),
        ("time,a\n2023-11-14T22:13:20Z,2\nlater,3\n", ("row 2 (line 3)", "neither a number nor an ISO")),
        ("time,a\n2023-13-14T22:13:20Z,2\n", ("row 1 (line 2)", "not a valid time")),
        ("time,a\n99999999999999999999,1\n", ("row 1", "out of the range")),
        ("time,a,a\n1,2,3\n", ("columns 2 and 3", "'a'")),
        ("time,speed[km/h],speed[m/s]\n1,2,3\n", ("columns 2 and 3",)),
        ("time,,b\n1,2,3\n", ("column 2 has no name",)),
    ],
)
def test_csv_bad_input(tmp_path: Path, text: str, needles: tuple[str, ...]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    malformed(path, *needles, fmt="csv")


def test_csv_binary_and_non_utf8_content(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"time,a\n1,\0\0\0\n")
    malformed(path, "binary", fmt="csv")
    path.write_bytes(b"time,a\n1,2\n2,\xff\xfe\n")
    malformed(path, "line 3", "UTF-8", fmt="csv")
    path.write_bytes(b"")
    malformed(path, "empty", fmt="csv")


# --- Parquet ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("time_format", ["ns", "timestamp", "s"])
def test_parquet_round_trip_units_metadata_and_consents(tmp_path: Path, time_format: str) -> None:
    channels = table_channels()
    path = samples.write_parquet(
        tmp_path / "r.parquet",
        channels,
        time_format=time_format,  # type: ignore[arg-type]
        metadata={"vin": "V1"},
        consents=CONSENTS,
    )
    recording = read_recording(path)
    assert recording.format == "parquet"
    got = by_name(recording)
    for name, (times, values, unit) in channels.items():
        np.testing.assert_array_equal(got[name].timestamps_ns, times)
        assert got[name].values.tolist() == np.asarray(values).tolist()
        assert got[name].unit == unit
    assert recording.metadata == {"vin": "V1"}
    assert recording.consents == CONSENTS


def test_parquet_float_seconds_and_suffix_units(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    table = pa.table({"time": pa.array([1_700_000_000.25, 1_700_000_000.5]), "v[A]": pa.array([1, None], pa.int32())})
    pq.write_table(table, path)
    channel = read_recording(path).channels[0]
    assert channel.name == "v" and channel.unit == "A"
    assert channel.timestamps_ns.tolist() == [1_700_000_000_250_000_000]
    assert channel.values.tolist() == [1]


def test_parquet_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"t_ns": pa.array([2, 1], pa.int64()), "a": pa.array([1.0, 2.0])}), path)
    malformed(path, "row 2", "goes back")
    pq.write_table(pa.table({"timestamp": pa.array([1, 2], pa.timestamp("ms")), "a": [1, 2]}), path)
    malformed(path, "no timezone")
    pq.write_table(pa.table({"time": pa.array([1, 2], pa.int64()), "a": pa.array([[1], [2]])}), path)
    malformed(path, "column 'a'", "not a signal")
    pq.write_table(pa.table({"x": pa.array([1, 2])}), path)
    malformed(path, "no time column")
    consent = {b"trustlane.consent": json.dumps([{"category": "c", "legal_basis": "consent"}]).encode()}
    pq.write_table(pa.table({"time": pa.array([1, 2])}).replace_schema_metadata(consent), path)
    malformed(path, "trustlane.consent", "item 1", "missing granted_ns")
    data = samples.write_parquet(tmp_path / "ok.parquet", table_channels()).read_bytes()
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(data[:8] + b"\x55" * (len(data) - 16) + data[-8:])
    malformed(damaged, fmt="parquet")
    damaged.write_bytes(data[: len(data) // 2])
    malformed(damaged, fmt="parquet")


# --- candump ----------------------------------------------------------------------------------------------------


def test_candump_decodes_like_cantools_with_the_hyundai_dbc(tmp_path: Path) -> None:
    import cantools

    hyundai = shared_path("vectors", "dbc", "hyundai_2015_ccan.dbc")
    database = cantools.database.load_file(str(hyundai))
    rng = np.random.default_rng(7)
    frames: list[CanFrame | RawCanFrame] = []
    for i in range(60):
        frames.append(CanFrame(START_NS + i * 20_000_000, "SCC12", {"TakeOverReq": i % 2, "aReqMax": -3.5 + i * 0.01}))
        frames.append(CanFrame(START_NS + i * 10_000_000 + 1, "WHL_SPD11", {"WHL_SPD_FL": 12.5 + i, "WHL_SPD_RR": 3}))
        frames.append(RawCanFrame(START_NS + i * 10_000_000 + 2, 0x2B0, rng.bytes(5)))  # SAS11
        frames.append(RawCanFrame(START_NS + i * 10_000_000 + 3, 0x7A1, rng.bytes(3)))  # not in the DBC
    path = samples.write_candump(tmp_path / "h.log", hyundai, frames)
    recording = read_recording(path, dbc=hyundai)
    assert recording.format == "candump"
    assert recording.metadata["undecoded_frames"] == "60"
    assert recording.metadata["undecoded_ids"] == "0x7A1"
    got = by_name(recording)
    take_over = got["SCC12.TakeOverReq"]
    assert take_over.values.tolist() == [i % 2 for i in range(60)]
    assert (take_over.timestamps_ns - START_NS).tolist() == [i * 20_000_000 for i in range(60)]
    assert got["SCC12.aReqMax"].unit == "m/s^2"
    assert got["WHL_SPD11.WHL_SPD_FL"].unit == "km/h"
    lines = path.read_text().splitlines()
    for name, frame_id in (("SCC12", 0x421), ("WHL_SPD11", 0x386), ("SAS11", 0x2B0)):
        message = database.get_message_by_frame_id(frame_id)
        payloads = [
            bytes.fromhex(line.split("#")[1]) for line in lines if line.split()[2].startswith(f"{frame_id:03X}#")
        ]
        for signal in message.signals:
            expected = [message.decode(p, decode_choices=False)[signal.name] for p in payloads]
            channel = got[f"{name}.{signal.name}"]
            assert channel.values.tolist() == pytest.approx(expected, rel=0, abs=0), signal.name
            assert channel.unit == (signal.unit or None)


def test_vectorised_decoding_matches_cantools_for_every_signal(tmp_path: Path, dbc: Path) -> None:
    import cantools

    from trustlane.ingest.readers.can_decode import decode
    from trustlane.ingest.readers.dbc import load_dbc

    databases = [dbc]
    for name in ("hyundai_2015_ccan.dbc", "ford_fusion_2018_adas.dbc", "mercedes_benz_e350_2010.dbc"):
        candidate = shared_path("vectors", "dbc", name)
        databases.append(candidate)
    rng = np.random.default_rng(3)
    for path in databases:
        reference = cantools.database.load_file(str(path), strict=False)
        layouts = load_dbc(path)
        for message in reference.messages:
            layout = layouts.messages[(message.frame_id, message.is_extended_frame)]
            payloads = rng.integers(0, 256, size=(64, message.length), dtype=np.uint8)
            if message.is_multiplexed():
                payloads[::2, 0] = rng.integers(0, 2, size=32)  # multiplexer values the DBCs use
            decoded = decode(layout, payloads)
            for row in range(len(payloads)):
                try:
                    expected = message.decode(payloads[row].tobytes(), decode_choices=False)
                except Exception:  # cantools refuses multiplexer values it does not know
                    continue
                for signal in message.signals:
                    values, mask = decoded[signal.name]
                    assert bool(mask[row]) == (signal.name in expected), (path.name, message.name, signal.name)
                    if signal.name in expected:
                        ours = values[int(mask[:row].sum())]
                        want = expected[signal.name]
                        assert ours == want or (np.isnan(ours) and np.isnan(want)), (message.name, signal.name)


def test_candump_fd_extended_floats_mux_and_buses(tmp_path: Path, dbc: Path) -> None:
    frames: list[CanFrame | RawCanFrame] = [
        CanFrame(START_NS, "EXTENDED", {"Value": -123456, "Mode": 7}),
        CanFrame(START_NS + 1, "FLOATS", {"F32": 1.5, "F32b": 2.0}),
        CanFrame(START_NS + 2, "DOUBLE", {"F64": -0.1}),
        CanFrame(START_NS + 3, "MUXED", {"Mux": 0, "A": 12.3, "Common": 5}),
        CanFrame(START_NS + 4, "MUXED", {"Mux": 1, "B": -7, "Common": 6}),
        CanFrame(START_NS + 5, "FDMSG", {"Wide": 2**63 + 5, "WideBE": 12345678901234, "WideSigned": -5, "Tail": 9}),
        CanFrame(START_NS + 6, "CHOICES", {"Gear": 3}),
        CanFrame(START_NS + 7, "CHOICES", {"Gear": 1}, bus="can1"),
        CanFrame(START_NS + 8, "MOTOROLA", {"SignedBig": -100.5, "Counter": 9, "Temp": -12.5, "LongBE": 4000000000}),
    ]
    path = samples.write_candump(tmp_path / "x.log", dbc, frames)
    text = path.read_text()
    assert "00000101#" in text and "400##0" in text
    got = by_name(read_recording(path, dbc=dbc))
    assert got["EXTENDED.Value"].values.tolist() == [-123456]
    assert got["EXTENDED.Mode"].values.tolist() == [7]
    assert got["FLOATS.F32"].values.tolist() == [1.5]
    assert got["FLOATS.F32b"].values.tolist() == [2.0]  # raw 0.5 scaled by 2, plus 1
    assert got["DOUBLE.F64"].values.tolist() == [-0.1]
    assert got["MUXED.A"].values.tolist() == pytest.approx([12.3])
    assert (got["MUXED.A"].timestamps_ns - START_NS).tolist() == [3]
    assert got["MUXED.B"].values.tolist() == [-7]
    assert got["MUXED.Common"].values.tolist() == [5, 6]
    assert got["FDMSG.Wide"].values.tolist() == [float(2**63 + 5)]
    assert got["FDMSG.WideBE"].values.tolist() == [12345678901234]
    assert got["FDMSG.WideSigned"].values.tolist() == [-5]
    assert got["FDMSG.Tail"].values.tolist() == [9]
    assert got["CHOICES.Gear"].values.tolist() == [3]  # the numeric value, not "D"
    assert got["CHOICES.Gear@can1"].values.tolist() == [1]
    assert got["MOTOROLA.SignedBig"].values.tolist() == [-100.5]
    assert got["MOTOROLA.Counter"].values.tolist() == [9]
    assert got["MOTOROLA.Temp"].values.tolist() == pytest.approx([-12.5])
    assert got["MOTOROLA.Temp"].comment == "Coolant temperature"
    assert got["MOTOROLA.LongBE"].values.tolist() == [4000000000]


def test_candump_accepts_blank_lines_direction_and_nanosecond_stamps(tmp_path: Path, dbc: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("\n(1700000000.000001) can0 500#03 R\n\n(1700000000.000001002) can0 500#01 T\r\n")
    got = by_name(read_recording(path, dbc=dbc))
    assert got["CHOICES.Gear"].timestamps_ns.tolist() == [1_700_000_000_000_001_000, 1_700_000_000_000_001_002]
    assert got["CHOICES.Gear"].values.tolist() == [3, 1]


@pytest.mark.parametrize(
    ("lines", "needles"),
    [
        (["(1.000000) can0 500#01", "(1.000000) can0 500#02"], ("line 2", "repeats the timestamp", "line 1")),
        (["(1.000002) can0 500#01", "(1.000001) can0 500#02"], ("line 2", "goes back in time")),
        (["(1.000000) can0 500#0102"], ("line 1", "DBC mismatch", "CHOICES", "1 bytes", "has 2")),
        (["(1.000000) can0 500#01", "garbage here"], ("line 2", "not a candump log line")),
        (["(1.000000) can0 500#R"], ("line 1", "remote (RTR)")),
        (["(1.000000) can0 20000080#0000000000000000"], ("line 1", "error frame")),
        (["(1.000000) can0 500#012"], ("line 1", "odd number of hex digits")),
        (["(1.000000) can0 500#010203040506070809"], ("line 1", "more than 8 bytes")),
        (["(1.000000) can0 400##0" + "00" * 9], ("line 1", "CAN FD payload")),
        (["(1.000000) can0 5000#01"], ("line 1", "bad CAN ID")),
        (["(1.0x0000) can0 500#01"], ("line 1", "bad timestamp")),
        (["(1.000000) can0 500#01 X"], ("line 1", "trailing field")),
        (["(1.000000) can0 500###01"], ("line 1", "CAN XL")),
        (["(99999999999.000000) can0 500#01"], ("line 1",)),
        (["", "  "], ("no frames",)),
    ],
)
def test_candump_bad_input(tmp_path: Path, dbc: Path, lines: list[str], needles: tuple[str, ...]) -> None:
    path = tmp_path / "bad.log"
    path.write_text("\n".join(lines) + "\n")
    malformed(path, *needles, fmt="candump", dbc=dbc)


def test_candump_needs_a_usable_dbc(tmp_path: Path, dbc: Path) -> None:
    path = samples.write_candump(tmp_path / "x.log", dbc, [CanFrame(START_NS, "CHOICES", {"Gear": 1})])
    error = malformed(path, "CAN database")
    assert error.hint is not None and "--dbc" in error.hint
    broken = tmp_path / "broken.dbc"
    broken.write_text("BO_ this is not a dbc\n")
    with pytest.raises(MalformedInput, match=r"broken\.dbc"):
        read_recording(path, dbc=broken)
    with pytest.raises(UsageError, match=r"missing\.dbc"):
        read_recording(path, dbc=tmp_path / "missing.dbc")


def test_candump_binary_content(tmp_path: Path, dbc: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"(1.000000) can0 500#01\n(1.000001) can0 \x00\x1f\xff#01\n")
    malformed(path, "line 2", fmt="candump", dbc=dbc)
    path.write_bytes(b"(1.000000) can0 500#01\n(1.000001) can\xff 500#01\n")
    malformed(path, "line 2", fmt="candump", dbc=dbc)


# --- MCAP -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_mcap_round_trip_flattening_metadata_and_consents(tmp_path: Path, compression: str) -> None:
    messages = [
        ("/vehicle", START_NS + 2000, {"speed": 3.5, "gear": 2, "lights": {"low": True, "mode": "auto"}}),
        ("/vehicle", START_NS + 1000, {"speed": 1.25, "gear": 1, "lights": {"low": False, "mode": None}}),
        ("/imu", START_NS + 1500, {"accel": {"x": 0.5, "y": -1}, "samples": [1, 2, 3]}),
        ("/imu", START_NS + 2500, {"accel": {"x": 1, "y": -2}}),
    ]
    path = samples.write_mcap(
        tmp_path / "r.mcap",
        messages,
        metadata={"vin": "V9", "driver": "anon"},
        consents=CONSENTS,
        compression=compression,  # type: ignore[arg-type]
    )
    recording = read_recording(path)
    assert recording.format == "mcap"
    got = by_name(recording)
    assert (got["/vehicle/speed"].timestamps_ns - START_NS).tolist() == [1000, 2000]  # ordered by log time
    assert got["/vehicle/speed"].values.tolist() == [1.25, 3.5]
    assert got["/vehicle/gear"].values.dtype == np.int64
    assert got["/vehicle/lights.low"].values.tolist() == [False, True]
    assert got["/vehicle/lights.mode"].values.tolist() == ["auto"]
    assert (got["/vehicle/lights.mode"].timestamps_ns - START_NS).tolist() == [2000]
    assert got["/imu/accel.x"].values.dtype == np.float64  # int and float mixed
    assert got["/imu/accel.x"].values.tolist() == [0.5, 1.0]
    assert recording.metadata == {"vin": "V9", "driver": "anon", "skipped_fields": "/imu/samples"}
    assert recording.consents == CONSENTS


def test_mcap_bad_input(tmp_path: Path) -> None:
    path = samples.write_mcap(tmp_path / "p.mcap", [("/a", 1, {"x": 1})], message_encoding="protobuf")
    error = malformed(path, "'/a'", "protobuf", "json")
    assert error.hint
    path = samples.write_mcap(tmp_path / "d.mcap", [("/a", 5, {"x": 1}), ("/a", 5, {"x": 2})])
    malformed(path, "'/a/x'", "log time 5", "repeats")
    path = samples.write_mcap(tmp_path / "k.mcap", [("/a", 5, {"x": 1}), ("/a", 6, {"x": "one"})])
    malformed(path, "'/a'", "log time 6", "field 'x'")
    ok = samples.write_mcap(tmp_path / "ok.mcap", [("/a", i, {"x": i}) for i in range(20)]).read_bytes()
    for cut in (4, 20, len(ok) // 2, len(ok) - 3):
        truncated = tmp_path / f"t{cut}.mcap"
        truncated.write_bytes(ok[:cut])
        malformed(truncated, fmt="mcap")


def test_mcap_invalid_json_and_consent_record(tmp_path: Path) -> None:
    from mcap.writer import Writer

    path = tmp_path / "j.mcap"
    with open(path, "wb") as out:
        writer = Writer(out)
        writer.start()
        channel = writer.register_channel("/a", "json", 0)
        writer.add_message(channel, 1, b"{not json", 1)
        writer.finish()
    malformed(path, "'/a'", "not valid JSON")
    with open(path, "wb") as out:
        writer = Writer(out)
        writer.start()
        writer.add_metadata("trustlane.consent", {"records": "[]"})
        writer.finish()
    malformed(path, "trustlane.consent", "consents")


# --- consent records --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{}", "must be a JSON list"),
        ("[1]", "expected an object"),
        ('[{"category": "c", "legal_basis": "b", "granted_ns": 1, "typo": 2}]', "unknown key(s) typo"),
        ('[{"category": "c", "legal_basis": "b"}]', "missing granted_ns"),
        ('[{"category": "c", "legal_basis": "b", "granted_ns": "1"}]', "granted_ns must be an integer"),
        ('[{"category": "c", "legal_basis": "b", "granted_ns": true}]', "granted_ns must be an integer"),
        ('[{"category": "", "legal_basis": "b", "granted_ns": 1}]', "category must be a non-empty string"),
        ('[{"category": "c", "legal_basis": "b", "granted_ns": 5, "expires_ns": 5}]', "is not after"),
        ("[" * 100000, "not valid JSON"),
    ],
)
def test_consent_records_are_checked(text: str, needle: str) -> None:
    with pytest.raises(MalformedInput, match=r"src\.bin") as caught:
        parse_consents(text, source=Path("src.bin"), carrier="somewhere")
    assert needle in caught.value.message


def test_every_failure_is_a_trustlane_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("time,a\n1,2\n1,3\n")
    with pytest.raises(TrustlaneError):
        read_recording(path)


def test_mdf4_damaged_file_in_process_leaves_no_open_file_or_copy(tmp_path: Path) -> None:
    import gc
    import tempfile

    from trustlane.ingest.readers.mdf4 import read_mdf4

    path = samples.write_mdf4(tmp_path / "ok.mf4", mdf_channels(), START_NS)
    data = path.read_bytes()
    before = set(Path(tempfile.gettempdir()).glob("*_cut.mf4"))
    damaged = tmp_path / "cut.mf4"
    for cut in (200, len(data) // 2, len(data) - 8):
        damaged.write_bytes(data[:cut])
        with pytest.raises(MalformedInput, match=r"cut\.mf4"):
            read_mdf4(damaged, isolated=False)
    gc.collect()  # a file left open would raise ResourceWarning here (warnings are errors)
    assert set(Path(tempfile.gettempdir()).glob("*_cut.mf4")) == before
