"""Tell a recording's format from its content (the file name is not trusted).

* ``mdf4``: the MDF file identifier ``MDF     `` (or ``UnFinMF `` for an unfinished file) and version 4.x;
  MDF 2.x/3.x is refused with a hint to convert it.
* ``mcap``: the magic ``\\x89MCAP0\\r\\n``.
* ``parquet``: ``PAR1`` at the start and at the end.
* ``candump``: text whose first line is a candump log line such as ``(1700000000.123456) can0 421#0011``.
* ``csv``: text whose first line is a comma-separated header with a time column (see :mod:`.headers`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from trustlane.errors import MalformedInput
from trustlane.ingest.readers.headers import TIME_COLUMN_NAMES, find_time_column

MDF_MAGICS = (b"MDF     ", b"UnFinMF ")
MCAP_MAGIC = b"\x89MCAP0\r\n"
PARQUET_MAGIC = b"PAR1"
_HEAD = 1 << 16
_CANDUMP_LINE = re.compile(r"^\(\d+(\.\d*)?\)\s+\S+\s+\S*#")

SUPPORTED = (
    "mdf4 (ASAM MDF 4.x), csv (UTF-8 text with a time column), parquet, "
    "candump (candump -l log, decoded with --dbc), mcap (JSON messages)"
)


def _unknown(path: Path, what: str) -> MalformedInput:
    return MalformedInput(
        f"{path}: {what}; supported formats: {SUPPORTED}",
        hint="check the file, or name its format explicitly if it is one of these",
    )


def _sample(path: Path) -> tuple[int, bytes, bytes]:
    with open(path, "rb") as handle:
        head = handle.read(_HEAD)
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - len(PARQUET_MAGIC)))
        tail = handle.read(len(PARQUET_MAGIC))
    return size, head, tail


def check_mdf_version(path: Path, head: bytes) -> str:
    """``"mdf4"`` for an MDF 4.x identification block in ``head``; refuses other versions."""
    version = head[8:16].decode("ascii", errors="replace").strip(" \0")
    if version.startswith("4."):
        return "mdf4"
    if version[:2] in ("2.", "3."):
        raise MalformedInput(
            f"{path}: is MDF version {version}; only MDF 4.x is supported",
            hint="convert it to MDF 4, e.g. with asammdf: MDF(path).convert('4.10').save(new_path)",
        )
    raise _unknown(path, f"has the MDF file identifier but an unknown version {version!r}")


def _text(head: bytes, complete: bool) -> str | None:
    """The head decoded as UTF-8, or None when it is binary."""
    if b"\0" in head:
        return None
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(head) - 3:  # a character cut by the end of the sample
            return head[: exc.start].decode("utf-8-sig")
        return None


def detect_format(path: Path) -> str:
    """The format of the recording at ``path``: one of ``mdf4, csv, parquet, candump, mcap``."""
    size, head, tail = _sample(path)
    if size == 0:
        raise MalformedInput(f"{path}: the file is empty", hint="record or export the data again")
    if head.startswith(MDF_MAGICS):
        return check_mdf_version(path, head)
    if head.startswith(MCAP_MAGIC[:5]):
        if not head.startswith(MCAP_MAGIC):
            raise _unknown(path, f"is MCAP of an unknown version {head[5:6]!r}")
        return "mcap"
    if head.startswith(PARQUET_MAGIC):
        if size < 2 * len(PARQUET_MAGIC) or tail != PARQUET_MAGIC:
            raise MalformedInput(
                f"{path}: starts like Parquet but does not end with PAR1: the file is truncated",
                hint="copy or export the file again",
            )
        return "parquet"
    text = _text(head, complete=size <= len(head))
    if text is None:
        raise _unknown(path, "is binary data of no supported format")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first:
        raise MalformedInput(f"{path}: holds only blank text", hint="record or export the data again")
    if _CANDUMP_LINE.match(first):
        return "candump"
    if "," in first:
        try:
            names = next(csv.reader([first]))
        except csv.Error:
            raise _unknown(path, "is text of no supported format") from None
        if find_time_column(names) is not None:
            return "csv"
        raise MalformedInput(
            f"{path}: looks like CSV, but no column of the header is a time column",
            hint=f"name the time column one of: {', '.join(TIME_COLUMN_NAMES)}",
        )
    raise _unknown(path, "is text of no supported format")
