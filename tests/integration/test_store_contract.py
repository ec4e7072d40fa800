"""The LedgerStore contract, run against every backend (SQLite always, PostgreSQL when a server is given).

PostgreSQL cases read the server from TRUSTLANE_TEST_PG_DSN; each test works in a fresh schema that is
dropped afterwards. Without the variable (or without a reachable server) they skip, except under CI=true,
where they fail: CI must exercise both backends.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import IN_CI
from trustlane.crypto.note import Ed25519Signer
from trustlane.errors import StorageError, UsageError
from trustlane.ledger import merkle
from trustlane.ledger.checkpoint import verify_checkpoint
from trustlane.ledger.log import LedgerSettings, Log
from trustlane.storage.base import (
    CheckpointRecord,
    CosignatureRecord,
    EntryRecord,
    EventSecret,
    LedgerStore,
    WitnessState,
)
from trustlane.storage.open import open_store
from trustlane.storage.postgres import PostgresStore, describe_dsn, drop_schema
from trustlane.storage.sqlite import SqliteStore

PG_ENV = "TRUSTLANE_TEST_PG_DSN"
PG_SKIP = f"set {PG_ENV}=postgresql://127.0.0.1:5432/test to run PostgreSQL tests"


@functools.cache
def _pg_problem(dsn: str) -> str | None:
    """Why the test server cannot be used, or None (checked once per session)."""
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # libpq names no password
        return f"{describe_dsn(dsn)} is unreachable ({reason})"
    except StorageError as exc:
        return exc.message
    return None


def pg_dsn() -> str:
    dsn = os.environ.get(PG_ENV, "")
    if not dsn:
        if IN_CI:
            pytest.fail(f"{PG_ENV} is not set, and CI must run the PostgreSQL tests")
        pytest.skip(PG_SKIP)
    problem = _pg_problem(dsn)
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem}, and CI must run the PostgreSQL tests")
        pytest.skip(f"{problem}; {PG_SKIP}")
    return dsn


def fresh_schema() -> str:
    return f"tl_test_{uuid.uuid4().hex[:16]}"


# --- one backend: how to open it and how to reach behind the store's back ------------------------------


class Backend:
    name: str
    db_error: type[Exception]

    def open(self, *, create: bool = False) -> LedgerStore:
        raise NotImplementedError

    def raw(self, sql: str) -> None:
        """Run one statement on a fresh connection of the database driver, committing it."""
        raise NotImplementedError

    def set_schema_version(self, version: int) -> None:
        raise NotImplementedError


class SqliteBackend(Backend):
    name = "sqlite"
    db_error = sqlite3.Error

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self, *, create: bool = False) -> LedgerStore:
        return SqliteStore(self.path, create=create)

    def raw(self, sql: str) -> None:
        conn = sqlite3.connect(self.path)
        try:
            with conn:
                conn.execute(sql)
        finally:
            conn.close()

    def set_schema_version(self, version: int) -> None:
        self.raw(f"PRAGMA user_version = {version}")


class PostgresBackend(Backend):
    name = "postgres"
    db_error = psycopg.Error

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema

    def open(self, *, create: bool = False) -> LedgerStore:
        return PostgresStore(self.dsn, schema=self.schema, create=create)

    def raw(self, sql: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            conn.execute(sql)

    def set_schema_version(self, version: int) -> None:
        self.raw(f"UPDATE meta SET value = '{version}' WHERE key = 'schema_version'")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield SqliteBackend(tmp_path / "ledger.db")
        return
    dsn = pg_dsn()
    schema = fresh_schema()
    try:
        yield PostgresBackend(dsn, schema)
    finally:
        drop_schema(dsn, schema)


@pytest.fixture
def store(backend: Backend) -> Iterator[LedgerStore]:
    s = backend.open(create=True)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def pg_backend(tmp_path: Path) -> Iterator[PostgresBackend]:
    dsn = pg_dsn()
    schema = fresh_schema()
    try:
        yield PostgresBackend(dsn, schema)
    finally:
        drop_schema(dsn, schema)


# --- helpers ------------------------------------------------------------------------------------------


def make_entries(start: int, count: int, tag: str = "leaf") -> list[EntryRecord]:
    out = []
    for i in range(start, start + count):
        data = f"{tag}-{i}".encode()
        out.append(EntryRecord(i, merkle.leaf_hash(data), data, 1_000 + i))
    return out


def write_tree(store: LedgerStore, count: int) -> dict[merkle.Coord, bytes]:
    """Append ``count`` entries and their perfect-subtree nodes in one transaction; return all nodes."""
    entries = make_entries(0, count)
    tree = merkle.build_tree([e.leaf_hash for e in entries])
    with store.write() as w:
        w.add_entries(entries)
        w.add_nodes([(level, idx, h) for (level, idx), h in sorted(tree.items()) if level > 0])
    return tree


def checkpoint(size: int) -> CheckpointRecord:
    return CheckpointRecord(size, bytes([size % 256]) * 32, f"test.example/log\n{size}\n", 5_000 + size)


def run_threads(targets: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guard(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# --- the contract ---------------------------------------------------------------------------------------


def test_empty_store(store: LedgerStore) -> None:
    assert store.tree_size() == 0
    assert list(store.entries(0, 10)) == []
    assert store.entry(0) is None
    assert list(store.nodes(1, 0, 10)) == []
    assert store.fetch_nodes([]) == {}
    assert store.latest_checkpoint() is None
    assert list(store.checkpoints()) == []
    assert store.checkpoint_covering(0) is None
    assert store.cosignatures() == []
    assert store.event_secret(0) is None
    assert store.witness_state("test.example/log") is None
    assert store.get_meta("origin") is None
    with store.write() as w:
        assert w.tree_size() == 0
        assert w.latest_checkpoint() is None


def test_entries_and_nodes_round_trip(store: LedgerStore) -> None:
    entries = make_entries(0, 13)
    tree = merkle.build_tree([e.leaf_hash for e in entries])
    inner = sorted((level, idx, h) for (level, idx), h in tree.items() if level > 0)
    with store.write() as w:
        w.add_entries(entries[:5])
        assert w.tree_size() == 5  # the writer sees its own uncommitted rows
        w.add_entries(entries[5:])
        w.add_nodes(inner)
        assert w.fetch_nodes([(0, 12), (3, 0)]) == {(0, 12): tree[(0, 12)], (3, 0): tree[(3, 0)]}

    assert store.tree_size() == 13
    assert list(store.entries(0, 13)) == entries
    assert list(store.entries(3, 7)) == entries[3:7]
    assert list(store.entries(10, 100)) == entries[10:]
    assert store.entry(5) == entries[5]
    assert store.entry(13) is None
    assert list(store.nodes(1, 0, 100)) == [(idx, h) for level, idx, h in inner if level == 1]
    assert list(store.nodes(1, 2, 4)) == [(2, tree[(1, 2)]), (3, tree[(1, 3)])]
    assert list(store.nodes(3, 0, 10)) == [(0, tree[(3, 0)])]
    assert list(store.nodes(4, 0, 10)) == []

    wanted = [(0, 0), (0, 12), (1, 5), (2, 2), (3, 0), (0, 12)]  # a duplicate is harmless
    assert store.fetch_nodes(wanted) == {c: tree[c] for c in wanted}
    assert merkle.root_hash(13, store.fetch_nodes) == merkle.root_hash(13, merkle.memory_fetcher(tree))
    for missing in [(0, 13), (1, 6), (4, 0)]:
        with pytest.raises(StorageError, match="missing"):
            store.fetch_nodes([(0, 1), missing])


def test_a_failed_write_leaves_nothing_behind(store: LedgerStore) -> None:
    entries = make_entries(0, 4)
    with pytest.raises(RuntimeError, match="boom"), store.write() as w:
        w.add_entries(entries)
        w.add_nodes([(1, 0, b"\x01" * 32)])
        w.add_event_secrets([EventSecret(0, '{"a":1}', b"salt" * 8, None)])
        w.add_checkpoint(checkpoint(4))
        raise RuntimeError("boom")
    assert store.tree_size() == 0
    assert list(store.entries(0, 10)) == []
    assert list(store.nodes(1, 0, 10)) == []
    assert store.event_secret(0) is None
    assert store.latest_checkpoint() is None

    # A database error (index 0 twice) rolls back the whole transaction too, as a StorageError.
    with store.write() as w:
        w.add_entries(entries[:1])
    with pytest.raises(StorageError), store.write() as w:
        w.add_entries(entries[1:3])
        w.add_entries(entries[:1])
    assert list(store.entries(0, 10)) == entries[:1]

    with store.write() as w:  # and the store is still usable afterwards
        w.add_entries(entries[1:])
    assert store.tree_size() == 4


def test_checkpoints(store: LedgerStore) -> None:
    write_tree(store, 10)
    for size in (10, 0, 4):  # stored out of order; read back in order
        with store.write() as w:
            w.add_checkpoint(checkpoint(size))
    assert store.latest_checkpoint() == checkpoint(10)
    with store.write() as w:
        assert w.latest_checkpoint() == checkpoint(10)
    assert store.checkpoint(4) == checkpoint(4)
    assert store.checkpoint(5) is None
    assert [c.size for c in store.checkpoints()] == [0, 4, 10]
    assert list(store.checkpoints()) == [checkpoint(0), checkpoint(4), checkpoint(10)]
    assert store.checkpoint_covering(0) == checkpoint(4)
    assert store.checkpoint_covering(3) == checkpoint(4)
    assert store.checkpoint_covering(4) == checkpoint(10)
    assert store.checkpoint_covering(9) == checkpoint(10)
    assert store.checkpoint_covering(10) is None
    with pytest.raises(StorageError), store.write() as w:  # a size is published once
        w.add_checkpoint(CheckpointRecord(4, b"\x07" * 32, "other\n", 1))
    assert store.checkpoint(4) == checkpoint(4)


def test_cosignatures(store: LedgerStore) -> None:
    a = CosignatureRecord(4, "witness-b.example", b"\x02" * 4, "— witness-b.example AAAA\n", 1_700_000_000)
    b = CosignatureRecord(4, "witness-a.example", b"\x01" * 4, "— witness-a.example BBBB\n", 1_700_000_001)
    c = CosignatureRecord(2, "witness-a.example", b"\x01" * 4, "— witness-a.example CCCC\n", 1_700_000_002)
    store.add_cosignatures([a, b])
    store.add_cosignatures([a, c, c])  # duplicates, within a call and across calls, are ignored
    store.add_cosignatures([])
    assert store.cosignatures(4) == [b, a]
    assert store.cosignatures(2) == [c]
    assert store.cosignatures(99) == []
    assert store.cosignatures() == [c, b, a]


def test_event_secrets(store: LedgerStore) -> None:
    secrets = [EventSecret(i, f'{{"n":{i}}}', bytes([i]) * 32, None) for i in range(3)]
    with store.write() as w:
        w.add_entries(make_entries(0, 3))
        w.add_event_secrets(secrets)
    assert store.event_secret(1) == secrets[1]
    assert store.erase_event_secret(1, 42) is True
    assert store.event_secret(1) == EventSecret(1, None, None, 42)
    assert store.erase_event_secret(1, 43) is False  # a second erase changes nothing
    assert store.event_secret(1) == EventSecret(1, None, None, 42)
    assert store.erase_event_secret(7, 44) is False
    assert store.event_secret(0) == secrets[0]
    assert store.event_secret(2) == secrets[2]


def test_witness_advance_is_compare_and_set(store: LedgerStore) -> None:
    origin = "log.example/a"

    def state(size: int) -> WitnessState:
        return WitnessState(origin, size, bytes([size]) * 32, f"{origin}\n{size}\n", 100 + size)

    assert store.witness_advance(origin, 5, state(10)) == 0  # nothing stored yet: size 0
    assert store.witness_state(origin) is None
    assert store.witness_advance(origin, 0, state(10)) is None
    assert store.witness_state(origin) == state(10)
    assert store.witness_advance(origin, 0, state(20)) == 10  # stale: the caller answers 409
    assert store.witness_state(origin) == state(10)
    assert store.witness_advance(origin, 10, state(20)) is None
    assert store.witness_state(origin) == state(20)
    assert store.witness_state("log.example/b") is None


def test_witness_advance_lets_one_of_many_racers_win(backend: Backend, store: LedgerStore) -> None:
    origin = "log.example/race"
    other = backend.open()
    outcomes: list[int | None] = []
    lock = threading.Lock()

    def racer(s: LedgerStore, size: int) -> Callable[[], None]:
        def run() -> None:
            got = s.witness_advance(origin, 0, WitnessState(origin, size, b"\x00" * 32, "n\n", size))
            with lock:
                outcomes.append(got)

        return run

    try:
        run_threads([racer(store if i % 2 else other, 10 + i) for i in range(8)])
    finally:
        other.close()
    winner = store.witness_state(origin)
    assert winner is not None
    assert outcomes.count(None) == 1
    assert sorted(o for o in outcomes if o is not None) == [winner.size] * 7


def test_meta(store: LedgerStore) -> None:
    assert store.get_meta("origin") is None
    store.set_meta("origin", "test.example/log")
    assert store.get_meta("origin") == "test.example/log"
    store.set_meta("origin", "other.example/log")
    assert store.get_meta("origin") == "other.example/log"
    assert store.get_meta("log_vkey") is None


def test_triggers_keep_the_ledger_append_only(backend: Backend, store: LedgerStore) -> None:
    entries = make_entries(0, 4)
    write_tree(store, 4)
    with store.write() as w:
        w.add_checkpoint(checkpoint(4))
    for sql in (
        "UPDATE entries SET data = data || data WHERE idx = 1",
        "DELETE FROM entries WHERE idx = 3",
        "UPDATE nodes SET idx = idx + 100",
        "UPDATE checkpoints SET note = 'forged' WHERE size = 4",
    ):
        with pytest.raises(backend.db_error, match=r"append-only|immutable"):
            backend.raw(sql)
    assert list(store.entries(0, 10)) == entries
    assert [idx for idx, _ in store.nodes(1, 0, 10)] == [0, 1]
    assert store.checkpoint(4) == checkpoint(4)


@pytest.mark.postgres
def test_postgres_also_refuses_deleting_nodes_and_truncating(pg_backend: PostgresBackend) -> None:
    s = pg_backend.open(create=True)
    try:
        write_tree(s, 4)
        for sql in ("DELETE FROM nodes", "TRUNCATE entries CASCADE", "TRUNCATE nodes"):
            with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
                pg_backend.raw(sql)
        assert s.tree_size() == 4
        assert len(list(s.nodes(1, 0, 10))) == 2
    finally:
        s.close()


def test_concurrent_writers_are_serialised(backend: Backend, store: LedgerStore) -> None:
    """4 threads x 50 transactions of read-size-then-append, over two store objects: no index twice."""
    other = backend.open()

    def writer(s: LedgerStore, worker: int) -> Callable[[], None]:
        def run() -> None:
            for k in range(50):
                data = f"worker{worker}-{k}".encode()
                with s.write() as w:
                    n = w.tree_size()
                    w.add_entries([EntryRecord(n, merkle.leaf_hash(data), data, k)])

        return run

    try:
        run_threads([writer(store if i < 2 else other, i) for i in range(4)])
    finally:
        other.close()
    got = list(store.entries(0, 1_000))
    assert store.tree_size() == 200
    assert [e.index for e in got] == list(range(200))
    assert len({e.data for e in got}) == 200


def test_a_second_store_sees_the_first_ones_writes(backend: Backend, store: LedgerStore) -> None:
    other = backend.open()
    try:
        assert other.tree_size() == 0
        write_tree(store, 5)
        store.set_meta("origin", "test.example/log")
        assert other.tree_size() == 5
        assert list(other.entries(0, 5)) == list(store.entries(0, 5))
        assert other.get_meta("origin") == "test.example/log"
        with other.write() as w:
            w.add_checkpoint(checkpoint(5))
        assert store.latest_checkpoint() == checkpoint(5)
    finally:
        other.close()


def test_reopening_and_schema_versions(backend: Backend, store: LedgerStore) -> None:
    tree = write_tree(store, 7)
    store.set_meta("origin", "test.example/log")
    store.close()
    for create in (False, True):  # create=True on an existing ledger keeps it as it is
        again = backend.open(create=create)
        try:
            assert again.tree_size() == 7
            assert again.get_meta("origin") == "test.example/log"
            assert merkle.root_hash(7, again.fetch_nodes) == merkle.root_hash(7, merkle.memory_fetcher(tree))
        finally:
            again.close()
    backend.set_schema_version(99)
    with pytest.raises(StorageError, match="schema version 99") as info:
        backend.open()
    assert info.value.hint


def test_a_closed_store_reconnects_on_use(store: LedgerStore) -> None:
    write_tree(store, 2)
    store.close()
    assert store.tree_size() == 2
    store.close()


# --- opening: SQLite files, PostgreSQL servers, open_store ---------------------------------------------


def test_missing_sqlite_file_without_create(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "ledger.db"
    with pytest.raises(StorageError, match="no ledger database") as info:
        SqliteStore(path)
    assert "trustlane init" in (info.value.hint or "")
    assert not path.exists()


def test_garbage_file_is_not_a_sqlite_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not a database, just some text" * 200)
    with pytest.raises(StorageError) as info:
        SqliteStore(path)
    assert info.value.hint


@pytest.mark.postgres
def test_postgres_schema_without_a_ledger(pg_backend: PostgresBackend) -> None:
    with pytest.raises(StorageError, match="no ledger in schema") as info:
        pg_backend.open()
    assert "trustlane init" in (info.value.hint or "")


def test_unreachable_postgres_names_the_server_but_not_the_password() -> None:
    dsn = "postgresql://alice:s3cret-pw@127.0.0.1:1/ledgerdb?connect_timeout=3"
    with pytest.raises(StorageError) as info:
        PostgresStore(dsn)
    text = info.value.diagnostics()
    assert "127.0.0.1:1" in text
    assert "ledgerdb" in text
    assert "s3cret-pw" not in text
    assert info.value.hint


def test_unparsable_dsn_does_not_echo_it() -> None:
    with pytest.raises(StorageError, match="does not parse") as info:
        PostgresStore("postgresql://alice:p%zzsecret@db.example/ledger")
    assert "secret" not in info.value.diagnostics()


def test_bad_schema_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="schema name"):
        PostgresStore("postgresql://127.0.0.1:1/x", schema='bad"; DROP TABLE x; --')


def test_open_store_sqlite_forms(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "abs.db"
    cases = {
        "sqlite": tmp_path / "ledger.db",
        "sqlite:///data/my.db": tmp_path / "data" / "my.db",
        f"sqlite:///{absolute}": absolute,  # sqlite:////abs/path, as in SQLAlchemy URLs
    }
    for database, path in cases.items():
        s = open_store(database, base_dir=tmp_path, create=True)
        try:
            assert isinstance(s, SqliteStore)
            assert s.path == path
            assert path.exists()
        finally:
            s.close()
        reopened = open_store(database, base_dir=tmp_path)
        reopened.close()
    with pytest.raises(StorageError, match="no ledger database"):
        open_store("sqlite:///missing.db", base_dir=tmp_path)


@pytest.mark.parametrize("database", ["mysql://root:hunter2@db/ledger", "", "ledger.db", "sqlite:///", "SQLITE"])
def test_open_store_rejects_other_forms(database: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        open_store(database, base_dir=tmp_path)
    assert "hunter2" not in info.value.diagnostics()
    assert "postgresql://" in (info.value.hint or "")


@pytest.mark.postgres
def test_open_store_postgres_forms(pg_backend: PostgresBackend, tmp_path: Path) -> None:
    assert pg_backend.dsn.startswith(("postgresql://", "postgres://"))
    _, rest = pg_backend.dsn.split("://", 1)
    for database in (f"postgresql://{rest}", f"postgres://{rest}"):
        s = open_store(database, base_dir=tmp_path, schema=pg_backend.schema, create=True)
        try:
            assert isinstance(s, PostgresStore)
            assert s.schema == pg_backend.schema
            assert s.tree_size() == 0
        finally:
            s.close()


# --- the real log over each backend ---------------------------------------------------------------------


def test_log_over_the_store_matches_an_in_memory_tree(store: LedgerStore) -> None:
    signer = Ed25519Signer.generate("test.example/log")
    datas = [f"event-{i}".encode() for i in range(1000)]
    leaves = [merkle.leaf_hash(d) for d in datas]
    tree = merkle.build_tree(leaves)
    memory = merkle.memory_fetcher(tree)

    first = Log(store, signer, LedgerSettings(batch_max_entries=256))
    results = first.append_many(datas[:300])
    # A second Log on the same store starts without a frontier and must load it from the store.
    second = Log(store, signer, LedgerSettings(batch_max_entries=256))
    results += second.append_many(datas[300:])
    assert [r.index for r in results] == list(range(1000))
    assert [r.leaf_hash for r in results] == leaves

    record = second.publish_checkpoint()
    expected_root = merkle.root_hash(1000, memory)
    assert record.size == 1000
    assert record.root == expected_root
    assert store.latest_checkpoint() == record
    assert second.root() == expected_root
    assert first.root() == expected_root  # the other Log reads the same store

    roots = {size: merkle.root_hash(size, memory) for size in (1, 2, 7, 255, 256, 257, 300, 511, 512, 999, 1000)}
    for size, root in roots.items():
        assert second.root(size) == root
    for index, size in [(0, 1000), (1, 1000), (255, 256), (256, 257), (299, 300), (511, 1000), (999, 1000), (6, 7)]:
        proof = second.inclusion_proof(index, size)
        merkle.verify_inclusion(index, size, leaves[index], proof, roots[size])
        assert proof == merkle.inclusion_proof(index, size, memory)
    for old in (1, 2, 7, 255, 256, 257, 300, 511, 512, 999):
        proof = second.consistency_proof(old, 1000)
        merkle.verify_consistency(old, 1000, proof, roots[old], roots[1000])
        assert proof == merkle.consistency_proof(old, 1000, memory)
    signed = verify_checkpoint(record.note, signer.verifier, "test.example/log")
    assert (signed.checkpoint.size, signed.checkpoint.root) == (1000, expected_root)
