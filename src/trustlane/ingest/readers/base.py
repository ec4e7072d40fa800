"""What every reader shares: its call signature and how it names a place in the input."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from trustlane.ingest.model import RawRecording


class Reader(Protocol):
    """Reads one file into a :class:`RawRecording`; raises only :class:`~trustlane.errors.TrustlaneError`.

    ``dbc`` is the CAN database used by readers of raw bus logs; other readers ignore it.
    """

    def __call__(self, path: Path, *, dbc: Path | None = None) -> RawRecording: ...


def describe_value(value: object, limit: int = 40) -> str:
    """A short printable form of a bad input value for an error message."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def summary(error: BaseException) -> str:
    """One line naming an exception of a library, for an error message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
