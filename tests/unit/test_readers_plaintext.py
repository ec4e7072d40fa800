"""The fast reading of plain number text must give exactly what the careful (regex) reading gives, or step aside."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustlane.errors import MalformedInput
from trustlane.ingest.readers import columns, timecol
from trustlane.ingest.readers.plaintext import cell_bytes, plain_decimal_ns, plain_digits, plain_number_values

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True)
NUMBER = re.compile(columns.NUMBER_PATTERN)
INTEGER = re.compile(r"^[+-]?\d+$")
DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")

number_like = st.text(alphabet="0123456789+-.eE", min_size=1, max_size=8)
plain_decimal = st.builds(
    lambda sign, whole, point, fraction: sign + whole + ("." + fraction if point else ""),
    st.sampled_from(["", "-", "+"]),
    st.text(alphabet="0123456789", max_size=11),
    st.booleans(),
    st.text(alphabet="0123456789", max_size=12),
)
any_cell = st.one_of(
    number_like,
    plain_decimal,
    st.sampled_from(["", " ", " 1", "2 ", "nan", "-inf", "nan(1)", "0x1F", "true", "FALSE", "1,5", "é", "1e"]),
)


def _expected_numbers(cells: list[str]) -> np.ndarray | None:
    """What the careful path makes of all-number cells (None where it would not read them as numbers)."""
    if not all(NUMBER.match(c) for c in cells):
        return None
    if all(INTEGER.match(c) for c in cells) and all(abs(int(c)) < 2**63 for c in cells):
        return np.array([int(c) for c in cells], dtype=np.int64)
    return np.array([float(c) for c in cells], dtype=np.float64)


@SETTINGS
@given(st.lists(number_like, min_size=1, max_size=6))
def test_plain_numbers_match_the_careful_reading(cells: list[str]) -> None:
    got = plain_number_values(pa.array(cells, type=pa.string()))
    if got is None:
        return  # the careful path reads it
    want = _expected_numbers(cells)
    assert want is not None, f"{cells} read as numbers, but they are not all numbers"
    assert got.dtype == want.dtype
    assert np.array_equal(got, want, equal_nan=True)


def test_plain_numbers_take_the_usual_columns() -> None:
    floats = plain_number_values(pa.array(["-0.592", "9.81", "1e3", "+.5", "7"]))
    assert floats is not None and floats.dtype == np.float64
    assert floats.tolist() == [-0.592, 9.81, 1000.0, 0.5, 7.0]
    ints = plain_number_values(pa.array(["-13", "0", "120"]))
    assert ints is not None and ints.dtype == np.int64 and ints.tolist() == [-13, 0, 120]


@pytest.mark.parametrize(
    "cells",
    [["1", ""], ["1", " 2"], ["nan", "1"], ["1", "0x1F"], ["1", "nan(1)"], ["+1", "2"], ["e", "1"], ["1", "1e"]],
)
def test_plain_numbers_step_aside_for_anything_else(cells: list[str]) -> None:
    assert plain_number_values(pa.array(cells)) is None


def _exact_ns(text: str, power: int) -> int:
    scaled = Decimal(text) * (Decimal(10) ** power)
    magnitude = int(scaled.copy_abs().quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return -magnitude if scaled < 0 else magnitude


@SETTINGS
@given(st.lists(plain_decimal, min_size=1, max_size=6), st.sampled_from([0, 3, 6, 9]))
def test_plain_decimals_are_exact(cells: list[str], power: int) -> None:
    valid = all(DECIMAL.match(c) for c in cells)
    in_range = valid and all(abs(Decimal(c)) * 10**power < Decimal("9e18") for c in cells)
    got = plain_decimal_ns(pa.array(cells, type=pa.string()), power)
    if not valid:
        assert got is None
    elif in_range:
        assert got is not None
        assert got.tolist() == [_exact_ns(c, power) for c in cells]


@pytest.mark.parametrize("cells", [["1.5", "1..5"], ["1-5"], ["+"], ["."], ["1.5 "], ["1e5"], [""], ["1.2.3"]])
def test_plain_decimals_refuse_what_is_not_one(cells: list[str]) -> None:
    assert plain_decimal_ns(pa.array(cells), 9) is None


def test_plain_decimals_round_half_away_from_zero() -> None:
    got = plain_decimal_ns(pa.array(["0.0000000005", "-0.0000000005", "-.4", "1.49"]), 9)
    assert got is not None and got.tolist() == [1, -1, -400_000_000, 1_490_000_000]
    assert plain_decimal_ns(pa.array([".5", "-.5", ".4"]), 0) is not None
    assert plain_decimal_ns(pa.array([".5", "-.5", ".4"]), 0).tolist() == [1, -1, 0]  # type: ignore[union-attr]


def test_cell_bytes_of_a_slice() -> None:
    offsets, data = cell_bytes(pa.array(["ab", "cde", "f"]).slice(1, 2))
    assert offsets.tolist() == [0, 3, 4] and data.tobytes() == b"cdef"


Outcome = tuple[str, tuple[object, ...]]


def _either(read: Callable[[], tuple[object, ...]]) -> Outcome:
    """``read()``'s arrays, or the message of the MalformedInput it raised."""
    try:
        return "ok", read()
    except MalformedInput as exc:
        return "error", (str(exc),)


