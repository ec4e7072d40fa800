"""Algorithm packages shipped with trustlane, ready to register on a node (`trustlane algorithm register`).

Each is a self-contained folder (``algorithm.py`` + ``schema.json``) that imports only numpy and scipy, so it
runs in the sandbox where trustlane itself is not importable.
"""

from __future__ import annotations

from pathlib import Path

from trustlane.errors import UsageError

ROOT = Path(__file__).resolve().parent


def builtin_names() -> list[str]:
    return sorted(p.name.replace("_", "-") for p in ROOT.iterdir() if (p / "algorithm.py").is_file())


def builtin_path(name: str) -> Path:
    """The folder of the shipped algorithm ``name`` (e.g. ``driving-summary``)."""
    path = ROOT / name.replace("-", "_")
    if not (path / "algorithm.py").is_file():
        raise UsageError(f"no built-in algorithm {name!r}", hint=f"built-in: {', '.join(builtin_names())}")
    return path
