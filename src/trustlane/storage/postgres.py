"""PostgreSQL ledger store: one schema per ledger, one connection per thread, durable commits.

The tables mirror :mod:`trustlane.storage.sqlite` (BYTEA hashes and data, BIGINT indexes and nanosecond
times) and carry the same append-only triggers. Every connection runs in autocommit mode, so a read is
one statement and leaves no transaction open; a write is an explicit READ COMMITTED transaction that
first takes a transaction-scoped advisory lock derived from the schema name. That lock excludes every
other writer of the same ledger, in this process or any other, and because the lock is taken before the
transaction reads anything, READ COMMITTED gives each later statement a snapshot that already contains
the previous writer's commit.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from trustlane.errors import StorageError, UsageError
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

Connection = psycopg.Connection[TupleRow]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PAGE = 2000  # rows per round trip when streaming entries or nodes
_LOCK_TIMEOUT = "60s"  # like SQLite's busy timeout: a writer waits this long for the ledger lock

# Run at connect, in one round trip: keep commits durable even where the server turned
# synchronous_commit off (stronger settings such as remote_apply stay), and bound lock waits.
_SESSION_SETUP = f"""
SELECT
    CASE WHEN current_setting('synchronous_commit') = 'off'
        THEN set_config('synchronous_commit', 'on', false) END,
    CASE WHEN current_setting('lock_timeout') = '0'
        THEN set_config('lock_timeout', '{_LOCK_TIMEOUT}', false) END
"""


def _ddl(s: str) -> list[str]:
    """The statements creating a ledger in the (quoted) schema ``s``."""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE {s}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE {s}.entries (
            idx BIGINT PRIMARY KEY CHECK (idx >= 0), leaf_hash BYTEA NOT NULL, data BYTEA NOT NULL,
            appended_ns BIGINT NOT NULL)""",
        f"""CREATE TABLE {s}.nodes (
            level INTEGER NOT NULL CHECK (level >= 1), idx BIGINT NOT NULL CHECK (idx >= 0),
            hash BYTEA NOT NULL, PRIMARY KEY (level, idx))""",
        f"""CREATE TABLE {s}.checkpoints (
            size BIGINT PRIMARY KEY, root BYTEA NOT NULL, note TEXT NOT NULL, published_ns BIGINT NOT NULL)""",
        f"""CREATE TABLE {s}.cosignatures (
            size BIGINT NOT NULL, witness TEXT NOT NULL, key_id BYTEA NOT NULL, line TEXT NOT NULL,
            timestamp BIGINT NOT NULL, PRIMARY KEY (size, witness, key_id))""",
        f"""CREATE TABLE {s}.event_secrets (
            idx BIGINT PRIMARY KEY, event TEXT, salt BYTEA, erased_ns BIGINT)""",
        f"""CREATE TABLE {s}.witness_state (
            origin TEXT PRIMARY KEY, size BIGINT NOT NULL, root BYTEA NOT NULL, note TEXT NOT NULL,
            updated_ns BIGINT NOT NULL)""",
        f"""CREATE FUNCTION {s}.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
            END $$""",
        f"""CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON {s}.entries
            FOR EACH ROW EXECUTE FUNCTION {s}.reject_change('ledger entries are append-only')""",
        f"""CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON {s}.entries
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.reject_change('ledger entries are append-only')""",
        f"""CREATE TRIGGER nodes_append_only BEFORE UPDATE OR DELETE ON {s}.nodes
            FOR EACH ROW EXECUTE FUNCTION {s}.reject_change('ledger nodes are append-only')""",
        f"""CREATE TRIGGER nodes_no_truncate BEFORE TRUNCATE ON {s}.nodes
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.reject_change('ledger nodes are append-only')""",
        f"""CREATE TRIGGER checkpoints_append_only BEFORE UPDATE ON {s}.checkpoints
            FOR EACH ROW EXECUTE FUNCTION {s}.reject_change('published checkpoints are immutable')""",
    ]


# --- naming the server without the password -------------------------------------------------------


def _check_schema(schema: str) -> str:
    """The schema name, double-quoted for SQL, once it is known to be a plain lower-case identifier."""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise UsageError(
            f"{schema!r} is not a usable PostgreSQL schema name",
            hint="use 1 to 63 lower-case letters, digits and underscores, not starting with a digit",
        )
    return f'"{schema}"'


