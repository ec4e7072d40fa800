"""Checks every reader applies to what it produced."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from trustlane.errors import MalformedInput
from trustlane.ingest.model import TimeArray

INT64_MAX = int(np.iinfo(np.int64).max)


def first_not_increasing(timestamps_ns: TimeArray) -> int | None:
    """Index of the first sample whose timestamp is not after the previous one, or None when strictly increasing."""
    if len(timestamps_ns) < 2:
        return None
    bad = np.flatnonzero(timestamps_ns[1:] <= timestamps_ns[:-1])
    return int(bad[0]) + 1 if len(bad) else None


def require_increasing(
    timestamps_ns: TimeArray,
    *,
    where: str,
    locate: Callable[[int], str],
    hint: str,
) -> None:
    """Raise :class:`MalformedInput` at the first duplicate or backwards timestamp.

    ``where`` names the file (and channel); ``locate(i)`` names sample ``i`` (a row, a line, a frame).
    """
    index = first_not_increasing(timestamps_ns)
    if index is None:
        return
    previous, current = int(timestamps_ns[index - 1]), int(timestamps_ns[index])
    problem = "repeats the previous timestamp" if current == previous else "goes back in time"
    raise MalformedInput(
        f"{where}: {locate(index)} {problem} ({current} ns after {previous} ns); timestamps must strictly increase",
        hint=hint,
    )
