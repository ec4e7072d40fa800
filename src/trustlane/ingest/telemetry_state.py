"""Durable state of live telemetry ingest: the write-ahead of accepted messages and the seen sequence numbers.

One SQLite file per node home, ``<home>/telemetry/state.db`` (mode 0600, WAL journal, ``synchronous=FULL``:
a commit returns once it is on disk). An ingest holds ``<home>/telemetry/ingest.lock`` while it runs, so one
node home has one subscriber at a time. Tables::

    meta      key → value (format version, topic filter, segment length)
    vehicles  pseudonym → accepted seq numbers (ranges), last flushed window, late buckets opened
    buckets   (pseudonym, bucket) → label, state (open | sealed | failed), opened_ns, problem
    pending   id → (pseudonym, bucket, sealed batch of canonical records)

A pending row holds the messages one commit accepted for one bucket, sealed with AES-256-GCM under the
vehicle's data key (associated data: purpose ``telemetry-wal``, vehicle, bucket, row id), so erasing a vehicle
also makes its buffered telemetry unreadable. A bucket is ``w:<window>`` (an epoch-aligned window) or
``late:<n>``. Once a bucket is stored as a dataset its rows and its bucket row are deleted in one transaction.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import sqlite3
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from trustlane.errors import ConflictError, StorageError

STATE_VERSION = "1"
STATE_DIR = "telemetry"
STATE_FILE = "state.db"
LOCK_FILE = "ingest.lock"
MAX_RANGES = 4096  # per vehicle; beyond it the lowest gap is filled (its seq numbers count as seen)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vehicles (
    vehicle TEXT PRIMARY KEY,
    seqs BLOB NOT NULL,
    flushed_through INTEGER,
    late_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS buckets (
    vehicle TEXT NOT NULL,
    bucket TEXT NOT NULL,
    label TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_ns INTEGER NOT NULL,
    problem TEXT,
    PRIMARY KEY (vehicle, bucket)
);
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY,
    vehicle TEXT NOT NULL,
    bucket TEXT NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_by_bucket ON pending (vehicle, bucket, id);
"""


class SeqSet:
    """Sequence numbers as sorted, disjoint, non-adjacent inclusive ranges; fast for runs of consecutive numbers."""

    __slots__ = ("_hi", "_lo")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        for lo, hi in sorted(ranges):
            if self._hi and lo <= self._hi[-1] + 1:
                self._hi[-1] = max(self._hi[-1], hi)
            else:
                self._lo.append(lo)
                self._hi.append(hi)

    def __contains__(self, seq: int) -> bool:
        hi = self._hi
        if hi and hi[-1] >= seq >= self._lo[-1]:
            return True
        i = bisect.bisect_right(self._lo, seq) - 1
        return i >= 0 and seq <= hi[i]

    def __len__(self) -> int:
        return len(self._lo)

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._lo, self._hi, strict=True))

    def add(self, seq: int) -> None:
        lo, hi = self._lo, self._hi
        if hi and hi[-1] + 1 == seq:  # the common case: the next number of the last run
            hi[-1] = seq
            return
        i = bisect.bisect_right(lo, seq) - 1
        if i >= 0 and seq <= hi[i]:
            return
        joins_left = i >= 0 and hi[i] + 1 == seq
        joins_right = i + 1 < len(lo) and lo[i + 1] == seq + 1
        if joins_left and joins_right:
            hi[i] = hi[i + 1]
            del lo[i + 1], hi[i + 1]
        elif joins_left:
            hi[i] = seq
        elif joins_right:
            lo[i + 1] = seq
        else:
            lo.insert(i + 1, seq)
            hi.insert(i + 1, seq)
            if len(lo) > MAX_RANGES:  # fill the lowest gap: its numbers now count as seen
                hi[0] = hi[1]
                del lo[1], hi[1]

    def to_bytes(self) -> bytes:
        flat = [v for pair in zip(self._lo, self._hi, strict=True) for v in pair]
        return struct.pack(f">{len(flat)}Q", *flat)

    @classmethod
    def from_bytes(cls, data: bytes) -> SeqSet:
        if len(data) % 16:
            raise StorageError("a vehicle's seq ranges in the telemetry state are damaged")
        flat = struct.unpack(f">{len(data) // 8}Q", data)
        out = cls()
        out._lo = list(flat[0::2])
        out._hi = list(flat[1::2])
        return out


@dataclass
class VehicleRow:
    vehicle: str
    seqs: SeqSet
    flushed_through: int | None
    late_count: int


@dataclass(frozen=True)
class BucketRow:
    vehicle: str
    bucket: str
    label: str
    state: str  # "open" | "sealed" | "failed"
    opened_ns: int
    problem: str | None = None


@dataclass(frozen=True)
class PendingRow:
    id: int
    vehicle: str
    bucket: str
    sealed: bytes


