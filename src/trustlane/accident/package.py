"""Build the accident-report algorithm as a self-contained package for the analysis sandbox.

Layout (see docs/ACCIDENT.md, "Report")::

    algorithm.py        a copy of trustlane/accident/algorithm_entry.py
    schema.json         the JSON Schema of its output (report/schema.py)
    accident_core/      a verbatim copy of trustlane/accident/core (rules JSON and model.onnx included)

The runner puts the package folder first on ``sys.path``, so ``algorithm.py`` imports ``accident_core`` as a
top-level package. The bytes depend only on the source files, so the package digest is stable.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from trustlane.accident.report.schema import OUTPUT_SCHEMA
from trustlane.errors import UsageError

HERE = Path(__file__).parent
CORE_DIR = HERE / "core"
ENTRY = HERE / "algorithm_entry.py"
CORE_PACKAGE = "accident_core"


def _skipped(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o644)


def schema_bytes() -> bytes:
    return (json.dumps(OUTPUT_SCHEMA, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _fill(root: Path) -> None:
    _write(root / "algorithm.py", ENTRY.read_bytes())
    _write(root / "schema.json", schema_bytes())
    core = root / CORE_PACKAGE
    for source in sorted(CORE_DIR.rglob("*")):
        relative = source.relative_to(CORE_DIR)
        if _skipped(relative) or source.is_symlink():
            continue
        target = core / relative
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o755)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(target, source.read_bytes())
    core.chmod(0o755)


def build_algorithm_package(dest: Path) -> Path:
    """Write the package into ``dest`` (which must not exist or be empty) and return ``dest``."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} already exists and is not an empty folder", hint="give a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        staging.chmod(0o755)
        _fill(staging)
        if dest.exists():
            dest.rmdir()
        staging.replace(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest
