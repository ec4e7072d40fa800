"""Shared fixtures: where the reference material lives, and which services are reachable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRUSTLANE_SHARED", ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() == "true"


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skips (outside CI) or fails (in CI) when the folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing, and CI must run every test against ../shared")
        pytest.skip(f"{path} is absent (reference material lives in ../shared beside the project)")
    return path
