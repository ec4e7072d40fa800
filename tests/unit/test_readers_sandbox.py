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


def test_large_arrays_come_back_whole_and_writable(tmp_path: Path) -> None:
    import numpy as np

    source = tmp_path / "size.txt"
    source.write_text("300000")
    result = run("arrays", source)
    assert isinstance(result, dict)
    assert np.array_equal(result["times"], np.arange(300_000))
    assert np.array_equal(result["values"], np.linspace(0.0, 1.0, 300_000))
    assert np.array_equal(result["strided"], np.arange(300_000.0)[::3])
    assert result["small"].tolist() == [0.0, 1.0, 2.0]
    assert result["text"].tolist() == ["a", "ü"]
    result["times"][0] = 7  # a private copy-on-write view: the caller may change it
    assert result["times"][0] == 7


def test_handover_refuses_damaged_results(tmp_path: Path) -> None:
    import numpy as np

    from trustlane.ingest.readers.handover import HandoverError, read_result, write_result

    path = tmp_path / "result"
    write_result(path, {"a": np.arange(100_000)})
    data = path.read_bytes()
    assert np.array_equal(read_result(path)["a"], np.arange(100_000))
    for damaged in (b"", data[:10], b"XXXX" + data[4:], data[:200]):
        path.write_bytes(damaged)
        with pytest.raises(HandoverError):
            read_result(path)


def test_a_child_that_exits_without_a_result_is_malformed_input(source: Path) -> None:
    with pytest.raises(MalformedInput, match="without a result"):
        run("stop_while_writing", source)
    assert run("echo", source) == "content"
