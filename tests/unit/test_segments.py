"""Segment encoding: the same samples give the same Parquet bytes whichever way they are encoded, and read back."""

from __future__ import annotations

import numpy as np
import pytest

from trustlane.errors import UsageError
from trustlane.ingest.model import Signal
from trustlane.ingest.segments import _values_repeat, _window_ranges, read_segment, segment_signals

SECOND = 1_000_000_000
START = 1_764_288_000 * SECOND


def signal(path: str, times: np.ndarray, values: np.ndarray) -> Signal:
    return Signal(path, None, times.astype(np.int64), values, path, (), True)


def fleet_of_signals(rows: int, quantised: bool) -> list[Signal]:
    rng = np.random.default_rng(3)
    times = START + np.arange(rows, dtype=np.int64) * 1_000_000  # 1 kHz, shared by every signal
    out = []
    for n in range(4):
        walk = np.cumsum(rng.normal(0, 0.01, rows))
        out.append(signal(f"Vehicle.S{n}", times, np.round(walk, 2) if quantised else walk))
    return out


@pytest.mark.parametrize("quantised", [True, False])
def test_forked_and_in_process_encoding_give_the_same_segments(quantised: bool) -> None:
    signals = fleet_of_signals(600_000, quantised)  # 2.4 M samples: large enough to be encoded by processes
    forked = list(segment_signals(signals, workers=2))
    local = list(segment_signals(signals, workers=1))
    assert [s.digest for s in forked] == [s.digest for s in local]
    assert [s.window for s in local] == sorted({int(t) // (10 * SECOND) for t in signals[0].timestamps_ns})
    lo, hi = _window_ranges(signals[0].timestamps_ns, 10 * SECOND)[local[3].window]
    for s in signals:
        rows = read_segment(local[3].parquet, [s.path])
        assert np.array_equal(rows.column("t_ns").to_numpy(), s.timestamps_ns[lo:hi])
        assert np.array_equal(rows.column("value").to_numpy(), s.values[lo:hi])


def test_repeating_values_get_the_dictionary_and_others_do_not() -> None:
    steps = np.round(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 256)), 2)
    assert _values_repeat([steps, None])
    assert _values_repeat([np.zeros(256)])
    assert not _values_repeat([np.random.default_rng(1).normal(size=256)])
    assert not _values_repeat([None])  # only text: no value column to encode


def test_windows_skip_long_gaps_and_edges_stay_exact() -> None:
    length = 10 * SECOND
    times = np.array([START, START + length - 1, START + length, START + 10**6 * length], dtype=np.int64)
    ranges = _window_ranges(times, length)
    first = START // length
    assert ranges == {first: (0, 2), first + 1: (2, 3), first + 10**6: (3, 4)}
    near_end = np.array([(1 << 63) - 2, (1 << 63) - 1], dtype=np.int64)
    assert list(_window_ranges(near_end, length).values()) == [(0, 2)]


def test_text_signals_and_signals_on_their_own_clocks() -> None:
    a = signal("Vehicle.Speed", START + np.arange(5) * SECOND * 3, np.arange(5.0))
    b = signal(
        "Vehicle.ADAS.ActiveAutonomyLevel", START + np.array([1, 25]) * SECOND, np.array(["SAE_2", "SAE_3"], object)
    )
    segments = list(segment_signals([a, b], workers=2))
    assert sum(s.rows for s in segments) == 7
    texts = [v for s in segments for v in read_segment(s.parquet).column("text").to_pylist() if v is not None]
    assert texts == ["SAE_2", "SAE_3"]


def test_segment_length_must_be_positive() -> None:
    with pytest.raises(UsageError, match="positive"):
        list(segment_signals([], 0))


def test_stalled_encoders_are_replaced_by_encoding_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import trustlane.ingest.segments as segments

    signals = fleet_of_signals(600_000, True)
    expected = [s.digest for s in segment_signals(signals, workers=1)]
    monkeypatch.setattr(segments, "_STALL_S", 1e-6)  # no encoder answers that fast: every wait times out
    assert [s.digest for s in segment_signals(signals, workers=2)] == expected
