"""C2SP checkpoints: body format, strict parsing, signing, cosigning and verification."""

from __future__ import annotations

import hashlib

import pytest

from trustlane.crypto.cosignature import CosignatureSigner
from trustlane.crypto.note import Ed25519Signer, parse_note
from trustlane.errors import KeyMaterialError, MalformedInput, SignatureError
from trustlane.ledger.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    parse_checkpoint_body,
    parse_signed_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)

ORIGIN = "example.com/behind-the-sofa"
SPEC_BODY = f"{ORIGIN}\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture
def log() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


def test_spec_body_round_trip() -> None:
    checkpoint = parse_checkpoint_body(SPEC_BODY)
    assert checkpoint.origin == ORIGIN
    assert checkpoint.size == 20852163
    assert len(checkpoint.root) == 32
    assert checkpoint.extensions == ()
    assert checkpoint.body() == SPEC_BODY


def test_extensions_round_trip() -> None:
    checkpoint = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
    assert checkpoint.body().endswith("\next one\next two\n")
    assert parse_checkpoint_body(checkpoint.body()) == checkpoint


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(f"{ORIGIN}\n5\n", "3 lines|2 lines", id="two-lines"),
        pytest.param(SPEC_BODY.replace(ORIGIN, ""), "origin line is empty", id="empty-origin"),
        pytest.param(SPEC_BODY.replace("20852163", "020852163"), "leading zeros", id="leading-zero"),
        pytest.param(SPEC_BODY.replace("20852163", "-1"), "leading zeros", id="negative"),
        pytest.param(SPEC_BODY.replace("20852163", "+5"), "leading zeros", id="plus-sign"),
        pytest.param(SPEC_BODY.replace("20852163", "٣"), "leading zeros", id="arabic-digit"),
        pytest.param(SPEC_BODY.replace("20852163", "1" * 21), "leading zeros", id="huge"),
        pytest.param(SPEC_BODY.replace("20852163", str(1 << 64)), "outside", id="above-u64"),
        pytest.param(SPEC_BODY.replace("=\n", "\n"), "base64", id="unpadded-root"),
        pytest.param(f"{ORIGIN}\n1\nAAAA\n", "3 bytes, not 32", id="short-root"),
        pytest.param(SPEC_BODY + "\n", "empty extension", id="empty-extension"),
        pytest.param(SPEC_BODY[:-1], "newline", id="no-final-newline"),
        pytest.param(SPEC_BODY.replace("\n", "\r\n"), "control character", id="crlf"),
    ],
)
def test_malformed_bodies(body: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message) as err:
        parse_checkpoint_body(body)
    assert err.value.hint


def test_checkpoint_field_validation() -> None:
    with pytest.raises(MalformedInput):
        Checkpoint("", 1, ROOT)
    with pytest.raises(MalformedInput):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(MalformedInput):
        Checkpoint(ORIGIN, 1, ROOT[:31])
    with pytest.raises(MalformedInput):
        Checkpoint(ORIGIN, 1, ROOT, ("",))
    with pytest.raises(MalformedInput):
        Checkpoint(ORIGIN, 1, ROOT, ("a\nb",))


def test_sign_parse_verify(log: Ed25519Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    assert signed.text.startswith(signed.checkpoint.body() + "\n— " + ORIGIN + " ")
    parsed = parse_signed_checkpoint(signed.text.encode())
    assert parsed == signed
    assert verify_checkpoint(signed.text, log.verifier) == signed
    assert verify_checkpoint(signed, log.verifier, expected_origin=ORIGIN) == signed


def test_sign_with_key_of_other_name(log: Ed25519Signer) -> None:
    with pytest.raises(KeyMaterialError, match="cannot sign"):
        sign_checkpoint(Checkpoint("example.com/other", 1, ROOT), log)


def test_verify_rejects_wrong_origin(log: Ed25519Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    with pytest.raises(SignatureError, match="not the expected"):
        verify_checkpoint(signed, log.verifier, expected_origin="example.com/other")
    other = Ed25519Signer.generate("example.com/other")
    with pytest.raises(SignatureError, match="does not match log key"):
        verify_checkpoint(signed, other.verifier)


def test_verify_rejects_other_key_with_same_name(log: Ed25519Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    impostor = Ed25519Signer.generate(ORIGIN)
    with pytest.raises(SignatureError, match="no signature from a trusted key"):
        verify_checkpoint(signed, impostor.verifier)


def test_verify_rejects_tampered_size(log: Ed25519Signer) -> None:
    text = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log).text
    with pytest.raises(SignatureError, match="does not verify"):
        verify_checkpoint(text.replace("\n7\n", "\n8\n", 1), log.verifier)


def test_verify_rejects_a_witness_key_as_log_key(log: Ed25519Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    witness = CosignatureSigner(ORIGIN, log.private_key)
    with pytest.raises(KeyMaterialError, match="not a log key"):
        verify_checkpoint(signed, witness.verifier)


def test_with_cosignatures_drops_duplicates(log: Ed25519Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    w1, w2 = CosignatureSigner.generate("w.example/1"), CosignatureSigner.generate("w.example/2")
    body = signed.checkpoint.body()
    cosigned = signed.with_cosignatures([w1.cosign(body, 1), w2.cosign(body, 2)])
    again = cosigned.with_cosignatures([w1.cosign(body, 3), log.sign(body.encode())])
    assert again == cosigned
    assert [line.name for line in again.note.signatures] == [ORIGIN, "w.example/1", "w.example/2"]
    assert verify_checkpoint(again.text, log.verifier) == again


def test_signed_checkpoint_must_match_its_note(log: Ed25519Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    with pytest.raises(MalformedInput, match="not the checkpoint's text"):
        SignedCheckpoint(Checkpoint(ORIGIN, 8, ROOT), signed.note)


def test_parse_signed_checkpoint_rejects_bad_body(log: Ed25519Signer) -> None:
    note = parse_note(sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log).text)
    broken = note.format().replace("\n7\n", "\n07\n", 1)
    with pytest.raises(MalformedInput, match="leading zeros"):
        parse_signed_checkpoint(broken)
