"""Fault injection: SIGKILL an appending process many times; nothing acknowledged may be lost.

Each round starts a child that appends through the background batcher from two threads while the
checkpoint publisher runs every 20 ms, printing every acknowledged (index, payload) pair. The parent kills
it with SIGKILL after a random delay, then reopens the node and checks that
* the fsck passes (every leaf, node, checkpoint recomputed),
* every acknowledged entry is present at its index with its payload,
* every checkpoint seen in an earlier round is still there with the same root, and the newest one is
  consistent with all of them (proved with a consistency proof, as a witness would).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from trustlane.ledger import merkle
from trustlane.ledger.fsck import fsck
from trustlane.ledger.log import LedgerSettings
from trustlane.node import Node

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from trustlane.node import Node

    home, run = Path(sys.argv[1]), int(sys.argv[2])
    node = Node.open(home)
    log = node.log
    log.start()
    lock = threading.Lock()

    def produce(worker):
        k = 0
        while True:
            batch = [f"run{run}-w{worker}-{k + i}".encode() for i in range(16)]
            futures = [log.submit(d) for d in batch]
            for d, f in zip(batch, futures):
                r = f.result()
                with lock:
                    sys.stdout.write(f"{r.index} {d.decode()}\\n")
                    sys.stdout.flush()
            k += 16

    threads = [threading.Thread(target=produce, args=(w,), daemon=True) for w in range(2)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()
    """
)

KILLS = int(os.environ.get("TRUSTLANE_CRASH_KILLS", "50"))


def test_sigkill_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    home = tmp_path / "node"
    Node.init(home, origin="crash.example/log", ledger=LedgerSettings(checkpoint_interval_ms=20)).close()
    acknowledged: dict[int, bytes] = {}
    seen_checkpoints: dict[int, bytes] = {}
    rng = random.Random(2026)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for run in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(home), str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lines.extend, args=(child.stdout,), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while "ready\n" not in lines and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        assert "ready\n" in lines, f"round {run}: the appending child did not start"
        time.sleep(rng.uniform(0.0, 0.25))  # kill at an arbitrary moment of the append/publish cycle
        child.send_signal(signal.SIGKILL)
        child.wait()
        reader.join()
        child.stdout.close()
        for line in lines:
            if line != "ready\n":
                index, payload = line.split()
                acknowledged[int(index)] = payload.encode()

        with Node.open(home) as node:
            report = fsck(node.store, node.log_verifier)
            assert report.entries >= len(acknowledged)
            for index, payload in acknowledged.items():
                entry = node.store.entry(index)
                assert entry is not None and entry.data == payload, f"round {run}: acknowledged entry {index} lost"
            checkpoints = {c.size: c.root for c in node.store.checkpoints()}
            for size, root in seen_checkpoints.items():
                assert checkpoints.get(size) == root, f"round {run}: checkpoint {size} changed or vanished"
            newest = max(checkpoints)
            for size, root in checkpoints.items():
                proof = node.log.consistency_proof(size, newest)
                merkle.verify_consistency(size, newest, proof, root, checkpoints[newest])
            seen_checkpoints.update(checkpoints)
    assert len(acknowledged) > KILLS, "the children acknowledged too few entries for the test to mean much"
