"""C2SP timestamped Ed25519 cosignatures (type 0x04) and their verification inside notes."""

from __future__ import annotations

import pytest

from trustlane.crypto.cosignature import (
    MAX_TIMESTAMP,
    CosignatureSigner,
    cosignature_timestamp,
    cosigned_message,
)
from trustlane.crypto.note import (
    SIG_TYPE_COSIGNATURE_ED25519,
    Ed25519Signer,
    Note,
    SignatureLine,
    key_id,
    parse_note,
    parse_vkey,
    verify_note,
)
from trustlane.errors import MalformedInput, SignatureError

BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
OTHER_BODY = "example.com/behind-the-sofa\n20852164\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_signed_message_layout() -> None:
    assert cosigned_message(BODY.encode(), 1679315147) == (b"cosignature/v1\ntime 1679315147\n" + BODY.encode())


def test_cosign_and_verify() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    line = witness.cosign(BODY, 1679315147)
    assert len(line.signature) == 72
    assert cosignature_timestamp(line) == 1679315147
    assert witness.verifier.sig_type == SIG_TYPE_COSIGNATURE_ED25519
    assert witness.verifier.key_id == key_id("witness.example/w1", 0x04, witness.verifier.public_key)
    assert witness.verifier.verify(BODY.encode(), line.signature)
    assert parse_vkey(witness.verifier.vkey) == witness.verifier


def test_note_with_log_signature_and_cosignatures_verifies() -> None:
    log = Ed25519Signer.generate("example.com/behind-the-sofa")
    w1, w2 = (
        CosignatureSigner.generate("witness.example/w1"),
        CosignatureSigner.generate("witness.example/w2"),
    )
    note = Note(BODY, (log.sign(BODY.encode()), w1.cosign(BODY, 10), w2.cosign(BODY, 11)))
    parsed = parse_note(note.format())
    assert verify_note(parsed, [log.verifier, w1.verifier, w2.verifier]) == [
        log.verifier,
        w1.verifier,
        w2.verifier,
    ]
    assert verify_note(parsed, [w2.verifier]) == [w2.verifier]


def test_same_key_as_note_and_cosignature_keys_differ() -> None:
    log = Ed25519Signer.generate("example.com/log")
    as_witness = CosignatureSigner("example.com/log", log.private_key)
    assert as_witness.verifier.key_id != log.verifier.key_id
    note = Note(BODY, (as_witness.cosign(BODY, 5),))
    with pytest.raises(SignatureError, match="no signature from a trusted key"):
        verify_note(note, [log.verifier])


def test_timestamp_tamper_fails() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    line = witness.cosign(BODY, 1000)
    moved = SignatureLine(line.name, line.key_id, (1001).to_bytes(8, "big") + line.signature[8:])
    assert not witness.verifier.verify(BODY.encode(), moved.signature)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_note(Note(BODY, (moved,)), [witness.verifier])


def test_cosignature_over_other_checkpoint_fails() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    line = witness.cosign(OTHER_BODY, 1000)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_note(Note(BODY, (line,)), [witness.verifier])


def test_plain_ed25519_signature_is_not_a_cosignature() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    plain = witness.private_key.sign(BODY.encode())
    assert not witness.verifier.verify(BODY.encode(), plain)
    assert not witness.verifier.verify(BODY.encode(), b"\x00" * 8 + plain + b"\x00")


@pytest.mark.parametrize("timestamp", [-1, MAX_TIMESTAMP + 1, 1 << 64])
def test_cosign_rejects_out_of_range_timestamps(timestamp: int) -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    with pytest.raises(MalformedInput, match=r"outside 0\.\.2\^63-1") as err:
        witness.cosign(BODY, timestamp)
    assert err.value.hint


def test_cosign_accepts_the_largest_timestamp() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    line = witness.cosign(BODY, MAX_TIMESTAMP)
    assert cosignature_timestamp(line) == MAX_TIMESTAMP
    assert witness.verifier.verify(BODY.encode(), line.signature)


def test_verifier_rejects_timestamp_above_2_63_even_if_signed() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    timestamp = MAX_TIMESTAMP + 1
    signature = witness.private_key.sign(cosigned_message(BODY.encode(), timestamp))
    payload = timestamp.to_bytes(8, "big") + signature
    assert not witness.verifier.verify(BODY.encode(), payload)
    line = SignatureLine(witness.name, witness.verifier.key_id, payload)
    with pytest.raises(MalformedInput, match=r"above 2\^63-1"):
        cosignature_timestamp(line)
    with pytest.raises(SignatureError):
        verify_note(Note(BODY, (line,)), [witness.verifier])


def test_timestamp_of_a_non_cosignature_line() -> None:
    with pytest.raises(MalformedInput, match="not the 72"):
        cosignature_timestamp(SignatureLine("example.com/log", b"\x00" * 4, b"\x00" * 64))


def test_cosign_rejects_text_that_is_not_a_note_body() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    with pytest.raises(MalformedInput, match="newline"):
        witness.cosign(BODY.rstrip("\n"), 1)
