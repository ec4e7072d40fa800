"""SQLite ledger store: the embedded default (WAL, synchronous=FULL, one connection per thread)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from trustlane.errors import StorageError
from trustlane.ledger.merkle import Coord
from trustlane.storage.base import (
    SCHEMA_VERSION,
    CheckpointRecord,
    CosignatureRecord,
    EntryRecord,
    EventSecret,
    LedgerStore,
    LedgerWriter,
    WitnessState,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, data BLOB NOT NULL, appended_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL, published_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cosignatures (
    size INTEGER NOT NULL, witness TEXT NOT NULL, key_id BLOB NOT NULL, line TEXT NOT NULL,
    timestamp INTEGER NOT NULL, PRIMARY KEY (size, witness, key_id));
CREATE TABLE IF NOT EXISTS event_secrets (
    idx INTEGER PRIMARY KEY, event TEXT, salt BLOB, erased_ns INTEGER);
CREATE TABLE IF NOT EXISTS witness_state (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,
    updated_ns INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS entries_append_only_u BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_append_only_d BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS nodes_append_only_u BEFORE UPDATE ON nodes
    BEGIN SELECT RAISE(ABORT, 'ledger nodes are append-only'); END;
CREATE TRIGGER IF NOT EXISTS nodes_append_only_d BEFORE DELETE ON nodes
    BEGIN SELECT RAISE(ABORT, 'ledger nodes are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_u BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'published checkpoints are immutable'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_append_only_d BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'published checkpoints are immutable'); END;
"""


def _storage_error(path: Path, exc: sqlite3.Error) -> StorageError:
    return StorageError(
        f"SQLite database {path} cannot be used: {exc}",
        hint="restore the node home from a backup, or check the disk; `trustlane ledger verify` names damage",
    )


class _SqliteWriter(LedgerWriter):
    def __init__(self, store: SqliteStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn

    def tree_size(self) -> int:
        return self._store._size(self._conn)

    def fetch_nodes(self, coords: Sequence[Coord]) -> Mapping[Coord, bytes]:
        return self._store._fetch(self._conn, coords)

    def add_entries(self, entries: Sequence[EntryRecord]) -> None:
        self._conn.executemany("INSERT INTO entries (idx, leaf_hash, data, appended_ns) VALUES (?, ?, ?, ?)", entries)

    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        self._conn.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)

    def add_event_secrets(self, secrets: Sequence[EventSecret]) -> None:
        self._conn.executemany(
            "INSERT INTO event_secrets (idx, event, salt, erased_ns) VALUES (?, ?, ?, ?)",
            [(s.index, s.event, s.salt, s.erased_ns) for s in secrets],
        )

    def latest_checkpoint(self) -> CheckpointRecord | None:
        return self._store._latest_checkpoint(self._conn)

    def add_checkpoint(self, checkpoint: CheckpointRecord) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints (size, root, note, published_ns) VALUES (?, ?, ?, ?)",
            (checkpoint.size, checkpoint.root, checkpoint.note, checkpoint.published_ns),
        )


