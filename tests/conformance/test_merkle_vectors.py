"""RFC 6962/9162 proof vectors from transparency-dev/merkle, including the mutated ones that must fail."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED, shared_path
from trustlane.errors import ProofError
from trustlane.ledger import merkle

pytestmark = pytest.mark.shared
VECTORS = SHARED / "vectors" / "merkle" / "testdata"


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json")) or [VECTORS / kind / "absent"]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _load(path: Path) -> dict[str, Any]:
    shared_path("vectors", "merkle", "testdata")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]

    def verify() -> None:
        merkle.verify_inclusion(case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"]))

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    proof = [_b64(p) for p in case["proof"] or []]

    def verify() -> None:
        merkle.verify_consistency(case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


def test_vector_corpus_is_complete() -> None:
    shared_path("vectors", "merkle", "testdata")
    inclusion = list((VECTORS / "inclusion").rglob("*.json"))
    consistency = list((VECTORS / "consistency").rglob("*.json"))
    assert len(inclusion) + len(consistency) >= 190
    assert any(json.loads(p.read_text())["wantErr"] for p in inclusion)