def _parse_dsn(dsn: str) -> dict[str, str]:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.Error:
        # libpq's parse errors quote the offending text, which may be the password: say nothing of it.
        raise StorageError(
            "the PostgreSQL DSN does not parse",
            hint="write it as postgresql://USER@HOST:PORT/DBNAME and keep the password in PGPASSWORD "
            "or ~/.pgpass (percent-encode special characters in a URL)",
        ) from None


def describe_dsn(dsn: str) -> str:
    """``database 'db' on host:port`` for messages; never the password."""
    params = _parse_dsn(dsn)
    host = params.get("host") or params.get("hostaddr") or "the local socket"
    port = params.get("port") or "5432"
    db = params.get("dbname") or params.get("user") or "(default)"
    return f"PostgreSQL database {db!r} on {host}:{port}"


def _scrub(text: str, params: Mapping[str, str]) -> str:
    password = params.get("password")
    return text.replace(password, "***") if password else text


def _lock_key(schema: str) -> int:
    """The advisory lock id of one ledger: a signed 64-bit number derived from its schema name."""
    digest = hashlib.sha256(b"trustlane ledger write lock\x00" + schema.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _connect(dsn: str, params: Mapping[str, str], where: str) -> Connection:
    # A DSN's own connect_timeout wins; otherwise do not hang on an unreachable host.
    timeout = params.get("connect_timeout", "10")
    name = params.get("application_name", "trustlane")
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name=name, connect_timeout=timeout)
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot connect to {where}: {_scrub(str(exc).strip(), params)}",
            hint="check that the server runs and accepts this host (pg_isready -h HOST -p PORT), that the "
            "database and role exist, and the password (in the DSN, PGPASSWORD or ~/.pgpass)",
        ) from None
    try:
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED  # the write lock relies on it
        conn.execute(_SESSION_SETUP)
    except psycopg.Error as exc:
        conn.close()
        raise StorageError(
            f"{where} refused the session settings: {_scrub(str(exc).strip(), params)}",
            hint="check the role's permissions on the server",
        ) from None
    return conn


def drop_schema(dsn: str, schema: str) -> None:
    """Remove a ledger schema and everything in it (for tests and throw-away nodes)."""
    quoted = _check_schema(schema)
    params = _parse_dsn(dsn)
    where = describe_dsn(dsn)
    conn = _connect(dsn, params, where)
    try:
        conn.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot drop schema {schema} on {where}: {_scrub(str(exc).strip(), params)}",
            hint="the role must own the schema",
        ) from exc
    finally:
        conn.close()


# --- the store ------------------------------------------------------------------------------------


class _PgWriter(LedgerWriter):
    def __init__(self, store: PostgresStore, conn: Connection) -> None:
        self._store = store
        self._conn = conn

    def tree_size(self) -> int:
        return self._store._size(self._conn)

    def fetch_nodes(self, coords: Sequence[Coord]) -> Mapping[Coord, bytes]:
        return self._store._fetch(self._conn, coords)

    def add_entries(self, entries: Sequence[EntryRecord]) -> None:
        self._store._copy(
            self._conn,
            "entries (idx, leaf_hash, data, appended_ns)",
            ["int8", "bytea", "bytea", "int8"],
            [(e.index, e.leaf_hash, e.data, e.appended_ns) for e in entries],
        )

    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        self._store._copy(self._conn, "nodes (level, idx, hash)", ["int4", "int8", "bytea"], nodes)

    def add_event_secrets(self, secrets: Sequence[EventSecret]) -> None:
        self._store._copy(
            self._conn,
            "event_secrets (idx, event, salt, erased_ns)",
            ["int8", "text", "bytea", "int8"],
            [(s.index, s.event, s.salt, s.erased_ns) for s in secrets],
        )

    def latest_checkpoint(self) -> CheckpointRecord | None:
        return self._store._latest_checkpoint(self._conn)

    def add_checkpoint(self, checkpoint: CheckpointRecord) -> None:
        self._conn.execute(
            f"INSERT INTO {self._store._s}.checkpoints (size, root, note, published_ns) VALUES (%s, %s, %s, %s)",
            (checkpoint.size, checkpoint.root, checkpoint.note, checkpoint.published_ns),
        )