class TelemetryState:
    """The state file of one node home (thread-safe: one connection behind a lock)."""

    def __init__(self, home: Path) -> None:
        folder = home / STATE_DIR
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            self._lock_file: IO[bytes] = os.fdopen(os.open(folder / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600), "wb")
        except OSError as exc:
            raise StorageError(
                f"cannot create {folder}: {exc.strerror}", hint="check the node home's permissions"
            ) from exc
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise ConflictError(
                f"another `trustlane ingest mqtt` is running on {home}",
                hint="one node home has one telemetry subscriber; stop the other one first",
            ) from None
        self.path = folder / STATE_FILE
        self._mutex = threading.Lock()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            version = self.get_meta("version")
            if version is None:
                self.set_meta("version", STATE_VERSION)
            elif version != STATE_VERSION:
                raise StorageError(
                    f"{self.path} is telemetry state version {version}; this trustlane reads {STATE_VERSION}",
                    hint="run the trustlane version that wrote it to flush its buffered windows",
                )
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM pending").fetchone()
        except sqlite3.Error as exc:
            self._lock_file.close()
            raise StorageError(f"cannot open {self.path}: {exc}", hint="check free disk space") from exc
        self._next_id = int(row[0]) + 1

    # --- small helpers ---------------------------------------------------------------------------------
    def _tx(self, statements: Sequence[tuple[str, Sequence[tuple[object, ...]]]]) -> None:
        """Run ``(sql, rows)`` pairs in one durable transaction."""
        with self._mutex:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for sql, rows in statements:
                        if rows:
                            self._db.executemany(sql, rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"cannot write {self.path}: {exc}", hint="check free disk space") from exc

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read {self.path}: {exc}") from exc

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._tx([("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [(key, value)])])

    def next_ids(self, count: int) -> range:
        """Ids for ``count`` new pending rows (only the committing thread asks)."""
        first = self._next_id
        self._next_id += count
        return range(first, first + count)

    # --- reading at start-up -------------------------------------------------------------------------------
    def vehicles(self) -> dict[str, VehicleRow]:
        rows = self._query("SELECT vehicle, seqs, flushed_through, late_count FROM vehicles")
        return {
            str(v): VehicleRow(str(v), SeqSet.from_bytes(bytes(s)), None if f is None else int(f), int(n))
            for v, s, f, n in rows
        }

    def buckets(self) -> list[BucketRow]:
        rows = self._query("SELECT vehicle, bucket, label, state, opened_ns, problem FROM buckets ORDER BY rowid")
        return [
            BucketRow(str(v), str(b), str(lab), str(s), int(o), None if p is None else str(p))
            for v, b, lab, s, o, p in rows
        ]

    def pending(self, vehicle: str, bucket: str) -> Iterator[tuple[int, bytes]]:
        rows = self._query(
            "SELECT id, sealed FROM pending WHERE vehicle = ? AND bucket = ? ORDER BY id", (vehicle, bucket)
        )
        for row_id, sealed in rows:
            yield int(row_id), bytes(sealed)

    # --- writing ---------------------------------------------------------------------------------------------
    def commit(
        self,
        pending: Sequence[PendingRow],
        vehicles: Sequence[VehicleRow],
        new_buckets: Sequence[BucketRow],
        sealed: Sequence[tuple[str, str]] = (),
    ) -> None:
        """One durable transaction: new buckets, accepted messages, seq ranges, and buckets closed."""
        self._tx(
            [
                (
                    "INSERT INTO buckets (vehicle, bucket, label, state, opened_ns) VALUES (?, ?, ?, ?, ?)",
                    [(b.vehicle, b.bucket, b.label, b.state, b.opened_ns) for b in new_buckets],
                ),
                (
                    "INSERT INTO pending (id, vehicle, bucket, sealed) VALUES (?, ?, ?, ?)",
                    [(p.id, p.vehicle, p.bucket, p.sealed) for p in pending],
                ),
                (
                    "INSERT OR REPLACE INTO vehicles (vehicle, seqs, flushed_through, late_count) VALUES (?, ?, ?, ?)",
                    [(v.vehicle, v.seqs.to_bytes(), v.flushed_through, v.late_count) for v in vehicles],
                ),
                ("UPDATE buckets SET state = 'sealed' WHERE vehicle = ? AND bucket = ?", list(sealed)),
            ]
        )

    def finish(self, vehicle: str, bucket: str) -> None:
        """The bucket is stored (or discarded): drop its rows."""
        self._tx(
            [
                ("DELETE FROM pending WHERE vehicle = ? AND bucket = ?", [(vehicle, bucket)]),
                ("DELETE FROM buckets WHERE vehicle = ? AND bucket = ?", [(vehicle, bucket)]),
            ]
        )

    def fail(self, vehicle: str, bucket: str, problem: str) -> None:
        """The bucket could not be stored: keep its rows (sealed) for an operator, and say why."""
        self._tx(
            [
                (
                    "UPDATE buckets SET state = 'failed', problem = ? WHERE vehicle = ? AND bucket = ?",
                    [(problem, vehicle, bucket)],
                )
            ]
        )

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        self._lock_file.close()  # releases the lock


__all__ = ["BucketRow", "PendingRow", "SeqSet", "TelemetryState", "VehicleRow"]
