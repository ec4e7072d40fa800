"""Offline-verifiable proofs of logging (c2sp.org/tlog-proof)::

c2sp.org/tlog-proof@v1
[extra <base64 opaque data>]
index <leaf index>
<base64 inclusion proof hash>...

<signed checkpoint, verbatim>
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from trustlane.crypto.note import decode_text, strict_b64decode
from trustlane.errors import MalformedInput
from trustlane.ledger import merkle
from trustlane.ledger.checkpoint import HASH_SIZE, SignedCheckpoint, parse_signed_checkpoint
from trustlane.ledger.policy import Policy, verify_checkpoint_with_policy

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_SIZE = 2 << 20
MAX_INCLUSION_PATH = 64
MAX_INDEX = (1 << 64) - 1

_INDEX_LINE = re.compile(r"index (0|[1-9][0-9]{0,19})")


@dataclass(frozen=True)
class TlogProof:
    """A leaf index, its inclusion path, the (cosigned) checkpoint text and optional unauthenticated data."""

    index: int
    inclusion_path: tuple[bytes, ...]
    checkpoint_text: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.index <= MAX_INDEX:
            raise MalformedInput(
                f"tlog proof index {self.index} is outside 0..2^64-1",
                hint="the index is the zero-based position of the entry in the log",
            )
        if len(self.inclusion_path) > MAX_INCLUSION_PATH:
            raise MalformedInput(
                f"tlog proof has {len(self.inclusion_path)} inclusion hashes; at most {MAX_INCLUSION_PATH} fit a log",
                hint="the proof is damaged; fetch it again from the log",
            )
        for position, value in enumerate(self.inclusion_path, start=1):
            if len(value) != HASH_SIZE:
                raise MalformedInput(
                    f"inclusion hash {position} of the tlog proof has {len(value)} bytes, not {HASH_SIZE}",
                    hint="each inclusion proof line is one base64 SHA-256 hash",
                )
        self.signed_checkpoint()

    def signed_checkpoint(self) -> SignedCheckpoint:
        """The proof's checkpoint, parsed (its signatures are not verified)."""
        return parse_signed_checkpoint(self.checkpoint_text)

    def format(self) -> str:
        """The proof as a ``.tlog-proof`` text."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode('ascii')}")
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(value).decode("ascii") for value in self.inclusion_path]
        return "".join(f"{line}\n" for line in lines) + "\n" + self.checkpoint_text


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Parse a tlog proof strictly; the checkpoint must be a well-formed signed checkpoint."""
    text = decode_text(text, "tlog proof", MAX_PROOF_SIZE)
    split = text.find("\n\n")
    if split < 0:
        raise MalformedInput(
            "tlog proof has no blank line before its checkpoint",
            hint="a tlog proof is a header, index and hash lines, a blank line, then the signed checkpoint",
        )
    lines, checkpoint_text = text[:split].split("\n"), text[split + 2 :]
    if not checkpoint_text:
        raise MalformedInput(
            "tlog proof has no checkpoint after its blank line",
            hint="append the log's signed checkpoint, verbatim, after the blank line",
        )
    if lines[0] != HEADER:
        raise MalformedInput(
            f"tlog proof starts with {lines[0][:60]!r}, not {HEADER!r}",
            hint="check that the file is a .tlog-proof of version v1",
        )
    rest = lines[1:]
    extra: bytes | None = None
    if rest and rest[0].startswith("extra "):
        extra = strict_b64decode(rest[0][len("extra ") :], "tlog proof extra data")
        rest = rest[1:]
    index_match = _INDEX_LINE.fullmatch(rest[0]) if rest else None
    if index_match is None:
        found = repr(rest[0][:60]) if rest else "nothing"
        raise MalformedInput(
            f"tlog proof has {found} where the 'index <n>' line belongs",
            hint="after the header (and optional 'extra' line) comes 'index <decimal, no leading zeros>'",
        )
    path = tuple(
        strict_b64decode(line, f"inclusion hash {position} of the tlog proof")
        for position, line in enumerate(rest[1:], start=1)
    )
    return TlogProof(int(index_match.group(1)), path, checkpoint_text, extra)


def verify_tlog_proof(proof: TlogProof, leaf_hash: bytes, policy: Policy) -> SignedCheckpoint:
    """Verify ``proof`` for the entry whose RFC 6962 leaf hash is ``leaf_hash`` under ``policy``.

    Checks the log signature and witness quorum of the checkpoint, then the inclusion path from the leaf
    to the checkpoint root. Returns the verified checkpoint. The ``extra`` data is not authenticated.
    """
    signed = verify_checkpoint_with_policy(proof.checkpoint_text, policy)
    checkpoint = signed.checkpoint
    merkle.verify_inclusion(proof.index, checkpoint.size, leaf_hash, proof.inclusion_path, checkpoint.root)
    return signed


__all__ = [
    "HEADER",
    "TlogProof",
    "parse_tlog_proof",
    "verify_tlog_proof",
]
