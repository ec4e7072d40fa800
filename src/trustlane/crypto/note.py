"""C2SP signed notes (c2sp.org/signed-note): verifier keys, signature lines, notes and their verification.

A note is a text ending in a newline, a blank line, then one or more signature lines::

    <text>\\n
    \\n
    — <key name> base64(4-byte key ID || signature)\\n

Only Ed25519 note signatures (type 0x01) and timestamped Ed25519 cosignatures (type 0x04, see
``trustlane.crypto.cosignature``) are supported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trustlane.errors import KeyMaterialError, MalformedInput, SignatureError

SIG_TYPE_ED25519 = 0x01
"""Signature type byte of Ed25519 note signatures."""

SIG_TYPE_COSIGNATURE_ED25519 = 0x04
"""Signature type byte of timestamped Ed25519 checkpoint cosignatures (c2sp.org/tlog-cosignature)."""

SUPPORTED_SIG_TYPES = frozenset({SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_ED25519})

ED25519_PUBLIC_KEY_SIZE = 32
KEY_ID_SIZE = 4
MIN_SIGNATURE_SIZE = KEY_ID_SIZE + 1
MAX_SIGNATURES = 100
MAX_NOTE_SIZE = 1 << 20

SIGNATURE_PREFIX = "— "  # em dash (U+2014), space

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || 0x0A || sig_type || public_key)[:4]``."""
    if not 0 <= sig_type <= 0xFF:
        raise KeyMaterialError(
            f"signature type {sig_type} is not a byte",
            hint="use a signature type identifier between 0x00 and 0xff, e.g. 0x01 for Ed25519",
        )
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


def key_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid note key name, or None when it is."""
    if not name:
        return "the key name is empty"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"the key name {name!r} is not valid Unicode"
    if any(ch.isspace() for ch in name):
        return f"the key name {name!r} contains whitespace"
    if "+" in name:
        return f"the key name {name!r} contains '+'"
    if _CONTROL.search(name):
        return f"the key name {name!r} contains a control character"
    return None


def strict_b64decode(text: str, what: str) -> bytes:
    """Decode canonical standard base64 (RFC 4648 §4) or raise MalformedInput naming ``what``."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise MalformedInput(
            f"{what} is not valid base64: {text[:80]!r}",
            hint="use standard base64 (RFC 4648 §4) with '=' padding; the text may have been truncated",
        ) from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedInput(
            f"{what} is not canonical base64: {text[:80]!r}",
            hint="re-encode the value with standard base64 and '=' padding; unused bits must be zero",
        )
    return raw


def _check_key_name(name: str, error: type[MalformedInput] | type[KeyMaterialError]) -> None:
    problem = key_name_problem(name)
    if problem is not None:
        raise error(
            f"invalid key name: {problem}",
            hint="key names must be non-empty and contain no spaces or '+', e.g. 'example.com/log1'",
        )