def _same(a: Outcome, b: Outcome) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1] == b[1]
        return
    for x, y in zip(a[1], b[1], strict=True):
        left, right = np.asarray(x), np.asarray(y)
        assert left.dtype == right.dtype
        assert np.array_equal(left, right, equal_nan=left.dtype.kind == "f")


@SETTINGS
@given(st.lists(st.one_of(st.none(), any_cell), min_size=1, max_size=8), st.integers(1, 3))
def test_columns_read_the_same_with_and_without_the_fast_path(cells: list[str | None], chunks: int) -> None:
    size = -(-len(cells) // chunks)
    column = pa.chunked_array(
        [pa.array(cells[i : i + size], type=pa.string()) for i in range(0, len(cells), size)], type=pa.string()
    )

    def read() -> tuple[object, ...]:
        return columns.text_column_values(column, where="f.csv: column 'x'", name_row=lambda r: f"row {r + 1}")

    fast = _either(read)
    with mock.patch.object(columns, "plain_number_values", return_value=None):
        careful = _either(read)
    _same(fast, careful)


@SETTINGS
@given(st.lists(st.one_of(plain_decimal, number_like, st.text("0123456789", max_size=20)), min_size=1, max_size=6))
def test_time_columns_read_the_same_with_and_without_the_fast_path(cells: list[str]) -> None:
    column = pa.array(cells, type=pa.string())

    def read() -> tuple[object, ...]:
        return (timecol.time_column_ns(column, where="f.csv: time column 't'", name_row=lambda r: f"row {r + 1}"),)

    fast = _either(read)
    with (
        mock.patch.object(timecol, "plain_decimal_ns", return_value=None),
        mock.patch.object(timecol, "plain_digits", return_value=None),
    ):
        careful = _either(read)
    _same(fast, careful)


def test_integer_times_take_the_fast_path() -> None:
    column = pa.array(["1748765100000000000", "1748765100001000000"])
    with mock.patch.object(timecol, "plain_digits", wraps=plain_digits) as fast:
        got = timecol.time_column_ns(column, where="t", name_row=str)
    assert fast.call_count == 1
    assert got.tolist() == [1748765100000000000, 1748765100001000000]
    assert timecol.time_column_ns(pa.array(["1700000000", "1700000001"]), where="t", name_row=str).tolist() == [
        1700000000_000000000,
        1700000001_000000000,
    ]
    assert plain_digits(pa.array(["1", "-2"])) is None
    assert plain_digits(pa.array(["1", "99999999999999999999"])) is None


def test_time_columns_take_the_fast_path_for_usual_times() -> None:
    column = pa.array(["1748765100.000001", "1748765100.0000015", "1748765101"])
    with mock.patch.object(timecol, "plain_decimal_ns", wraps=plain_decimal_ns) as fast:
        got = timecol.time_column_ns(column, where="t", name_row=str)
    assert fast.call_count == 1
    assert got.tolist() == [1748765100_000001000, 1748765100_000001500, 1748765101_000000000]


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.just("x")), max_size=40), st.data())
def test_valid_rows_come_from_the_bitmaps_of_slices_and_chunks(cells: list[str | None], data: st.DataObject) -> None:
    array = pa.array(cells, type=pa.string())
    start = data.draw(st.integers(0, len(cells)))
    piece = array.slice(start, data.draw(st.integers(0, len(cells) - start)))
    for column in (piece, pa.chunked_array([array.slice(0, start), array.slice(start)], type=pa.string())):
        want = [item is not None for item in column.to_pylist()]
        assert columns._valid(column).tolist() == want
