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
from trustlane.ingest.readers.timecol import RowNamer
from trustlane.ingest.readers.values import AnyArray

BoolArray = npt.NDArray[np.bool_]

NUMBER_PATTERN = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)$"
_INTEGER_PATTERN = r"^[+-]?\d+$"
_NUMBER = re.compile(NUMBER_PATTERN)
_FLAGS = ("true", "false")


def _mask(array: pa.Array) -> BoolArray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=np.bool_)


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


def text_column_values(column: pa.Array, *, where: str, name_row: RowNamer) -> tuple[AnyArray, BoolArray]:
    """Values and row mask of a CSV column read as text; ``where`` names the file and column."""
    trimmed = pc.utf8_trim_whitespace(column)
    filled = _mask(pc.greater(pc.utf8_length(trimmed), 0))
    if not filled.any():
        return np.empty(0, dtype=np.float64), filled
    first = str(trimmed[int(np.argmax(filled))].as_py())
    if first.lower() in _FLAGS:
        lowered = pc.utf8_lower(trimmed)
        wrong = filled & ~_mask(pc.is_in(lowered, value_set=pa.array(_FLAGS)))
        if wrong.any():
            row = int(np.argmax(wrong))
            raise _refuse(where, name_row, row, column[row].as_py(), "true or false")
        flags = pc.equal(pc.filter(lowered, pa.array(filled)), "true")
        return np.asarray(flags.to_numpy(zero_copy_only=False), dtype=np.bool_), filled
    if _NUMBER.match(first):
        # Check only the filled cells: multi-rate CSVs are mostly empty cells in their slower columns.
        cells = pc.filter(trimmed, pa.array(filled))
        bad = ~_mask(pc.match_substring_regex(cells, NUMBER_PATTERN))
        if bad.any():
            row = int(np.flatnonzero(filled)[int(np.argmax(bad))])
            raise _refuse(where, name_row, row, column[row].as_py(), "a number")
        return _numbers(cells), filled
    present = _mask(column.is_valid())
    text = pc.filter(column, pa.array(present)).to_numpy(zero_copy_only=False)
    return np.asarray(text, dtype=object), present


def typed_column_values(column: pa.Array, *, where: str) -> tuple[AnyArray, BoolArray]:
    """Values and row mask of a Parquet column of a stored type; ``where`` names the file and column."""
    array = column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
    kind = array.type
    present = _mask(array.is_valid())
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
