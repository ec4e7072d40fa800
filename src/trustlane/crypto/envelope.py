"""Envelope encryption: a node master key, per-vehicle data keys wrapped under it, and sealed blobs.

Key hierarchy::

    keys/node.key (32 random bytes, mode 0600)
    ├── derive_key(master, "data-key-wrap/v1")   wraps every vehicle's DataKey (AES-256-GCM)
    ├── derive_key(master, "vin-pseudonym/v1")   HMAC key of VIN pseudonyms
    └── derive_key(master, "vin-seal/v1")        encrypts the VIN itself
    DataKey (32 random bytes per vehicle)       encrypts that vehicle's data; destroying its wrapped
                                                form crypto-shreds the data

Sealed format (version 1)::

    b"TLE1" || nonce (12 random bytes) || AES-256-GCM ciphertext || tag (16 bytes)

The associated data (AAD) is not stored: the caller supplies the same AAD to open the blob, which binds
the ciphertext to its context (vehicle, purpose, digest). Build it with :func:`context_aad`, which is RFC 8785
canonical JSON of a flat object, so no two contexts encode alike.

The master key file is one line ``MASTER+KEY+<hex key id>+<base64(key)>`` where the key id is
``SHA-256("trustlane/master-key-id\\n" || key)[:4]``; it detects a damaged or edited file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trustlane.canonical import canonical_json
from trustlane.crypto.keys import read_secret_file
from trustlane.errors import KeyMaterialError, UsageError, VerificationError

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
MAGIC = b"TLE1"
OVERHEAD = len(MAGIC) + NONCE_SIZE + TAG_SIZE
MAX_PLAINTEXT = (1 << 31) - 1 - TAG_SIZE  # one AES-GCM call in `cryptography` takes at most 2^31-1 bytes

MASTER_KEY_FILE = "keys/node.key"
_MASTER_PREFIX = "MASTER+KEY+"
_MASTER_ID_DOMAIN = b"trustlane/master-key-id\n"
_HKDF_SALT = b"trustlane/hkdf/v1"

DATA_KEY_WRAP_LABEL = "data-key-wrap/v1"
DATA_KEY_PURPOSE = "vehicle-data"

Bytes = bytes | bytearray | memoryview


# --- keys ------------------------------------------------------------------------------------------


def _check_key(key: Bytes, what: str = "key") -> None:
    if len(key) != KEY_SIZE:
        raise KeyMaterialError(
            f"an AES-256 {what} is {KEY_SIZE} bytes, got {len(key)}",
            hint="use a key made by trustlane (generate_key, derive_key or the node master key)",
        )


def generate_key() -> bytes:
    """32 random bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_SIZE)


def derive_key(master: Bytes, label: str, length: int = KEY_SIZE) -> bytes:
    """A sub-key of ``master`` for one purpose: HKDF-SHA256 with a fixed salt and ``label`` as info."""
    _check_key(master, "master key")
    if not label or not label.isascii() or not label.isprintable():
        raise UsageError(f"a key derivation label must be printable ASCII, got {label!r}", hint="e.g. 'vin-seal/v1'")
    if not 16 <= length <= 64:
        raise UsageError(f"derived keys are 16 to 64 bytes, not {length}")
    hkdf = HKDF(algorithm=SHA256(), length=length, salt=_HKDF_SALT, info=label.encode("ascii"))
    return hkdf.derive(bytes(master))


