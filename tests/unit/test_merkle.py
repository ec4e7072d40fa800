"""Proof generation agrees with the RFC 9162 definitions and round-trips through verification."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustlane.errors import ProofError
from trustlane.ledger import merkle


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) straight from RFC 9162 §2.1.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [naive_root(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], complete), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("size", range(0, 40))
def test_generation_matches_rfc_definitions(size: int) -> None:
    leaves = leaves_of(size)
    nodes = merkle.build_tree(leaves)
    fetch = merkle.memory_fetcher(nodes)
    root = merkle.root_hash(size, fetch)
    assert root == naive_root(leaves)
    for m in range(size):
        proof = merkle.inclusion_proof(m, size, fetch)
        assert proof == naive_path(m, leaves)
        merkle.verify_inclusion(m, size, leaves[m], proof, root)
    for old in range(1, size):
        proof = merkle.consistency_proof(old, size, fetch)
        assert proof == naive_subproof(old, leaves, True)
        merkle.verify_consistency(old, size, proof, naive_root(leaves[:old]), root)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_proofs_round_trip_and_reject_tampering(size: int, data: st.DataObject) -> None:
    leaves = leaves_of(size)
    fetch = merkle.memory_fetcher(merkle.build_tree(leaves))
    root = merkle.root_hash(size, fetch)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, fetch)
    merkle.verify_inclusion(index, size, leaves[index], proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, merkle.leaf_hash(b"other"), proof, root)
    if proof:
        bad = list(proof)
        bad[data.draw(st.integers(0, len(bad) - 1))] = bytes(32)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, leaves[index], bad, root)
    old = data.draw(st.integers(1, size))
    cproof = merkle.consistency_proof(old, size, fetch)
    old_root = merkle.root_hash(old, fetch)
    merkle.verify_consistency(old, size, cproof, old_root, root)
    if old < size:
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, size, cproof, merkle.leaf_hash(b"x"), root)


def test_frontier_root_matches_stored_nodes() -> None:
    frontier = merkle.Frontier()
    nodes: dict[merkle.Coord, bytes] = {}
    for i, leaf in enumerate(leaves_of(1000)):
        for level, index, h in frontier.append(leaf):
            nodes[(level, index)] = h
        assert frontier.root() == merkle.root_hash(i + 1, merkle.memory_fetcher(nodes))
    reloaded = merkle.Frontier.load(1000, merkle.memory_fetcher(nodes))
    assert reloaded.hashes == frontier.hashes


def test_bad_requests_are_proof_errors() -> None:
    fetch = merkle.memory_fetcher(merkle.build_tree(leaves_of(4)))
    with pytest.raises(ProofError):
        merkle.inclusion_proof(4, 4, fetch)
    with pytest.raises(ProofError):
        merkle.consistency_proof(5, 4, fetch)
    assert merkle.consistency_proof(0, 4, fetch) == []
    assert merkle.consistency_proof(4, 4, fetch) == []
