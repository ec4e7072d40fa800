"""C2SP tlog-policy: parsing, every validation rule, quorum evaluation and checkpoint verification."""

from __future__ import annotations

import hashlib

import pytest

from trustlane.crypto.cosignature import CosignatureSigner
from trustlane.crypto.note import Ed25519Signer, Note, SignatureLine
from trustlane.errors import KeyMaterialError, MalformedInput, QuorumError, SignatureError
from trustlane.ledger.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from trustlane.ledger.policy import Group, Policy, parse_policy, verify_checkpoint_with_policy

ORIGIN = "example.com/log"
LOG = Ed25519Signer.generate(ORIGIN)
W = {name: CosignatureSigner.generate(f"witness.example/{name}") for name in ("X1", "X2", "X3", "Y1", "Y2", "Y3")}


def _spec_example() -> str:
    """The spec's two-level example, with generated keys and some URLs, comments and odd spacing."""
    return (
        "# example policy\n"
        f"log {LOG.verifier.vkey} https://log.example/\n"
        "\n"
        f"witness X1 {W['X1'].verifier.vkey}\n"
        f"witness X2 {W['X2'].verifier.vkey} https://x2.example/\n"
        f"\twitness  X3\t{W['X3'].verifier.vkey}   \n"
        "group X-witnesses 2 X1 X2 X3\n"
        "   # indented comment\n"
        f"witness Y1 {W['Y1'].verifier.vkey}\n"
        f"witness Y2 {W['Y2'].verifier.vkey}\n"
        f"witness Y3 {W['Y3'].verifier.vkey}\n"
        "group Y-witnesses any Y1 Y2 Y3\n"
        "\n"
        "group X-and-Y all X-witnesses Y-witnesses\n"
        "quorum X-and-Y\n"
    )


def test_parse_spec_example() -> None:
    policy = parse_policy(_spec_example())
    assert policy.logs == (LOG.verifier,)
    assert list(policy.witnesses) == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert policy.witnesses["X3"] == W["X3"].verifier
    assert policy.groups["X-witnesses"] == Group("X-witnesses", 2, ("X1", "X2", "X3"))
    assert policy.groups["Y-witnesses"].threshold == 1
    assert policy.groups["X-and-Y"].threshold == 2
    assert policy.quorum == "X-and-Y"
    assert policy.log_urls == {LOG.verifier.vkey: "https://log.example/"}
    assert policy.witness_urls == {"X2": "https://x2.example/"}


def test_format_round_trip() -> None:
    policy = parse_policy(_spec_example())
    text = policy.format()
    assert "group X-witnesses 2 X1 X2 X3\n" in text
    assert "group Y-witnesses any Y1 Y2 Y3\n" in text
    assert "group X-and-Y all X-witnesses Y-witnesses\n" in text
    assert text.endswith("quorum X-and-Y\n")
    assert parse_policy(text) == policy
    assert parse_policy(text.encode()) == policy


@pytest.mark.parametrize(
    ("cosigned", "ok"),
    [
        ({"X1", "X2", "Y3"}, True),
        ({"X1", "X2", "X3", "Y1", "Y2", "Y3"}, True),
        ({"X1", "X2"}, False),
        ({"X1", "Y1", "Y2", "Y3"}, False),
        ({"X3", "X2", "Y2"}, True),
        (set(), False),
        ({"X-witnesses", "Y-witnesses"}, False),  # group names are not cosigners
    ],
)
def test_nested_quorum(cosigned: set[str], ok: bool) -> None:
    assert parse_policy(_spec_example()).quorum_satisfied(cosigned) is ok


def test_quorum_none_and_single_witness() -> None:
    none = parse_policy(f"log {LOG.verifier.vkey}\nquorum none\n")
    assert none.quorum is None
    assert none.quorum_satisfied(set())
    assert none.format() == f"log {LOG.verifier.vkey}\nquorum none\n"
    single = parse_policy(f"witness X1 {W['X1'].verifier.vkey}\nquorum X1")  # no final newline
    assert single.logs == ()
    assert single.quorum_satisfied({"X1"})
    assert not single.quorum_satisfied({"X2"})


