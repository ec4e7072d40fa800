"""Algorithm packages: the documented tree digest, layout validation and the re-checked frozen copy."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from trustlane.analysis import package as package_module
from trustlane.analysis.package import copy_package, load_package, tree_digest
from trustlane.errors import MalformedInput, UsageError, VerificationError

SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}


def make_package(root: Path, code: str = "def run(inputs, params):\n    return {}\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "algorithm.py").write_text(code)
    (root / "schema.json").write_text(json.dumps(SCHEMA))
    return root


def digest_as_documented(root: Path) -> str:
    """An independent reading of docs/SANDBOX.md, "Package digest"."""
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for d in dirnames:
            rel = Path(dirpath, d).relative_to(root).as_posix()
            lines.append((rel.encode(), b"D " + rel.encode() + b"/\n"))
        for f in filenames:
            if f.endswith(".pyc"):
                continue
            path = Path(dirpath, f)
            rel = path.relative_to(root).as_posix().encode()
            flag = b"x" if path.stat().st_mode & 0o100 else b"-"
            sha = hashlib.sha256(path.read_bytes()).hexdigest().encode()
            lines.append((rel, b"F " + flag + b" " + sha + b" " + rel + b"\n"))
    lines.sort()
    return (
        "sha256:" + hashlib.sha256(b"trustlane-algorithm-tree/v1\n" + b"".join(line for _, line in lines)).hexdigest()
    )


def test_digest_follows_the_documented_encoding(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkg")
    (root / "lib").mkdir()
    (root / "lib" / "helper.py").write_text("X = 1\n")
    (root / "model.onnx").write_bytes(bytes(range(256)))
    (root / "tool.sh").write_text("#!/bin/sh\n")
    (root / "tool.sh").chmod(0o755)
    (root / "empty").mkdir()
    assert tree_digest(root) == digest_as_documented(root)
    assert load_package(root).digest == tree_digest(root)


def test_digest_changes_with_content_mode_names_and_folders(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkg")
    seen = {tree_digest(root)}
    (root / "algorithm.py").write_text("def run(inputs, params):\n    return {'a': 1}\n")
    seen.add(tree_digest(root))
    (root / "algorithm.py").chmod(0o755)
    seen.add(tree_digest(root))
    (root / "data").mkdir()
    seen.add(tree_digest(root))
    (root / "schema.json").rename(root / "data" / "schema.json")
    seen.add(tree_digest(root))
    assert len(seen) == 5


def test_bytecode_caches_are_ignored(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkg")
    before = tree_digest(root)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "algorithm.cpython-311.pyc").write_bytes(b"\x00junk")
    (root / "stale.pyc").write_bytes(b"junk")
    assert tree_digest(root) == before


def test_load_reads_schema_and_lists_files(tmp_path: Path) -> None:
    pkg = load_package(make_package(tmp_path / "pkg"))
    assert pkg.schema == SCHEMA
    assert [f.path for f in pkg.files] == ["algorithm.py", "schema.json"]
    assert pkg.total_bytes == sum((pkg.root / f.path).stat().st_size for f in pkg.files)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda r: (r / "algorithm.py").unlink(), "has no algorithm.py"),
        (lambda r: (r / "algorithm.py").write_text("def other(x):\n    pass\n"), "defines no top-level run"),
        (lambda r: (r / "algorithm.py").write_text("def run(inputs, params)\n"), "does not parse"),
        (lambda r: (r / "schema.json").unlink(), "has no schema.json"),
        (lambda r: (r / "schema.json").write_text("{not json"), "schema.json is not valid JSON"),
        (lambda r: (r / "schema.json").write_text("[1]"), "must hold a JSON object"),
        (lambda r: (r / "schema.json").write_text('{"type": "objekt"}'), "not a valid JSON Schema at type"),
        (
            lambda r: (r / "schema.json").write_text('{"$schema": "http://json-schema.org/draft-04/schema#"}'),
            "declares \\$schema",
        ),
        (lambda r: (r / "link.py").symlink_to(r / "algorithm.py"), "link.py is a symbolic link"),
        (lambda r: os.mkfifo(r / "pipe"), "pipe is not a regular file"),
        (lambda r: (r / "bad\nname.py").write_text(""), "control character"),
    ],
)
def test_bad_packages_are_refused_with_the_reason(tmp_path: Path, breakage: object, message: str) -> None:
    root = make_package(tmp_path / "pkg")
    breakage(root)  # type: ignore[operator]
    with pytest.raises(MalformedInput, match=message) as caught:
        load_package(root)
    assert caught.value.hint


def test_size_and_count_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_package(tmp_path / "pkg")
    (root / "weights.bin").write_bytes(b"\x00" * 5000)
    monkeypatch.setattr(package_module, "MAX_TOTAL_BYTES", 4096)
    with pytest.raises(MalformedInput, match="larger than"):
        load_package(root)
    monkeypatch.setattr(package_module, "MAX_TOTAL_BYTES", 1 << 20)
    monkeypatch.setattr(package_module, "MAX_FILES", 2)
    with pytest.raises(MalformedInput, match="more than 2 files"):
        load_package(root)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(MalformedInput, match="not a directory"):
        load_package(tmp_path / "missing")


def test_copy_is_exact_and_rechecked(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkg")
    (root / "sub").mkdir()
    (root / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (root / "sub" / "run.sh").chmod(0o700)
    original = load_package(root)
    copy = copy_package(original, tmp_path / "home" / "algorithms" / "a" / "1")
    assert copy.digest == original.digest
    assert copy.root != original.root
    assert (copy.root / "sub" / "run.sh").stat().st_mode & 0o777 == 0o755  # readable by the sandbox's user
    assert (copy.root / "algorithm.py").stat().st_mode & 0o777 == 0o644
    assert copy_package(original, copy.root).digest == original.digest  # same content: accepted as is


def test_copy_refuses_a_changed_source_and_leaves_nothing(tmp_path: Path) -> None:
    root = make_package(tmp_path / "pkg")
    original = load_package(root)
    (root / "algorithm.py").write_text("def run(inputs, params):\n    return {'changed': True}\n")
    dest = tmp_path / "home" / "copy"
    with pytest.raises(VerificationError, match=r"has digest sha256:[0-9a-f]{64}, not sha256:") as caught:
        copy_package(original, dest)
    assert "changed after it was loaded" in (caught.value.hint or "")
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_copy_refuses_a_destination_holding_another_package(tmp_path: Path) -> None:
    first = load_package(make_package(tmp_path / "a"))
    other = make_package(tmp_path / "b", "def run(inputs, params):\n    return {'b': 1}\n")
    with pytest.raises(UsageError, match="already holds another algorithm package"):
        copy_package(first, other)
