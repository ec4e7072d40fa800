"""The fork-server sandbox that parses untrusted files: crashes, hangs and memory hogs become MalformedInput."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustlane.errors import MalformedInput, UsageError
from trustlane.ingest.readers.sandbox import run_sandboxed

SUPPORT = "tests.unit.readers_support"


def run(target: str, path: Path, *, timeout_s: float = 30, memory_bytes: int = 1 << 30) -> object:
    return run_sandboxed(f"{SUPPORT}:{target}", path, timeout_s=timeout_s, memory_bytes=memory_bytes, hint="a hint")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "input.bin"
    path.write_text("content")
    return path


def test_result_comes_back(source: Path) -> None:
    assert run("echo", source) == "content"


def test_prints_of_the_parser_do_not_disturb_the_protocol(source: Path) -> None:
    assert run("noisy", source) == "quiet result"
    assert run("echo", source) == "content"


def test_crash_is_reported_and_the_server_survives(source: Path) -> None:
    with pytest.raises(MalformedInput, match=r"crashed on this file \(SIGSEGV\)") as caught:
        run("crash", source)
    assert str(source) in caught.value.message
    assert caught.value.hint == "a hint"
    assert run("echo", source) == "content"


def test_hang_is_stopped_and_a_new_server_starts(source: Path) -> None:
    with pytest.raises(MalformedInput, match="longer than 1 s"):
        run("hang", source, timeout_s=1)
    assert run("echo", source) == "content"


def test_memory_limit(source: Path) -> None:
    with pytest.raises(MalformedInput, match="more memory than allowed"):
        run("hog", source, memory_bytes=256 << 20)


def test_errors_keep_their_class_and_library_errors_become_malformed_input(source: Path) -> None:
    with pytest.raises(UsageError, match="refused") as caught:
        run("refuse", source)
    assert not isinstance(caught.value, MalformedInput)
    assert caught.value.hint == "do something else"
    with pytest.raises(MalformedInput, match="KeyError"):
        run("fail", source)
