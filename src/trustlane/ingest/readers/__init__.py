"""Readers that turn vehicle recordings into :class:`~trustlane.ingest.model.RawRecording` s.

``read_recording(path)`` tells the format from the file's content (:mod:`.detect`) and dispatches to the
reader registered for it in :data:`READERS`. Further readers can be added with :func:`register_reader`, like
plugins, optionally with a ``sniff`` function so that ``format="auto"`` finds them. Built-in readers import
their libraries only when first used.

Every failure caused by the input is a :class:`~trustlane.errors.TrustlaneError` (``MalformedInput`` for
damaged or unsupported content, ``UsageError`` for a missing file or an unknown format name).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trustlane.errors import MalformedInput, TrustlaneError, UsageError
from trustlane.ingest.model import RawRecording
from trustlane.ingest.readers.base import Reader, summary
from trustlane.ingest.readers.detect import detect_format

FORMATS = ("mdf4", "csv", "parquet", "candump", "mcap")

#: Decides from the first bytes of a file (at most 64 KiB) whether a plugin reader takes it.
Sniffer = Callable[[bytes], bool]


def _mdf4(path: Path, *, dbc: Path | None = None) -> RawRecording:
    from trustlane.ingest.readers.mdf4 import read_mdf4

    return read_mdf4(path, dbc=dbc)


def _csv(path: Path, *, dbc: Path | None = None) -> RawRecording:
    from trustlane.ingest.readers.tabular import read_csv

    return read_csv(path, dbc=dbc)


def _parquet(path: Path, *, dbc: Path | None = None) -> RawRecording:
    from trustlane.ingest.readers.tabular import read_parquet

    return read_parquet(path, dbc=dbc)


def _candump(path: Path, *, dbc: Path | None = None) -> RawRecording:
    from trustlane.ingest.readers.candump import read_candump

    return read_candump(path, dbc=dbc)


def _mcap(path: Path, *, dbc: Path | None = None) -> RawRecording:
    from trustlane.ingest.readers.mcap_reader import read_mcap

    return read_mcap(path, dbc=dbc)


READERS: dict[str, Reader] = {"mdf4": _mdf4, "csv": _csv, "parquet": _parquet, "candump": _candump, "mcap": _mcap}
SNIFFERS: dict[str, Sniffer] = {}


def register_reader(name: str, reader: Reader, *, sniff: Sniffer | None = None, replace: bool = False) -> None:
    """Add a reader for the format ``name``; ``sniff`` lets ``format="auto"`` pick it (checked before built-ins)."""
    if name in READERS and not replace:
        raise UsageError(f"a reader for {name!r} is already registered", hint="pass replace=True to override it")
    READERS[name] = reader
    if sniff is not None:
        SNIFFERS[name] = sniff
    else:
        SNIFFERS.pop(name, None)


def _sniffed(path: Path) -> str | None:
    if not SNIFFERS:
        return None
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return next((name for name, sniff in SNIFFERS.items() if sniff(head)), None)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file", hint="check the path of the recording")
    if not path.is_file():
        raise UsageError(f"{path}: is not a regular file", hint="pass the path of one recording file")


def read_recording(path: Path, *, format: str = "auto", dbc: Path | None = None) -> RawRecording:
    """Read the recording at ``path``; ``format`` is one of :data:`FORMATS` (or a registered plugin) or ``auto``.

    ``dbc`` is the CAN database needed by ``candump`` logs; other formats ignore it.
    """
    path = Path(path)
    if format != "auto" and format not in READERS:
        raise UsageError(f"unknown recording format {format!r}", hint=f"use one of: auto, {', '.join(READERS)}")
    try:
        _check_file(path)
        name = format if format != "auto" else (_sniffed(path) or detect_format(path))
        return READERS[name](path, dbc=dbc)
    except TrustlaneError:
        raise
    except OSError as exc:
        raise UsageError(
            f"{path}: cannot read the file ({exc.strerror or summary(exc)})", hint="check the file"
        ) from None
    except Exception as exc:  # last line of defence: a reader let a library error through
        raise MalformedInput(
            f"{path}: could not be read ({summary(exc)})",
            hint="the file is damaged or not of the format it seems to be",
        ) from exc


__all__ = ["FORMATS", "READERS", "Reader", "detect_format", "read_recording", "register_reader"]
