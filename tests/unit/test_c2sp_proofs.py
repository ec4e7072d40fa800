"""C2SP tlog-proof text format, and verification of a proof against a policy and the Merkle tree."""

from __future__ import annotations

import base64

import pytest

from trustlane.crypto.cosignature import CosignatureSigner
from trustlane.crypto.note import Ed25519Signer
from trustlane.errors import MalformedInput, ProofError, QuorumError, SignatureError
from trustlane.ledger import merkle
from trustlane.ledger.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from trustlane.ledger.policy import Policy
from trustlane.ledger.proofs import TlogProof, parse_tlog_proof, verify_tlog_proof

ORIGIN = "example.com/fancylog"
LOG = Ed25519Signer.generate(ORIGIN)
WITNESSES = [CosignatureSigner.generate(f"witness{i}.example") for i in (1, 2, 3)]
POLICY = Policy.simple(LOG.verifier, [(w.name, w.verifier) for w in WITNESSES], 2)
LEAVES = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(11)]
NODES = merkle.build_tree(LEAVES)

# Inclusion hashes from the spec's example (c2sp.org/tlog-proof).
SPEC_HASHES = [
    "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=",
    "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=",
    "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=",
    "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=",
    "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=",
]
SPEC_EXTRA = "YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6"


def _checkpoint(size: int = len(LEAVES), cosigners: int = 3) -> SignedCheckpoint:
    root = merkle.root_hash(size, merkle.memory_fetcher(NODES))
    signed = sign_checkpoint(Checkpoint(ORIGIN, size, root), LOG)
    body = signed.checkpoint.body()
    return signed.with_cosignatures(w.cosign(body, 1_700_000_000) for w in WITNESSES[:cosigners])


def _proof(index: int, signed: SignedCheckpoint, extra: bytes | None = None) -> TlogProof:
    path = merkle.inclusion_proof(index, signed.checkpoint.size, merkle.memory_fetcher(NODES))
    return TlogProof(index, tuple(path), signed.text, extra)


def test_spec_shaped_proof_parses() -> None:
    checkpoint = _checkpoint()
    text = (
        "c2sp.org/tlog-proof@v1\n"
        f"extra {SPEC_EXTRA}\n"
        "index 73894\n" + "".join(f"{h}\n" for h in SPEC_HASHES) + "\n" + checkpoint.text
    )
    proof = parse_tlog_proof(text)
    assert proof.index == 73894
    assert proof.extra == base64.b64decode(SPEC_EXTRA)
    assert [base64.b64encode(h).decode() for h in proof.inclusion_path] == SPEC_HASHES
    assert proof.checkpoint_text == checkpoint.text
    assert proof.signed_checkpoint() == checkpoint
    assert proof.format() == text


@pytest.mark.parametrize("extra", [None, b"", b"\x00opaque"])
def test_round_trip(extra: bytes | None) -> None:
    proof = _proof(5, _checkpoint(), extra)
    assert parse_tlog_proof(proof.format()) == proof
    assert parse_tlog_proof(proof.format().encode()) == proof


def test_single_leaf_tree_has_empty_path() -> None:
    proof = _proof(0, _checkpoint(size=1))
    assert proof.inclusion_path == ()
    assert proof.format().startswith("c2sp.org/tlog-proof@v1\nindex 0\n\n")
    assert parse_tlog_proof(proof.format()) == proof


