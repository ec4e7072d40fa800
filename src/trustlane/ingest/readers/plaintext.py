"""Fast reading of columns of plain number text, straight from the bytes of an Arrow string array.

A CSV recording is mostly cells such as ``1748765100001000000`` or ``-0.592``. Checking each of millions of
cells with a regular expression costs seconds; checking which bytes occur, where the signs and points sit, and
letting Arrow's C++ casts do the conversion costs milliseconds. Each function here answers only for the plain
case it can prove equal to the careful reading in :mod:`.columns` and :mod:`.timecol`, and returns None for
anything else (blanks, empty cells, ``nan``, hex, ISO times, bad cells), which then takes the careful path with
its exact error messages.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from trustlane.ingest.model import TimeArray
from trustlane.ingest.readers.values import AnyArray

ByteArray = npt.NDArray[np.uint8]
IndexArray = npt.NDArray[np.int64]

_POINT, _PLUS, _MINUS = ord("."), ord("+"), ord("-")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
#: Headroom below the int64 limit (9.22e18 ns) within which the plain decimal path cannot overflow.
SAFE_NS = 9.0e18
_POWERS_OF_TEN = np.array([10**k for k in range(19)], dtype=np.int64)


def cell_bytes(cells: pa.Array) -> tuple[IndexArray, ByteArray]:
    """(offsets, bytes) of a string array without nulls: cell ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``."""
    offset_type = np.int64 if pa.types.is_large_string(cells.type) else np.int32
    _validity, offsets_buffer, data_buffer = cells.buffers()[:3]
    if offsets_buffer is None:  # an empty array may come without buffers
        return np.zeros(len(cells) + 1, dtype=np.int64), np.empty(0, dtype=np.uint8)
    raw = np.frombuffer(offsets_buffer, dtype=offset_type)[cells.offset : cells.offset + len(cells) + 1]
    offsets = raw.astype(np.int64)
    data = np.empty(0, dtype=np.uint8) if data_buffer is None else np.frombuffer(data_buffer, dtype=np.uint8)
    data = data[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def non_digits(data: ByteArray) -> IndexArray:
    """Positions of the bytes of ``data`` that are not ASCII digits (numbers are mostly digits: few of them)."""
    if not len(data) or (data.min() >= ord("0") and data.max() <= ord("9")):  # integers: two quick passes
        return np.empty(0, dtype=np.int64)
    positions: IndexArray = np.flatnonzero((data - np.uint8(ord("0"))) > 9)  # uint8 wraps bytes below "0"
    return positions


def only_bytes(data: ByteArray, allowed: bytes) -> bool:
    """Whether every byte of ``data`` is one of ``allowed``."""
    table = np.zeros(256, dtype=np.bool_)
    table[np.frombuffer(allowed, dtype=np.uint8)] = True
    return bool(table[data].all())


def plain_number_values(cells: pa.Array) -> AnyArray | None:
    """int64 or float64 values of non-null cells that are all plain numbers, else None.

    Plain: no empty cell and only the bytes ``0-9 + - . e E``. Arrow's casts accept exactly the decimal
    grammar of :data:`.columns.NUMBER_PATTERN` over those bytes (hex, ``nan(...)`` and blanks cannot occur),
    so a successful cast is the same check and the same values as the careful path. Integers keep int64 only
    when no cell has a point, exponent or ``+`` (the careful path handles ``+12`` and int64 overflow).
    """
    if not len(cells) or cells.null_count:
        return None
    offsets, data = cell_bytes(cells)
    others = data[non_digits(data)]
    if not np.all(offsets[1:] > offsets[:-1]) or not only_bytes(others, b"+-.eE"):
        return None
    if not _PLAIN_NUMBER.match(str(cells[0].as_py())):
        return None  # the first cell decides the column's kind: not a number, so text (or an error)
    if only_bytes(others, b"-"):
        target = pa.int64()
    elif only_bytes(others, b"+-"):
        return None  # integers with a "+": the careful path drops it and keeps them int64
    else:
        target = pa.float64()  # some cell has a point or an exponent: the column is float64
    try:
        converted = pc.cast(cells, target)
    except (pa.ArrowInvalid, OverflowError):
        return None
    dtype = np.int64 if target == pa.int64() else np.float64
    return np.asarray(converted.to_numpy(zero_copy_only=False), dtype=dtype)


def plain_digits(text: pa.Array) -> npt.NDArray[np.int64] | None:
    """int64 values of cells that are all digits and nothing else (a timestamp_ns column), else None."""
    if not len(text) or text.null_count:
        return None
    offsets, data = cell_bytes(text)
    if not np.all(offsets[1:] > offsets[:-1]) or len(non_digits(data)):
        return None
    try:
        values = pc.cast(text, pa.int64())
    except (pa.ArrowInvalid, OverflowError):
        return None  # beyond int64
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def _cells_of(positions: IndexArray, offsets: IndexArray) -> IndexArray:
    """The cell each of the (increasing) byte ``positions`` belongs to."""
    if len(positions) == len(offsets) - 1:  # one per cell, as a point in decimal times usually is: check that
        each = np.arange(len(positions), dtype=np.int64)
        if np.all((positions >= offsets[:-1]) & (positions < offsets[1:])):
            return each
    cells: IndexArray = np.searchsorted(offsets, positions, side="right") - 1
    return cells


def plain_decimal_ns(text: pa.Array, power: int) -> TimeArray | None:
    """Exact nanoseconds of decimal text without exponent, ``value * 10**power``, else None.

    The caller makes sure that every ``|value| * 10**power`` stays below :data:`SAFE_NS`.
    Each cell must be ``[+-]digits[.digits]`` (or ``[+-].digits``) with no blanks. Fraction digits beyond
    ``power`` are dropped and the first dropped digit rounds half away from zero, as :mod:`.timecol` does.
    The point and the dropped digits are cut out of the bytes, the remaining digit strings converted by one
    Arrow cast, and each result scaled by the power of ten its kept fraction lacks.
    """
    if not len(text) or text.null_count:
        return None
    offsets, data = cell_bytes(text)
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    others = non_digits(data)
    if not np.all(lengths > 0) or not only_bytes(data[others], b"+-."):
        return None
    signs = others[data[others] != _POINT]
    if len(signs) and not np.array_equal(starts[_cells_of(signs, offsets)], signs):
        return None  # a sign that does not lead its cell
    points = others[data[others] == _POINT]
    point_cells = _cells_of(points, offsets)
    if len(points) > 1 and not np.all(np.diff(point_cells) > 0):
        return None  # two points in one cell
    signed = np.isin(data[starts], (_PLUS, _MINUS))
    pointed = np.zeros(len(text), dtype=np.bool_)
    pointed[point_cells] = True
    if not np.all(lengths - signed - pointed > 0):
        return None  # a cell without a digit
    fraction = np.zeros(len(text), dtype=np.int64)
    fraction[point_cells] = ends[point_cells] - points - 1
    dropped = np.maximum(fraction - power, 0)
    rounding = np.zeros(len(text), dtype=np.int64)
    long_cells = np.flatnonzero(dropped)
    if len(long_cells):
        rounding[long_cells] = data[ends[long_cells] - dropped[long_cells]] >= ord("5")
    negative = data[starts] == _MINUS
    pluses = signs[data[signs] == _PLUS]
    if not len(points) and not len(pluses):  # integers, as in a timestamp_ns column: cast as they are
        try:
            whole = pc.cast(text, pa.int64())
        except (pa.ArrowInvalid, OverflowError):
            return None
        ints: TimeArray = np.asarray(whole.to_numpy(zero_copy_only=False), dtype=np.int64) * _POWERS_OF_TEN[power]
        return ints
    digits = _cut(data, points, pluses, ends[long_cells], dropped[long_cells])
    kept = lengths - pointed - (signed & ~negative) - dropped
    new_offsets = np.concatenate(([0], np.cumsum(kept))).astype(np.int64)
    # ".4" in nanoseconds keeps no digit at all: such a cell is null here and 0 below
    empty = kept - negative == 0
    validity = pa.py_buffer(np.packbits(~empty, bitorder="little")) if empty.any() else None
    compact = pa.LargeStringArray.from_buffers(
        len(text), pa.py_buffer(new_offsets), pa.py_buffer(digits), validity, int(empty.sum())
    )
    try:
        values = np.asarray(pc.fill_null(pc.cast(compact, pa.int64()), 0).to_numpy(), dtype=np.int64)
    except (pa.ArrowInvalid, OverflowError):
        return None
    scale = _POWERS_OF_TEN[power - (fraction - dropped)]
    ns: TimeArray = values * scale + np.where(negative, -rounding, rounding)
    return ns


def _cut(
    data: ByteArray, points: IndexArray, pluses: IndexArray, long_ends: IndexArray, long_dropped: IndexArray
) -> ByteArray:
    """``data`` without the points, the plus signs and the last ``long_dropped`` bytes before each ``long_ends``."""
    keep = np.ones(len(data), dtype=np.bool_)
    keep[points] = False
    keep[pluses] = False
    if len(long_ends):
        # +1 where a dropped stretch starts, -1 past its end (stretches neither overlap nor touch a start):
        # the running sum is 1 exactly inside the stretches
        edges = np.zeros(len(data) + 1, dtype=np.int8)
        edges[long_ends - long_dropped] = 1
        edges[long_ends] = -1
        keep &= np.cumsum(edges[:-1], dtype=np.int8) == 0
    kept: ByteArray = data[keep]
    return kept
