"""Cut signals into time segments and write each as a Parquet (zstd) table.

A segment holds every sample whose timestamp falls in one window ``[k·L, (k+1)·L)`` of the epoch
(``L`` = segment length, default 10 s), so segments of live telemetry and of recorded files line up.
Two layouts, named in the schema metadata ``trustlane.segment``; :func:`read_segment` reads both as the rows
of v1. Layout v1 is long-form, one row per sample, sorted by signal then time::

    path   dictionary<int32, string>   VSS (or overlay / vendor) path
    t_ns   int64                       nanoseconds since the Unix epoch, UTC
    value  float64 (nullable)          numeric and boolean samples (true = 1.0)
    text   string (nullable)           text samples

Layout v2 (:mod:`.segment_wide`) has one time column and one column per signal; it is written where the
segment's signals share their sample times, v1 elsewhere (signals on clocks of their own, few samples).

A segment is addressed by the SHA-256 of its Parquet bytes. The layout and the encodings are a pure function
of the samples (see :func:`_values_repeat` and :mod:`.segment_wide`), so the same samples always give the same
segment and digest.
"""

from __future__ import annotations

import hashlib
import io
import logging
import multiprocessing
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from trustlane.errors import IntegrityError, UsageError
from trustlane.ingest.model import Signal
from trustlane.ingest.segment_wide import LAYOUT as WIDE_LAYOUT
from trustlane.ingest.segment_wide import TIME_COLUMN, long_table, wide_table

log = logging.getLogger("trustlane.ingest.segments")

