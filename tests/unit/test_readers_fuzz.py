"""Fuzzing every reader with random bytes and damaged valid files: only TrustlaneErrors may come out, promptly."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.readers_support import write_all, write_test_dbc
from trustlane.errors import TrustlaneError
from trustlane.ingest.model import RawRecording
from trustlane.ingest.readers import read_recording
from trustlane.ingest.readers.candump import read_candump
from trustlane.ingest.readers.mcap_reader import read_mcap
from trustlane.ingest.readers.mdf4 import read_mdf4
from trustlane.ingest.readers.tabular import read_csv, read_parquet

# The readers themselves, not read_recording: its last-resort wrapper would hide a reader's leaked exception.
DIRECT: dict[str, Callable[..., RawRecording]] = {
    "mdf4": read_mdf4,
    "csv": read_csv,
    "parquet": read_parquet,
    "candump": read_candump,
    "mcap": read_mcap,
}
EXAMPLE_SECONDS = 20

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class ValidFiles:
    """The content of one valid sample per format, and the DBC for the candump log (short repr for reports)."""

    def __init__(self, directory: Path) -> None:
        self.dbc = write_test_dbc(directory)
        self.content = {fmt: path.read_bytes() for fmt, (path, _) in write_all(directory, self.dbc).items()}
        self.scratch = directory

    def __repr__(self) -> str:
        return "ValidFiles(...)"


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory: pytest.TempPathFactory) -> ValidFiles:
    return ValidFiles(tmp_path_factory.mktemp("fuzz-samples"))


class ExampleTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise ExampleTimeout(f"a reader ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    kind = draw(st.sampled_from(["random", "truncate", "flip", "splice", "head"]))
    size = len(original)
    if kind == "random":
        return draw(st.binary(max_size=600))
    if kind == "truncate":
        return original[: draw(st.integers(0, size - 1))]
    if kind == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, size - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "splice":
        at = draw(st.integers(0, size))
        cut = draw(st.integers(0, 16))
        return original[:at] + draw(st.binary(min_size=1, max_size=32)) + original[at + cut :]
    return original[: draw(st.integers(1, 64))] + draw(st.binary(max_size=200))


def _read_expecting_only_trustlane_errors(fmt: str, path: Path, dbc: Path) -> None:
    with time_limit(EXAMPLE_SECONDS):
        with suppress(TrustlaneError):
            DIRECT[fmt](path, dbc=dbc)
        with suppress(TrustlaneError):
            read_recording(path, dbc=dbc)


@pytest.mark.parametrize("fmt", sorted(DIRECT))
@FUZZ
@given(data=st.data())
def test_damaged_files_raise_only_trustlane_errors(fmt: str, data: st.DataObject, valid_files: ValidFiles) -> None:
    content = data.draw(damaged(valid_files.content[fmt]), label="content")
    path = valid_files.scratch / f"fuzz-{fmt}.bin"
    path.write_bytes(content)
    _read_expecting_only_trustlane_errors(fmt, path, valid_files.dbc)


def test_valid_samples_still_read(valid_files: ValidFiles, tmp_path: Path) -> None:
    for fmt, content in valid_files.content.items():
        path = tmp_path / f"ok-{fmt}.bin"
        path.write_bytes(content)
        assert DIRECT[fmt](path, dbc=valid_files.dbc).channels
