"""Segment layout v2: one time column and one column per signal, for signals sampled at the same instants.

Signals of one recording usually share their clock (an MDF4 data group, a CSV row, a CAN message). Stored
long-form (layout v1, see :mod:`.segments`) each timestamp is repeated once per signal and a signal column is
added; stored wide, the times are written once and each signal is a column of its own. With the decimal
integers below, quantised sensor data encodes about twice as fast into half the bytes. The table::

    t_ns    int64                      nanoseconds since the Unix epoch, UTC (the union of the signals' times)
    <path>  float64 | int64 | string   one nullable column per signal, named by its path, in path order;
                                       null where the signal has no sample at that time

A numeric signal whose values are all exactly decimal numbers of at most ``_MAX_PLACES`` places (most sensor
values: raw integers times a decimal factor) is stored as the integers ``value × 10^places`` with the field
metadata ``trustlane.decimals = places``; reading divides by ``10^places``, which gives back the very same
float64 bits (checked when writing, see :func:`decimal_places`). Integers and flags are stored with 0 places.

The wide layout is chosen only where it does not waste space (see :func:`wide_table`); everything it stores is
read back as the long-form table of layout v1 by :func:`long_table`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from trustlane.ingest.model import Signal

LAYOUT = b"v2"
TIME_COLUMN = "t_ns"
DECIMALS = b"trustlane.decimals"
_MAX_PLACES = 9
_SCALES = tuple(float(10**places) for places in range(_MAX_PLACES + 1))  # each exact in float64
_MIN_ROWS = 128  # fewer rows: a column's own metadata costs more than the repeated timestamps save
_MIN_DENSITY = 2 / 3  # at least this share of the table's cells hold a sample (the rest are nulls)
_PROBE = 256  # values looked at to judge whether a dictionary pays
_PLACES_PROBE = 32  # values looked at to guess the decimal places (then checked on all)

Part = tuple[Signal, int, int]  # a signal and the index range of its samples in the segment


def decimal_places(values: npt.NDArray[np.float64]) -> tuple[int, npt.NDArray[np.int64]] | None:
    """The fewest decimal places (≤ ``_MAX_PLACES``) that store every one of ``values`` exactly, with the
    integers ``values × 10^places``; None when no number of places does."""
    return exact_decimals(values, guess_places([values])[0])


def guess_places(columns: Sequence[npt.NDArray[np.float64]]) -> list[int | None]:
    """For each column, the fewest decimal places that store its first values exactly (None: none does or the
    column is empty) — a guess for :func:`exact_decimals`. One pass for all columns: a segment has many."""
    full = [n for n, c in enumerate(columns) if len(c)]
    guesses: list[int | None] = [None] * len(columns)
    if not full:
        return guesses
    probes = np.stack([np.resize(columns[n][:_PLACES_PROBE], _PLACES_PROBE) for n in full])  # short ones repeat
    scales = np.array(_SCALES)[:, np.newaxis, np.newaxis]
    with np.errstate(over="ignore", invalid="ignore"):
        back = np.rint(probes * scales).astype(np.int64).astype(np.float64) / scales
    fits = (back.view(np.int64) == probes.view(np.int64)).all(axis=2)  # places × columns
    for column, (n, places) in enumerate(zip(full, fits.argmax(axis=0).tolist(), strict=True)):
        guesses[n] = places if fits[places, column] else None
    return guesses


def exact_decimals(values: npt.NDArray[np.float64], guess: int | None) -> tuple[int, npt.NDArray[np.int64]] | None:
    """The fewest decimal places from ``guess`` on that store all ``values`` exactly, with the integers; the
    choice depends only on the samples."""
    for places in range(guess, _MAX_PLACES + 1) if guess is not None else ():
        integers = _scaled(values, places)
        if integers is not None:
            return places, integers
    return None


def _scaled(values: npt.NDArray[np.float64], places: int) -> npt.NDArray[np.int64] | None:
    """``values × 10^places`` as integers when dividing them by ``10^places`` gives back the very same bits (so
    NaN, infinities, -0.0 and numbers too large for int64 are refused)."""
    scale = _SCALES[places]
    with np.errstate(over="ignore", invalid="ignore"):
        buffer = np.multiply(values, scale)
        np.rint(buffer, out=buffer)
        integers = buffer.astype(np.int64)
    np.divide(integers, scale, out=buffer)  # exactly what reading does
    return integers if np.array_equal(buffer.view(np.int64), values.view(np.int64)) else None


def decimals_to_floats(integers: npt.NDArray[np.int64], places: int) -> npt.NDArray[np.float64]:
    """The values stored as ``integers`` with ``places`` decimal places."""
    values: npt.NDArray[np.float64] = integers / _SCALES[places]
    return values


def _repeats(values: npt.NDArray[np.float64]) -> bool:
    """Whether a dictionary pays for these floats: few distinct values among the first ones."""
    probe = values[:_PROBE]
    return len(probe) > 0 and len(np.unique(probe)) <= 0.75 * len(probe)


def _clock(parts: Sequence[Part]) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.intp] | None]] | None:
    """The table's time column and, per part, the rows of its samples (None: every row)."""
    slices: dict[tuple[int, int, int], npt.NDArray[np.int64]] = {}
    for s, lo, hi in parts:
        slices.setdefault((id(s.timestamps_ns), lo, hi), s.timestamps_ns[lo:hi])
    distinct = list(slices.values())
    first = distinct[0]
    if all(len(t) == len(first) and np.array_equal(t, first) for t in distinct[1:]):
        return first, [None] * len(parts)
    times = np.unique(np.concatenate(distinct))
    samples = sum(hi - lo for _, lo, hi in parts)
    if samples < _MIN_DENSITY * len(times) * len(parts):
        return None
    return times, [np.searchsorted(times, s.timestamps_ns[lo:hi]) for s, lo, hi in parts]


