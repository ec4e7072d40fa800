"""Turn the time column of a table into int64 nanoseconds since the Unix epoch (UTC).

Accepted values:

* numbers (integers, floats, or decimal text such as ``1700000000.123456``) since the epoch, in a unit decided
  by the largest magnitude in the column: above 1e17 they are nanoseconds, above 1e14 microseconds, above 1e11
  milliseconds, otherwise seconds. Decimal text is converted exactly (rounded half away from zero to the
  nearest nanosecond); binary floats carry their own precision (about 0.24 µs at today's epoch seconds);
* ISO 8601 text with a timezone (``2023-11-14T22:13:20.5Z``, ``...+01:00``); text without one is refused;
* Parquet timestamps with a timezone (timestamps without one are local times and are refused).

Empty (null) times are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from trustlane.errors import MalformedInput
from trustlane.ingest.model import TimeArray
from trustlane.ingest.readers.base import describe_value
from trustlane.ingest.readers.checks import INT64_MAX
from trustlane.ingest.readers.plaintext import SAFE_NS, plain_decimal_ns, plain_digits

#: Names a row for a message, from its 0-based index: ``"row 5 (line 6)"``.
RowNamer = Callable[[int], str]

NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DECIMAL_PATTERN = r"^(?P<sign>[+-]?)(?P<int>\d*)(?:\.(?P<frac>\d*))?$"
_ISO_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}([.,]\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$"
_ZONE_PATTERN = r"([Zz]|[+-]\d{2}(:?\d{2})?)$"
_NUMBER = re.compile(NUMBER_PATTERN)

_HINT_NUMBERS = (
    "write times as integer nanoseconds, or seconds/milliseconds/microseconds since the Unix epoch, "
    "or ISO 8601 text with a timezone such as 2023-11-14T22:13:20.5Z"
)
_HINT_RANGE = "int64 nanoseconds reach from 1677 to 2262; check the time column's unit"


def unit_power(max_abs: float) -> int:
    """Power of ten that turns a column whose largest magnitude is ``max_abs`` into nanoseconds."""
    if max_abs > 1e17:
        return 0
    if max_abs > 1e14:
        return 3
    if max_abs > 1e11:
        return 6
    return 9


def _first(mask: pa.Array | pa.ChunkedArray) -> int:
    """Index of the first True in a boolean array (nulls count as False); the caller knows there is one."""
    values = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return int(np.argmax(values))


def _out_of_range(where: str, name_row: RowNamer, row: int, value: object) -> MalformedInput:
    return MalformedInput(
        f"{where}: {name_row(row)}: time {describe_value(value)} is out of the range of int64 nanoseconds",
        hint=_HINT_RANGE,
    )


def _scale_ints(values: npt.NDArray[np.int64], where: str, name_row: RowNamer) -> TimeArray:
    if not len(values):
        return values.astype(np.int64)
    magnitudes = np.abs(values.astype(np.float64))
    peak = int(np.argmax(magnitudes))
    factor = 10 ** unit_power(float(magnitudes[peak]))
    if abs(int(values[peak])) * factor > INT64_MAX:
        raise _out_of_range(where, name_row, peak, int(values[peak]))
    return values.astype(np.int64) * np.int64(factor)


def _scale_floats(values: npt.NDArray[np.float64], where: str, name_row: RowNamer) -> TimeArray:
    if not len(values):
        return values.astype(np.int64)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.argmin(finite))
        raise MalformedInput(f"{where}: {name_row(row)}: time {values[row]} is not a number", hint=_HINT_NUMBERS)
    magnitudes = np.abs(values)
    peak = int(np.argmax(magnitudes))
    factor = 10 ** unit_power(float(magnitudes[peak]))
    if float(magnitudes[peak]) * factor >= 9.2e18:
        raise _out_of_range(where, name_row, peak, float(values[peak]))
    whole = np.floor(values)
    fraction = np.rint((values - whole) * factor).astype(np.int64)
    ns: TimeArray = whole.astype(np.int64) * np.int64(factor) + fraction
    return ns


def _decimal_text(text: pa.Array, where: str, name_row: RowNamer) -> TimeArray:
    """Exact conversion of decimal text (no exponent) to nanoseconds."""
    approx = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    magnitudes = np.abs(approx)
    peak = int(np.argmax(magnitudes)) if len(approx) else 0
    power = unit_power(float(magnitudes[peak])) if len(approx) else 9
    factor = 10**power
    parts = pc.extract_regex(text, _DECIMAL_PATTERN)
    digits = pc.binary_join_element_wise("0", parts.field("int"), "")
    try:
        whole = pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, OverflowError):
        raise _out_of_range(where, name_row, peak, text[peak].as_py()) from None
    if len(whole) and int(np.abs(whole).max()) >= INT64_MAX // factor:
        raise _out_of_range(where, name_row, peak, text[peak].as_py())
    padded = pc.utf8_rpad(pc.fill_null(parts.field("frac"), ""), width=power + 1, padding="0")
    rounding = pc.cast(pc.utf8_slice_codeunits(padded, power, power + 1), pa.int64()).to_numpy(zero_copy_only=False)
    ns = whole * np.int64(factor) + (rounding >= 5).astype(np.int64)
    if power:
        ns += pc.cast(pc.utf8_slice_codeunits(padded, 0, power), pa.int64()).to_numpy(zero_copy_only=False)
    negative = pc.equal(parts.field("sign"), "-").to_numpy(zero_copy_only=False)
    signed: TimeArray = np.where(negative, -ns, ns).astype(np.int64)
    return signed


def _iso_text(text: pa.Array, where: str, name_row: RowNamer) -> TimeArray:
    iso = pc.match_substring_regex(text, _ISO_PATTERN)
    if not pc.all(iso).as_py():
        row = _first(pc.invert(iso))
        raise MalformedInput(
            f"{where}: {name_row(row)}: {describe_value(text[row].as_py())} is neither a number nor an ISO 8601 time",
            hint=_HINT_NUMBERS,
        )
    zoned = pc.match_substring_regex(text, _ZONE_PATTERN)
    if not pc.all(zoned).as_py():
        row = _first(pc.invert(zoned))
        raise MalformedInput(
            f"{where}: {name_row(row)}: time {describe_value(text[row].as_py())} has no timezone",
            hint="add Z (UTC) or an offset such as +01:00 to every time",
        )
    normalised = pc.replace_substring(pc.utf8_upper(text), ",", ".")
    try:
        stamps = pc.cast(normalised, pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for row in range(len(normalised)):
            try:
                pc.cast(normalised[row : row + 1], pa.timestamp("ns", tz="UTC"))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise MalformedInput(
                    f"{where}: {name_row(row)}: {describe_value(text[row].as_py())} is not a valid time ({exc})",
                    hint=_HINT_NUMBERS,
                ) from None
        raise MalformedInput(f"{where}: the times could not be read", hint=_HINT_NUMBERS) from None
    return np.asarray(pc.cast(stamps, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _plain_times(text: pa.Array) -> TimeArray | None:
    """The common case, fast: plain decimal text well inside the int64 range (None: take the careful path)."""
    digits = plain_digits(text)
    if digits is not None:  # no sign, point or exponent: the magnitudes are the values themselves
        peak = float(digits.max())
        power = unit_power(peak)
        return digits * np.int64(10**power) if peak * 10**power < SAFE_NS else None
    try:
        approx = np.abs(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # not all plain numbers: the careful path names the cell that is not
    peak = float(approx.max())
    power = unit_power(peak)
    if not peak * 10**power < SAFE_NS:  # also refuses NaN
        return None
    return plain_decimal_ns(text, power)


def _text_times(column: pa.Array, where: str, name_row: RowNamer) -> TimeArray:
    if not len(column):
        return np.empty(0, dtype=np.int64)
    plain = _plain_times(column)
    if plain is not None:
        return plain
    text = pc.utf8_trim_whitespace(column)
    if not _NUMBER.match(str(text[0].as_py())):
        return _iso_text(text, where, name_row)
    numeric = pc.match_substring_regex(text, NUMBER_PATTERN)
    if not pc.all(numeric).as_py():
        row = _first(pc.invert(numeric))
        raise MalformedInput(
            f"{where}: {name_row(row)}: time {describe_value(text[row].as_py())} is not a number", hint=_HINT_NUMBERS
        )
    if pc.any(pc.match_substring(text, "e", ignore_case=True)).as_py():
        return _scale_floats(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False), where, name_row)
    return _decimal_text(text, where, name_row)


def time_column_ns(column: pa.Array | pa.ChunkedArray, *, where: str, name_row: RowNamer) -> TimeArray:
    """Nanoseconds since the epoch for each row of ``column``; ``where`` names the file and column."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if array.null_count:
        row = _first(array.is_null())
        raise MalformedInput(f"{where}: {name_row(row)} has no time", hint="every row needs a time")
    kind = array.type
    if pa.types.is_integer(kind):
        if pa.types.is_uint64(kind) and len(array) and pc.max(array).as_py() > INT64_MAX:
            row = int(np.argmax(array.to_numpy()))
            raise _out_of_range(where, name_row, row, array[row].as_py())
        return _scale_ints(array.cast(pa.int64()).to_numpy(), where, name_row)
    if pa.types.is_floating(kind):
        return _scale_floats(array.cast(pa.float64()).to_numpy(zero_copy_only=False), where, name_row)
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise MalformedInput(
                f"{where}: timestamps have no timezone (local times)",
                hint="store the times as timestamps with tz='UTC' (or integer nanoseconds since the epoch)",
            )
        try:
            return np.asarray(array.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy(), dtype=np.int64)
        except pa.ArrowInvalid:
            raise MalformedInput(
                f"{where}: a time is out of the range of int64 nanoseconds", hint=_HINT_RANGE
            ) from None
    if pa.types.is_decimal(kind):
        array = array.cast(pa.string())
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return _text_times(array, where, name_row)
    raise MalformedInput(
        f"{where}: has type {kind}; expected numbers since the epoch or ISO 8601 text", hint=_HINT_NUMBERS
    )