DEFAULT_SEGMENT_NS = 10_000_000_000
_INT64_MAX = (1 << 63) - 1
SCHEMA = pa.schema(
    [
        pa.field("path", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("t_ns", pa.int64(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("text", pa.string()),
    ],
    metadata={b"trustlane.segment": b"v1"},
)


@dataclass(frozen=True)
class Segment:
    window: int  # k: the segment covers [k·L, (k+1)·L)
    t_start_ns: int  # first sample
    t_end_ns: int  # last sample
    rows: int
    paths: tuple[str, ...]
    parquet: bytes
    digest: str  # SHA-256 hex of ``parquet``


def _columns(signal: Signal, lo: int, hi: int) -> tuple[pa.Array, pa.Array]:
    values = signal.values[lo:hi]
    if values.dtype == object:
        return pa.nulls(hi - lo, pa.float64()), pa.array(values.tolist(), type=pa.string())
    return pa.array(values.astype(np.float64, copy=False), type=pa.float64()), pa.nulls(hi - lo, pa.string())


def segment_signals(
    signals: Sequence[Signal], segment_ns: int = DEFAULT_SEGMENT_NS, *, workers: int | None = None
) -> Iterator[Segment]:
    """Yield the segments of ``signals`` in time order (each signal's timestamps strictly increasing).

    pyarrow holds the interpreter lock while it writes Parquet, so threads cannot share the encoding: a large
    recording is encoded by ``workers`` forked processes (default: one per available core), which see the
    samples without a copy and send back only the encoded segments.
    """
    if segment_ns <= 0:
        raise UsageError("the segment length must be positive", hint="e.g. --segment-seconds 10")
    ordered = sorted((s for s in signals if len(s.timestamps_ns)), key=lambda s: s.path)
    if not ordered:
        return
    # Signals of one recording often share one timestamp array: cut each distinct array once.
    cuts: dict[int, dict[int, tuple[int, int]]] = {}
    for s in ordered:
        if id(s.timestamps_ns) not in cuts:
            cuts[id(s.timestamps_ns)] = _window_ranges(s.timestamps_ns, segment_ns)
    windows = sorted(set().union(*(cuts[id(s.timestamps_ns)] for s in ordered)))
    jobs = [
        (window, [(s, *cuts[id(s.timestamps_ns)][window]) for s in ordered if window in cuts[id(s.timestamps_ns)]])
        for window in windows
    ]
    if workers is None:
        workers = available_cores()
    rows = sum(hi - lo for _, parts in jobs for _, lo, hi in parts)
    if workers <= 1 or len(jobs) < 2 * workers or rows < _FORK_ROWS or not hasattr(os, "fork"):
        for window, parts in jobs:
            yield _build(window, parts)
        return
    yield from _build_forked(jobs, workers)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


_FORK_ROWS = 2_000_000  # below this, starting processes costs more than they save
_STALL_S = 120.0  # no segment from the encoders for this long: they are stuck
_jobs: list[tuple[int, list[tuple[Signal, int, int]]]] = []  # what forked encoders read (inherited, not sent)
_forking = threading.Lock()


_BATCH = 4  # windows an encoder takes at a time: fewer, larger messages to the parent


def _build_batch(first: int) -> list[Segment]:
    return [_build(*job) for job in _jobs[first : first + _BATCH]]


def _build_forked(jobs: list[tuple[int, list[tuple[Signal, int, int]]]], workers: int) -> Iterator[Segment]:
    with _forking:  # one forked encode at a time: its encoders read the module's job list
        yield from _build_forked_locked(jobs, workers)


def _build_forked_locked(jobs: list[tuple[int, list[tuple[Signal, int, int]]]], workers: int) -> Iterator[Segment]:
    global _jobs
    context = multiprocessing.get_context("fork")
    _jobs = jobs
    try:
        with warnings.catch_warnings():
            # the encoders only run numpy and pyarrow on inherited arrays and touch no lock of another thread
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")
            pool = context.Pool(workers)
        done = 0
        try:
            results = pool.imap(_build_batch, range(0, len(jobs), _BATCH))
            while done < len(jobs):
                batch = results.next(timeout=_STALL_S)
                done += len(batch)
                yield from batch
        except multiprocessing.TimeoutError:
            # A forked encoder that stalls (a lock another thread held at the fork) must not hang the ingest.
            log.warning("segment encoders stalled; encoding the remaining %d segments here", len(jobs) - done)
        finally:
            pool.terminate()
            pool.join()
        for window, parts in jobs[done:]:
            yield _build(window, parts)
    finally:
        _jobs = []


def _window_ranges(timestamps: npt.NDArray[np.int64], segment_ns: int) -> dict[int, tuple[int, int]]:
    """Window k -> the index range of the (sorted) timestamps in it, for the windows that hold samples only:
    one binary search per window, so neither a long recording nor a long gap costs a pass per sample."""
    ranges: dict[int, tuple[int, int]] = {}
    lo, count = 0, len(timestamps)
    while lo < count:
        window = int(timestamps[lo]) // segment_ns
        end = (window + 1) * segment_ns
        hi = count if end > _INT64_MAX else int(np.searchsorted(timestamps, end, side="left"))
        ranges[window] = (lo, hi)
        lo = hi
    return ranges


_PROBE = 256  # samples looked at per signal to decide whether values repeat
_REPEAT_RATIO = 0.75  # at most this share of distinct values in the probe: a dictionary pays
_DICTIONARY_LIMIT = 512 << 10  # bytes; a larger dictionary is abandoned for plain encoding


def _sample(values: npt.NDArray[np.generic], lo: int, hi: int) -> npt.NDArray[np.float64] | None:
    """The first samples of one signal's run in the segment (contiguous: smooth signals revisit values
    nearby), or None for a text signal."""
    if values.dtype == object:
        return None
    return values[lo : min(hi, lo + _PROBE)].astype(np.float64, copy=False)


def _value_encoding_probe(samples: Sequence[npt.NDArray[np.float64] | None]) -> tuple[int, int]:
    numbers = [s for s in samples if s is not None]
    if not numbers:
        return 0, 0
    probe = np.concatenate(numbers)
    return len(probe), len(np.unique(probe))


def _values_repeat(samples: Sequence[npt.NDArray[np.float64] | None]) -> bool:
    """Whether the value column repeats enough for a dictionary: judged on a fixed probe of each signal, so the
    choice (and the segment's bytes) depends only on the samples."""
    size, distinct = _value_encoding_probe(samples)
    return size > 0 and distinct <= _REPEAT_RATIO * size


def _long_table(parts: Sequence[tuple[Signal, int, int]]) -> tuple[pa.Table, dict[str, str], list[str]]:
    """The v1 table of ``parts`` with its column encodings and dictionary columns."""
    paths = [s.path for s, _, _ in parts]
    counts = np.array([hi - lo for _, lo, hi in parts], dtype=np.int32)
    indices = np.repeat(np.arange(len(parts), dtype=np.int32), counts)
    path_col = pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(paths, type=pa.string()))
    t_col = pa.array(np.concatenate([s.timestamps_ns[lo:hi] for s, lo, hi in parts]), type=pa.int64())
    value_parts, text_parts = zip(*(_columns(s, lo, hi) for s, lo, hi in parts), strict=True)
    table = pa.Table.from_arrays(
        [path_col, t_col, pa.concat_arrays(list(value_parts)), pa.concat_arrays(list(text_parts))], schema=SCHEMA
    )
    # Values get a dictionary only where they repeat (quantised sensor data): smaller and about 15 % faster to
    # write than zstd over plain float64s. Values that do not repeat are written plain (a dictionary that fills
    # up and is abandoned costs twice).
    repeating = _values_repeat([_sample(s.values, lo, hi) for s, lo, hi in parts])
    return table, {"t_ns": "DELTA_BINARY_PACKED"}, ["path", "value"] if repeating else ["path"]


def _build(window: int, parts: Sequence[tuple[Signal, int, int]]) -> Segment:
    table, encodings, dictionary = wide_table(parts) or _long_table(parts)
    sink = pa.BufferOutputStream()
    # Delta encoding turns regular timestamps (and smooth decimal values) into almost nothing.
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=1,
        use_dictionary=dictionary,
        dictionary_pagesize_limit=_DICTIONARY_LIMIT,
        column_encoding=encodings,
        write_statistics=False,
    )
    data = sink.getvalue().to_pybytes()
    return Segment(
        window=window,
        t_start_ns=min(int(s.timestamps_ns[lo]) for s, lo, _ in parts),
        t_end_ns=max(int(s.timestamps_ns[hi - 1]) for s, _, hi in parts),
        rows=sum(hi - lo for _, lo, hi in parts),
        paths=tuple(s.path for s, _, _ in parts),
        parquet=data,
        digest=hashlib.sha256(data).hexdigest(),
    )


def read_segment(parquet: bytes, paths: Sequence[str] | None = None) -> pa.Table:
    """The rows of a segment (long-form, layout v1, whatever its layout), optionally only some signals."""
    source = pq.ParquetFile(io.BytesIO(parquet))
    layout = (source.schema_arrow.metadata or {}).get(b"trustlane.segment", b"v1")
    if layout == WIDE_LAYOUT:
        names = source.schema_arrow.names
        if paths is not None:
            wanted = set(paths)
            names = [n for n in names if n == TIME_COLUMN or n in wanted]
        return long_table(source.read(columns=names), SCHEMA)
    if layout != b"v1":
        raise IntegrityError(
            f"segment layout {layout.decode(errors='replace')!r} is not one this trustlane reads",
            hint="upgrade trustlane to read data stored by a newer version",
        )
    table = source.read()
    if paths is not None:
        wanted = pa.array(list(paths), type=pa.string())
        mask = pa.compute.is_in(table.column("path").cast(pa.string()), value_set=wanted)
        table = table.filter(mask)
    return table