@pytest.mark.parametrize(("k", "satisfied_by"), [(1, 1), (2, 2), (3, 3)])
def test_simple_k_of_n(k: int, satisfied_by: int) -> None:
    names = ["X1", "X2", "X3"]
    policy = Policy.simple(LOG.verifier, [(n, W[n].verifier) for n in names], k)
    assert parse_policy(policy.format()) == policy
    assert not policy.quorum_satisfied(set(names[: satisfied_by - 1]))
    assert policy.quorum_satisfied(set(names[:satisfied_by]))


def test_simple_without_witnesses_and_name_clash() -> None:
    assert Policy.simple(LOG.verifier, [], 0).quorum is None
    clash = Policy.simple(LOG.verifier, [("quorum", W["X1"].verifier)], 1)
    assert clash.quorum == "quorum-group"
    assert clash.quorum_satisfied({"quorum"})
    with pytest.raises(MalformedInput, match="1 <= k <= n"):
        Policy.simple(LOG.verifier, [("X1", W["X1"].verifier)], 2)
    with pytest.raises(MalformedInput, match="1 <= k <= n"):
        Policy.simple(LOG.verifier, [("X1", W["X1"].verifier)], -1)


def test_policy_constructor_validates() -> None:
    with pytest.raises(MalformedInput, match="not a witness or group"):
        Policy((LOG.verifier,), {}, {}, "X1")
    with pytest.raises(MalformedInput, match="filed under"):
        Policy((), {"X1": W["X1"].verifier}, {"G": Group("H", 1, ("X1",))}, "G")


def test_simple_and_constructor_reject_names_the_file_format_cannot_hold() -> None:
    with pytest.raises(MalformedInput, match="whitespace"):
        Policy.simple(LOG.verifier, [("two words", W["X1"].verifier)], 1)
    with pytest.raises(MalformedInput, match="empty"):
        Policy.simple(LOG.verifier, [("", W["X1"].verifier)], 1)
    with pytest.raises(MalformedInput, match="URL"):
        Policy((LOG.verifier,), {}, {}, None, log_urls={LOG.verifier.vkey: "https://a b/"})


def test_log_for_origin() -> None:
    policy = parse_policy(_spec_example())
    assert policy.log_for_origin(ORIGIN) == LOG.verifier
    with pytest.raises(KeyMaterialError, match="trusts no log with origin") as err:
        policy.log_for_origin("example.com/other")
    assert err.value.hint


def test_describe_quorum() -> None:
    assert parse_policy(_spec_example()).describe_quorum() == (
        "X-and-Y = all of [X-witnesses = 2 of [X1, X2, X3], Y-witnesses = any of [Y1, Y2, Y3]]"
    )


