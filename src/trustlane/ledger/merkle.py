"""RFC 9162 Merkle tree hashing, proof generation and proof verification.

Pure functions, no I/O. Generation works over *perfect subtrees*: the node ``(level, index)`` is the root
of the ``2**level`` leaves starting at ``index * 2**level`` (level 0 is a leaf hash). A store that keeps
those nodes can serve any root or proof for any tree size with O(log n) reads, and the functions below
first *plan* which nodes they need so a store can fetch them in one round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from trustlane.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Coord = tuple[int, int]
"""A perfect subtree: (level, index)."""

NodeFetcher = Callable[[Sequence[Coord]], Mapping[Coord, bytes]]
"""Returns the hash of each requested perfect subtree (raising if one is missing)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- planning: which perfect subtrees make up a hash -------------------------------------------------


def range_coords(start: int, end: int) -> list[Coord]:
    """Perfect subtrees, left to right, whose right fold is MTH(D[start:end]).

    ``start`` must be aligned the way RFC 9162 splits produce: a multiple of the largest power of two
    not greater than ``end - start`` rounded up.
    """
    coords: list[Coord] = []
    while start < end:
        width = end - start
        level = width.bit_length() - 1  # the largest perfect subtree that fits
        coords.append((level, start >> level))
        start += 1 << level
    return coords


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """Combine the perfect subtrees of :func:`range_coords` (left to right) into one root."""
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[0:size]), leaf to root."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1), in proof order."""
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new, old, True
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _resolve(ranges: Sequence[tuple[int, int]], fetch: NodeFetcher) -> list[bytes]:
    plans = [range_coords(a, b) for a, b in ranges]
    wanted = sorted({c for plan in plans for c in plan})
    got = fetch(wanted)
    return [fold_range([got[c] for c in plan]) for plan in plans]


def root_hash(size: int, fetch: NodeFetcher) -> bytes:
    if size < 0:
        raise ValueError("tree size must not be negative")
    if size == 0:
        return EMPTY_ROOT
    return _resolve([(0, size)], fetch)[0]


def inclusion_proof(index: int, size: int, fetch: NodeFetcher) -> list[bytes]:
    if not 0 <= index < size:
        raise ProofError(
            f"no inclusion proof for index {index} in a tree of size {size}",
            hint="the index must be below the tree size; publish a newer checkpoint or pick a smaller index",
        )
    return _resolve(_inclusion_ranges(index, size), fetch)


def consistency_proof(old: int, new: int, fetch: NodeFetcher) -> list[bytes]:
    if not 0 <= old <= new:
        raise ProofError(
            f"no consistency proof from size {old} to size {new}",
            hint="the old size must be between 0 and the new size",
        )
    if old in (0, new):
        return []
    return _resolve(_consistency_ranges(old, new), fetch)


# --- appending: the right edge of the tree ------------------------------------------------------------


@dataclass
class Frontier:
    """The perfect subtrees on the right edge of a tree of ``size`` leaves (one per set bit of size).

    Appending a leaf returns the perfect subtree nodes it completes, so a store can persist them.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)  # largest subtree first

    @staticmethod
    def coords_for(size: int) -> list[Coord]:
        return range_coords(0, size)

    @classmethod
    def load(cls, size: int, fetch: NodeFetcher) -> Frontier:
        coords = cls.coords_for(size)
        got = fetch(coords) if coords else {}
        return cls(size, [got[c] for c in coords])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the new perfect nodes ``(level, index, hash)`` including the leaf."""
        index = self.size
        created = [(0, index, leaf)]
        h, level = leaf, 0
        # Each trailing one bit of the old size is a subtree the new leaf completes a sibling for.
        while (index >> level) & 1:
            h = node_hash(self.hashes.pop(), h)
            level += 1
            created.append((level, index >> level, h))
        self.hashes.append(h)
        self.size += 1
        return created

    def extend(self, leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        created: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            created.extend(self.append(leaf))
        return created

    def root(self) -> bytes:
        return fold_range(self.hashes) if self.hashes else EMPTY_ROOT

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))


def build_tree(leaves: Sequence[bytes]) -> dict[Coord, bytes]:
    """Every perfect subtree of a list of leaf hashes; handy for tests and small in-memory trees."""
    frontier = Frontier()
    return {(level, index): h for level, index, h in frontier.extend(leaves)}


def memory_fetcher(nodes: Mapping[Coord, bytes]) -> NodeFetcher:
    def fetch(coords: Sequence[Coord]) -> Mapping[Coord, bytes]:
        return {c: nodes[c] for c in coords}

    return fetch


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes long, a SHA-256 hash is {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p, "a proof hash")
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    _check_hash(root, "the root hash")
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(
            f"inclusion proof for index {index} in tree size {size} does not lead to the expected root",
            hint="the entry, the proof or the checkpoint was changed; fetch them again from the log",
        )


def verify_consistency(old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    """Raise :class:`ProofError` unless the tree of size ``new`` extends the tree of size ``old``."""
    if not 0 <= old <= new:
        raise ProofError(f"old size {old} is larger than new size {new}: a log never shrinks")
    if old == new:
        if proof:
            raise ProofError("equal tree sizes need an empty consistency proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old}: the log forked")
        if old == 0 and old_root != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be SHA-256 of the empty string")
        return
    _check_hash(old_root, "the old root hash")
    _check_hash(new_root, "the new root hash")
    for p in proof:
        _check_hash(p, "a proof hash")
    if old == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        if old_root != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be SHA-256 of the empty string")
        return
    if not proof:
        raise ProofError(f"an empty consistency proof cannot link size {old} to size {new}")
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError(
            f"consistency proof from size {old} to size {new} does not verify",
            hint="the log may have rewritten its history; keep both checkpoints as evidence",
        )
