"""Signed analysis reports (format ``trustlane/report/v1``, see docs/REPORTS.md).

A report has a *core* (request, contract, policy decision, algorithm, input commitments, output,
execution facts, duties) and a *proof* part. The core's SHA-256 is committed to the ledger as the event
``analysis.report``; the proof part carries that event and its salt, a checkpoint that includes it (with
the witnesses' cosignatures) and inclusion proofs of the report event and of every input segment's event
under that one checkpoint. The holder signs the whole (purpose ``report``) with its log key, so one
verifier key checks the report, the checkpoint and — through the proofs — the data it was computed from.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustlane.canonical import canonical_json
from trustlane.crypto.note import Ed25519KeyHolder
from trustlane.crypto.signed_json import sign_json
from trustlane.errors import StorageError
from trustlane.ledger.log import Log
from trustlane.storage.base import CheckpointRecord

REPORT_TYPE = "trustlane/report/v1"
PROOF_FIELDS = ("commitment", "checkpoint", "proofs", "signature")


def core_of(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report without its proof part and signature (what the ledger event commits to)."""
    return {k: v for k, v in report.items() if k not in PROOF_FIELDS}


def core_digest(report: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(core_of(report))).hexdigest()


@dataclass(frozen=True)
class DisclosedEvent:
    """An event of the ledger opened for a verifier: its canonical JSON, salt and leaf index."""

    index: int
    event_json: str
    salt: bytes

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "event": self.event_json, "salt": self.salt.hex()}


def disclose(log: Log, index: int) -> DisclosedEvent:
    secret = log.store.event_secret(index)
    if secret is None or secret.event is None or secret.salt is None:
        raise StorageError(
            f"ledger entry {index} has no disclosable event (it was erased or is not an event)",
            hint="data whose event secrets were shredded can no longer be tied to a report",
        )
    return DisclosedEvent(index, secret.event, secret.salt)


def prove(
    log: Log, record: CheckpointRecord, report_event: DisclosedEvent, inputs: Sequence[DisclosedEvent]
) -> dict[str, Any]:
    """The proof part for ``record``: checkpoint text with cosignatures and every inclusion path."""
    if report_event.index >= record.size:
        raise StorageError(f"checkpoint {record.size} does not include the report event {report_event.index}")

    def path(index: int) -> list[str]:
        return [base64.b64encode(h).decode() for h in log.inclusion_proof(index, record.size)]

    return {
        "commitment": report_event.to_json(),
        "checkpoint": log.signed_checkpoint(record).text,
        "proofs": {
            "report": path(report_event.index),
            "inputs": [{"index": e.index, "path": path(e.index)} for e in inputs],
        },
    }


def signed_part(report: Mapping[str, Any], digest: str | None = None) -> dict[str, Any]:
    """What the holder signs: the core's SHA-256 and the proof part (so the core is canonicalised once)."""
    return {
        "core_sha256": core_digest(report) if digest is None else digest,
        **{k: report[k] for k in ("commitment", "checkpoint", "proofs")},
    }


def seal_report(core: Mapping[str, Any], proof: Mapping[str, Any], holder: Ed25519KeyHolder) -> dict[str, Any]:
    """Join core and proof and sign them with the holder's key."""
    body = {**core, **proof}
    return {**body, "signature": sign_json(holder, "report", signed_part(body))}


def report_bytes(report: Mapping[str, Any]) -> bytes:
    """The file form of a report: canonical JSON (so any changed byte breaks the signature)."""
    return canonical_json(dict(report))