X1, X2 = W["X1"].verifier.vkey, W["X2"].verifier.vkey
LOGKEY = LOG.verifier.vkey


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(f"log {LOGKEY}\n", None, "no quorum line", id="no-quorum"),
        pytest.param("quorum none\nquorum none\n", 2, "more than one quorum", id="two-quorums"),
        pytest.param("quorum X1\n", 1, "not a witness or group defined", id="quorum-undefined"),
        pytest.param(f"quorum X1\nwitness X1 {X1}\n", 1, "earlier line", id="quorum-before-witness"),
        pytest.param(f"quorum G\nwitness X1 {X1}\ngroup G any X1\n", 1, "earlier", id="quorum-before-group"),
        pytest.param(f"group G any X1\nwitness X1 {X1}\nquorum G\n", 1, "earlier line", id="member-undefined"),
        pytest.param(f"witness X1 {X1}\nwitness X1 {X2}\nquorum X1\n", 2, "already defined", id="dup-name"),
        pytest.param(f"witness X1 {X1}\nwitness X2 {X1}\nquorum X1\n", 2, "same public key", id="dup-key"),
        pytest.param(f"witness X1 {X1}\ngroup X1 any X1\nquorum X1\n", 2, "already defined", id="group-reuses-name"),
        pytest.param(f"log {LOGKEY}\nlog {LOGKEY}\nquorum none\n", 2, "listed twice", id="dup-log"),
        pytest.param(f"witness none {X1}\nquorum none\n", 1, "named 'none'", id="witness-none"),
        pytest.param(f"witness X1 {X1}\ngroup none any X1\nquorum none\n", 2, "named 'none'", id="group-none"),
        pytest.param(f"witness X1 {X1}\ngroup G any X1 none\nquorum G\n", 2, "'none' as a member", id="m-none"),
        pytest.param(f"witness X1 {X1}\ngroup G any X1 X1\nquorum G\n", 2, "more than once", id="member-twice"),
        pytest.param(
            f"witness X1 {X1}\ngroup G any X1\ngroup H any X1\nquorum H\n",
            3,
            "more than once",
            id="member-of-two-groups",
        ),
        pytest.param(f"witness X1 {X1}\ngroup G 0 X1\nquorum G\n", 2, "1 <= k <= n", id="k-zero"),
        pytest.param(f"witness X1 {X1}\ngroup G 2 X1\nquorum G\n", 2, "1 <= k <= n", id="k-above-n"),
        pytest.param(f"witness X1 {X1}\ngroup G -1 X1\nquorum G\n", 2, "not 'all', 'any'", id="k-negative"),
        pytest.param(f"witness X1 {X1}\ngroup G some X1\nquorum G\n", 2, "not 'all', 'any'", id="k-word"),
        pytest.param(f"witness X1 {X1}\ngroup G any\nquorum G\n", 2, "wrong number", id="no-members"),
        pytest.param("witness X1\nquorum none\n", 1, "wrong number", id="witness-no-key"),
        pytest.param(f"witness X1 {X1} url extra\nquorum none\n", 1, "wrong number", id="witness-extra"),
        pytest.param(f"log {LOGKEY} url extra\nquorum none\n", 1, "wrong number", id="log-extra"),
        pytest.param("quorum\n", 1, "wrong number", id="quorum-no-name"),
        pytest.param("quorum a b\n", 1, "wrong number", id="quorum-two-names"),
        pytest.param("Quorum none\n", 1, "unknown keyword", id="keyword-case"),
        pytest.param("monitor x\nquorum none\n", 1, "unknown keyword", id="unknown-keyword"),
        pytest.param(f"log {X1}\nquorum none\n", 1, "not 0x01", id="log-with-witness-key"),
        pytest.param(f"witness X1 {LOGKEY}\nquorum none\n", 1, "not 0x04", id="witness-with-log-key"),
        pytest.param("log example.com/log+00000000+AAAA\nquorum none\n", 1, "key material", id="bad-vkey"),
        pytest.param("quorum none\r\n", 1, "control character", id="crlf"),
        pytest.param("quorum none\n\x00\n", 2, "control character", id="nul"),
        pytest.param("quorum none\n# \x7f\n", 2, "control character", id="del-in-comment"),
    ],
)
def test_invalid_policies(text: str, line: int | None, message: str) -> None:
    with pytest.raises(MalformedInput, match=message) as err:
        parse_policy(text)
    if line is not None:
        assert err.value.message.startswith(f"policy line {line}: ")
    assert err.value.hint


def test_non_utf8_policy() -> None:
    with pytest.raises(MalformedInput, match="UTF-8"):
        parse_policy(b"# caf\xe9\nquorum none\n")


def test_non_ascii_names_are_exact() -> None:
    policy = parse_policy(f"witness K {X1}\nwitness \u212a {X2}\ngroup G all K \u212a\nquorum G\n")
    assert policy.quorum_satisfied({"K", "\u212a"})
    assert not policy.quorum_satisfied({"K", "k"})


