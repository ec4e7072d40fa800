"""The log's behaviour over a real SQLite store: batching, publication, events, several writers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustlane.crypto.note import Ed25519Signer
from trustlane.errors import MalformedInput, UsageError
from trustlane.ledger import merkle
from trustlane.ledger.events import check_disclosure
from trustlane.ledger.fsck import fsck
from trustlane.ledger.log import LedgerSettings, Log
from trustlane.node import Node
from trustlane.storage.base import CheckpointRecord
from trustlane.storage.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "ledger.db", create=True)
    yield s
    s.close()


def test_batches_never_exceed_the_limit(store: SqliteStore) -> None:
    log = Log(store, Ed25519Signer.generate("t.example/log"), LedgerSettings(batch_max_entries=7))
    results = log.append_many([bytes([i]) for i in range(50)])
    assert [r.index for r in results] == list(range(50))
    stamps = [e.appended_ns for e in store.entries(0, 50)]
    # one commit stamps one time; 50 entries in batches of at most 7 need at least 8 commits
    assert len(set(stamps)) >= 8
    assert max(stamps.count(s) for s in set(stamps)) <= 7


def test_background_writer_group_commits_concurrent_producers(store: SqliteStore) -> None:
    log = Log(store, Ed25519Signer.generate("t.example/log"))
    log.start(publish=False)
    try:
        out: list[int] = []
        lock = threading.Lock()

        def produce(worker: int) -> None:
            futures = [log.submit(f"{worker}-{i}".encode()) for i in range(500)]
            got = [f.result().index for f in futures]
            with lock:
                out.extend(got)

        threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        log.stop()
    assert sorted(out) == list(range(2000))
    stamps = {e.appended_ns for e in store.entries(0, 2000)}
    assert len(stamps) < 2000, "entries from concurrent producers should share commits"
    assert fsck(store, log.signer.verifier).entries == 2000


def test_failed_batch_fails_every_waiter_and_writes_nothing(store: SqliteStore) -> None:
    log = Log(store, Ed25519Signer.generate("t.example/log"))
    log.append(b"first")
    with pytest.raises(MalformedInput):
        log.append_events([{"type": "ok"}, {"no": "type"}])
    assert store.tree_size() == 1
    log.start(publish=False)
    try:
        with pytest.raises(UsageError):
            Log(store, log.signer).submit(b"x")  # not started: refuses instead of hanging
        assert log.submit(b"second").result().index == 1
    finally:
        log.stop()


def test_checkpoints_follow_the_interval_only_when_the_tree_grows(store: SqliteStore) -> None:
    published: list[CheckpointRecord] = []
    log = Log(
        store,
        Ed25519Signer.generate("t.example/log"),
        LedgerSettings(checkpoint_interval_ms=50),
        on_checkpoint=published.append,
    )
    log.start()
    try:
        log.append(b"a")
        deadline = time.monotonic() + 5
        while not published and time.monotonic() < deadline:
            time.sleep(0.01)
        assert published and published[-1].size == 1
        time.sleep(0.3)  # idle: the tree did not grow, so no new checkpoint
        assert len(published) == 1
        log.append(b"b")
        deadline = time.monotonic() + 5
        while published[-1].size != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert published[-1].size == 2
    finally:
        log.stop()
    assert [c.size for c in store.checkpoints()] == [1, 2]
    assert published[-1].root == merkle.root_hash(2, store.fetch_nodes)


def test_events_are_committed_salted_and_disclosable(store: SqliteStore) -> None:
    log = Log(store, Ed25519Signer.generate("t.example/log"))
    event = {"type": "ingest.segment", "vehicle": "veh-01", "start_ns": "1764316800000000000"}
    a, b = log.append_events([event, event])
    entry_a, entry_b = store.entry(a.index), store.entry(b.index)
    assert entry_a is not None and entry_b is not None
    assert entry_a.data != entry_b.data, "the same event twice must not produce linkable commitments"
    assert b"veh-01" not in entry_a.data
    secret = store.event_secret(a.index)
    assert secret is not None and secret.event is not None and secret.salt is not None
    assert json.loads(secret.event) == event
    check_disclosure(entry_a.data, secret.event, secret.salt)
    assert store.erase_event_secret(a.index, time.time_ns())
    erased = store.event_secret(a.index)
    assert erased is not None and erased.event is None and erased.salt is None
    assert fsck(store, log.signer.verifier).events == 1  # the other one is still held and checked


def test_processes_appending_to_one_home_get_distinct_indices(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(home, origin="multi.example/log").close()
    files = []
    for w in range(3):
        for i in range(20):
            f = tmp_path / f"w{w}-{i}.bin"
            f.write_bytes(f"{w}:{i}".encode())
            files.append(f)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "trustlane", "ledger", "append", "--home", str(home)]
            + [str(f) for f in files if f.name.startswith(f"w{w}-")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(3)
    ]
    indices: list[int] = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        indices += [json.loads(line)["index"] for line in out.splitlines()]
    assert sorted(indices) == list(range(60))
    with Node.open(home) as node:
        assert fsck(node.store, node.log_verifier).entries == 60
        payloads = {e.data for e in node.store.entries(0, 60)}
    assert payloads == {f.read_bytes() for f in files}
