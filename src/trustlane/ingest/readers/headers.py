"""Column names of tabular recordings: the time column, and units written as a ``name[unit]`` suffix."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Accepted names of the time column, matched case-insensitively; the first column that has one is the time.
TIME_COLUMN_NAMES = ("timestamp_ns", "time_ns", "t_ns", "timestamp", "time", "t", "ts")

_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*\[(?P<unit>[^\[\]]*)\]\s*$")


def split_unit(header: str) -> tuple[str, str | None]:
    """``"speed[km/h]"`` → ``("speed", "km/h")``; a name without a suffix (or with ``[]``) has no unit."""
    match = _UNIT_SUFFIX.match(header)
    if not match or not match.group("name").strip():
        return header.strip(), None
    unit = match.group("unit").strip()
    return match.group("name").strip(), unit or None


def find_time_column(headers: Sequence[str]) -> int | None:
    """Index of the first column named like a time column (a unit suffix is ignored), or None."""
    for index, header in enumerate(headers):
        if split_unit(header)[0].lower() in TIME_COLUMN_NAMES:
            return index
    return None
