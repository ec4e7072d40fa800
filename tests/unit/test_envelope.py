"""Envelope encryption: sealed format, tamper detection, HKDF sub-keys, master key files, wrapped data keys."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trustlane.crypto.envelope import (
    MAGIC,
    NONCE_SIZE,
    OVERHEAD,
    DataKey,
    context_aad,
    create_master_key,
    derive_key,
    generate_key,
    load_or_create_master_key,
    master_key_id,
    open_sealed,
    read_master_key,
    seal,
    unwrap_data_key,
    wrap_data_key,
)
from trustlane.errors import KeyMaterialError, UsageError, VerificationError

KEY = bytes(range(32))
AAD = context_aad(purpose="segment", vehicle="veh-aaaaaaaaaaaaaaaaaaaaaaaaaa")


# --- sealing ------------------------------------------------------------------------------------------


def test_seal_round_trip_and_format() -> None:
    blob = seal(KEY, b"hello vehicle", AAD)
    assert blob[:4] == MAGIC == b"TLE1"
    assert len(blob) == len(b"hello vehicle") + OVERHEAD == 13 + 4 + 12 + 16
    assert open_sealed(KEY, blob, AAD) == b"hello vehicle"
    # the format is plain AES-256-GCM: nonce after the magic, ciphertext||tag after the nonce
    nonce = blob[4 : 4 + NONCE_SIZE]
    assert AESGCM(KEY).decrypt(nonce, blob[4 + NONCE_SIZE :], AAD) == b"hello vehicle"


def test_nonces_are_random() -> None:
    blobs = {seal(KEY, b"same", AAD) for _ in range(50)}
    assert len(blobs) == 50
    assert len({b[4:16] for b in blobs}) == 50


def test_empty_plaintext() -> None:
    blob = seal(KEY, b"", AAD)
    assert len(blob) == OVERHEAD
    assert open_sealed(KEY, blob, AAD) == b""


def test_ten_megabyte_segment_with_buffers() -> None:
    data = os.urandom(10 * 1024 * 1024)
    blob = seal(KEY, memoryview(data), bytearray(AAD))
    assert len(blob) == len(data) + OVERHEAD
    assert open_sealed(KEY, memoryview(blob), AAD) == data


def test_wrong_key_fails_with_hint() -> None:
    blob = seal(KEY, b"secret", AAD)
    with pytest.raises(VerificationError) as info:
        open_sealed(generate_key(), blob, AAD)
    assert "wrong key" in info.value.message
    assert info.value.hint


def test_wrong_aad_fails() -> None:
    blob = seal(KEY, b"secret", AAD)
    other = context_aad(purpose="segment", vehicle="veh-bbbbbbbbbbbbbbbbbbbbbbbbbb")
    with pytest.raises(VerificationError):
        open_sealed(KEY, blob, other)
    with pytest.raises(VerificationError):
        open_sealed(KEY, blob, b"")


@pytest.mark.parametrize("offset", [0, 3, 4, 15, 16, 20, -1, -16])
def test_any_flipped_bit_is_detected(offset: int) -> None:
    blob = bytearray(seal(KEY, b"some plaintext of a segment", AAD))
    blob[offset] ^= 0x01
    with pytest.raises(VerificationError):
        open_sealed(KEY, bytes(blob), AAD)


@pytest.mark.parametrize("length", [0, 4, OVERHEAD - 1])
def test_truncated_blob(length: int) -> None:
    blob = seal(KEY, b"", AAD)
    with pytest.raises(VerificationError, match=r"truncated|shorter"):
        open_sealed(KEY, blob[:length], AAD)


def test_key_size_is_checked() -> None:
    with pytest.raises(KeyMaterialError):
        seal(b"short", b"x", AAD)
    with pytest.raises(KeyMaterialError):
        open_sealed(bytes(33), b"x" * 40, AAD)


def test_context_aad_is_canonical_json() -> None:
    assert context_aad(vehicle="v", purpose="p") == b'{"purpose":"p","vehicle":"v"}'
    assert context_aad(a="1") != context_aad(a=1)


# --- key derivation -----------------------------------------------------------------------------------


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, written out independently of the implementation under test."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def test_derive_key_is_hkdf_sha256() -> None:
    assert derive_key(KEY, "vin-seal/v1") == _hkdf_sha256(KEY, b"trustlane/hkdf/v1", b"vin-seal/v1", 32)
    assert len(derive_key(KEY, "x", 64)) == 64


def test_derived_keys_are_separated() -> None:
    keys = {derive_key(KEY, label) for label in ("vin-seal/v1", "vin-pseudonym/v1", "data-key-wrap/v1")}
    assert len(keys) == 3
    assert derive_key(KEY, "vin-seal/v1") == derive_key(KEY, "vin-seal/v1")
    assert derive_key(generate_key(), "vin-seal/v1") != derive_key(KEY, "vin-seal/v1")


@pytest.mark.parametrize("label", ["", "tab\there", "ünïcode"])
def test_derive_key_rejects_bad_labels(label: str) -> None:
    with pytest.raises(UsageError):
        derive_key(KEY, label)


# --- the master key file ------------------------------------------------------------------------------


def test_master_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "node.key"
    key = create_master_key(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_master_key(path) == key
    assert path.read_text().startswith(f"MASTER+KEY+{master_key_id(key)}+")
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_master_key_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    key = create_master_key(path)
    with pytest.raises(KeyMaterialError, match="already exists"):
        create_master_key(path)
    assert read_master_key(path) == key
    assert load_or_create_master_key(path) == key


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(load_or_create_master_key(path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert set(results) == {read_master_key(path)}


def test_group_readable_master_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    create_master_key(path)
    path.chmod(0o640)
    with pytest.raises(KeyMaterialError) as info:
        read_master_key(path)
    assert "chmod 600" in (info.value.hint or "")


def test_missing_and_damaged_master_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="missing"):
        read_master_key(tmp_path / "absent.key")
    path = tmp_path / "node.key"
    key = create_master_key(path)
    text = path.read_text()
    path.write_text(text.replace(master_key_id(key), "00000000"))
    with pytest.raises(KeyMaterialError, match="key id"):
        read_master_key(path)
    path.write_text("PRIVATE+KEY+something\n")
    with pytest.raises(KeyMaterialError, match="not a trustlane master key"):
        read_master_key(path)


# --- data keys ----------------------------------------------------------------------------------------


def test_wrapped_data_key_round_trip_and_binding() -> None:
    master = generate_key()
    dk = DataKey.generate()
    wrapped = wrap_data_key(master, dk, "veh-aaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert dk.key not in wrapped
    assert unwrap_data_key(master, wrapped, "veh-aaaaaaaaaaaaaaaaaaaaaaaaaa") == dk
    with pytest.raises(VerificationError, match="veh-bbbb"):
        unwrap_data_key(master, wrapped, "veh-bbbbbbbbbbbbbbbbbbbbbbbbbb")
    with pytest.raises(VerificationError):
        unwrap_data_key(master, wrapped, "veh-aaaaaaaaaaaaaaaaaaaaaaaaaa", purpose="export")
    with pytest.raises(VerificationError) as info:
        unwrap_data_key(generate_key(), wrapped, "veh-aaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert "node.key" in (info.value.hint or "")


def test_data_key_is_never_printed() -> None:
    dk = DataKey.generate()
    assert dk.key.hex() not in repr(dk)
    assert "redacted" in repr(dk)
    with pytest.raises(KeyMaterialError):
        DataKey(b"too short")