class PostgresStore(LedgerStore):
    backend = "postgres"

    def __init__(self, dsn: str, *, schema: str = "trustlane", create: bool = False) -> None:
        self._s = _check_schema(schema)
        self.schema = schema
        self._dsn = dsn
        self._params = _parse_dsn(dsn)
        self.location = describe_dsn(dsn)  # safe to show: no password
        self._lock_key = _lock_key(schema)
        self._local = threading.local()
        self._all: list[Connection] = []
        self._all_lock = threading.Lock()
        try:
            self._open(create)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.location}, schema={self.schema!r})"

    # --- opening --------------------------------------------------------------------------------
    def _version(self, conn: Connection) -> str | None:
        """The stored schema version; None when the schema holds no ledger."""
        row = conn.execute("SELECT to_regclass(%s)::text", (f"{self._s}.meta",)).fetchone()
        if row is None or row[0] is None:
            return None
        row = conn.execute(f"SELECT value FROM {self._s}.meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise StorageError(
                f"schema {self.schema} in {self.location} has a meta table but no schema_version",
                hint="this schema is not a trustlane ledger, or it was edited; pick another --schema",
            )
        return str(row[0])

    def _open(self, create: bool) -> None:
        conn = self._conn()
        try:
            version = self._version(conn)
            if version is None:
                if not create:
                    raise StorageError(
                        f"no ledger in schema {self.schema} of {self.location}",
                        hint="run `trustlane init` for this node, or check --database and --schema",
                    )
                with conn.transaction():
                    # Two processes may initialise at once: the second waits, then finds the tables.
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                    version = self._version(conn)
                    if version is None:
                        for statement in _ddl(self._s):
                            conn.execute(statement)
                        conn.execute(
                            f"INSERT INTO {self._s}.meta (key, value) VALUES ('schema_version', %s)",
                            (str(SCHEMA_VERSION),),
                        )
                        version = str(SCHEMA_VERSION)
        except psycopg.Error as exc:
            raise self._error(exc) from exc
        if version != str(SCHEMA_VERSION):
            raise StorageError(
                f"schema {self.schema} in {self.location} has ledger schema version {version}; "
                f"this trustlane reads version {SCHEMA_VERSION}",
                hint="use the trustlane release that created this node",
            )

    # --- connections, errors, transactions ------------------------------------------------------
    def _conn(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.closed:  # closed by close(), or broken by a lost server
            with self._all_lock:
                if conn in self._all:
                    self._all.remove(conn)
            conn = None
        if conn is None:
            conn = _connect(self._dsn, self._params, self.location)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _error(self, exc: psycopg.Error) -> StorageError:
        message = _scrub(str(exc).strip(), self._params)
        where = f"schema {self.schema} in {self.location}"
        if isinstance(exc, pg_errors.LockNotAvailable):
            return StorageError(
                f"{where}: another writer held the ledger lock too long ({message})",
                hint="look for a stuck trustlane process or a long transaction (pg_stat_activity)",
            )
        if isinstance(exc, psycopg.OperationalError):
            return StorageError(
                f"lost the connection to {where}: {message}",
                hint="check that the server is running and reachable (pg_isready), then retry",
            )
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return StorageError(
                f"{where}: permission denied: {message}",
                hint=f"grant the role USAGE and CREATE on schema {self.schema} and rights on its tables",
            )
        return StorageError(
            f"{where} cannot be used: {message}",
            hint="run `trustlane ledger verify`; restore the database from a backup if it names damage",
        )

    def _q(self, sql: str, params: Sequence[object] = ()) -> list[TupleRow]:
        try:
            with self._conn().cursor(binary=True) as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        conn = self._conn()
        try:
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    @contextmanager
    def write(self) -> Iterator[LedgerWriter]:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            yield _PgWriter(self, conn)

    def _copy(self, conn: Connection, target: str, types: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """Bulk insert with binary COPY (measured faster than pipelined executemany for 256-row batches)."""
        if not rows:
            return
        with conn.cursor() as cur, cur.copy(f"COPY {self._s}.{target} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)

    # --- metadata -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._q(f"SELECT value FROM {self._s}.meta WHERE key = %s", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO {self._s}.meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # --- tree -----------------------------------------------------------------------------------
    def _size(self, conn: Connection) -> int:
        row = conn.execute(f"SELECT coalesce(max(idx) + 1, 0) FROM {self._s}.entries").fetchone()
        return 0 if row is None else int(row[0])

    def tree_size(self) -> int:
        try:
            return self._size(self._conn())
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _fetch(self, conn: Connection, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        wanted = set(coords)
        if not wanted:
            return {}
        leaves = sorted(i for level, i in wanted if level == 0)
        inner = sorted(c for c in wanted if c[0] > 0)
        with conn.cursor(binary=True) as cur:  # one statement, one round trip, one snapshot
            cur.execute(
                f"""SELECT 0, idx, leaf_hash FROM {self._s}.entries WHERE idx = ANY(%s::int8[])
                UNION ALL
                SELECT n.level, n.idx, n.hash FROM {self._s}.nodes AS n
                JOIN unnest(%s::int4[], %s::int8[]) AS c(level, idx) ON n.level = c.level AND n.idx = c.idx""",
                (leaves, [c[0] for c in inner], [c[1] for c in inner]),
            )
            got: dict[Coord, bytes] = {(int(level), int(idx)): bytes(h) for level, idx, h in cur}
        missing = [c for c in coords if c not in got]
        if missing:
            raise StorageError(
                f"ledger node {missing[0]} (level, index) is missing from schema {self.schema} in {self.location}",
                hint="the database was truncated or edited; run `trustlane ledger verify`",
            )
        return got

    def fetch_nodes(self, coords: Sequence[Coord]) -> Mapping[Coord, bytes]:
        try:
            return self._fetch(self._conn(), coords)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def entries(self, start: int, end: int) -> Iterator[EntryRecord]:
        # Pages by index, one statement each, so no transaction stays open while the caller iterates;
        # entries are append-only, so the pages fit together.
        position = max(start, 0)
        while position < end:
            rows = self._q(
                f"SELECT idx, leaf_hash, data, appended_ns FROM {self._s}.entries "
                "WHERE idx >= %s AND idx < %s ORDER BY idx LIMIT %s",
                (position, end, _PAGE),
            )
            for idx, h, data, ns in rows:
                yield EntryRecord(int(idx), bytes(h), bytes(data), int(ns))
            if len(rows) < _PAGE:
                return
            position = int(rows[-1][0]) + 1

    def nodes(self, level: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        position = max(start, 0)
        while position < end:
            rows = self._q(
                f"SELECT idx, hash FROM {self._s}.nodes "
                "WHERE level = %s AND idx >= %s AND idx < %s ORDER BY idx LIMIT %s",
                (level, position, end, _PAGE),
            )
            for idx, h in rows:
                yield int(idx), bytes(h)
            if len(rows) < _PAGE:
                return
            position = int(rows[-1][0]) + 1

    # --- checkpoints and cosignatures -----------------------------------------------------------
    @staticmethod
    def _checkpoint(row: TupleRow) -> CheckpointRecord:
        size, root, note, ns = row
        return CheckpointRecord(int(size), bytes(root), str(note), int(ns))

    def _latest_checkpoint(self, conn: Connection) -> CheckpointRecord | None:
        with conn.cursor(binary=True) as cur:
            cur.execute(f"SELECT size, root, note, published_ns FROM {self._s}.checkpoints ORDER BY size DESC LIMIT 1")
            row = cur.fetchone()
        return None if row is None else self._checkpoint(row)

    def latest_checkpoint(self) -> CheckpointRecord | None:
        try:
            return self._latest_checkpoint(self._conn())
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def checkpoint(self, size: int) -> CheckpointRecord | None:
        rows = self._q(f"SELECT size, root, note, published_ns FROM {self._s}.checkpoints WHERE size = %s", (size,))
        return self._checkpoint(rows[0]) if rows else None

    def checkpoint_covering(self, index: int) -> CheckpointRecord | None:
        rows = self._q(
            f"SELECT size, root, note, published_ns FROM {self._s}.checkpoints WHERE size > %s ORDER BY size LIMIT 1",
            (index,),
        )
        return self._checkpoint(rows[0]) if rows else None

    def checkpoints(self) -> Iterator[CheckpointRecord]:
        rows = self._q(f"SELECT size, root, note, published_ns FROM {self._s}.checkpoints ORDER BY size")
        return (self._checkpoint(r) for r in rows)

    def add_cosignatures(self, cosignatures: Sequence[CosignatureRecord]) -> None:
        if not cosignatures:
            return
        with self._tx() as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self._s}.cosignatures (size, witness, key_id, line, timestamp) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(c.size, c.witness, c.key_id, c.line, c.timestamp) for c in cosignatures],
            )

    def cosignatures(self, size: int | None = None) -> list[CosignatureRecord]:
        sql = f"SELECT size, witness, key_id, line, timestamp FROM {self._s}.cosignatures"
        if size is None:  # byte order, as SQLite sorts, whatever the database collation
            rows = self._q(sql + ' ORDER BY size, witness COLLATE "C", key_id')
        else:
            rows = self._q(sql + ' WHERE size = %s ORDER BY witness COLLATE "C", key_id', (size,))
        return [CosignatureRecord(int(s), str(w), bytes(k), str(line), int(t)) for s, w, k, line, t in rows]

    # --- event secrets --------------------------------------------------------------------------
    def event_secret(self, index: int) -> EventSecret | None:
        rows = self._q(f"SELECT idx, event, salt, erased_ns FROM {self._s}.event_secrets WHERE idx = %s", (index,))
        if not rows:
            return None
        idx, event, salt, erased = rows[0]
        return EventSecret(
            int(idx),
            None if event is None else str(event),
            None if salt is None else bytes(salt),
            None if erased is None else int(erased),
        )

    def held_event_secrets(self) -> Iterator[EventSecret]:
        rows = self._q(
            f"SELECT idx, event, salt, erased_ns FROM {self._s}.event_secrets "
            "WHERE event IS NOT NULL OR salt IS NOT NULL ORDER BY idx"
        )
        return (
            EventSecret(
                int(i),
                None if e is None else str(e),
                None if s is None else bytes(s),
                None if n is None else int(n),
            )
            for i, e, s, n in rows
        )

    def erase_event_secret(self, index: int, erased_ns: int) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE {self._s}.event_secrets SET event = NULL, salt = NULL, erased_ns = %s "
                "WHERE idx = %s AND erased_ns IS NULL",
                (erased_ns, index),
            )
            return cur.rowcount == 1

    # --- witness state --------------------------------------------------------------------------
    def witness_state(self, origin: str) -> WitnessState | None:
        rows = self._q(
            f"SELECT origin, size, root, note, updated_ns FROM {self._s}.witness_state WHERE origin = %s",
            (origin,),
        )
        if not rows:
            return None
        o, size, root, note, ns = rows[0]
        return WitnessState(str(o), int(size), bytes(root), str(note), int(ns))

    def witness_advance(self, origin: str, expected_size: int, new: WitnessState) -> int | None:
        # The row is keyed by ``origin``; ``new.origin`` names the same log.
        values = (origin, new.size, new.root, new.note, new.updated_ns)
        with self._tx() as conn:
            while True:
                # The row lock holds every other advance for this origin until we commit.
                row = conn.execute(
                    f"SELECT size FROM {self._s}.witness_state WHERE origin = %s FOR UPDATE", (origin,)
                ).fetchone()
                if row is not None:
                    current = int(row[0])
                    if current != expected_size:
                        return current
                    conn.execute(
                        f"UPDATE {self._s}.witness_state SET size = %s, root = %s, note = %s, updated_ns = %s "
                        "WHERE origin = %s",
                        (*values[1:], origin),
                    )
                    return None
                if expected_size != 0:
                    return 0
                inserted = conn.execute(
                    f"INSERT INTO {self._s}.witness_state (origin, size, root, note, updated_ns) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (origin) DO NOTHING RETURNING 1",
                    values,
                ).fetchone()
                if inserted is not None:
                    return None
                # Another transaction inserted the first state meanwhile; READ COMMITTED lets the next
                # SELECT ... FOR UPDATE see (and lock) it.

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
