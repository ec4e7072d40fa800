"""The commitment scheme: how an event becomes a ledger leaf without putting its content in the ledger.

An event is a JSON object. Its leaf data is the 32-byte commitment

    C = SHA-256("trustlane/event/v1" || 0x0A || salt || JCS(event))

where ``salt`` is 32 random bytes drawn for this record and ``JCS`` is RFC 8785 canonical JSON. The ledger
holds only C (and the RFC 9162 leaf hash SHA-256(0x00 || C)); the event and its salt stay in the holder's
private store. Disclosing (event, salt) lets anyone recompute C and check its inclusion proof; destroying
the salt (crypto-shredding) leaves C unlinkable to any guess of the event, and the ledger stays valid.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustlane.canonical import canonical_json
from trustlane.errors import MalformedInput, VerificationError

DOMAIN = b"trustlane/event/v1\n"
SALT_SIZE = 32


@dataclass(frozen=True)
class Commitment:
    leaf_data: bytes  # the 32-byte commitment C
    event_json: str  # canonical JSON of the event (holder-private)
    salt: bytes  # holder-private


def commitment_of(event_json: bytes, salt: bytes) -> bytes:
    if len(salt) != SALT_SIZE:
        raise MalformedInput(f"an event salt is {SALT_SIZE} bytes, got {len(salt)}")
    return hashlib.sha256(DOMAIN + salt + event_json).digest()


def commit_event(event: Mapping[str, Any], salt: bytes | None = None) -> Commitment:
    if not isinstance(event, Mapping):
        raise MalformedInput("an event must be a JSON object", hint="wrap the value in an object")
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise MalformedInput(
            "an event needs a non-empty string field `type`",
            hint='name what happened, e.g. {"type": "ingest.segment", ...}',
        )
    body = canonical_json(dict(event))
    salt = secrets.token_bytes(SALT_SIZE) if salt is None else salt
    return Commitment(commitment_of(body, salt), body.decode("utf-8"), salt)


def check_disclosure(leaf_data: bytes, event_json: str, salt: bytes) -> None:
    """Raise unless (event, salt) is what the leaf committed to."""
    if commitment_of(event_json.encode("utf-8"), salt) != leaf_data:
        raise VerificationError(
            "the disclosed event and salt do not match the ledger commitment",
            hint="the event was altered after it was committed, or belongs to another entry",
        )
