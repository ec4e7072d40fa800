"""C2SP signed notes: the spec example, round trips, tampering and strict parsing."""

from __future__ import annotations

import base64
import re

import pytest

from tests.conftest import shared_path
from trustlane.crypto.note import (
    MAX_SIGNATURES,
    SIG_TYPE_COSIGNATURE_ED25519,
    SIG_TYPE_ED25519,
    Ed25519Signer,
    Note,
    SignatureLine,
    Verifier,
    key_id,
    parse_note,
    parse_vkey,
    verify_note,
)
from trustlane.errors import KeyMaterialError, MalformedInput, SignatureError

# The example from c2sp.org/signed-note ("Verifier keys" / "Example"), embedded so the test runs anywhere.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRK"
    "uwHjG1Yu72IneyaQM=\n"
)


def test_spec_example_verifies() -> None:
    verifier = parse_vkey(SPEC_VKEY)
    note = parse_note(SPEC_NOTE)
    assert note.text == "This is an example message.\n"
    assert verify_note(note, [verifier]) == [verifier]
    assert verifier.vkey == SPEC_VKEY
    assert note.format() == SPEC_NOTE


@pytest.mark.shared
def test_spec_example_from_shared_copy() -> None:
    spec = shared_path("specs", "c2sp", "signed-note.md").read_text(encoding="utf-8")
    example = spec[spec.index("### Example") :]
    vkey = re.search(r"^    (\S+\+[0-9a-f]{8}\+\S+)$", example, re.MULTILINE)
    block = re.search(r"```\n(.*?)```", example, re.DOTALL)
    assert vkey is not None and block is not None
    assert vkey.group(1) == SPEC_VKEY
    assert block.group(1) == SPEC_NOTE
    verifier = parse_vkey(vkey.group(1))
    assert verify_note(parse_note(block.group(1).encode("utf-8")), [verifier]) == [verifier]


def test_key_id_follows_the_spec_formula() -> None:
    verifier = parse_vkey(SPEC_VKEY)
    assert key_id("example.com/foo", SIG_TYPE_ED25519, verifier.public_key) == bytes.fromhex("530d903a")
    other_type = key_id("example.com/foo", SIG_TYPE_COSIGNATURE_ED25519, verifier.public_key)
    assert other_type != verifier.key_id


def test_sign_verify_round_trip() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    text = "hello\n\nworld, with an empty line inside\n"
    note = Note(text, (signer.sign(text.encode()),))
    parsed = parse_note(note.format())
    assert parsed == note
    assert verify_note(parsed, [signer.verifier]) == [signer.verifier]
    assert parse_vkey(signer.verifier.vkey) == signer.verifier


def test_two_signers_and_with_signatures() -> None:
    one, two = Ed25519Signer.generate("a.example/one"), Ed25519Signer.generate("b.example/two")
    text = b"payload\n"
    note = Note("payload\n", (one.sign(text),))
    both = note.with_signatures([two.sign(text), one.sign(text)])
    assert [s.name for s in both.signatures] == ["a.example/one", "b.example/two"]
    assert verify_note(parse_note(both.format()), [two.verifier, one.verifier]) == [
        one.verifier,
        two.verifier,
    ]


def test_tampered_text_is_rejected() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    note = Note("amount 10\n", (signer.sign(b"amount 10\n"),))
    tampered = parse_note(note.format().replace("amount 10", "amount 99"))
    with pytest.raises(SignatureError, match="does not verify") as err:
        verify_note(tampered, [signer.verifier])
    assert err.value.hint


def test_tampered_signature_is_rejected() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    line = signer.sign(b"text\n")
    flipped = SignatureLine(line.name, line.key_id, bytes([line.signature[0] ^ 1]) + line.signature[1:])
    with pytest.raises(SignatureError):
        verify_note(Note("text\n", (flipped,)), [signer.verifier])


def test_bad_known_signature_rejects_note_even_with_a_good_one() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    good = signer.sign(b"text\n")
    bad = SignatureLine(good.name, good.key_id, b"\x00" * 64)
    with pytest.raises(SignatureError):
        verify_note(Note("text\n", (good, bad)), [signer.verifier])


def test_unknown_signatures_are_ignored() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    stranger = Ed25519Signer.generate("example.com/stranger")
    same_name = Ed25519Signer.generate("example.com/log")  # same name, other key ID
    text = b"text\n"
    garbage = SignatureLine("example.com/garbage", b"\x01\x02\x03\x04", b"\xff")
    note = Note("text\n", (stranger.sign(text), same_name.sign(text), garbage, signer.sign(text)))
    assert verify_note(note, [signer.verifier]) == [signer.verifier]


def test_no_known_signature_is_rejected() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    stranger = Ed25519Signer.generate("example.com/stranger")
    note = Note("text\n", (stranger.sign(b"text\n"),))
    with pytest.raises(SignatureError, match="no signature from a trusted key") as err:
        verify_note(note, [signer.verifier])
    assert err.value.hint


def test_same_key_id_other_name_is_unknown() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    line = signer.sign(b"text\n")
    renamed = SignatureLine("example.com/other", line.key_id, b"\x00" * 64)
    assert verify_note(Note("text\n", (renamed, line)), [signer.verifier]) == [signer.verifier]


