"""Timestamped Ed25519 checkpoint cosignatures (c2sp.org/tlog-cosignature, signature type 0x04).

A cosignature is a note signature line whose signature bytes are a ``timestamped_signature``: an 8-byte
big-endian POSIX timestamp followed by a 64-byte Ed25519 signature over::

    cosignature/v1\\n
    time <timestamp>\\n
    <checkpoint note text>
"""

from __future__ import annotations

from trustlane.crypto.note import (
    SIG_TYPE_COSIGNATURE_ED25519,
    Ed25519KeyHolder,
    SignatureLine,
    check_note_text,
    ed25519_verify,
)
from trustlane.errors import MalformedInput

COSIGNATURE_HEADER = "cosignature/v1"
MAX_TIMESTAMP = (1 << 63) - 1
TIMESTAMP_SIZE = 8
ED25519_SIGNATURE_SIZE = 64
TIMESTAMPED_SIGNATURE_SIZE = TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE


def cosigned_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    """The message an Ed25519 cosigner signs for ``checkpoint_body`` at ``timestamp``."""
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n".encode("ascii") + checkpoint_body


def verify_timestamped_signature(public_key: bytes, checkpoint_body: bytes, payload: bytes) -> bool:
    """Whether ``payload`` (timestamp || Ed25519 signature) is a valid cosignature of ``checkpoint_body``."""
    if len(payload) != TIMESTAMPED_SIGNATURE_SIZE:
        return False
    timestamp = int.from_bytes(payload[:TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        return False
    return ed25519_verify(public_key, cosigned_message(checkpoint_body, timestamp), payload[TIMESTAMP_SIZE:])


def cosignature_timestamp(line: SignatureLine) -> int:
    """The POSIX timestamp carried by an Ed25519 cosignature line (not verified)."""
    if len(line.signature) != TIMESTAMPED_SIGNATURE_SIZE:
        raise MalformedInput(
            f"signature by {line.name!r} has {len(line.signature)} bytes after its key ID, "
            f"not the {TIMESTAMPED_SIGNATURE_SIZE} of an Ed25519 cosignature",
            hint="only timestamped Ed25519 cosignatures (vkey type 0x04) carry a timestamp",
        )
    timestamp = int.from_bytes(line.signature[:TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedInput(
            f"cosignature by {line.name!r} has timestamp {timestamp}, above 2^63-1",
            hint="the cosignature is invalid; request a new one from the witness",
        )
    return timestamp


class CosignatureSigner(Ed25519KeyHolder):
    """Produces timestamped Ed25519 cosignatures (signature type 0x04) over checkpoint note texts."""

    SIG_TYPE = SIG_TYPE_COSIGNATURE_ED25519

    def cosign(self, checkpoint_body: str, timestamp: int) -> SignatureLine:
        """Cosign a checkpoint note text (without signature lines) as of POSIX time ``timestamp``."""
        if not 0 <= timestamp <= MAX_TIMESTAMP:
            raise MalformedInput(
                f"cosignature timestamp {timestamp} is outside 0..2^63-1",
                hint="pass the current time as whole seconds since the Unix epoch",
            )
        check_note_text(checkpoint_body, "checkpoint text")
        body = checkpoint_body.encode("utf-8")
        signature = self._private_key.sign(cosigned_message(body, timestamp))
        payload = timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signature
        return SignatureLine(self._name, self._verifier.key_id, payload)

    def __repr__(self) -> str:
        return f"CosignatureSigner({self._verifier.vkey!r})"


__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_TIMESTAMP",
    "CosignatureSigner",
    "cosignature_timestamp",
    "cosigned_message",
    "verify_timestamped_signature",
]
