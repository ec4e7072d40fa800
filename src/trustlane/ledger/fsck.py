"""`trustlane ledger verify`: recompute the whole ledger from its entries and name the first inconsistency.

Checks, in one streaming pass:
* entries are numbered 0..n-1 without gaps, and each stored leaf hash is SHA-256(0x00 || data);
* every stored perfect-subtree node equals the hash recomputed from the leaves, and none is extra;
* every checkpoint is signed by the log key, names this log's origin, and its root equals the root
  recomputed at its size; no checkpoint is larger than the tree;
* every cosignature verifies against the configured witness key of that name;
* every event secret still held opens the commitment in its entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from trustlane.crypto.note import Verifier, parse_signature_line, verify_note
from trustlane.errors import IntegrityError, TrustlaneError
from trustlane.ledger import merkle
from trustlane.ledger.checkpoint import parse_signed_checkpoint
from trustlane.ledger.events import check_disclosure
from trustlane.storage.base import CheckpointRecord, LedgerStore

Progress = Callable[[int, int], None]

_MAX_LEVEL = 63  # a tree of at most 2^64 leaves has perfect subtrees up to level 63
_MAX_INDEX = (1 << 63) - 1  # the largest index a store's 64-bit integer columns hold


@dataclass
class FsckReport:
    entries: int = 0
    nodes: int = 0
    checkpoints: int = 0
    cosignatures: int = 0
    events: int = 0
    root: bytes = merkle.EMPTY_ROOT
    warnings: list[str] = field(default_factory=list)


def _fail(message: str) -> IntegrityError:
    return IntegrityError(
        message,
        hint="the ledger was modified outside trustlane or its storage is damaged; keep a copy as evidence "
        "and restore from a replica or backup",
    )


class _NodeChecker:
    """Compares recomputed nodes with the stored ones, one ordered cursor per tree level."""

    def __init__(self, store: LedgerStore, size: int) -> None:
        self._store = store
        self._size = size
        self._cursors: dict[int, Iterator[tuple[int, bytes]]] = {}
        self.checked = 0

    def _cursor(self, level: int) -> Iterator[tuple[int, bytes]]:
        if level not in self._cursors:
            self._cursors[level] = iter(self._store.nodes(level, 0, (self._size >> level) + 1))
        return self._cursors[level]

    def check(self, level: int, index: int, expected: bytes) -> None:
        stored = next(self._cursor(level), None)
        if stored is None or stored[0] != index:
            got = "nothing" if stored is None else f"node {stored[0]}"
            raise _fail(f"tree node (level {level}, index {index}) is missing; the store has {got} there")
        if stored[1] != expected:
            raise _fail(f"tree node (level {level}, index {index}) does not match the hash recomputed from the entries")
        self.checked += 1

    def finish(self) -> None:
        # A node past the tree's perfect subtrees, at any level and however far out, is extra: the log would
        # collide with it when the tree grows there.
        for level in range(1, _MAX_LEVEL + 1):
            extra = next(iter(self._store.nodes(level, self._size >> level, _MAX_INDEX)), None)
            if extra is not None:
                raise _fail(f"tree node (level {level}, index {extra[0]}) exists beyond the tree's {self._size} leaves")

    def close(self) -> None:
        """Release the level cursors while the store is still open."""
        for cursor in self._cursors.values():
            close = getattr(cursor, "close", None)
            if close is not None:
                close()
        self._cursors.clear()


def fsck(
    store: LedgerStore,
    log_verifier: Verifier,
    witnesses: Mapping[str, Verifier] | None = None,
    progress: Progress | None = None,
) -> FsckReport:
    """Verify everything; raise :class:`IntegrityError` naming the first inconsistency."""
    report = FsckReport()
    witnesses = dict(witnesses or {})
    size = store.tree_size()
    checkpoints = list(store.checkpoints())
    if checkpoints and checkpoints[-1].size > size:
        raise _fail(f"checkpoint of size {checkpoints[-1].size} is larger than the tree ({size} entries)")
    by_size: dict[int, CheckpointRecord] = {c.size: c for c in checkpoints}
    nodes = _NodeChecker(store, size)
    frontier = merkle.Frontier()

    def check_checkpoint_at(current: int) -> None:
        record = by_size.get(current)
        if record is not None:
            _check_checkpoint(store, record, frontier.root(), log_verifier, witnesses, report)

    try:
        check_checkpoint_at(0)
        expected_index = 0
        for entry in store.entries(0, size):
            if entry.index != expected_index:
                raise _fail(f"entry {expected_index} is missing (the next stored entry is {entry.index})")
            if merkle.leaf_hash(entry.data) != entry.leaf_hash:
                raise _fail(f"entry {entry.index}: stored leaf hash is not SHA-256(0x00 || data)")
            for level, index, h in frontier.append(entry.leaf_hash):
                if level > 0:
                    nodes.check(level, index, h)
            expected_index += 1
            check_checkpoint_at(expected_index)
            if progress is not None and expected_index % 65536 == 0:
                progress(expected_index, size)
        if expected_index != size:
            raise _fail(f"the tree has {size} entries by its highest index but only {expected_index} are stored")
        nodes.finish()
    finally:
        nodes.close()  # an open cursor outliving the store would fail noisily when collected
    for cosig in store.cosignatures():
        if cosig.size not in by_size:
            raise _fail(f"cosignature by {cosig.witness} on size {cosig.size} belongs to no checkpoint")
    report.entries, report.nodes, report.root = size, nodes.checked, frontier.root()
    report.events = _check_events(store, size)
    if progress is not None:
        progress(size, size)
    return report


def _check_checkpoint(
    store: LedgerStore,
    record: CheckpointRecord,
    root: bytes,
    log_verifier: Verifier,
    witnesses: Mapping[str, Verifier],
    report: FsckReport,
) -> None:
    try:
        signed = parse_signed_checkpoint(record.note)
        verify_note(signed.note, [log_verifier])
    except TrustlaneError as exc:
        raise _fail(f"checkpoint of size {record.size}: {exc.message}") from exc
    cp = signed.checkpoint
    if cp.origin != log_verifier.name:
        raise _fail(f"checkpoint of size {record.size} names origin {cp.origin!r}, not {log_verifier.name!r}")
    if cp.size != record.size or cp.root != record.root:
        raise _fail(f"checkpoint of size {record.size}: the signed note disagrees with the stored size or root")
    if cp.root != root:
        raise _fail(f"checkpoint of size {record.size} signs a root the entries do not produce")
    report.checkpoints += 1
    for cosig in store.cosignatures(record.size):
        verifier = witnesses.get(cosig.witness)
        if verifier is None:
            report.warnings.append(f"cosignature on size {record.size} by unconfigured witness {cosig.witness!r}")
            continue
        try:
            line = parse_signature_line(cosig.line.rstrip("\n"))
            verify_note(signed.note.with_signatures([line]), [verifier])
        except TrustlaneError as exc:
            raise _fail(f"cosignature by {cosig.witness} on checkpoint {record.size} does not verify") from exc
        report.cosignatures += 1


def _check_events(store: LedgerStore, size: int) -> int:
    checked = 0
    for secret in store.held_event_secrets():
        entry = store.entry(secret.index) if secret.index < size else None
        if entry is None:
            raise _fail(f"event secret {secret.index} has no ledger entry")
        if secret.erased_ns is not None:
            raise _fail(f"event {secret.index} is marked erased but its event or salt is still stored")
        if secret.event is None or secret.salt is None:
            raise _fail(f"event secret {secret.index} is neither complete nor marked erased")
        try:
            check_disclosure(entry.data, secret.event, secret.salt)
        except TrustlaneError as exc:
            raise _fail(f"event {secret.index}: the stored event no longer matches its ledger commitment") from exc
        checked += 1
    return checked
