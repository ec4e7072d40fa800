"""Algorithm packages: a directory with ``algorithm.py`` (defining ``run``) and ``schema.json``, pinned by digest.

The digest covers every file and directory of the package (see docs/SANDBOX.md, "Package digest")::

    sha256( "trustlane-algorithm-tree/v1\\n"
            + for each entry, sorted by the UTF-8 bytes of its relative POSIX path:
                  "D <path>/\\n"                      a directory
                  "F <x|-> <sha256 hex> <path>\\n"    a file; "x" when the owner-execute bit is set )

Only ``__pycache__`` directories and ``*.pyc`` files are left out (Python writes them on import). Symlinks,
special files, names that are not UTF-8 or hold control characters, and packages over the size or count limits
are refused with :class:`MalformedInput`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.validators import Draft202012Validator

from trustlane.errors import MalformedInput, UsageError, VerificationError

DIGEST_DOMAIN = b"trustlane-algorithm-tree/v1\n"
ENTRY_POINT = "algorithm.py"
SCHEMA_FILE = "schema.json"
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_FILES = 2000
MAX_DEPTH = 16
_IGNORED_DIR = "__pycache__"
_IGNORED_SUFFIX = ".pyc"
_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class PackageFile:
    """One file of a package: its relative POSIX path, size, SHA-256 (hex) and executable bit."""

    path: str
    size: int
    sha256: str
    executable: bool


@dataclass(frozen=True)
class AlgorithmPackage:
    """A validated algorithm package on disk; ``digest`` pins its exact content."""

    root: Path
    digest: str
    schema: Mapping[str, Any]
    files: tuple[PackageFile, ...]
    directories: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _checked_name(relative: str, root: Path) -> bytes:
    try:
        encoded = relative.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedInput(
            f"algorithm package {root}: a file name under {Path(relative).parent} is not valid UTF-8",
            hint="rename the file using UTF-8 characters only",
        ) from None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in relative):
        raise MalformedInput(
            f"algorithm package {root}: the name {relative!r} holds a control character",
            hint="rename the file without newlines, tabs or other control characters",
        )
    return encoded


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _walk(root: Path) -> tuple[list[PackageFile], list[str]]:
    """Every file and directory under ``root`` (validated), in digest order."""
    if not root.is_dir():
        raise MalformedInput(f"algorithm package {root} is not a directory", hint="give the package's folder")
    files: list[PackageFile] = []
    directories: list[str] = []
    total = 0
    pending: list[tuple[Path, str, int]] = [(root, "", 0)]
    while pending:
        folder, prefix, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise MalformedInput(
                f"algorithm package {root}: {prefix} is nested deeper than {MAX_DEPTH} levels",
                hint="flatten the package's folder structure",
            )
        with os.scandir(folder) as entries:
            for entry in entries:
                relative = f"{prefix}{entry.name}"
                if entry.is_symlink():
                    raise MalformedInput(
                        f"algorithm package {root}: {relative} is a symbolic link",
                        hint="replace the link with a copy of the file it points to",
                    )
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    if entry.name == _IGNORED_DIR:
                        continue
                    _checked_name(relative, root)
                    directories.append(relative)
                    pending.append((Path(entry.path), relative + "/", depth + 1))
                elif stat.S_ISREG(mode):
                    if entry.name.endswith(_IGNORED_SUFFIX):
                        continue
                    _checked_name(relative, root)
                    sha, size = _sha256_file(Path(entry.path))
                    total += size
                    files.append(PackageFile(relative, size, sha, bool(mode & stat.S_IXUSR)))
                    if len(files) > MAX_FILES:
                        raise MalformedInput(
                            f"algorithm package {root} holds more than {MAX_FILES} files",
                            hint="ship fewer, larger files (e.g. one model file, not one per weight)",
                        )
                    if total > MAX_TOTAL_BYTES:
                        raise MalformedInput(
                            f"algorithm package {root} is larger than {MAX_TOTAL_BYTES // (1024 * 1024)} MiB",
                            hint="shrink the package: drop test data, quantise or prune the model",
                        )
                else:
                    raise MalformedInput(
                        f"algorithm package {root}: {relative} is not a regular file or directory",
                        hint="remove sockets, FIFOs and device files from the package",
                    )
    files.sort(key=lambda f: f.path.encode())
    directories.sort(key=str.encode)
    return files, directories


def _digest_of(files: list[PackageFile], directories: list[str]) -> str:
    lines: list[tuple[bytes, bytes]] = []
    for directory in directories:
        key = directory.encode()
        lines.append((key, b"D " + key + b"/\n"))
    for f in files:
        key = f.path.encode()
        flag = b"x" if f.executable else b"-"
        lines.append((key, b"F " + flag + b" " + f.sha256.encode() + b" " + key + b"\n"))
    lines.sort(key=lambda pair: pair[0])
    digest = hashlib.sha256(DIGEST_DOMAIN)
    for _, line in lines:
        digest.update(line)
    return "sha256:" + digest.hexdigest()


def tree_digest(path: Path) -> str:
    """``sha256:<hex>`` over the canonical description of the package tree at ``path``."""
    files, directories = _walk(Path(path))
    return _digest_of(files, directories)


def _load_schema(root: Path) -> dict[str, Any]:
    schema_path = root / SCHEMA_FILE
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MalformedInput(
            f"algorithm package {root} has no {SCHEMA_FILE}",
            hint="add a JSON Schema (draft 2020-12) describing the algorithm's output",
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedInput(
            f"algorithm package {root}: {SCHEMA_FILE} is not valid JSON ({exc})",
            hint="fix the JSON syntax of the output schema",
        ) from None
    if not isinstance(schema, dict):
        raise MalformedInput(
            f"algorithm package {root}: {SCHEMA_FILE} must hold a JSON object",
            hint='start from {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}',
        )
    declared = schema.get("$schema", _DRAFT_2020_12)
    if not isinstance(declared, str) or declared.rstrip("#") != _DRAFT_2020_12:
        raise MalformedInput(
            f"algorithm package {root}: {SCHEMA_FILE} declares $schema {declared!r}",
            hint=f"output schemas use JSON Schema draft 2020-12: set $schema to {_DRAFT_2020_12!r}",
        )
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise MalformedInput(
            f"algorithm package {root}: {SCHEMA_FILE} is not a valid JSON Schema at {where}: {exc.message}",
            hint="check the schema against the draft 2020-12 meta-schema",
        ) from None
    return schema


def _check_entry_point(root: Path) -> None:
    source_path = root / ENTRY_POINT
    if not source_path.is_file():
        raise MalformedInput(
            f"algorithm package {root} has no {ENTRY_POINT}",
            hint="add algorithm.py defining run(inputs, params) -> dict",
        )
    try:
        tree = ast.parse(source_path.read_bytes(), filename=ENTRY_POINT)
    except (SyntaxError, ValueError) as exc:
        raise MalformedInput(
            f"algorithm package {root}: {ENTRY_POINT} does not parse ({exc})",
            hint="fix the Python syntax error",
        ) from None
    defines_run = any(
        isinstance(node, ast.FunctionDef) and node.name == "run" and len(node.args.args) >= 2 for node in tree.body
    )
    if not defines_run:
        raise MalformedInput(
            f"algorithm package {root}: {ENTRY_POINT} defines no top-level run(inputs, params)",
            hint="define def run(inputs, params): ... returning a dict",
        )


def load_package(path: Path) -> AlgorithmPackage:
    """Validate the package at ``path`` and pin its content by digest."""
    root = Path(path).resolve()
    files, directories = _walk(root)
    _check_entry_point(root)
    schema = _load_schema(root)
    return AlgorithmPackage(root, _digest_of(files, directories), schema, tuple(files), tuple(directories))


def _copy_tree(package: AlgorithmPackage, target: Path) -> None:
    for directory in package.directories:
        (target / directory).mkdir(mode=0o755)
    for f in package.files:
        destination = target / f.path
        shutil.copyfile(package.root / f.path, destination, follow_symlinks=False)
        destination.chmod(0o755 if f.executable else 0o644)
        with destination.open("rb") as handle:
            os.fsync(handle.fileno())
    target.chmod(0o755)


def copy_package(package: AlgorithmPackage, dest: Path) -> AlgorithmPackage:
    """Copy ``package`` to ``dest`` (created atomically) and return the copy once its digest is re-checked.

    ``dest`` that already holds the same package is accepted as is; one holding anything else is refused.
    """
    dest = Path(dest)
    if dest.exists():
        existing = load_package(dest)
        if existing.digest != package.digest:
            raise UsageError(
                f"{dest} already holds another algorithm package ({existing.digest})",
                hint="choose an empty destination, or remove the old copy first",
            )
        return existing
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        _copy_tree(package, staging)
        copied = tree_digest(staging)
        if copied != package.digest:
            raise VerificationError(
                f"the copy of algorithm package {package.root} has digest {copied}, not {package.digest}",
                hint="the package changed after it was loaded; load it again and review the change",
            )
        staging.replace(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(dest.parent)
    return load_package(dest)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