@dataclass(frozen=True)
class Verifier:
    """A public key that verifies note signatures of one signature type under one key name."""

    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name, KeyMaterialError)
        if len(self.key_id) != KEY_ID_SIZE:
            raise KeyMaterialError(
                f"key ID of {self.name!r} has {len(self.key_id)} bytes, not {KEY_ID_SIZE}",
                hint="compute the key ID with trustlane.crypto.note.key_id()",
            )
        if self.sig_type not in SUPPORTED_SIG_TYPES:
            raise KeyMaterialError(
                f"key {self.name!r} has unsupported signature type 0x{self.sig_type:02x}",
                hint="use an Ed25519 note key (type 0x01) or an Ed25519 cosignature key (type 0x04)",
            )
        if len(self.public_key) != ED25519_PUBLIC_KEY_SIZE:
            raise KeyMaterialError(
                f"Ed25519 public key of {self.name!r} has {len(self.public_key)} bytes, not 32",
                hint="check that the vkey was copied completely",
            )

    @classmethod
    def from_public_key(cls, name: str, sig_type: int, public_key: bytes) -> Verifier:
        """A verifier whose key ID is computed as the signed-note spec recommends."""
        return cls(name, key_id(name, sig_type, public_key), sig_type, public_key)

    @property
    def vkey(self) -> str:
        """The verifier key text: ``<name>+<hex key ID>+<base64(type || public key)>``."""
        material = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def matches(self, line: SignatureLine) -> bool:
        """Whether ``line`` claims to be a signature by this key (same name and key ID)."""
        return line.name == self.name and line.key_id == self.key_id

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (the signature bytes after the key ID) is valid for the note text ``msg``."""
        if self.sig_type == SIG_TYPE_COSIGNATURE_ED25519:
            # Imported here: cosignature.py builds on this module's types.
            from trustlane.crypto.cosignature import verify_timestamped_signature

            return verify_timestamped_signature(self.public_key, msg, sig)
        return ed25519_verify(self.public_key, msg, sig)


def ed25519_verify(public_key: bytes, msg: bytes, sig: bytes) -> bool:
    """Whether ``sig`` is a valid RFC 8032 Ed25519 signature of ``msg`` by ``public_key``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_vkey(text: str) -> Verifier:
    """Parse a verifier key ``<name>+<hex key ID>+<base64(type || public key)>``."""
    text = text.strip()
    parts = text.split("+", 2)  # the base64 key material may itself contain '+'
    if len(parts) != 3:
        raise KeyMaterialError(
            f"verifier key {text[:120]!r} does not have three '+'-separated parts",
            hint="a vkey looks like 'example.com/log+530d903a+AekyeRrm...'; copy it again in full",
        )
    name, hex_id, b64 = parts
    _check_key_name(name, KeyMaterialError)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise KeyMaterialError(
            f"verifier key for {name!r} has key ID {hex_id!r}, not 8 lowercase hex digits",
            hint="copy the vkey again in full",
        )
    try:
        material = strict_b64decode(b64, f"key material of verifier key {name!r}")
    except MalformedInput as exc:
        raise KeyMaterialError(exc.message, hint=exc.hint) from exc
    if len(material) != 1 + ED25519_PUBLIC_KEY_SIZE:
        raise KeyMaterialError(
            f"verifier key for {name!r} carries {len(material)} bytes of key material, not 33",
            hint="an Ed25519 vkey holds one type byte and a 32-byte public key; copy it again in full",
        )
    sig_type, public_key = material[0], material[1:]
    if sig_type not in SUPPORTED_SIG_TYPES:
        raise KeyMaterialError(
            f"verifier key for {name!r} has unsupported signature type 0x{sig_type:02x}",
            hint="use an Ed25519 note key (type 0x01) or an Ed25519 cosignature key (type 0x04)",
        )
    expected = key_id(name, sig_type, public_key)
    if bytes.fromhex(hex_id) != expected:
        raise KeyMaterialError(
            f"verifier key for {name!r} has key ID {hex_id}, but its name and key give {expected.hex()}",
            hint="the vkey was altered or its name was changed; obtain the vkey from its owner again",
        )
    return Verifier(name, expected, sig_type, public_key)


