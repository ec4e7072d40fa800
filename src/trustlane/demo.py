"""`trustlane demo`: the evidence ledger end to end on loopback, through the same code paths users use.

1. a holder node (automaker) and a court node, each with its own home and keys;
2. the court runs `trustlane witness serve` in its own process and trusts the holder's log;
3. the holder commits a fleet day of events (salted commitments, nothing personal in the ledger);
4. the holder publishes a checkpoint, which the court's witness cosigns after checking consistency;
5. the holder hands out an offline proof bundle for one event, and a tlog-policy with the public keys;
6. an insurer verifies the bundle offline (public keys only), and a tampered event is refused;
7. the holder runs the fsck over its whole ledger.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from trustlane.canonical import canonical_json
from trustlane.crypto.note import parse_vkey
from trustlane.errors import RemoteError, TrustlaneError, VerificationError
from trustlane.ledger import merkle
from trustlane.ledger.events import check_disclosure
from trustlane.ledger.fsck import fsck
from trustlane.ledger.policy import Policy, parse_policy
from trustlane.ledger.proofs import TlogProof, parse_tlog_proof, verify_tlog_proof
from trustlane.node import Node

Step = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: Path
    events: int = 0
    checkpoint_size: int = 0
    cosigned_by: list[str] = field(default_factory=list)
    bundle: Path | None = None
    policy: Path | None = None
    tamper_refused: bool = False
    fsck_entries: int = 0
    seconds: float = 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RemoteError("the court's witness process exited during start-up")
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RemoteError(f"the court's witness did not answer at {url} within {timeout:.0f} s")


def fleet_day(rng: random.Random, vehicles: int = 3, segments: int = 120) -> list[dict[str, Any]]:
    """Events a holder commits in a day: segment ingests and a classification per vehicle."""
    start_ns = 1_764_288_000_000_000_000  # 2025-11-28T00:00:00Z
    events: list[dict[str, Any]] = []
    for v in range(vehicles):
        pseudonym = f"veh-{rng.getrandbits(64):016x}"  # keyed pseudonyms in real ingest; never a VIN
        for s in range(segments):
            t0 = start_ns + (8 * 3600 + v * 600 + s * 10) * 1_000_000_000
            events.append(
                {
                    "type": "ingest.segment",
                    "vehicle": pseudonym,
                    # RFC 8785 numbers are IEEE doubles: nanosecond times travel as decimal strings
                    "start_ns": str(t0),
                    "end_ns": str(t0 + 10_000_000_000),
                    "segment_sha256": rng.randbytes(32).hex(),
                    "signals": 42 + rng.randrange(8),
                }
            )
        events.append({"type": "dataset.classified", "vehicle": pseudonym, "categories": ["vehicle-operation"]})
    return events


def run_demo(workdir: Path, seed: int, step: Step) -> DemoResult:
    began = time.monotonic()
    result = DemoResult(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    holder_home, court_home = workdir / "holder", workdir / "court"
    step("creating the holder (automaker) and court nodes")
    holder = Node.init(holder_home, origin=f"holder.trustlane.example/demo-{seed}")
    court = Node.init(court_home, origin=f"court.trustlane.example/demo-{seed}")
    try:
        court.trust_log(holder.log_verifier.vkey)
        witness_vkey = court.cosigner.verifier.vkey
        court.close()
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        step(f"starting the court's witness on {url}")
        witness = subprocess.Popen(
            [sys.executable, "-m", "trustlane", "witness", "serve", "--home", str(court_home), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_healthy(url, witness)
            holder.add_witness("court", url, witness_vkey)

            step("committing a fleet day of events to the holder's ledger")
            events = fleet_day(random.Random(seed))  # noqa: S311 - reproducible demo data, not secrets
            results = holder.log.append_events(events)
            result.events = len(results)

            step("publishing a checkpoint; the court's witness checks consistency and cosigns")
            record = holder.log.publish_checkpoint()
            signed = holder.log.signed_checkpoint(record)
            result.checkpoint_size = record.size
            result.cosigned_by = [c.witness for c in holder.store.cosignatures(record.size)]
            if not result.cosigned_by:
                raise VerificationError("the court's witness did not cosign the checkpoint")

            step("issuing an offline proof bundle and the trust policy")
            chosen = results[len(results) // 2]
            entry = holder.store.entry(chosen.index)
            secret = holder.store.event_secret(chosen.index)
            assert entry is not None and secret is not None and secret.event and secret.salt
            path = tuple(holder.log.inclusion_proof(chosen.index, record.size))
            bundle = TlogProof(chosen.index, path, signed.text, extra=entry.data)
            policy = Policy.simple(holder.log_verifier, [("court", parse_vkey(witness_vkey))], 1)
            result.bundle = workdir / "event.tlog-proof"
            result.policy = workdir / "trust.policy"
            result.bundle.write_text(bundle.format())
            result.policy.write_text(policy.format())
            (workdir / "event.json").write_text(
                json.dumps({"event": json.loads(secret.event), "salt": secret.salt.hex()}, indent=2)
            )
        finally:
            witness.terminate()
            witness.wait(timeout=10)

        step("the insurer verifies the bundle offline with public keys only")
        disclosed = json.loads((workdir / "event.json").read_text())
        proof = parse_tlog_proof(result.bundle.read_text())
        offline_policy = parse_policy(result.policy.read_text())
        salt = bytes.fromhex(disclosed["salt"])
        check_disclosure(entry.data, canonical_json(disclosed["event"]).decode(), salt)
        verify_tlog_proof(proof, merkle.leaf_hash(entry.data), offline_policy)
        tampered = dict(disclosed["event"], signals=disclosed["event"]["signals"] + 1)
        try:
            check_disclosure(entry.data, canonical_json(tampered).decode(), salt)
        except TrustlaneError:
            result.tamper_refused = True

        step("the holder runs the ledger fsck")
        court_key = parse_vkey(witness_vkey)
        result.fsck_entries = fsck(holder.store, holder.log_verifier, {court_key.name: court_key}).entries
    finally:
        holder.close()
    result.seconds = time.monotonic() - began
    return result