VALID = SPEC_NOTE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(VALID.replace("\n\n", "\n"), "no blank line", id="missing-blank-line"),
        pytest.param("This is an example message.\n\n", "no signature lines", id="no-signatures"),
        pytest.param(VALID + "\n", "no signature lines", id="trailing-blank-line"),
        pytest.param(VALID[:-1], "does not end with a newline", id="no-final-newline"),
        pytest.param(VALID.replace("This is", "This\tis"), "control character", id="tab"),
        pytest.param(VALID.replace("message.\n", "message.\r\n"), "control character", id="carriage-return"),
        pytest.param(VALID.replace("This", "Th\x00is"), "control character", id="nul"),
        pytest.param(VALID.replace("Uw2QOkn8", "Uw2QOk!8"), "not valid base64", id="bad-base64-char"),
        pytest.param(VALID.replace("QM=\n", "QM\n"), "not valid base64", id="missing-padding"),
        pytest.param(VALID.replace("QM=\n", "QN=\n"), "not canonical base64", id="noncanonical-base64"),
        pytest.param(VALID.replace("— ", "- "), "em dash", id="hyphen-instead-of-em-dash"),
        pytest.param(VALID.replace("— ", "—"), "em dash", id="no-space-after-dash"),
        pytest.param(VALID.replace("foo ", "foo  "), "is not '— <key name>", id="double-space"),
        pytest.param(VALID.replace("example.com/foo ", "example.com/f+o "), r"contains '\+'", id="plus-in-name"),
        pytest.param(VALID.replace("example.com/foo ", " "), "the key name is empty", id="empty-name"),
        pytest.param(VALID.split("— ")[0] + "— a AQIDBA==\n", "at least 5", id="short-signature"),
    ],
)
def test_malformed_notes(data: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message) as err:
        parse_note(data)
    assert err.value.hint


def test_bad_utf8_is_malformed() -> None:
    with pytest.raises(MalformedInput, match="not valid UTF-8"):
        parse_note(b"caf\xe9\n\n" + SPEC_NOTE.split("\n\n")[1].encode())


def test_lone_surrogate_is_malformed() -> None:
    with pytest.raises(MalformedInput, match="not valid Unicode"):
        parse_note("\ud800\n\n" + SPEC_NOTE.split("\n\n")[1])


def test_text_may_end_with_blank_lines_before_the_separator() -> None:
    note = parse_note("a\n\n\n" + SPEC_NOTE.split("\n\n")[1])
    assert note.text == "a\n\n"


def test_signature_count_limit() -> None:
    line = SPEC_NOTE.split("\n\n")[1]
    assert len(parse_note("t\n\n" + line * MAX_SIGNATURES).signatures) == MAX_SIGNATURES
    with pytest.raises(MalformedInput, match="at most"):
        parse_note("t\n\n" + line * (MAX_SIGNATURES + 1))


def test_size_limit() -> None:
    with pytest.raises(MalformedInput, match="bytes; at most"):
        parse_note("x" * (1 << 20) + "\n\n" + SPEC_NOTE.split("\n\n")[1])


def test_format_requires_a_signature() -> None:
    with pytest.raises(SignatureError, match="without signatures"):
        Note("text\n").format()


def test_sign_refuses_text_that_cannot_be_a_note() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    with pytest.raises(MalformedInput):
        signer.sign(b"no newline")
    with pytest.raises(MalformedInput):
        signer.sign(b"\xff\n")


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        pytest.param(SPEC_VKEY.replace("530d903a", "530d903b"), "key ID 530d903b", id="wrong-key-id"),
        pytest.param(SPEC_VKEY.replace("530d903a", "530D903A"), "8 lowercase hex", id="uppercase-id"),
        pytest.param(SPEC_VKEY.replace("example.com/foo", "example.com/bar"), "key ID", id="renamed"),
        pytest.param("example.com/foo+530d903a", "three", id="two-parts"),
        pytest.param("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "empty", id="empty-name"),
        pytest.param("a b+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "whitespace", id="space"),
        pytest.param(SPEC_VKEY[:-4], "33", id="short-key"),
        pytest.param(SPEC_VKEY.replace("+Aek", "+!ek"), "base64", id="bad-base64"),
    ],
)
def test_malformed_vkeys(vkey: str, message: str) -> None:
    with pytest.raises(KeyMaterialError, match=message) as err:
        parse_vkey(vkey)
    assert err.value.hint


def test_vkey_whose_key_material_contains_plus() -> None:
    verifier = Verifier.from_public_key("example.com/plus", SIG_TYPE_ED25519, b"\xfb" * 32)
    material = verifier.vkey.split("+", 2)[2]
    assert "+" in material
    assert parse_vkey(verifier.vkey) == verifier


def test_vkey_of_unsupported_type() -> None:
    public = parse_vkey(SPEC_VKEY).public_key
    material = base64.b64encode(b"\x02" + public).decode()
    with pytest.raises(KeyMaterialError, match="unsupported signature type 0x02"):
        parse_vkey(f"example.com/foo+{key_id('example.com/foo', 2, public).hex()}+{material}")


def test_verifier_rejects_bad_fields() -> None:
    public = parse_vkey(SPEC_VKEY).public_key
    with pytest.raises(KeyMaterialError):
        Verifier("example.com/foo", b"\x00" * 3, SIG_TYPE_ED25519, public)
    with pytest.raises(KeyMaterialError):
        Verifier.from_public_key("example.com/foo", SIG_TYPE_ED25519, public[:31])
    with pytest.raises(KeyMaterialError):
        Ed25519Signer.generate("bad name")


def test_signature_line_format() -> None:
    line = SignatureLine("example.com/foo", b"\x53\x0d\x90\x3a", b"\x01")
    assert line.format() == "— example.com/foo Uw2QOgE=\n"
