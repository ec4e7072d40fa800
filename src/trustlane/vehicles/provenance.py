"""Signed upload manifests: a vehicle (or its gateway) chains every file it uploads and signs the chain.

A manifest lists files in upload order. Each item carries the file's SHA-256, its size and ``prev``, the
digest of the item before it; the first item's ``prev`` is the vehicle's chain head (64 zeros before the
first upload). ``sequence`` numbers the first item (1 for a vehicle's first upload); the node accepts a
manifest only if it continues exactly where the accepted chain ends, so a dropped file (gap), a swapped
pair (reordering) and a manifest sent twice (replay) are all refused::

    {
      "format": "trustlane-upload-manifest/1",
      "device": "device/3f9c2a1b7d4e",
      "sequence": 1,
      "created_ns": "1767225600000000000",
      "items": [
        {"name": "drive-001.mf4", "sha256": "<hex>", "size": 1048576, "prev": "000...000"},
        {"name": "drive-002.mf4", "sha256": "<hex>", "size": 524288, "prev": "<hex of drive-001>"}
      ],
      "signature": {"alg": "ed25519", "key_id": "1a2b3c4d", "sig": "<base64>"}
    }

The signature is Ed25519 over the RFC 8785 canonical JSON of the manifest without ``signature``, by the
device key named in ``device`` (a type 0x01 note key; ``key_id`` is its C2SP key ID). Times are decimal
strings of nanoseconds (canonical JSON carries integers only up to 2^53).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustlane.canonical import canonical_json
from trustlane.catalog.records import GENESIS_HEAD, check_digest
from trustlane.crypto.keys import NOTE_KEY, read_private_key, write_private_key
from trustlane.crypto.note import Ed25519Signer, Verifier, key_id, key_name_problem, public_key_bytes, strict_b64decode
from trustlane.errors import MalformedInput, SignatureError, UsageError, VerificationError

MANIFEST_FORMAT = "trustlane-upload-manifest/1"
MAX_ITEMS = 10_000
MAX_MANIFEST_BYTES = 4 << 20
SIGNATURE_ALG = "ed25519"
_CHUNK = 1 << 20


class ChainState(NamedTuple):
    """Where a vehicle's upload chain stands: the last accepted digest and how many items it holds."""

    head: str
    length: int


# --- device keys ----------------------------------------------------------------------------------------


def generate_device_key(path: Path, name: str | None = None) -> str:
    """Write a new device key to ``path`` (mode 0600) and return its verifier key (vkey)."""
    name = f"device/{secrets.token_hex(6)}" if name is None else name
    problem = key_name_problem(name)
    if problem:
        raise UsageError(f"cannot name a device key {name!r}: {problem}", hint="e.g. device/truck-17")
    if path.exists():
        raise UsageError(f"{path} already exists", hint="a device key is never overwritten; pick another --out")
    private_key = Ed25519PrivateKey.generate()
    write_private_key(path, name, NOTE_KEY, private_key)
    return Verifier.from_public_key(name, NOTE_KEY, public_key_bytes(private_key)).vkey


def load_device_key(path: Path) -> Ed25519Signer:
    """The device key in ``path`` (refused if other users can read it)."""
    name, private_key = read_private_key(path, NOTE_KEY)
    return Ed25519Signer(name, private_key)


# --- building and signing -------------------------------------------------------------------------------


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    except FileNotFoundError as exc:
        raise UsageError(f"file {path} does not exist", hint="check the path") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{path} is a folder, not a file", hint="list the files to upload") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return h.hexdigest(), size


