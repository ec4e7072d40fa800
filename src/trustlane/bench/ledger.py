"""Ledger benchmarks, each beside the physical limit measured in the same run.

* append throughput: durable batched appends through :class:`Log`, against (a) the same database's
  bulk insert rate for rows of the same shape committed in transactions of the same size, and (b)
  hashlib SHA-256 of 64-byte inputs per second on one core;
* append-to-checkpoint latency: a steady producer against the background publisher;
* proof generation and verification on a tree of many leaves.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustlane.crypto.note import Ed25519Signer
from trustlane.ledger import merkle
from trustlane.ledger.log import LedgerSettings, Log
from trustlane.storage.base import CheckpointRecord, LedgerStore
from trustlane.storage.open import open_store

Progress = Callable[[str, float], None]


def _noop(_: str, __: float) -> None:
    return None


@dataclass
class Scratch:
    """A throwaway store: a temp SQLite file, or a fresh schema in a PostgreSQL database."""

    database: str
    base_dir: Path
    schema: str

    @classmethod
    def make(cls, database: str) -> Scratch:
        base = Path(tempfile.mkdtemp(prefix="trustlane-bench-"))
        return cls(database, base, f"bench_{os.getpid()}_{os.urandom(4).hex()}")

    def open(self) -> LedgerStore:
        return open_store(self.database, base_dir=self.base_dir, schema=self.schema, create=True)

    def cleanup(self) -> None:
        if self.database.startswith(("postgresql://", "postgres://")):
            from trustlane.storage.postgres import drop_schema

            drop_schema(self.database, self.schema)
        for path in sorted(self.base_dir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        self.base_dir.rmdir()


def sha256_rate(seconds: float = 1.0) -> float:
    """hashlib SHA-256 of 64-byte inputs per second (one core)."""
    data = os.urandom(64)
    sha = hashlib.sha256
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10_000):
            sha(data).digest()
        n += 10_000
    return n / (time.perf_counter() - start)


def bulk_insert_rate(store: LedgerStore, rows: int, batch: int) -> float:
    """Rows/s of the store's own bulk insert: entry-shaped rows, durable commits of ``batch`` rows.

    Uses the store's writer with precomputed rows, so it is the ceiling for the log (which also hashes,
    builds tree nodes and writes them).
    """
    from trustlane.storage.base import EntryRecord

    payload = [os.urandom(64) for _ in range(rows)]
    leaf = hashlib.sha256(b"x").digest()
    start_index = store.tree_size()
    prepared = [EntryRecord(start_index + i, leaf, payload[i], 0) for i in range(rows)]
    begin = time.perf_counter()
    for i in range(0, rows, batch):
        with store.write() as w:
            w.add_entries(prepared[i : i + batch])
    return rows / (time.perf_counter() - begin)


def append_throughput(database: str, entries: int, batch: int, progress: Progress = _noop) -> dict[str, Any]:
    scratch = Scratch.make(database)
    try:
        store = scratch.open()
        try:
            log = Log(store, Ed25519Signer.generate("bench.example/log"), LedgerSettings(batch_max_entries=batch))
            datas = [os.urandom(64) for _ in range(entries)]
            progress("append", 0.0)
            begin = time.perf_counter()
            step = max(batch, entries // 20)
            for i in range(0, entries, step):
                log.append_many(datas[i : i + step])
                progress("append", (i + step) / entries)
            append_rate = entries / (time.perf_counter() - begin)
            # concurrent producers through the background batcher (group commit)
            log.start(publish=False)
            threads = 4
            per_thread = entries // threads // 2
            barrier = threading.Barrier(threads + 1)

            def produce() -> None:
                barrier.wait()
                futures = [log.submit(d) for d in datas[:per_thread]]
                for f in futures:
                    f.result()

            workers = [threading.Thread(target=produce) for _ in range(threads)]
            for t in workers:
                t.start()
            barrier.wait()
            begin = time.perf_counter()
            for t in workers:
                t.join()
            submit_rate = threads * per_thread / (time.perf_counter() - begin)
            log.stop()
            limit = bulk_insert_rate(store, entries, batch)
        finally:
            store.close()
    finally:
        scratch.cleanup()
    sha = sha256_rate()
    return {
        "backend": database.split(":")[0],
        "entries": entries,
        "batch": batch,
        "append_per_s": append_rate,
        "submit_4_threads_per_s": submit_rate,
        "bulk_insert_rows_per_s": limit,
        "sha256_64B_per_s": sha,
        "ratio_to_bulk_insert": append_rate / limit,
        "ratio_to_sha256": append_rate / sha,
    }


def checkpoint_latency(
    database: str, seconds: float, rate: int, interval_ms: int = 1000, progress: Progress = _noop
) -> dict[str, Any]:
    """Append at ``rate`` entries/s from a steady producer; measure append start → published checkpoint."""
    scratch = Scratch.make(database)
    published: list[tuple[int, int]] = []  # (size, monotonic ns)

    def on_checkpoint(record: CheckpointRecord) -> None:
        published.append((record.size, time.monotonic_ns()))

    try:
        store = scratch.open()
        try:
            log = Log(
                store,
                Ed25519Signer.generate("bench.example/log"),
                LedgerSettings(checkpoint_interval_ms=interval_ms),
                on_checkpoint=on_checkpoint,
            )
            log.start()
            started: list[tuple[int, int]] = []  # (index, monotonic ns at append call)
            total = int(seconds * rate)
            begin = time.monotonic()
            for n in range(total):
                target = begin + n / rate
                delay = target - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.monotonic_ns()
                started.append((log.submit(os.urandom(64)).result().index, t0))
                if n % rate == 0:
                    progress("latency", n / total)
            time.sleep(interval_ms / 1000 * 1.5)  # let the last entries reach a checkpoint
            log.stop()
        finally:
            store.close()
    finally:
        scratch.cleanup()
    published.sort()
    latencies: list[float] = []
    j = 0
    for index, t0 in started:
        while j < len(published) and published[j][0] <= index:
            j += 1
        if j == len(published):
            break
        latencies.append((published[j][1] - t0) / 1e6)
    latencies.sort()
    return {
        "backend": database.split(":")[0],
        "entries": len(started),
        "measured": len(latencies),
        "rate_per_s": rate,
        "checkpoint_interval_ms": interval_ms,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
    }


def proof_speed(database: str, leaves: int, samples: int, progress: Progress = _noop) -> dict[str, Any]:
    """Build a tree of ``leaves`` entries, then time proof generation and verification."""
    scratch = Scratch.make(database)
    try:
        store = scratch.open()
        try:
            log = Log(store, Ed25519Signer.generate("bench.example/log"), LedgerSettings(batch_max_entries=50_000))
            chunk = 200_000
            build_start = time.perf_counter()
            for i in range(0, leaves, chunk):
                n = min(chunk, leaves - i)
                log.append_many([(i + k).to_bytes(8, "big") for k in range(n)])
                progress("build", (i + n) / leaves)
            build_s = time.perf_counter() - build_start
            size = store.tree_size()
            root = log.root(size)
            rng = random.Random(7)  # noqa: S311 - reproducible sample positions
            incl_gen: list[float] = []
            incl_ver: list[float] = []
            cons_gen: list[float] = []
            cons_ver: list[float] = []
            old_roots: dict[int, bytes] = {}
            for _ in range(samples):
                index = rng.randrange(size)
                leaf = merkle.leaf_hash(index.to_bytes(8, "big"))
                t0 = time.perf_counter()
                proof = log.inclusion_proof(index, size)
                t1 = time.perf_counter()
                merkle.verify_inclusion(index, size, leaf, proof, root)
                t2 = time.perf_counter()
                incl_gen.append(t1 - t0)
                incl_ver.append(t2 - t1)
                old = rng.randrange(1, size)
                old_roots[old] = log.root(old)
                t0 = time.perf_counter()
                cproof = log.consistency_proof(old, size)
                t1 = time.perf_counter()
                merkle.verify_consistency(old, size, cproof, old_roots[old], root)
                t2 = time.perf_counter()
                cons_gen.append(t1 - t0)
                cons_ver.append(t2 - t1)
        finally:
            store.close()
    finally:
        scratch.cleanup()

    def ms(values: list[float]) -> dict[str, float]:
        values.sort()
        return {
            "p50_ms": statistics.median(values) * 1000,
            "p99_ms": values[int(0.99 * (len(values) - 1))] * 1000,
        }

    return {
        "backend": database.split(":")[0],
        "leaves": size,
        "build_s": build_s,
        "samples": samples,
        "inclusion_generate": ms(incl_gen),
        "inclusion_verify": ms(incl_ver),
        "consistency_generate": ms(cons_gen),
        "consistency_verify": ms(cons_ver),
    }