def _spread(
    values: npt.NDArray[np.generic], rows: npt.NDArray[np.intp] | None, count: int
) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None]:
    """``values`` placed at ``rows`` of a column of ``count`` rows, and the mask of the empty rows."""
    if rows is None:
        return values, None
    full = np.zeros(count, dtype=values.dtype) if values.dtype != object else np.full(count, None, dtype=object)
    full[rows] = values
    empty = np.ones(count, dtype=bool)
    empty[rows] = False
    return full, empty


def _column(
    path: str, values: npt.NDArray[np.generic], guess: int | None, rows: npt.NDArray[np.intp] | None, count: int
) -> tuple[pa.Field, pa.Array, str | None]:
    """One signal's field, column and Parquet encoding ("dictionary" for a dictionary, None for plain)."""
    if values.dtype == object:
        texts, empty = _spread(values, rows, count)
        return pa.field(path, pa.string()), pa.array(texts, type=pa.string(), mask=empty), "dictionary"
    numbers = values.astype(np.float64, copy=False)
    decimal = exact_decimals(numbers, guess)
    if decimal is not None:
        places, integers = decimal
        full, empty = _spread(integers, rows, count)
        field = pa.field(path, pa.int64(), metadata={DECIMALS: str(places).encode()})
        return field, pa.array(full, type=pa.int64(), mask=empty), "DELTA_BINARY_PACKED"
    full, empty = _spread(numbers, rows, count)
    encoding = "dictionary" if _repeats(numbers) else None
    return pa.field(path, pa.float64()), pa.array(full, type=pa.float64(), mask=empty), encoding


def wide_table(parts: Sequence[Part]) -> tuple[pa.Table, dict[str, str], list[str]] | None:
    """The wide table of one segment's ``parts`` (in path order) with its column encodings and dictionary
    columns, or None where the long form suits better: signals on clocks of their own (a wide table would be
    mostly nulls), few rows, or paths that would not make distinct column names."""
    paths = [s.path for s, _, _ in parts]
    if not parts or len(set(paths)) != len(paths) or TIME_COLUMN in paths:
        return None
    clock = _clock(parts)
    if clock is None or len(clock[0]) < _MIN_ROWS:
        return None
    times, rows = clock
    fields = [pa.field(TIME_COLUMN, pa.int64(), nullable=False)]
    arrays = [pa.array(times, type=pa.int64())]
    encodings = {TIME_COLUMN: "DELTA_BINARY_PACKED"}
    dictionary: list[str] = []
    values = [s.values[lo:hi] for s, lo, hi in parts]
    numeric = [n for n, v in enumerate(values) if v.dtype != object]
    guesses: list[int | None] = [None] * len(parts)
    for n, guess in zip(
        numeric, guess_places([values[n][:_PLACES_PROBE].astype(np.float64) for n in numeric]), strict=True
    ):
        guesses[n] = guess
    for path, column, guess, where in zip(paths, values, guesses, rows, strict=True):
        field, array, encoding = _column(path, column, guess, where, len(times))
        fields.append(field)
        arrays.append(array)
        if encoding == "dictionary":
            dictionary.append(path)
        elif encoding is not None:
            encodings[path] = encoding
    schema = pa.schema(fields, metadata={b"trustlane.segment": LAYOUT})
    return pa.Table.from_arrays(arrays, schema=schema), encodings, dictionary


def long_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A wide (v2) table as the long-form rows of layout v1 (``schema``): sorted by path, then time."""
    times = table.column(TIME_COLUMN).to_numpy()
    paths: list[str] = []
    counts: list[int] = []
    stamps: list[npt.NDArray[np.int64]] = []
    values: list[pa.Array] = []
    texts: list[pa.Array] = []
    for field in table.schema:
        if field.name == TIME_COLUMN:
            continue
        column = table.column(field.name).combine_chunks()
        present = column.drop_null()
        stamps.append(times if column.null_count == 0 else times[column.is_valid().to_numpy(zero_copy_only=False)])
        paths.append(field.name)
        counts.append(len(present))
        if pa.types.is_string(field.type):
            values.append(pa.nulls(len(present), pa.float64()))
            texts.append(present)
            continue
        numbers = present.to_numpy()
        places = (field.metadata or {}).get(DECIMALS)
        if places is not None:
            numbers = decimals_to_floats(numbers, int(places))
        values.append(pa.array(numbers, type=pa.float64()))
        texts.append(pa.nulls(len(present), pa.string()))
    if not paths:
        return schema.empty_table()
    indices = np.repeat(np.arange(len(paths), dtype=np.int32), counts)
    path_column = pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(paths, type=pa.string()))
    return pa.Table.from_arrays(
        [path_column, pa.array(np.concatenate(stamps)), pa.concat_arrays(values), pa.concat_arrays(texts)],
        schema=schema,
    )
