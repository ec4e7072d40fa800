"""Segment layout v2 (one column per signal): chosen where it fits, exact, and read back as the rows of v1."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trustlane.errors import IntegrityError
from trustlane.ingest.model import Signal
from trustlane.ingest.segment_wide import decimal_places, decimals_to_floats, wide_table
from trustlane.ingest.segments import SCHEMA, _build, _long_table, read_segment, segment_signals

SECOND = 1_000_000_000
START = 1_764_288_000 * SECOND


def signal(path: str, times: np.ndarray, values: np.ndarray) -> Signal:
    return Signal(path, None, times.astype(np.int64), values, path, (), True)


def layout(parquet: bytes) -> bytes:
    metadata: dict[bytes, bytes] = pq.read_schema(io.BytesIO(parquet)).metadata or {}
    return metadata[b"trustlane.segment"]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a.view(np.int64), b.view(np.int64))


@pytest.mark.parametrize(
    ("values", "places"),
    [
        (np.array([1.0, -2.0, 3e15]), 0),
        (np.round(np.random.default_rng(1).normal(0, 50, 1000), 3), 3),
        (np.array([0.5] * 40 + [0.125]), 3),  # the probe alone would guess 1 place
        (np.array([0.1, 0.2, 0.30000000000000004]), None),  # not a short decimal
        (np.array([1.5, np.nan]), None),
        (np.array([1.5, np.inf]), None),
        (np.array([0.0, -0.0]), None),  # -0.0 would come back as 0.0
        (np.array([1e300, 2.0]), None),  # too large for int64
        (np.array([]), None),
    ],
)
def test_decimal_places_store_exactly_or_not_at_all(values: np.ndarray, places: int | None) -> None:
    found = decimal_places(values.astype(np.float64))
    assert (found[0] if found else None) == places
    if found is not None:
        assert same_bits(decimals_to_floats(found[1], found[0]), values.astype(np.float64))


def shared_clock_signals(rows: int = 2000) -> list[Signal]:
    rng = np.random.default_rng(5)
    times = START + np.arange(rows, dtype=np.int64) * 1_000_000
    return [
        signal("Vehicle.A", times, np.round(np.cumsum(rng.normal(0, 0.01, rows)), 3)),  # decimal
        signal("Vehicle.B", times, np.cumsum(rng.normal(0, 0.01, rows))),  # any float
        signal("Vehicle.C", times, rng.integers(0, 4, rows) / 3),  # repeating, not decimal
        signal("Vehicle.D", times, np.arange(rows) % 2 == 0),  # flags
        signal("Vehicle.E", times, np.arange(rows, dtype=np.int64) - 7),  # integers
        signal("Vehicle.F", times, np.array(["off", "on"] * (rows // 2), dtype=object)),  # text
    ]


def parts_of(signals: list[Signal]) -> list[tuple[Signal, int, int]]:
    return [(s, 0, len(s.timestamps_ns)) for s in sorted(signals, key=lambda s: s.path)]


def test_shared_clock_is_stored_wide_and_reads_back_as_the_long_rows() -> None:
    parts = parts_of(shared_clock_signals())
    segment = _build(0, parts)
    assert layout(segment.parquet) == b"v2"
    long, _, _ = _long_table(parts)
    assert read_segment(segment.parquet).equals(long)
    chosen = read_segment(segment.parquet, ["Vehicle.B", "Vehicle.F"])
    assert chosen.schema == SCHEMA
    assert set(chosen.column("path").to_pylist()) == {"Vehicle.B", "Vehicle.F"}
    assert segment.rows == long.num_rows and segment.paths == tuple(s.path for s, _, _ in parts)


def test_wide_segment_is_smaller_than_the_long_form() -> None:
    parts = parts_of(shared_clock_signals())
    long, encodings, dictionary = _long_table(parts)
    sink = pa.BufferOutputStream()
    pq.write_table(long, sink, compression="zstd", use_dictionary=dictionary, column_encoding=encodings)
    assert len(_build(0, parts).parquet) < sink.getvalue().size


def test_aligned_rates_share_a_wide_table_with_nulls() -> None:
    fast = START + np.arange(1000, dtype=np.int64) * 1_000_000
    slow = fast[::10]
    signals = [signal(f"Vehicle.Fast{n}", fast, np.arange(1000.0) / 4) for n in range(4)]
    signals.append(signal("Vehicle.Slow", slow, np.arange(100.0)))
    signals.append(signal("Vehicle.State", slow[::2], np.array(["a", "b"] * 25, dtype=object)))
    segment = _build(0, parts_of(signals))
    assert layout(segment.parquet) == b"v2"
    rows = read_segment(segment.parquet, ["Vehicle.Slow", "Vehicle.State"])
    slow_rows = rows.filter(pa.compute.equal(rows.column("path").cast(pa.string()), "Vehicle.Slow"))
    assert np.array_equal(slow_rows.column("t_ns").to_numpy(), slow)
    assert np.array_equal(slow_rows.column("value").to_numpy(), np.arange(100.0))
    state_rows = rows.filter(pa.compute.equal(rows.column("path").cast(pa.string()), "Vehicle.State"))
    assert np.array_equal(state_rows.column("t_ns").to_numpy(), slow[::2])
    assert state_rows.column("text").to_pylist() == ["a", "b"] * 25
    assert state_rows.column("value").null_count == 50


@pytest.mark.parametrize(
    "signals",
    [
        [  # clocks of their own: a wide table would be mostly nulls
            signal("Vehicle.A", START + np.arange(500) * 2_000_000, np.arange(500.0)),
            signal("Vehicle.B", START + 1 + np.arange(500) * 2_000_000, np.arange(500.0)),
        ],
        [signal("Vehicle.A", START + np.arange(20) * SECOND // 10, np.arange(20.0))],  # few rows
        [  # the same path twice (column names must differ)
            signal("Vehicle.A", START + np.arange(500) * 1_000_000, np.arange(500.0)),
            signal("Vehicle.A", START + np.arange(500) * 1_000_000, np.arange(500.0)),
        ],
    ],
)
def test_long_form_where_wide_does_not_fit(signals: list[Signal]) -> None:
    parts = parts_of(signals)
    assert wide_table(parts) is None
    segment = _build(0, parts)
    assert layout(segment.parquet) == b"v1"
    assert read_segment(segment.parquet).num_rows == sum(len(s.timestamps_ns) for s in signals)


def test_both_layouts_encode_the_same_way_forked_and_in_process() -> None:
    own_clocks = [  # for the first 100 s, signals on clocks of their own: those windows stay long-form
        signal(f"Vehicle.Own{n}", START + 1 + n + np.arange(100_000, dtype=np.int64) * 1_000_000, np.arange(1e5))
        for n in range(6)
    ]
    signals = shared_clock_signals(400_000) + own_clocks
    forked = list(segment_signals(signals, workers=2))
    local = list(segment_signals(signals, workers=1))
    assert [s.digest for s in forked] == [s.digest for s in local]
    assert [layout(s.parquet) for s in local] == [b"v1"] * 10 + [b"v2"] * 30


def test_an_unknown_layout_is_refused_clearly() -> None:
    table = pa.table({"t_ns": pa.array([1], pa.int64())}).replace_schema_metadata({b"trustlane.segment": b"v9"})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    with pytest.raises(IntegrityError, match="v9"):
        read_segment(sink.getvalue().to_pybytes())