def master_key_id(key: Bytes) -> str:
    """8 hex digits naming a master key without revealing it."""
    return hashlib.sha256(_MASTER_ID_DOMAIN + bytes(key)).digest()[:4].hex()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_master_key(path: Path) -> bytes:
    """Write a new random master key to ``path`` (mode 0600); refuse to replace an existing file.

    The file appears atomically and complete: it is written to a temporary file, fsynced, then linked
    into place, which fails if another process created it first.
    """
    key = generate_key()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{_MASTER_PREFIX}{master_key_id(key)}+{base64.b64encode(key).decode()}\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise KeyMaterialError(
                f"master key file {path} already exists",
                hint="a node has exactly one master key; losing or replacing it makes its data unreadable",
            ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return key


def read_master_key(path: Path) -> bytes:
    """The master key in ``path``; refuses a file other users can read, or one that was altered."""
    text = read_secret_file(
        path, "master key file", "restore it from backup; without it the node's encrypted data cannot be read"
    )
    bad = KeyMaterialError(
        f"{path} is not a trustlane master key file",
        hint="restore the key file from backup; the node's data cannot be decrypted without it",
    )
    line = text.strip()
    if not line.startswith(_MASTER_PREFIX):
        raise bad
    kid, _, material = line[len(_MASTER_PREFIX) :].partition("+")
    try:
        key = base64.b64decode(material, validate=True)
    except binascii.Error as exc:
        raise bad from exc
    if len(key) != KEY_SIZE:
        raise bad
    if master_key_id(key) != kid:
        raise KeyMaterialError(f"{path}: the key id does not match the key", hint="the file was edited or damaged")
    return key


def load_or_create_master_key(path: Path) -> bytes:
    """The master key at ``path``, created on first use."""
    if not path.exists():
        try:
            return create_master_key(path)
        except KeyMaterialError:
            if not path.exists():
                raise
            # another process created it first: use theirs
    return read_master_key(path)


# --- sealing ---------------------------------------------------------------------------------------


def context_aad(**fields: str | int) -> bytes:
    """Associated data binding a ciphertext to its context, e.g. ``context_aad(purpose="segment", vehicle=p)``."""
    return canonical_json(fields)


def seal(key: Bytes, plaintext: Bytes, aad: Bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key``, bound to ``aad``; see the module docstring."""
    _check_key(key)
    if len(plaintext) > MAX_PLAINTEXT:
        raise UsageError(
            f"cannot seal {len(plaintext)} bytes in one blob; at most {MAX_PLAINTEXT} are supported",
            hint="cut the data into smaller segments before sealing it",
        )
    nonce = secrets.token_bytes(NONCE_SIZE)
    out = bytearray(len(MAGIC) + NONCE_SIZE + len(plaintext) + TAG_SIZE)
    out[: len(MAGIC)] = MAGIC
    out[len(MAGIC) : len(MAGIC) + NONCE_SIZE] = nonce
    AESGCM(bytes(key)).encrypt_into(nonce, plaintext, aad, memoryview(out)[len(MAGIC) + NONCE_SIZE :])
    return bytes(out)


def open_sealed(key: Bytes, blob: Bytes, aad: Bytes) -> bytes:
    """The plaintext of a sealed ``blob``; VerificationError if the key, the AAD or the blob is wrong."""
    _check_key(key)
    view = memoryview(blob)
    if len(view) < OVERHEAD:
        raise VerificationError(
            f"sealed data is {len(view)} bytes, shorter than the {OVERHEAD}-byte minimum",
            hint="the blob was truncated; restore it from a replica or backup",
        )
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise VerificationError(
            f"data does not start with {MAGIC.decode()}: it is not trustlane sealed data (version 1)",
            hint="the blob was damaged, or it is not an encrypted trustlane object",
        )
    nonce = view[len(MAGIC) : len(MAGIC) + NONCE_SIZE]
    try:
        return AESGCM(bytes(key)).decrypt(nonce, view[len(MAGIC) + NONCE_SIZE :], aad)
    except InvalidTag:
        raise VerificationError(
            "sealed data does not decrypt: wrong key, wrong context (AAD), or the data was altered",
            hint="check that the blob belongs to this vehicle and purpose and that the key was not erased; "
            "if both are right the stored blob was tampered with or damaged",
        ) from None


# --- data keys -------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class DataKey:
    """A vehicle's data encryption key (never printed)."""

    key: bytes

    def __post_init__(self) -> None:
        _check_key(self.key, "data key")

    @classmethod
    def generate(cls) -> DataKey:
        return cls(generate_key())

    def __repr__(self) -> str:
        return "DataKey(<redacted>)"


def _wrap_aad(vehicle: str, purpose: str) -> bytes:
    return context_aad(type="trustlane/data-key", vehicle=vehicle, purpose=purpose)


def wrap_data_key(master: Bytes, data_key: DataKey, vehicle: str, purpose: str = DATA_KEY_PURPOSE) -> bytes:
    """``data_key`` sealed under a sub-key of ``master``, bound to the vehicle pseudonym and the purpose."""
    return seal(derive_key(master, DATA_KEY_WRAP_LABEL), data_key.key, _wrap_aad(vehicle, purpose))


def unwrap_data_key(master: Bytes, wrapped: Bytes, vehicle: str, purpose: str = DATA_KEY_PURPOSE) -> DataKey:
    """The data key ``wrap_data_key`` sealed; VerificationError under another master key, vehicle or purpose."""
    try:
        raw = open_sealed(derive_key(master, DATA_KEY_WRAP_LABEL), wrapped, _wrap_aad(vehicle, purpose))
    except VerificationError as exc:
        raise VerificationError(
            f"the wrapped data key of {vehicle} ({purpose}) does not open: {exc.message}",
            hint="the node master key (keys/node.key) is not the one the key was wrapped with, "
            "or the catalog row was altered; restore keys/node.key or the catalog from backup",
        ) from exc
    return DataKey(raw)


__all__ = [
    "DATA_KEY_PURPOSE",
    "KEY_SIZE",
    "MAGIC",
    "MASTER_KEY_FILE",
    "NONCE_SIZE",
    "OVERHEAD",
    "TAG_SIZE",
    "DataKey",
    "context_aad",
    "create_master_key",
    "derive_key",
    "generate_key",
    "load_or_create_master_key",
    "master_key_id",
    "open_sealed",
    "read_master_key",
    "seal",
    "unwrap_data_key",
    "wrap_data_key",
]