VALID = _proof(5, _checkpoint()).format()
HASH = base64.b64encode(LEAVES[0]).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(VALID.replace("@v1", "@v2", 1), "not 'c2sp.org/tlog-proof@v1'", id="version"),
        pytest.param("\n" + VALID, "starts with ''", id="leading-blank"),
        pytest.param(VALID.replace("index 5", "index 05"), "'index <n>'", id="leading-zero"),
        pytest.param(VALID.replace("index 5", "index -5"), "'index <n>'", id="negative"),
        pytest.param(VALID.replace("index 5", "index  5"), "'index <n>'", id="double-space"),
        pytest.param(VALID.replace("index 5", "index 5 "), "'index <n>'", id="trailing-space"),
        pytest.param(VALID.replace("index 5", "idx 5"), "'index <n>'", id="bad-keyword"),
        pytest.param(VALID.replace("index 5\n", ""), "'index <n>'", id="no-index"),
        pytest.param(VALID.replace("index 5", "index " + "9" * 21), "'index <n>'", id="huge-index"),
        pytest.param(VALID.replace("index 5", f"index {1 << 64}"), "outside", id="above-u64"),
        pytest.param(VALID.replace("index 5", "extra !!\nindex 5"), "base64", id="bad-extra"),
        pytest.param(VALID.replace("index 5", f"index 5\nextra {SPEC_EXTRA}"), "base64", id="extra-late"),
        pytest.param(VALID.replace("index 5\n", "index 5\nAAAA\n"), "3 bytes, not 32", id="short-hash"),
        pytest.param(VALID.replace("index 5\n", f"index 5\n{HASH[:-1]}\n"), "base64", id="hash-unpadded"),
        pytest.param(VALID.replace("index 5\n", "index 5\n" + f"{HASH}\n" * 65), "at most 64", id="too-many-hashes"),
        pytest.param(VALID.replace("\n\n", "\n", 1), "inclusion hash 5 .* not valid base64", id="no-blank-line"),
        pytest.param(VALID.split("\n\n")[0] + "\n", "no blank line before", id="header-only"),
        pytest.param(VALID.replace("\n\n", "\n\n\n", 1), "origin line is empty", id="two-blank-lines"),
        pytest.param(VALID.split("\n\n")[0] + "\n\n", "no checkpoint after", id="no-checkpoint"),
        pytest.param(VALID.replace("\n— ", "\n-- ", 1), "em dash", id="broken-checkpoint"),
        pytest.param(VALID.replace("index 5\n", "index 5\r\n"), "'index <n>'", id="crlf"),
    ],
)
def test_malformed_proofs(text: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message) as err:
        parse_tlog_proof(text)
    assert err.value.hint


def test_bad_utf8_proof() -> None:
    with pytest.raises(MalformedInput, match="UTF-8"):
        parse_tlog_proof(VALID.encode().replace(b"index", b"\xffndex"))


def test_verify_every_index() -> None:
    signed = _checkpoint()
    for index, leaf in enumerate(LEAVES):
        proof = parse_tlog_proof(_proof(index, signed).format())
        assert verify_tlog_proof(proof, leaf, POLICY) == signed


def test_verify_rejects_wrong_leaf() -> None:
    proof = _proof(3, _checkpoint())
    with pytest.raises(ProofError):
        verify_tlog_proof(proof, LEAVES[4], POLICY)


def test_verify_rejects_wrong_index() -> None:
    signed = _checkpoint()
    proof = _proof(3, signed)
    moved = TlogProof(2, proof.inclusion_path, proof.checkpoint_text)
    with pytest.raises(ProofError):
        verify_tlog_proof(moved, LEAVES[3], POLICY)
    beyond = TlogProof(len(LEAVES), proof.inclusion_path, proof.checkpoint_text)
    with pytest.raises(ProofError, match="outside"):
        verify_tlog_proof(beyond, LEAVES[3], POLICY)


def test_verify_rejects_tampered_path() -> None:
    proof = _proof(3, _checkpoint())
    path = (bytes(32), *proof.inclusion_path[1:])
    with pytest.raises(ProofError):
        verify_tlog_proof(TlogProof(3, path, proof.checkpoint_text), LEAVES[3], POLICY)


def test_verify_requires_the_quorum() -> None:
    proof = _proof(3, _checkpoint(cosigners=1))
    with pytest.raises(QuorumError):
        verify_tlog_proof(proof, LEAVES[3], POLICY)


def test_verify_rejects_tampered_checkpoint() -> None:
    proof = _proof(3, _checkpoint())
    text = proof.checkpoint_text.replace(f"\n{len(LEAVES)}\n", f"\n{len(LEAVES) + 1}\n", 1)
    with pytest.raises(SignatureError):
        verify_tlog_proof(TlogProof(3, proof.inclusion_path, text), LEAVES[3], POLICY)


def test_proof_requires_a_parsable_checkpoint() -> None:
    with pytest.raises(MalformedInput):
        TlogProof(0, (), "not a checkpoint\n")
    with pytest.raises(MalformedInput, match="bytes, not 32"):
        TlogProof(0, (b"short",), _checkpoint().text)
