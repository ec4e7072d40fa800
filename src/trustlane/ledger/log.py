"""The append-only log: durable batched appends, signed checkpoints, proofs.

An append is acknowledged only after the transaction holding it has committed (SQLite WAL with
synchronous=FULL, or PostgreSQL's commit). Several threads share one :class:`Log`; several processes
share one store: every write runs under the store's exclusive write lock, and the in-memory right edge of
the tree (the :class:`Frontier`) is reloaded whenever another writer has moved the tree on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from trustlane.crypto.note import Ed25519Signer, parse_signature_line
from trustlane.errors import StorageError, TrustlaneError, UsageError
from trustlane.ledger import merkle
from trustlane.ledger.checkpoint import Checkpoint, SignedCheckpoint, parse_signed_checkpoint, sign_checkpoint
from trustlane.ledger.events import commit_event
from trustlane.storage.base import CheckpointRecord, EntryRecord, EventSecret, LedgerStore

log = logging.getLogger("trustlane.ledger")


@dataclass(frozen=True)
class LedgerSettings:
    batch_max_entries: int = 256
    batch_max_age_ms: int = 250
    checkpoint_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.batch_max_entries <= 100_000:
            raise UsageError("batch_max_entries must be between 1 and 100000")
        if not 0 <= self.batch_max_age_ms <= 60_000:
            raise UsageError("batch_max_age_ms must be between 0 and 60000")
        if not 10 <= self.checkpoint_interval_ms <= 3_600_000:
            raise UsageError("checkpoint_interval_ms must be between 10 and 3600000")


@dataclass(frozen=True)
class AppendResult:
    index: int
    leaf_hash: bytes


@dataclass
class _Pending:
    data: bytes
    secret: tuple[str, bytes] | None
    future: Future[AppendResult]
    queued_at: float


class Log:
    def __init__(
        self,
        store: LedgerStore,
        signer: Ed25519Signer,
        settings: LedgerSettings | None = None,
        *,
        on_checkpoint: Callable[[CheckpointRecord], None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.signer = signer
        self.origin = signer.name
        self.settings = settings or LedgerSettings()
        self._on_checkpoint = on_checkpoint
        self._clock_ns = clock_ns
        self._write_lock = threading.Lock()
        self._frontier: merkle.Frontier | None = None
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- appends ------------------------------------------------------------------------------
    def _commit(self, items: Sequence[tuple[bytes, tuple[str, bytes] | None]]) -> list[AppendResult]:
        """Write one batch in one transaction; return once it is durable."""
        if not items:
            return []
        with self._write_lock:
            with self.store.write() as w:
                size = w.tree_size()
                if self._frontier is None or self._frontier.size != size:
                    self._frontier = merkle.Frontier.load(size, w.fetch_nodes)
                frontier = self._frontier.copy()  # the cache moves only once the commit succeeded
                now = self._clock_ns()
                entries: list[EntryRecord] = []
                nodes: list[tuple[int, int, bytes]] = []
                secrets: list[EventSecret] = []
                for offset, (data, secret) in enumerate(items):
                    leaf = merkle.leaf_hash(data)
                    entries.append(EntryRecord(size + offset, leaf, data, now))
                    created = frontier.append(leaf)
                    if len(created) > 1:  # the first is the leaf itself, stored with its entry
                        nodes += created[1:]
                    if secret is not None:
                        secrets.append(EventSecret(size + offset, secret[0], secret[1], None))
                w.add_entries(entries)
                w.add_nodes(nodes)
                if secrets:
                    w.add_event_secrets(secrets)
            self._frontier = frontier
        return [AppendResult(e.index, e.leaf_hash) for e in entries]

    def append_many(self, datas: Sequence[bytes]) -> list[AppendResult]:
        """Append leaves in order, committed in batches of at most ``batch_max_entries``."""
        results: list[AppendResult] = []
        step = self.settings.batch_max_entries
        for i in range(0, len(datas), step):
            results.extend(self._commit([(d, None) for d in datas[i : i + step]]))
        return results

    def append(self, data: bytes) -> AppendResult:
        if self._threads:
            return self.submit(data).result()
        return self._commit([(data, None)])[0]

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> list[AppendResult]:
        """Commit events under the salted commitment scheme (see :mod:`trustlane.ledger.events`)."""
        commitments = [commit_event(e) for e in events]  # validate all before writing any
        results: list[AppendResult] = []
        step = self.settings.batch_max_entries
        for i in range(0, len(commitments), step):
            chunk = commitments[i : i + step]
            results.extend(self._commit([(c.leaf_data, (c.event_json, c.salt)) for c in chunk]))
        return results

    def append_event(self, event: Mapping[str, Any]) -> AppendResult:
        if self._threads:
            c = commit_event(event)
            return self._submit(c.leaf_data, (c.event_json, c.salt)).result()
        return self.append_events([event])[0]

    def submit(self, data: bytes) -> Future[AppendResult]:
        """Queue a leaf for the background batcher; the future resolves once it is durable."""
        return self._submit(data, None)

    def _submit(self, data: bytes, secret: tuple[str, bytes] | None) -> Future[AppendResult]:
        if not self._threads or self._stop.is_set():
            raise UsageError("the log's background writer is not running", hint="call Log.start() first")
        future: Future[AppendResult] = Future()
        self._queue.put(_Pending(data, secret, future, time.monotonic()))
        return future

    def _batcher(self) -> None:
        max_entries = self.settings.batch_max_entries
        max_age = self.settings.batch_max_age_ms / 1000
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                first = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            batch = [first]
            # Take what is queued; wait for more only while entries keep arriving (a gap of 1 ms ends
            # the batch) and never past the oldest entry's age limit or the size limit.
            deadline = first.queued_at + max_age
            while len(batch) < max_entries:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except queue.Empty:
                    pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=min(remaining, 0.001)))
                except queue.Empty:
                    break
            try:
                results = self._commit([(p.data, p.secret) for p in batch])
            except BaseException as exc:  # every waiter learns why its append failed
                for p in batch:
                    p.future.set_exception(exc)
                if not isinstance(exc, TrustlaneError):
                    log.exception("ledger batch commit failed")
                continue
            for p, r in zip(batch, results, strict=True):
                p.future.set_result(r)

    # --- checkpoints ---------------------------------------------------------------------------
    def publish_checkpoint(self) -> CheckpointRecord:
        """Sign and store a checkpoint for the current tree if it grew; return the latest checkpoint."""
        with self._write_lock, self.store.write() as w:
            size = w.tree_size()
            latest = w.latest_checkpoint()
            if latest is not None and latest.size >= size:
                return latest
            if self._frontier is not None and self._frontier.size == size:
                root = self._frontier.root()
            else:
                root = merkle.root_hash(size, w.fetch_nodes)
            signed = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
            record = CheckpointRecord(size, root, signed.text, self._clock_ns())
            w.add_checkpoint(record)
        log.info("published checkpoint", extra={"size": size})
        if self._on_checkpoint is not None:
            self._on_checkpoint(record)
        return record

    def _publisher(self) -> None:
        interval = self.settings.checkpoint_interval_ms / 1000
        deadline = time.monotonic() + interval
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            deadline += interval
            if deadline < time.monotonic():  # fell behind (slow disk, witnesses): do not burst
                deadline = time.monotonic() + interval
            try:
                self.publish_checkpoint()
            except TrustlaneError as exc:
                log.warning("checkpoint not published: %s", exc)

    def signed_checkpoint(self, record: CheckpointRecord | None = None) -> SignedCheckpoint:
        """A checkpoint with every cosignature the log holds for it."""
        record = record or self.store.latest_checkpoint()
        if record is None:
            raise StorageError("the log has published no checkpoint yet", hint="run `trustlane ledger checkpoint`")
        signed = parse_signed_checkpoint(record.note)
        lines = [parse_signature_line(c.line.rstrip("\n")) for c in self.store.cosignatures(record.size)]
        return signed.with_cosignatures(lines) if lines else signed

    # --- proofs --------------------------------------------------------------------------------
    def _require_size(self, size: int | None) -> int:
        current = self.store.tree_size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise UsageError(f"tree size {size} is outside 0..{current}", hint="ask for a size the log has reached")
        return size

    def root(self, size: int | None = None) -> bytes:
        return merkle.root_hash(self._require_size(size), self.store.fetch_nodes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return merkle.inclusion_proof(index, self._require_size(size), self.store.fetch_nodes)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        return merkle.consistency_proof(old, self._require_size(new), self.store.fetch_nodes)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, *, publish: bool = True) -> None:
        """Start the background batcher (and, by default, the periodic checkpoint publisher)."""
        if self._threads:
            return
        self._stop.clear()
        targets = [self._batcher, self._publisher] if publish else [self._batcher]
        for target in targets:
            thread = threading.Thread(target=target, name=f"trustlane-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Flush queued appends, stop the background threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