@dataclass(frozen=True)
class SignatureLine:
    """One signature line of a note: key name, 4-byte key ID and the signature bytes after the ID."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name, MalformedInput)
        if len(self.key_id) != KEY_ID_SIZE:
            raise MalformedInput(
                f"signature by {self.name!r} has a {len(self.key_id)}-byte key ID, not {KEY_ID_SIZE}",
                hint="compute the key ID with trustlane.crypto.note.key_id()",
            )
        if not self.signature:
            raise MalformedInput(
                f"signature by {self.name!r} is empty",
                hint="sign the note text again",
            )

    def format(self) -> str:
        """The line as written in a note: ``— <name> <base64(key ID || signature)>\\n``."""
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


def parse_signature_line(line: str) -> SignatureLine:
    """Parse one signature line, without its trailing newline."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedInput(
            f"note signature line does not start with an em dash and a space: {line[:80]!r}",
            hint="each line after the last blank line must look like '— <key name> <base64 signature>'",
        )
    name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or " " in encoded:
        raise MalformedInput(
            f"note signature line is not '— <key name> <base64 signature>': {line[:80]!r}",
            hint="key names contain no spaces; the line has exactly two spaces",
        )
    _check_key_name(name, MalformedInput)
    raw = strict_b64decode(encoded, f"signature by {name!r}")
    if len(raw) < MIN_SIGNATURE_SIZE:
        raise MalformedInput(
            f"signature by {name!r} has {len(raw)} bytes; at least {MIN_SIGNATURE_SIZE} are needed",
            hint="the signature is truncated; obtain the signed note again",
        )
    return SignatureLine(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def check_note_text(text: str, what: str = "note text") -> None:
    """Raise MalformedInput unless ``text`` is UTF-8, ends in a newline and has no other control chars."""
    decode_text(text, what)
    if not text.endswith("\n"):
        raise MalformedInput(f"{what} does not end with a newline", hint="end the text with '\\n'")
    bad = _CONTROL.search(text)
    if bad:
        raise MalformedInput(
            f"{what} contains control character U+{ord(bad.group()):04X} at offset {bad.start()}",
            hint="notes may contain no control characters other than newline (no tabs or '\\r')",
        )


@dataclass(frozen=True)
class Note:
    """A signed note: its text (ending in a newline) and its signature lines."""

    text: str
    signatures: tuple[SignatureLine, ...] = ()

    def __post_init__(self) -> None:
        check_note_text(self.text)
        if len(self.signatures) > MAX_SIGNATURES:
            raise MalformedInput(
                f"note has {len(self.signatures)} signatures; at most {MAX_SIGNATURES} are accepted",
                hint="drop signatures that no verifier needs",
            )

    def format(self) -> str:
        """The note as text: the text, a blank line, then one line per signature."""
        if not self.signatures:
            raise SignatureError(
                "cannot write a note without signatures",
                hint="sign the note (e.g. with Ed25519Signer.sign) before writing it",
            )
        return self.text + "\n" + "".join(sig.format() for sig in self.signatures)

    def with_signatures(self, lines: Iterable[SignatureLine]) -> Note:
        """This note with ``lines`` appended; a line whose name and key ID are already present is dropped."""
        seen = {(sig.name, sig.key_id) for sig in self.signatures}
        added: list[SignatureLine] = []
        for line in lines:
            if (line.name, line.key_id) not in seen:
                seen.add((line.name, line.key_id))
                added.append(line)
        return Note(self.text, self.signatures + tuple(added))


def parse_note(data: bytes | str) -> Note:
    """Parse a signed note strictly (UTF-8, no control characters, at least one signature line)."""
    text = decode_text(data, "note", MAX_NOTE_SIZE)
    check_note_text(text, "note")
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedInput(
            "note has no blank line separating its text from its signatures",
            hint="a signed note is its text, a blank line, then '— <key name> <signature>' lines",
        )
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block:
        raise MalformedInput(
            "note has no signature lines after its last blank line",
            hint="a signed note must carry at least one signature line; remove trailing blank lines",
        )
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedInput(
            f"note has {len(lines)} signature lines; at most {MAX_SIGNATURES} are accepted",
            hint="drop signatures that no verifier needs",
        )
    return Note(body, tuple(parse_signature_line(line) for line in lines))


def check_signatures(note: Note, verifiers: Sequence[Verifier]) -> list[Verifier]:
    """The verifiers with a valid signature on ``note``; a failing signature by a known key raises.

    Signature lines whose (name, key ID) match no verifier are ignored. Unlike ``verify_note`` this does
    not require any signature to verify.
    """
    msg = note.text.encode("utf-8")
    verified: list[Verifier] = []
    for line in note.signatures:
        for verifier in verifiers:
            if not verifier.matches(line):
                continue
            if not verifier.verify(msg, line.signature):
                raise SignatureError(
                    f"signature by {line.name!r} (key ID {line.key_id.hex()}) does not verify",
                    hint="the note was altered after signing, or the signer's key changed; "
                    "obtain a fresh copy and check that the vkey you trust is current",
                )
            if verifier not in verified:
                verified.append(verifier)
    return verified


def verify_note(note: Note, verifiers: Sequence[Verifier]) -> list[Verifier]:
    """Verify ``note`` against trusted ``verifiers``; return those whose signatures verified.

    Raises SignatureError when a signature by a known key fails, or when no known key signed the note.
    Signatures by unknown keys are ignored.
    """
    verified = check_signatures(note, verifiers)
    if not verified:
        trusted = ", ".join(sorted({v.name for v in verifiers})) or "none"
        present = ", ".join(f"{s.name} ({s.key_id.hex()})" for s in note.signatures)
        raise SignatureError(
            f"note carries no signature from a trusted key (trusted: {trusted}; present: {present})",
            hint="check that you use the right vkey for the signer and that the note is the one it signed",
        )
    return verified


class Ed25519KeyHolder:
    """A named Ed25519 private key and its verifier; subclasses fix the signature type."""

    SIG_TYPE = SIG_TYPE_ED25519

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = name
        self._private_key = private_key
        self._verifier = Verifier.from_public_key(name, self.SIG_TYPE, public_key_bytes(private_key))

    @classmethod
    def generate(cls, name: str) -> Self:
        """A holder of a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def name(self) -> str:
        return self._name

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private_key

    @property
    def verifier(self) -> Verifier:
        """The verifier for this key's signatures (of this class's signature type)."""
        return self._verifier


class Ed25519Signer(Ed25519KeyHolder):
    """Signs note texts with an Ed25519 private key (signature type 0x01)."""

    SIG_TYPE = SIG_TYPE_ED25519

    def sign(self, text: bytes) -> SignatureLine:
        """Sign a note text (UTF-8, ending in a newline, no other control characters)."""
        check_note_text(decode_text(text, "note text"))
        return SignatureLine(self._name, self._verifier.key_id, self._private_key.sign(text))

    def __repr__(self) -> str:
        return f"Ed25519Signer({self._verifier.vkey!r})"


def decode_text(data: bytes | str, what: str, limit: int | None = None) -> str:
    """``data`` as text, checked to be valid UTF-8 of at most ``limit`` bytes; else MalformedInput."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedInput(
                f"{what} contains a character that is not valid Unicode (offset {exc.start})",
                hint=f"the {what} must be valid UTF-8 text",
            ) from exc
    else:
        raw = data
    if limit is not None and len(raw) > limit:
        raise MalformedInput(
            f"{what} is {len(raw)} bytes; at most {limit} are accepted",
            hint=f"check that the input is a {what} and not some other file",
        )
    if isinstance(data, str):
        return data
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"{what} is not valid UTF-8 (byte offset {exc.start})",
            hint="check that the file was not converted to another encoding or damaged",
        ) from exc


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of ``private_key``."""
    return private_key.public_key().public_bytes_raw()


__all__ = [
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIG_TYPE_COSIGNATURE_ED25519",
    "SIG_TYPE_ED25519",
    "Ed25519KeyHolder",
    "Ed25519Signer",
    "Note",
    "SignatureLine",
    "Verifier",
    "check_note_text",
    "check_signatures",
    "decode_text",
    "ed25519_verify",
    "key_id",
    "key_name_problem",
    "parse_note",
    "parse_signature_line",
    "parse_vkey",
    "public_key_bytes",
    "strict_b64decode",
    "verify_note",
]
