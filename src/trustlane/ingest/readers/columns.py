"""Turn one signal column of a table into sample values and a mask of the rows that have a sample.

CSV cells are text: the first non-empty cell of a column decides its kind. ``true``/``false`` (any case) makes
a flag column, a number (``12``, ``-0.5``, ``1e3``, ``nan``, ``inf``) a numeric column (int64 when every cell is
an integer, float64 otherwise), anything else a text column. Every later cell must be of the same kind;
empty cells (or cells of only blanks in flag/numeric columns) are rows without a sample.
Parquet columns keep their stored type.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from trustlane.errors import MalformedInput
from trustlane.ingest.readers.base import describe_value
from trustlane.ingest.readers.checks import INT64_MAX
from trustlane.ingest.readers.plaintext import plain_number_values
from trustlane.ingest.readers.timecol import RowNamer
from trustlane.ingest.readers.values import AnyArray

BoolArray = npt.NDArray[np.bool_]

NUMBER_PATTERN = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)$"
_INTEGER_PATTERN = r"^[+-]?\d+$"
_NUMBER = re.compile(NUMBER_PATTERN)
_FLAGS = ("true", "false")


def _mask(array: pa.Array | pa.ChunkedArray) -> BoolArray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _valid(column: pa.Array | pa.ChunkedArray) -> BoolArray:
    """Which rows are not null, straight from the validity bitmaps (cheaper than converting is_valid())."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = []
    for chunk in chunks:
        bitmap = chunk.buffers()[0] if len(chunk) else None
        if not chunk.null_count or bitmap is None:
            parts.append(np.full(len(chunk), not chunk.null_count, dtype=np.bool_))
            continue
        bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
        parts.append(bits[chunk.offset : chunk.offset + len(chunk)].astype(np.bool_))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)


def _refuse(where: str, name_row: RowNamer, row: int, value: object, expected: str) -> MalformedInput:
    return MalformedInput(
        f"{where}: {name_row(row)}: {describe_value(value)} is not {expected} like the column's first value",
        hint="a CSV column holds one kind of value (numbers, true/false, or text); fix the cell or leave it empty",
    )


def _numbers(cells: pa.Array) -> AnyArray:
    if pc.all(pc.match_substring_regex(cells, _INTEGER_PATTERN)).as_py():
        try:
            ints = pc.cast(pc.replace_substring_regex(cells, r"^\+", ""), pa.int64())
            return np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.int64)
        except (pa.ArrowInvalid, OverflowError):
            pass  # too large for int64: keep them as floats
    return np.asarray(pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def text_column_values(
    column: pa.Array | pa.ChunkedArray, *, where: str, name_row: RowNamer
) -> tuple[AnyArray, BoolArray]:
    """Values and row mask of a CSV column read as text; ``where`` names the file and column."""
    # Work on the cells that hold text only: multi-rate CSVs are mostly empty (null) cells in their slower columns.
    rows = np.flatnonzero(_valid(column))
    cells = pc.drop_null(column)
    if isinstance(cells, pa.ChunkedArray):
        cells = cells.combine_chunks()
    present = np.zeros(len(column), dtype=np.bool_)
    present[rows] = True
    plain = plain_number_values(cells)
    if plain is not None:
        return plain, present
    trimmed = pc.utf8_trim_whitespace(cells)
    nonblank = _mask(pc.greater(pc.utf8_length(trimmed), 0))
    filled_rows = rows[nonblank]
    filled = np.zeros(len(column), dtype=np.bool_)
    filled[filled_rows] = True
    if not len(filled_rows):
        return np.empty(0, dtype=np.float64), filled
    kept = pc.filter(trimmed, pa.array(nonblank))
    first = str(kept[0].as_py())
    if first.lower() in _FLAGS:
        lowered = pc.utf8_lower(kept)
        flag = _mask(pc.is_in(lowered, value_set=pa.array(_FLAGS)))
        if not flag.all():
            row = int(filled_rows[int(np.argmin(flag))])
            raise _refuse(where, name_row, row, column[row].as_py(), "true or false")
        flags = pc.equal(lowered, "true")
        return np.asarray(flags.to_numpy(zero_copy_only=False), dtype=np.bool_), filled
    if _NUMBER.match(first):
        number = _mask(pc.match_substring_regex(kept, NUMBER_PATTERN))
        if not number.all():
            row = int(filled_rows[int(np.argmin(number))])
            raise _refuse(where, name_row, row, column[row].as_py(), "a number")
        return _numbers(kept), filled
    return np.asarray(cells.to_numpy(zero_copy_only=False), dtype=object), present


def typed_column_values(column: pa.Array, *, where: str) -> tuple[AnyArray, BoolArray]:
    """Values and row mask of a Parquet column of a stored type; ``where`` names the file and column."""
    array = column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
    kind = array.type
    present = _valid(array)
    if pa.types.is_null(kind):
        return np.empty(0, dtype=np.float64), present
    cells = pc.drop_null(array)
    if pa.types.is_boolean(kind):
        return np.asarray(cells.to_numpy(zero_copy_only=False), dtype=np.bool_), present
    if pa.types.is_integer(kind):
        if pa.types.is_uint64(kind) and len(cells) and pc.max(cells).as_py() > INT64_MAX:
            return np.asarray(cells.cast(pa.float64()).to_numpy(), dtype=np.float64), present
        return np.asarray(cells.cast(pa.int64()).to_numpy(), dtype=np.int64), present
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return np.asarray(cells.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64), present
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.asarray(cells.to_numpy(zero_copy_only=False), dtype=object), present
    raise MalformedInput(
        f"{where}: has type {kind}, which is not a signal",
        hint="store signals as numbers, booleans or strings, one value per row",
    )
