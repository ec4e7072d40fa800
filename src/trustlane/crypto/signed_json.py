"""Ed25519 signatures over canonical JSON, separated by purpose.

The signed bytes are ``"trustlane/<purpose>/v1\\n" || JCS(body)``: a signature made for one purpose (a
contract offer, an analysis request, a report) can never be replayed as another, nor as a checkpoint note
(notes never start with ``trustlane/``). A signature is the JSON object
``{"key": NAME, "key_id": HEX8, "sig": BASE64}`` where ``key_id`` is the C2SP key ID of the Ed25519
verifier key, so the same ``vkey`` files verify notes and these signatures.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from trustlane.canonical import canonical_json
from trustlane.crypto.note import SIG_TYPE_ED25519, Ed25519KeyHolder, Verifier, strict_b64decode
from trustlane.errors import MalformedInput, SignatureError

PURPOSES = frozenset(
    {
        "contract-offer",
        "contract-acceptance",
        "algorithm-approval",
        "analysis-request",
        "report",
        "transfer-plan",
        "transfer-package",
    }
)
_KEY_ID = re.compile(r"[0-9a-f]{8}")


def signed_bytes(purpose: str, body: Mapping[str, Any]) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown signature purpose {purpose!r}")
    return f"trustlane/{purpose}/v1\n".encode() + canonical_json(dict(body))


def sign_json(holder: Ed25519KeyHolder, purpose: str, body: Mapping[str, Any]) -> dict[str, str]:
    """Sign ``body`` for ``purpose`` with ``holder``'s key."""
    sig = holder.private_key.sign(signed_bytes(purpose, body))
    return {"key": holder.name, "key_id": holder.verifier.key_id.hex(), "sig": base64.b64encode(sig).decode()}


def check_signature_shape(signature: object, what: str) -> dict[str, str]:
    """``signature`` as a well-formed signature object, or MalformedInput naming ``what``."""
    if not isinstance(signature, dict) or set(signature) != {"key", "key_id", "sig"}:
        raise MalformedInput(f"{what} must be an object with exactly the fields key, key_id and sig")
    if not all(isinstance(v, str) for v in signature.values()):
        raise MalformedInput(f"{what}: key, key_id and sig must be strings")
    if not _KEY_ID.fullmatch(signature["key_id"]):
        raise MalformedInput(f"{what}: key_id must be 8 lower-case hex digits")
    return {str(k): str(v) for k, v in signature.items()}


def verify_json(verifier: Verifier, purpose: str, body: Mapping[str, Any], signature: object, what: str) -> None:
    """Raise SignatureError unless ``signature`` is ``verifier``'s signature of ``body`` for ``purpose``."""
    sig = check_signature_shape(signature, what)
    if verifier.sig_type != SIG_TYPE_ED25519:
        raise SignatureError(f"{what}: {verifier.name} is a cosignature key, not an Ed25519 signing key")
    if sig["key"] != verifier.name or sig["key_id"] != verifier.key_id.hex():
        raise SignatureError(
            f"{what} was made by key {sig['key']}+{sig['key_id']}, not by the trusted {verifier.name}+"
            f"{verifier.key_id.hex()}",
            hint="check that you trust the right verifier key",
        )
    raw = strict_b64decode(sig["sig"], f"{what} signature")
    if not verifier.verify(signed_bytes(purpose, body), raw):
        raise SignatureError(f"{what} does not verify: the signed content was changed or the signature is forged")