def build_manifest(
    files: Sequence[Path], prev_digest: str, device: str, *, sequence: int = 1, created_ns: int | None = None
) -> dict[str, Any]:
    """An unsigned manifest chaining ``files`` (in this order) onto ``prev_digest``."""
    check_digest(prev_digest, "the previous digest (--prev)")
    problem = key_name_problem(device)
    if problem:
        raise UsageError(f"device name {device!r} is not usable: {problem}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
        raise UsageError(f"the sequence number starts at 1, got {sequence!r}")
    if prev_digest == GENESIS_HEAD and sequence != 1:
        raise UsageError(
            f"a chain starting at the genesis head (64 zeros) starts at sequence 1, not {sequence}",
            hint="pass --prev with the digest of the last file uploaded before",
        )
    if prev_digest != GENESIS_HEAD and sequence == 1:
        raise UsageError(
            "sequence 1 is a vehicle's first upload, which continues from the genesis head (64 zeros)",
            hint="pass --sequence with the number of files uploaded before plus one",
        )
    if not 1 <= len(files) <= MAX_ITEMS:
        raise UsageError(f"a manifest lists 1 to {MAX_ITEMS} files, got {len(files)}")
    items: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    prev = prev_digest
    for path in files:
        digest, size = file_digest(path)
        if digest in seen:
            raise UsageError(f"{path} has the same content as {seen[digest]}", hint="upload each file once")
        seen[digest] = str(path)
        items.append({"name": path.name, "sha256": digest, "size": size, "prev": prev})
        prev = digest
    manifest = {
        "format": MANIFEST_FORMAT,
        "device": device,
        "sequence": sequence,
        "created_ns": str(time.time_ns() if created_ns is None else created_ns),
        "items": items,
    }
    check_manifest(manifest)
    return manifest


def signing_bytes(manifest: Mapping[str, Any]) -> bytes:
    """What the device signs: canonical JSON of the manifest without its ``signature``."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"})


def sign_manifest(manifest: Mapping[str, Any], device_private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """``manifest`` with a ``signature`` by the device key named in its ``device`` field."""
    check_manifest(manifest)
    body = {k: v for k, v in manifest.items() if k != "signature"}
    kid = key_id(body["device"], NOTE_KEY, public_key_bytes(device_private_key))
    sig = device_private_key.sign(signing_bytes(body))
    return {**body, "signature": {"alg": SIGNATURE_ALG, "key_id": kid.hex(), "sig": base64.b64encode(sig).decode()}}


# --- parsing and checking -------------------------------------------------------------------------------


def _bad(message: str) -> MalformedInput:
    return MalformedInput(f"upload manifest: {message}", hint="sign the files again with `trustlane vehicle sign`")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _label(index: int, item: Mapping[str, Any]) -> str:
    return f"item {index + 1} ({item.get('name')})"


def check_manifest(manifest: Any) -> None:
    """Raise MalformedInput unless ``manifest`` has the manifest's structure (signature optional)."""
    if not isinstance(manifest, Mapping):
        raise _bad("not a JSON object")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise _bad(f"format is {manifest.get('format')!r}, not {MANIFEST_FORMAT!r}")
    device = manifest.get("device")
    if not isinstance(device, str) or key_name_problem(device):
        raise _bad(f"device {device!r} is not a key name")
    if not _is_int(manifest.get("sequence")) or manifest["sequence"] < 1:
        raise _bad(f"sequence {manifest.get('sequence')!r} is not a positive integer")
    created = manifest.get("created_ns")
    if not isinstance(created, str) or not created.isdigit() or not created.isascii():
        raise _bad("created_ns must be a decimal string of nanoseconds")
    items = manifest.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise _bad(f"items must be a list of 1 to {MAX_ITEMS} files")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise _bad(f"item {i + 1} is not an object")
        name = item.get("name")
        if not isinstance(name, str) or not name or len(name) > 255 or "/" in name or not name.isprintable():
            raise _bad(f"item {i + 1} has no usable file name")
        for field in ("sha256", "prev"):
            value = item.get(field)
            if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise _bad(f"{_label(i, item)}: {field} is not 64 lower-case hex digits")
        if not _is_int(item.get("size")) or not 0 <= item["size"] < 1 << 53:
            raise _bad(f"{_label(i, item)}: size is not a non-negative integer")
    signature = manifest.get("signature")
    if signature is not None and (
        not isinstance(signature, Mapping)
        or not all(isinstance(signature.get(k), str) for k in ("alg", "key_id", "sig"))
    ):
        raise _bad("signature must be an object with alg, key_id and sig")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _bad(f"a field appears twice in one object ({sorted(k for k in keys if keys.count(k) > 1)[0]})")
    return dict(pairs)


def parse_manifest(data: bytes) -> dict[str, Any]:
    """A manifest from JSON bytes, structure checked (duplicate keys refused); not yet verified."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _bad(f"{len(data)} bytes; at most {MAX_MANIFEST_BYTES} are accepted")
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"not valid JSON ({exc})") from exc
    check_manifest(value)
    return dict(value)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"manifest {path} does not exist", hint="check the path") from exc
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from exc
    return parse_manifest(data)


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    """Write a manifest as indented JSON, atomically (temp file, fsync, rename)."""
    check_manifest(manifest)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write manifest {path}: {exc.strerror}") from exc


# --- verification ---------------------------------------------------------------------------------------


def _check_signature(manifest: Mapping[str, Any], verifier: Verifier) -> None:
    signature = manifest.get("signature")
    if signature is None:
        raise SignatureError("the upload manifest is not signed", hint="sign it with `trustlane vehicle sign`")
    if manifest["device"] != verifier.name:
        raise SignatureError(
            f"the manifest is from device {manifest['device']!r}, but this vehicle's device key is {verifier.name!r}",
            hint="sign with the device key registered for the vehicle (`trustlane vehicle register VIN --key`)",
        )
    if signature["alg"] != SIGNATURE_ALG or signature["key_id"] != verifier.key_id.hex():
        raise SignatureError(
            f"the manifest is signed by key {signature['key_id']} ({signature['alg']}), "
            f"not by the vehicle's device key {verifier.key_id.hex()}",
            hint="sign with the device key registered for the vehicle",
        )
    raw = strict_b64decode(signature["sig"], "manifest signature")
    if not verifier.verify(signing_bytes(manifest), raw):
        raise SignatureError(
            "the upload manifest's signature does not verify",
            hint="the manifest was altered after signing, or signed by another key; sign the files again",
        )


def _check_files(items: Sequence[Mapping[str, Any]], files: Sequence[Path]) -> None:
    if len(files) != len(items):
        missing = ", ".join(str(item["name"]) for item in items[len(files) :]) or "none"
        raise VerificationError(
            f"the manifest lists {len(items)} files but {len(files)} were uploaded (not uploaded: {missing})",
            hint="upload exactly the files the manifest lists, in its order",
        )
    position = {item["sha256"]: i for i, item in enumerate(items)}
    for i, (item, path) in enumerate(zip(items, files, strict=True)):
        size = path.stat().st_size if path.is_file() else -1
        digest = file_digest(path)[0] if size == item["size"] else None
        if digest == item["sha256"]:
            continue
        label = _label(i, item)
        if digest is None:
            found = "missing" if size < 0 else f"{size} bytes"
            raise VerificationError(
                f"file {path.name} ({found}) does not match {label}, which has {item['size']} bytes",
                hint="the file was truncated, altered or swapped; upload the file the device signed",
            )
        other = position.get(digest)
        if other is not None:
            raise VerificationError(
                f"file {path.name} is {_label(other, items[other])} of the manifest, not {label}",
                hint="upload the files in the manifest's order",
            )
        raise VerificationError(
            f"file {path.name} has SHA-256 {digest}, but {label} has {item['sha256']}",
            hint="the file was altered after the device signed it, or it is another file",
        )


def _check_chain(manifest: Mapping[str, Any], head: str, length: int) -> ChainState:
    items: list[Mapping[str, Any]] = manifest["items"]
    sequence: int = manifest["sequence"]
    if sequence <= length or (items[0]["prev"] != head and any(item["sha256"] == head for item in items)):
        raise VerificationError(
            f"replay: the manifest starts at sequence {sequence}, but the vehicle's chain already holds "
            f"{length} items (head {head[:16]}...)",
            hint="this upload, or one overlapping it, was already accepted; upload only new files",
        )
    if items[0]["prev"] != head:
        raise VerificationError(
            f"{_label(0, items[0])} continues from {items[0]['prev'][:16]}..., not from the vehicle's chain head "
            f"{head[:16]}... (length {length}): a replay of an older upload, or files uploaded before it are missing",
            hint="upload only files that follow the accepted chain; `trustlane vehicle list` shows its head",
        )
    if sequence != length + 1:
        raise VerificationError(
            f"gap: the manifest starts at sequence {sequence}, but the chain holds {length} items; "
            f"items {length + 1}..{sequence - 1} were never uploaded",
            hint="upload the missing files first",
        )
    digests = {item["sha256"]: i for i, item in enumerate(items)}
    for i in range(1, len(items)):
        item, before = items[i], items[i - 1]
        if item["prev"] == before["sha256"]:
            continue
        if item["prev"] in digests:
            raise VerificationError(
                f"reordered: {_label(i, item)} follows {_label(digests[item['prev']], items[digests[item['prev']]])}, "
                f"not {_label(i - 1, before)}",
                hint="the manifest's items are out of their chain order; have the device sign them again",
            )
        raise VerificationError(
            f"gap: {_label(i, item)} follows a file with SHA-256 {item['prev'][:16]}... that the manifest does "
            f"not list (after {_label(i - 1, before)})",
            hint="a file between these two is missing; upload the complete sequence",
        )
    return ChainState(items[-1]["sha256"], length + len(items))


def verify_manifest(
    manifest: Mapping[str, Any], files: Sequence[Path], device_verifier: Verifier, chain_head: str, chain_length: int
) -> ChainState:
    """Check the signature, the files and the chain; return the chain state after accepting the upload.

    Raises SignatureError (unsigned, wrong device, bad signature), VerificationError (a file's digest or size
    differs, a gap, a reordering, a replay) or MalformedInput (not a manifest).
    """
    check_manifest(manifest)
    check_digest(chain_head, "chain head")
    if chain_length < 0:
        raise UsageError(f"a chain length is never negative, got {chain_length}")
    _check_signature(manifest, device_verifier)
    state = _check_chain(manifest, chain_head, chain_length)
    _check_files(manifest["items"], files)
    return state


__all__ = [
    "MANIFEST_FORMAT",
    "ChainState",
    "build_manifest",
    "check_manifest",
    "file_digest",
    "generate_device_key",
    "load_device_key",
    "parse_manifest",
    "read_manifest",
    "sign_manifest",
    "signing_bytes",
    "verify_manifest",
    "write_manifest",
]
