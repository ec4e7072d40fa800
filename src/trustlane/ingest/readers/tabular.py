"""CSV and Parquet recordings: one time column and one column per signal (see :mod:`.headers`, :mod:`.timecol`,
:mod:`.columns` for the rules).

Rows must have strictly increasing times. A signal column's empty cells (CSV) or nulls (Parquet) are times at
which that signal has no sample, so multi-rate data can share one table. Units come from a ``name[unit]``
header suffix, or for Parquet also from the field metadata key ``unit`` (which wins). Parquet key-value metadata
``trustlane.consent`` holds consent records (see :mod:`.consent`); its other text entries become metadata.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trustlane.errors import MalformedInput, TrustlaneError
from trustlane.ingest.model import Channel, ConsentRecord, RawRecording
from trustlane.ingest.readers.base import summary
from trustlane.ingest.readers.checks import require_increasing
from trustlane.ingest.readers.columns import text_column_values, typed_column_values
from trustlane.ingest.readers.consent import CONSENT_KEY, parse_consents
from trustlane.ingest.readers.headers import TIME_COLUMN_NAMES, find_time_column, split_unit
from trustlane.ingest.readers.timecol import RowNamer, time_column_ns

_ORDER_HINT = "sort the rows by time and remove duplicate rows (several signals at one time belong in one row)"
_CSV_HINT = "a CSV recording is UTF-8 text with a header line and the same number of fields on every line"
_SKIPPED_METADATA = frozenset((b"ARROW:schema", b"pandas", CONSENT_KEY.encode()))


def _check_names(source: Path, names: list[str]) -> tuple[int, list[tuple[str, str | None]]]:
    """Index of the time column, and (name, unit) of every column; refuses empty and repeated names."""
    split = [split_unit(name) for name in names]
    seen: dict[str, int] = {}
    for index, (name, _unit) in enumerate(split, start=1):
        if not name:
            raise MalformedInput(f"{source}: column {index} has no name", hint="give every column a header name")
        if name in seen:
            raise MalformedInput(
                f"{source}: columns {seen[name]} and {index} are both named {name!r}",
                hint="give every column a distinct name",
            )
        seen[name] = index
    time_index = find_time_column(names)
    if time_index is None:
        raise MalformedInput(
            f"{source}: no time column among {', '.join(repr(n) for n in names)}",
            hint=f"name the time column one of: {', '.join(TIME_COLUMN_NAMES)}",
        )
    return time_index, split


def _assemble(
    source: Path,
    fmt: str,
    channels: list[Channel],
    metadata: dict[str, str] | None = None,
    consents: tuple[ConsentRecord, ...] = (),
) -> RawRecording:
    return RawRecording(source=source, format=fmt, channels=tuple(channels), metadata=metadata or {}, consents=consents)


# --- CSV --------------------------------------------------------------------------------------------------------


def _lines(source: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its end) of every line of the file."""
    with open(source, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, raw.rstrip(b"\r\n")


class _CsvRows:
    """Names data rows as ``row N (line L)``: data row N is the N-th non-empty line after the header."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def line_of(self, row: int) -> int | None:
        nonempty = -1  # the header is non-empty line 0
        for number, line in _lines(self.source):
            if line:
                nonempty += 1
                if nonempty == row + 1:
                    return number
        return None

    def name(self, row: int) -> str:
        line = self.line_of(row)
        return f"row {row + 1} (line {line})" if line is not None else f"row {row + 1}"


def _header(source: Path) -> list[str]:
    for number, line in _lines(source):
        if not line:
            continue
        try:
            text = line.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise MalformedInput(
                f"{source}: line {number}: the header is not UTF-8 text", hint="save the CSV file as UTF-8"
            ) from None
        try:
            return next(csv.reader([text]))
        except csv.Error as exc:
            raise MalformedInput(
                f"{source}: line {number}: the header is not valid CSV ({exc})", hint="fix the header line"
            ) from None
    raise MalformedInput(
        f"{source}: has no header line", hint="the first line names the columns, e.g. timestamp_ns,speed"
    )


def _locate_csv_problem(source: Path, columns: int) -> str | None:
    """Where and what the first unreadable CSV line is, to explain a parse error of pyarrow."""
    row = -1
    for number, line in _lines(source):
        if not line:
            continue
        row += 1
        place = f"line {number}" if row == 0 else f"line {number} (row {row})"
        if b"\0" in line:
            return f"{place} holds binary data (NUL bytes)"
        try:
            text = line.decode("utf-8-sig" if row == 0 else "utf-8")
        except UnicodeDecodeError:
            return f"{place} is not UTF-8 text"
        try:
            fields = next(csv.reader([text]))
        except csv.Error as exc:
            return f"{place}: {exc}"
        if len(fields) != columns:
            return f"{place} has {len(fields)} fields where the header has {columns}"
    return None


def _read_csv_table(source: Path, names: list[str]) -> pa.Table:
    try:
        return pacsv.read_csv(
            source,
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        where = _locate_csv_problem(source, len(names))
        detail = where if where else f"it could not be parsed ({summary(exc)})"
        raise MalformedInput(
            f"{source}: not a valid CSV file: {detail}",
            hint=_CSV_HINT,
        ) from None


def read_csv(path: Path, *, dbc: Path | None = None) -> RawRecording:
    """Read a CSV recording (``dbc`` is ignored)."""
    try:
        return _read_csv(path)
    except TrustlaneError:
        raise
    except Exception as exc:  # a pyarrow error on content the checks did not foresee
        raise MalformedInput(f"{path}: not a readable CSV file ({summary(exc)})", hint=_CSV_HINT) from None


def _read_csv(path: Path) -> RawRecording:
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if not head.strip():
        raise MalformedInput(f"{path}: the CSV file is empty", hint="a CSV recording needs a header and data rows")
    if b"\0" in head:
        raise MalformedInput(f"{path}: is binary data, not CSV text", hint="check the file and its format")
    names = _header(path)
    _check_names(path, names)
    table = _read_csv_table(path, names)
    names = list(table.column_names)
    time_index, split = _check_names(path, names)
    return _assemble(path, "csv", _csv_channels(path, table, time_index, split, _CsvRows(path).name))


def _csv_channels(
    source: Path, table: pa.Table, time_index: int, split: list[tuple[str, str | None]], name_row: RowNamer
) -> list[Channel]:
    # Chunks are combined per column only after the empty cells are dropped (see text_column_values).
    columns = [col if pa.types.is_string(col.type) else col.cast(pa.string()) for col in table.columns]
    times = time_column_ns(
        columns[time_index], where=f"{source}: time column {split[time_index][0]!r}", name_row=name_row
    )
    require_increasing(times, where=str(source), locate=name_row, hint=_ORDER_HINT)
    channels = []
    for index, (name, unit) in enumerate(split):
        if index == time_index:
            continue
        values, mask = text_column_values(columns[index], where=f"{source}: column {name!r}", name_row=name_row)
        channels.append(Channel(name=name, unit=unit, timestamps_ns=times[mask], values=values))
    return channels


# --- Parquet ----------------------------------------------------------------------------------------------------


def _parquet_metadata(source: Path, schema: pa.Schema) -> tuple[dict[str, str], tuple[ConsentRecord, ...]]:
    raw = schema.metadata or {}
    metadata: dict[str, str] = {}
    for key, value in raw.items():
        if key in _SKIPPED_METADATA:
            continue
        try:
            metadata[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary entries of other tools are not recording metadata
    consents: tuple[ConsentRecord, ...] = ()
    if CONSENT_KEY.encode() in raw:
        consents = parse_consents(raw[CONSENT_KEY.encode()], source=source, carrier=f"key-value metadata {CONSENT_KEY}")
    return metadata, consents


def read_parquet(path: Path, *, dbc: Path | None = None) -> RawRecording:
    """Read a Parquet recording (``dbc`` is ignored)."""
    try:
        # ParquetFile, not read_table: read_table goes through pyarrow.dataset, a slow import one file does not need
        with pq.ParquetFile(path) as parquet:
            table = parquet.read()
        return _read_parquet(path, table)
    except TrustlaneError:
        raise
    except Exception as exc:  # pyarrow raises many types (ArrowInvalid, OSError, UnicodeDecodeError, ...)
        raise MalformedInput(
            f"{path}: not a readable Parquet file ({summary(exc)})",
            hint="the file is damaged or truncated; export it again",
        ) from None


def _read_parquet(path: Path, table: pa.Table) -> RawRecording:
    names = list(table.column_names)
    time_index, split = _check_names(path, names)

    def name_row(row: int) -> str:
        return f"row {row + 1}"

    times = time_column_ns(
        table.column(time_index), where=f"{path}: time column {split[time_index][0]!r}", name_row=name_row
    )
    require_increasing(times, where=str(path), locate=name_row, hint=_ORDER_HINT)
    channels = []
    for index, (name, suffix_unit) in enumerate(split):
        if index == time_index:
            continue
        field = table.schema.field(index)
        unit = suffix_unit
        if field.metadata and b"unit" in field.metadata:
            unit = field.metadata[b"unit"].decode("utf-8", errors="replace") or None
        values, mask = typed_column_values(table.column(index).combine_chunks(), where=f"{path}: column {name!r}")
        channels.append(Channel(name=name, unit=unit, timestamps_ns=times[mask], values=values))
    metadata, consents = _parquet_metadata(path, table.schema)
    return _assemble(path, "parquet", channels, metadata, consents)
