"""Offline verification of an export package by its recipient: public keys and the folder, nothing else."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trustlane.crypto.note import parse_vkey
from trustlane.crypto.signed_json import verify_json
from trustlane.errors import TrustlaneError, VerificationError
from trustlane.ledger import merkle
from trustlane.ledger.events import commitment_of
from trustlane.ledger.policy import Policy, verify_checkpoint_with_policy
from trustlane.transfer.package import PACKAGE_TYPE, core_digest, signed_part
from trustlane.transfer.plan import check_plan


class PackageInvalid(VerificationError):
    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


def _need(cond: bool, check: str, message: str) -> None:
    if not cond:
        raise PackageInvalid(check, message)


def verify_package(
    folder: Path, holder_vkey: str, witness_vkeys: Sequence[str] = (), quorum: int | None = None
) -> dict[str, Any]:
    holder = parse_vkey(holder_vkey)
    witnesses = [parse_vkey(v) for v in witness_vkeys]
    try:
        manifest = json.loads((folder / "manifest.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise PackageInvalid("format", f"no readable manifest.json in {folder}: {exc}") from None
    try:
        return _verify(folder, manifest, holder, witnesses, len(witnesses) if quorum is None else quorum)
    except PackageInvalid:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PackageInvalid("format", f"a field is missing or has the wrong type ({exc!r})") from None
    except TrustlaneError as exc:
        raise PackageInvalid("proof", exc.message) from None


def _verify(folder: Path, manifest: dict[str, Any], holder: Any, witnesses: list[Any], k: int) -> dict[str, Any]:
    _need(manifest.get("type") == PACKAGE_TYPE, "format", f"not a {PACKAGE_TYPE} manifest")
    _need(manifest["holder"]["vkey"] == holder.vkey, "holder", "the package names another holder key")
    digest = core_digest(manifest)
    try:
        verify_json(holder, "transfer-package", signed_part(manifest, digest), manifest["signature"], "manifest")
    except TrustlaneError as exc:
        raise PackageInvalid("signature", exc.message) from None
    for entry in manifest["files"]:
        path = folder / entry["name"]
        _need(path.is_file() and path.parent == folder, "files", f"{entry['name']} is missing")
        _need(hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], "files", f"{entry['name']} was changed")
    disclosed = manifest["commitment"]
    event = json.loads(disclosed["event"])
    _need(
        event.get("type") == "transfer.package" and event.get("package") == manifest["id"],
        "commitment",
        "the committed event is for another package",
    )
    _need(event.get("core_sha256") == digest, "commitment", "the manifest content was changed")
    leaf = merkle.leaf_hash(commitment_of(disclosed["event"].encode(), bytes.fromhex(disclosed["salt"])))
    try:
        signed = verify_checkpoint_with_policy(
            manifest["checkpoint"], Policy.simple(holder, [(w.name, w) for w in witnesses], k)
        )
        path_ = [base64.b64decode(h, validate=True) for h in manifest["proof"]]
        merkle.verify_inclusion(int(disclosed["index"]), signed.checkpoint.size, leaf, path_, signed.checkpoint.root)
    except (TrustlaneError, binascii.Error) as exc:
        raise PackageInvalid("proof", str(exc)) from None
    try:
        plan = check_plan(manifest["plan"], holder.vkey)
    except TrustlaneError as exc:
        raise PackageInvalid("plan", exc.message) from None
    _need(plan["decision"]["decision"] == "allow", "plan", "the plan's decision was not allow")
    _need(event.get("plan") == plan["id"], "plan", "the package was made from another plan")
    return {
        "valid": True,
        "package": manifest["id"],
        "plan": plan["id"],
        "decision": plan["decision"]["decision"],
        "from": plan["from"],
        "to": plan["to"],
        "recipient": plan["recipient"]["party"],
        "files": [f["name"] for f in manifest["files"]],
        "steps": [s["processor"] for s in manifest["steps"]],
        "checkpoint_size": signed.checkpoint.size,
    }