class SqliteStore(LedgerStore):
    backend = "sqlite"

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if not create and not path.exists():
            raise StorageError(
                f"no ledger database at {path}",
                hint="run `trustlane init` for this home, or point --home at an existing node",
            )
        if not create:
            _check_header(path)  # before connecting: opening would turn any file into a database
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        try:
            conn = self._conn()
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and not create:
                raise StorageError(
                    f"{path} holds no trustlane ledger", hint="run `trustlane init`, or point --home at a node"
                )
            if version == 0:
                # executescript commits on its own, so the script carries its own transaction.
                conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            elif version != SCHEMA_VERSION:
                raise StorageError(
                    f"{path} has ledger schema version {version}; this trustlane reads version {SCHEMA_VERSION}",
                    hint="use the trustlane release that created this node",
                )
        except sqlite3.Error as exc:
            raise _storage_error(path, exc) from exc

    # --- connections and transactions -----------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # a commit is on disk before we acknowledge it
            conn.execute("PRAGMA busy_timeout = 60000")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, conn: sqlite3.Connection, *, immediate: bool) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[LedgerWriter]:
        conn = self._conn()
        try:
            with self._tx(conn, immediate=True):
                yield _SqliteWriter(self, conn)
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    def _q(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._conn().execute(sql, params))
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    # --- metadata -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._q(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
            (key, value, value),
        )

    # --- tree -----------------------------------------------------------------------------------
    @staticmethod
    def _size(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT max(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def tree_size(self) -> int:
        try:
            return self._size(self._conn())
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    def _fetch(self, conn: sqlite3.Connection, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        got: dict[Coord, bytes] = {}
        leaves = [i for level, i in coords if level == 0]
        inner = [(level, i) for level, i in coords if level > 0]
        for chunk in _chunks(leaves, 500):
            marks = ",".join("?" * len(chunk))
            for idx, h in conn.execute(f"SELECT idx, leaf_hash FROM entries WHERE idx IN ({marks})", chunk):
                got[(0, idx)] = h
        for start in range(0, len(inner), 250):
            pairs = inner[start : start + 250]
            # OR of equalities: SQLite answers each term from the primary key (a VALUES list would scan)
            terms = " OR ".join("(level = ? AND idx = ?)" for _ in pairs)
            params = [v for coord in pairs for v in coord]
            sql = f"SELECT level, idx, hash FROM nodes WHERE {terms}"
            for level, idx, h in conn.execute(sql, params):
                got[(level, idx)] = h
        missing = [c for c in coords if c not in got]
        if missing:
            raise StorageError(
                f"ledger node {missing[0]} (level, index) is missing from {self.path}",
                hint="the database was truncated or edited; run `trustlane ledger verify`",
            )
        return got

    def fetch_nodes(self, coords: Sequence[Coord]) -> Mapping[Coord, bytes]:
        try:
            return self._fetch(self._conn(), coords)
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    def entries(self, start: int, end: int) -> Iterator[EntryRecord]:
        cursor = self._conn().execute(
            "SELECT idx, leaf_hash, data, appended_ns FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
        try:
            for idx, h, data, ns in cursor:
                yield EntryRecord(idx, h, data, ns)
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    def nodes(self, level: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        cursor = self._conn().execute(
            "SELECT idx, hash FROM nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (level, start, end),
        )
        try:
            yield from cursor
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    # --- checkpoints and cosignatures -----------------------------------------------------------
    @staticmethod
    def _latest_checkpoint(conn: sqlite3.Connection) -> CheckpointRecord | None:
        row = conn.execute(
            "SELECT size, root, note, published_ns FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return CheckpointRecord(*row) if row else None

    def latest_checkpoint(self) -> CheckpointRecord | None:
        try:
            return self._latest_checkpoint(self._conn())
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    def checkpoint(self, size: int) -> CheckpointRecord | None:
        rows = self._q("SELECT size, root, note, published_ns FROM checkpoints WHERE size = ?", (size,))
        return CheckpointRecord(*rows[0]) if rows else None  # type: ignore[arg-type]

    def checkpoint_covering(self, index: int) -> CheckpointRecord | None:
        rows = self._q(
            "SELECT size, root, note, published_ns FROM checkpoints WHERE size > ? ORDER BY size LIMIT 1",
            (index,),
        )
        return CheckpointRecord(*rows[0]) if rows else None  # type: ignore[arg-type]

    def checkpoints(self) -> Iterator[CheckpointRecord]:
        rows = self._q("SELECT size, root, note, published_ns FROM checkpoints ORDER BY size")
        return (CheckpointRecord(*r) for r in rows)  # type: ignore[arg-type]

    def add_cosignatures(self, cosignatures: Sequence[CosignatureRecord]) -> None:
        conn = self._conn()
        try:
            with self._tx(conn, immediate=True):
                conn.executemany(
                    "INSERT OR IGNORE INTO cosignatures (size, witness, key_id, line, timestamp) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(c.size, c.witness, c.key_id, c.line, c.timestamp) for c in cosignatures],
                )
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    def cosignatures(self, size: int | None = None) -> list[CosignatureRecord]:
        sql = "SELECT size, witness, key_id, line, timestamp FROM cosignatures"
        if size is None:
            rows = self._q(sql + " ORDER BY size, witness")
        else:
            rows = self._q(sql + " WHERE size = ? ORDER BY witness", (size,))
        return [CosignatureRecord(*r) for r in rows]  # type: ignore[arg-type]

    # --- event secrets --------------------------------------------------------------------------
    def event_secret(self, index: int) -> EventSecret | None:
        rows = self._q("SELECT idx, event, salt, erased_ns FROM event_secrets WHERE idx = ?", (index,))
        return EventSecret(*rows[0]) if rows else None  # type: ignore[arg-type]

    def held_event_secrets(self) -> Iterator[EventSecret]:
        rows = self._q(
            "SELECT idx, event, salt, erased_ns FROM event_secrets "
            "WHERE event IS NOT NULL OR salt IS NOT NULL ORDER BY idx"
        )
        return (EventSecret(*r) for r in rows)  # type: ignore[arg-type]

    def erase_event_secret(self, index: int, erased_ns: int) -> bool:
        conn = self._conn()
        try:
            with self._tx(conn, immediate=True):
                cur = conn.execute(
                    "UPDATE event_secrets SET event = NULL, salt = NULL, erased_ns = ? "
                    "WHERE idx = ? AND erased_ns IS NULL",
                    (erased_ns, index),
                )
                return cur.rowcount == 1
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    # --- witness state --------------------------------------------------------------------------
    def witness_state(self, origin: str) -> WitnessState | None:
        rows = self._q("SELECT origin, size, root, note, updated_ns FROM witness_state WHERE origin = ?", (origin,))
        return WitnessState(*rows[0]) if rows else None  # type: ignore[arg-type]

    def witness_advance(self, origin: str, expected_size: int, new: WitnessState) -> int | None:
        conn = self._conn()
        try:
            with self._tx(conn, immediate=True):
                row = conn.execute("SELECT size FROM witness_state WHERE origin = ?", (origin,)).fetchone()
                current = 0 if row is None else int(row[0])
                if current != expected_size:
                    return current
                conn.execute(
                    "INSERT INTO witness_state (origin, size, root, note, updated_ns) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
                    "note = excluded.note, updated_ns = excluded.updated_ns",
                    (new.origin, new.size, new.root, new.note, new.updated_ns),
                )
                return None
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
    if header != b"SQLite format 3\x00":
        raise StorageError(
            f"{path} is not a SQLite database (empty or damaged)",
            hint="restore the node home from a backup; `trustlane init` creates a new one elsewhere",
        )


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
