"""Transparency log checkpoints (c2sp.org/tlog-checkpoint): a signed note whose text is a tree head::

<origin>\\n
<tree size>\\n
<base64 root hash>\\n
[<extension line>\\n ...]
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from trustlane.crypto.note import (
    SIG_TYPE_ED25519,
    Ed25519Signer,
    Note,
    SignatureLine,
    Verifier,
    check_note_text,
    parse_note,
    strict_b64decode,
    verify_note,
)
from trustlane.errors import KeyMaterialError, MalformedInput, SignatureError

HASH_SIZE = 32
MAX_TREE_SIZE = (1 << 64) - 1

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: its origin, tree size and RFC 6962 root hash, plus opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise MalformedInput(
                f"checkpoint origin {self.origin!r} is empty or spans lines",
                hint="the origin is one non-empty line naming the log, e.g. 'example.com/log1'",
            )
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedInput(
                f"checkpoint tree size {self.size} is outside 0..2^64-1",
                hint="the tree size is the number of leaves in the log",
            )
        if len(self.root) != HASH_SIZE:
            raise MalformedInput(
                f"checkpoint root hash has {len(self.root)} bytes, not {HASH_SIZE}",
                hint="the root hash is a SHA-256 RFC 6962 Merkle tree hash",
            )
        for line in self.extensions:
            if not line or "\n" in line:
                raise MalformedInput(
                    f"checkpoint extension line {line!r} is empty or spans lines",
                    hint="each extension line must be a single non-empty line",
                )
        check_note_text(self.body(), "checkpoint text")

    def body(self) -> str:
        """The checkpoint's note text."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions))


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Parse a checkpoint note text (without signature lines) strictly."""
    check_note_text(text, "checkpoint text")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedInput(
            f"checkpoint text has {len(lines)} lines; origin, tree size and root hash are required",
            hint="a checkpoint text is '<origin>\\n<tree size>\\n<base64 root hash>\\n'",
        )
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise MalformedInput(
            "checkpoint origin line is empty",
            hint="the first line of a checkpoint names the log, e.g. 'example.com/log1'",
        )
    if len(size_text) > 20 or not _DECIMAL.fullmatch(size_text):
        raise MalformedInput(
            f"checkpoint tree size {size_text[:40]!r} is not a decimal number without leading zeros",
            hint="the second line of a checkpoint is the tree size, e.g. '20852163'",
        )
    root = strict_b64decode(root_text, "checkpoint root hash")
    if len(root) != HASH_SIZE:
        raise MalformedInput(
            f"checkpoint root hash decodes to {len(root)} bytes, not {HASH_SIZE}",
            hint="the third line of a checkpoint is the base64 SHA-256 root hash",
        )
    if "" in extensions:
        raise MalformedInput(
            "checkpoint has an empty extension line",
            hint="lines after the root hash must be non-empty",
        )
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and the note carrying it, with the log signature and any witness cosignatures."""

    checkpoint: Checkpoint
    note: Note

    def __post_init__(self) -> None:
        if self.note.text != self.checkpoint.body():
            raise MalformedInput(
                "the note text is not the checkpoint's text",
                hint="build signed checkpoints with sign_checkpoint() or parse_signed_checkpoint()",
            )

    @property
    def text(self) -> str:
        """The full signed note."""
        return self.note.format()

    def with_cosignatures(self, lines: Iterable[SignatureLine]) -> SignedCheckpoint:
        """This checkpoint with ``lines`` added, except those whose name and key ID are already present."""
        return SignedCheckpoint(self.checkpoint, self.note.with_signatures(lines))


def parse_signed_checkpoint(data: str | bytes) -> SignedCheckpoint:
    """Parse a signed checkpoint note (signatures are not verified)."""
    note = parse_note(data)
    return SignedCheckpoint(parse_checkpoint_body(note.text), note)


def sign_checkpoint(checkpoint: Checkpoint, signer: Ed25519Signer) -> SignedCheckpoint:
    """Sign ``checkpoint`` with the log key ``signer``, whose name must be the checkpoint origin."""
    if signer.name != checkpoint.origin:
        raise KeyMaterialError(
            f"log key {signer.name!r} cannot sign checkpoints of origin {checkpoint.origin!r}",
            hint="the log's key name must equal its origin; use the log's own key",
        )
    body = checkpoint.body()
    return SignedCheckpoint(checkpoint, Note(body, (signer.sign(body.encode("utf-8")),)))


def verify_checkpoint(
    data: str | bytes | SignedCheckpoint,
    log_verifier: Verifier,
    expected_origin: str | None = None,
) -> SignedCheckpoint:
    """Parse ``data`` and check that it carries a valid signature by the log key ``log_verifier``.

    The checkpoint origin must equal the log key name and, when given, ``expected_origin``. Cosignatures
    by other keys are ignored.
    """
    signed = data if isinstance(data, SignedCheckpoint) else parse_signed_checkpoint(data)
    if log_verifier.sig_type != SIG_TYPE_ED25519:
        raise KeyMaterialError(
            f"key {log_verifier.name!r} has signature type 0x{log_verifier.sig_type:02x}, not a log key (0x01)",
            hint="pass the log's Ed25519 note vkey, not a witness cosignature key",
        )
    origin = signed.checkpoint.origin
    if expected_origin is not None and origin != expected_origin:
        raise SignatureError(
            f"checkpoint is from log {origin!r}, not the expected {expected_origin!r}",
            hint="check that the checkpoint (or proof) comes from the log you meant to verify",
        )
    if origin != log_verifier.name:
        raise SignatureError(
            f"checkpoint origin {origin!r} does not match log key {log_verifier.name!r}",
            hint="verify the checkpoint with the vkey of the log that issued it",
        )
    verify_note(signed.note, [log_verifier])
    return signed


__all__ = [
    "HASH_SIZE",
    "Checkpoint",
    "SignedCheckpoint",
    "parse_checkpoint_body",
    "parse_signed_checkpoint",
    "sign_checkpoint",
    "verify_checkpoint",
]
