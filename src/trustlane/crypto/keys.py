"""Ed25519 key files.

Private keys are stored in the signed-note tool convention ``PRIVATE+KEY+<name>+<hex id>+<base64(type ||
seed)>`` in a file readable by its owner only (mode 0600), and written atomically.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from trustlane.crypto.note import key_id, public_key_bytes
from trustlane.errors import KeyMaterialError

NOTE_KEY = 0x01
COSIGNATURE_KEY = 0x04


def encode_private_key(name: str, sig_type: int, private_key: Ed25519PrivateKey) -> str:
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kid = key_id(name, sig_type, public_key_bytes(private_key))
    return f"PRIVATE+KEY+{name}+{kid.hex()}+{base64.b64encode(bytes([sig_type]) + seed).decode()}"


def decode_private_key(text: str, source: str) -> tuple[str, int, Ed25519PrivateKey]:
    parts = text.strip().split("+", 4)  # base64 may contain "+", a key name may not
    bad = KeyMaterialError(
        f"{source} is not a trustlane private key",
        hint="restore the key file from backup; a node cannot sign without its own key",
    )
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise bad
    name, kid_hex, material = parts[2], parts[3], parts[4]
    try:
        raw = base64.b64decode(material, validate=True)
    except ValueError as exc:
        raise bad from exc
    if len(raw) != 33 or raw[0] not in (NOTE_KEY, COSIGNATURE_KEY):
        raise bad
    private_key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if key_id(name, raw[0], public_key_bytes(private_key)).hex() != kid_hex:
        raise KeyMaterialError(f"{source}: the key id does not match the key", hint="the file was edited")
    return name, raw[0], private_key


def write_private_key(path: Path, name: str, sig_type: int, private_key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(encode_private_key(name, sig_type, private_key) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def read_secret_file(path: Path, what: str, missing_hint: str) -> str:
    """The text of a key file, refusing one that is missing, unreadable or readable by other users."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KeyMaterialError(f"{what} {path} is missing", hint=missing_hint) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyMaterialError(f"{what} {path} cannot be read: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(
            f"{what} {path} is readable by other users (mode {stat.S_IMODE(mode):o})",
            hint=f"run `chmod 600 {path}`",
        )
    return text


def read_private_key(path: Path, expected_type: int) -> tuple[str, Ed25519PrivateKey]:
    text = read_secret_file(path, "key file", "restore it from backup, or run `trustlane init` on a new home")
    name, sig_type, private_key = decode_private_key(text, str(path))
    if sig_type != expected_type:
        raise KeyMaterialError(f"key file {path} holds a key of another kind (type {sig_type:#04x})")
    return name, private_key