# --- end to end -------------------------------------------------------------------------------------


def _cosigned(names: list[str], size: int = 42) -> SignedCheckpoint:
    signed = sign_checkpoint(Checkpoint(ORIGIN, size, hashlib.sha256(b"r").digest()), LOG)
    body = signed.checkpoint.body()
    return signed.with_cosignatures(W[name].cosign(body, 1_700_000_000 + i) for i, name in enumerate(names))


def _k_of_3(k: int) -> Policy:
    return Policy.simple(LOG.verifier, [(n, W[n].verifier) for n in ("X1", "X2", "X3")], k)


def test_three_cosignatures_meet_two_of_three() -> None:
    signed = _cosigned(["X1", "X2", "X3"])
    assert verify_checkpoint_with_policy(signed.text, _k_of_3(2)) == signed
    assert verify_checkpoint_with_policy(signed.text.encode(), _k_of_3(3)) == signed


def test_missing_cosignature_fails_three_of_three() -> None:
    signed = _cosigned(["X1", "X3"])
    assert verify_checkpoint_with_policy(signed, _k_of_3(2)) == signed
    with pytest.raises(QuorumError) as err:
        verify_checkpoint_with_policy(signed.text, _k_of_3(3))
    assert "2 of the policy's 3 witnesses (X1, X3)" in err.value.message
    assert "all of [X1, X2, X3]" in err.value.message
    assert err.value.hint


def test_tampered_cosignature_fails() -> None:
    signed = _cosigned(["X1", "X2", "X3"])
    lines = list(signed.note.signatures)
    bad = lines[2]
    lines[2] = SignatureLine(bad.name, bad.key_id, bad.signature[:8] + bytes(64))
    tampered = SignedCheckpoint(signed.checkpoint, Note(signed.note.text, tuple(lines)))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_checkpoint_with_policy(tampered.text, _k_of_3(2))


def test_cosignature_for_other_checkpoint_fails() -> None:
    signed = _cosigned(["X1", "X2"])
    other = _cosigned(["X3"], size=43)
    moved = signed.with_cosignatures(other.note.signatures[1:])
    with pytest.raises(SignatureError, match="does not verify"):
        verify_checkpoint_with_policy(moved, _k_of_3(2))


def test_unknown_cosignatures_do_not_count() -> None:
    stranger = CosignatureSigner.generate("witness.example/stranger")
    signed = _cosigned(["X1"])
    signed = signed.with_cosignatures([stranger.cosign(signed.checkpoint.body(), 5)])
    with pytest.raises(QuorumError, match="1 of the policy's 3"):
        verify_checkpoint_with_policy(signed, _k_of_3(2))


def test_checkpoint_from_unknown_log() -> None:
    other = Ed25519Signer.generate("example.com/other")
    signed = sign_checkpoint(Checkpoint("example.com/other", 1, bytes(32)), other)
    with pytest.raises(KeyMaterialError, match="trusts no log"):
        verify_checkpoint_with_policy(signed, _k_of_3(0))


def test_checkpoint_signed_by_impostor_log() -> None:
    impostor = Ed25519Signer.generate(ORIGIN)
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1, bytes(32)), impostor)
    with pytest.raises(SignatureError, match="no valid signature from a log key"):
        verify_checkpoint_with_policy(signed, _k_of_3(0))


def test_quorum_none_needs_only_the_log() -> None:
    signed = _cosigned([])
    assert verify_checkpoint_with_policy(signed, _k_of_3(0)) == signed


def test_nested_policy_end_to_end() -> None:
    policy = parse_policy(_spec_example())
    assert verify_checkpoint_with_policy(_cosigned(["X1", "X3", "Y2"]).text, policy)
    with pytest.raises(QuorumError, match="X-and-Y = all of"):
        verify_checkpoint_with_policy(_cosigned(["X1", "Y1", "Y2", "Y3"]).text, policy)
