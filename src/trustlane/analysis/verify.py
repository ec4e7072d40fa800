"""Offline verification of a signed report with nothing but the file and public keys.

Checks, in order (the first failure is reported by name): the report's shape; that it names the trusted
holder; the holder's signature over the whole report; that the ledger event opened in the report commits
to the report's core; the checkpoint's log signature and the witness quorum; the inclusion of the report
event and of every input segment's event under that checkpoint; both signatures of the contract; the
requesting party's signature on the request; that the algorithm run is one the contract pins (and, given
its package, that its file tree has that digest); the approvals' signatures.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustlane.analysis.algorithms import approval_body
from trustlane.analysis.contracts import verify_signed_contract
from trustlane.analysis.reports import REPORT_TYPE, core_digest, signed_part
from trustlane.crypto.note import Verifier, parse_vkey
from trustlane.crypto.signed_json import verify_json
from trustlane.errors import TrustlaneError, VerificationError
from trustlane.ledger import merkle
from trustlane.ledger.events import commitment_of
from trustlane.ledger.policy import Policy, verify_checkpoint_with_policy

MAX_REPORT_SIZE = 64 << 20
_CORE_FIELDS = (
    "type", "id", "created_ns", "holder", "request", "contract", "decision", "algorithm", "inputs", "selection",
    "output", "execution", "duties", "recipients",
)  # fmt: skip


@dataclass
class VerifiedReport:
    report_id: str
    holder: str
    checkpoint_size: int
    cosigned_by: list[str]
    inputs: int
    algorithm: str
    algorithm_digest: str
    contract: str
    party: str
    checks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": True,
            "report": self.report_id,
            "holder": self.holder,
            "checkpoint_size": self.checkpoint_size,
            "cosigned_by": self.cosigned_by,
            "inputs": self.inputs,
            "algorithm": self.algorithm,
            "algorithm_digest": self.algorithm_digest,
            "contract": self.contract,
            "party": self.party,
            "checks": self.checks,
        }


class ReportInvalid(VerificationError):
    """The report does not verify; ``check`` names the step that failed."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check


def _require(cond: bool, check: str, message: str) -> None:
    if not cond:
        raise ReportInvalid(check, message)


def parse_report(data: bytes) -> dict[str, Any]:
    _require(len(data) <= MAX_REPORT_SIZE, "format", f"the report exceeds {MAX_REPORT_SIZE >> 20} MiB")
    try:
        report = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInvalid("format", f"not JSON ({exc})") from None
    _require(isinstance(report, dict), "format", "the report is not a JSON object")
    _require(report.get("type") == REPORT_TYPE, "format", f"not a {REPORT_TYPE} report")
    missing = [f for f in (*_CORE_FIELDS, "commitment", "checkpoint", "proofs", "signature") if f not in report]
    _require(not missing, "format", f"fields missing: {', '.join(missing)}")
    extra = set(report) - {*_CORE_FIELDS, "commitment", "checkpoint", "proofs", "signature"}
    _require(not extra, "format", f"unknown fields: {', '.join(sorted(extra))}")
    return dict(report)


def _leaf(disclosed: Any, what: str) -> tuple[int, dict[str, Any], bytes]:
    """(index, event, leaf hash) of a disclosed event {index, event (canonical JSON text), salt (hex)}."""
    _require(isinstance(disclosed, dict), what, "the disclosed event is not an object")
    index, text, salt_hex = disclosed.get("index"), disclosed.get("event"), disclosed.get("salt")
    _require(isinstance(index, int) and index >= 0, what, "the event has no valid ledger index")
    _require(isinstance(text, str) and isinstance(salt_hex, str), what, "the event or its salt is missing")
    assert isinstance(index, int) and isinstance(text, str) and isinstance(salt_hex, str)
    try:
        event = json.loads(text)
        salt = bytes.fromhex(salt_hex)
    except (json.JSONDecodeError, ValueError):
        raise ReportInvalid(what, "the disclosed event or salt does not parse") from None
    _require(isinstance(event, dict), what, "the disclosed event is not an object")
    # No canonical-form check needed: the leaf commits to these exact bytes, so only the committed text verifies.
    _require(len(salt) == 32, what, "the salt is not 32 bytes")
    return index, event, merkle.leaf_hash(commitment_of(text.encode(), salt))


def _path(value: Any, what: str) -> list[bytes]:
    _require(isinstance(value, list) and len(value) <= 64, what, "the inclusion path is not a list of hashes")
    try:
        return [base64.b64decode(h, validate=True) for h in value]
    except (binascii.Error, TypeError, ValueError):
        raise ReportInvalid(what, "an inclusion hash is not base64") from None


def verify_report(
    data: bytes,
    holder_vkey: str,
    witness_vkeys: Sequence[str] = (),
    quorum: int | None = None,
    algorithm_package: Path | None = None,
) -> VerifiedReport:
    """Verify ``data`` (a report file's bytes); raise ReportInvalid naming the failed check."""
    holder = parse_vkey(holder_vkey)
    witnesses = [parse_vkey(v) for v in witness_vkeys]
    k = len(witnesses) if quorum is None else quorum
    report = parse_report(data)
    try:
        return _verify(report, holder, witnesses, k, algorithm_package)
    except ReportInvalid:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportInvalid("format", f"a field is missing or has the wrong type ({exc!r})") from None
    except TrustlaneError as exc:
        raise ReportInvalid("proof", exc.message) from None


def _verify(
    report: dict[str, Any], holder: Verifier, witnesses: list[Verifier], k: int, package: Path | None
) -> VerifiedReport:
    checks: list[str] = []
    # 1. issued by the trusted holder and signed by it
    _require(report["holder"]["vkey"] == holder.vkey, "holder", "the report names another holder key")
    _require(report["holder"]["origin"] == holder.name, "holder", "the report names another holder")
    digest = core_digest(report)
    try:
        verify_json(holder, "report", signed_part(report, digest), report["signature"], "report signature")
    except TrustlaneError as exc:
        raise ReportInvalid("signature", exc.message) from None
    checks.append("holder signature")

    # 2. the ledger event commits to this core
    index, event, leaf = _leaf(report["commitment"], "commitment")
    _require(event.get("type") == "analysis.report", "commitment", "the committed event is not a report event")
    _require(event.get("report") == report["id"], "commitment", "the committed event is for another report")
    _require(event.get("core_sha256") == digest, "commitment", "the report content was changed")
    checks.append("report commitment")

    # 3. the checkpoint: log signature and witness quorum
    try:
        policy = Policy.simple(holder, [(w.name, w) for w in witnesses], k)
        signed = verify_checkpoint_with_policy(report["checkpoint"], policy)
    except TrustlaneError as exc:
        raise ReportInvalid("checkpoint", exc.message) from None
    cp = signed.checkpoint
    cosigned = sorted(w.name for w in witnesses if any(w.matches(line) for line in signed.note.signatures))
    checks.append(f"checkpoint {cp.size} ({len(cosigned)} of {len(witnesses)} witnesses, quorum {k})")

    # 4. inclusion of the report event and of every input
    proofs = report["proofs"]
    try:
        merkle.verify_inclusion(index, cp.size, leaf, _path(proofs["report"], "report proof"), cp.root)
    except TrustlaneError as exc:
        raise ReportInvalid("report proof", exc.message) from None
    inputs = report["inputs"]
    input_proofs = proofs["inputs"]
    _require(isinstance(inputs, list) and isinstance(input_proofs, list), "inputs", "inputs are not lists")
    _require(len(inputs) == len(input_proofs), "inputs", "not every input has an inclusion proof")
    contract = report["contract"]
    policy_target = contract["policy"]["target"]
    for n, (item, proof) in enumerate(zip(inputs, input_proofs, strict=True), start=1):
        what = f"input {n}"
        i_index, i_event, i_leaf = _leaf(item, what)
        _require(proof.get("index") == i_index, what, "the proof is for another ledger entry")
        _require(i_event.get("type") == "ingest.segment", what, "the event is not a segment commitment")
        _require(i_event.get("segment_sha256") == item.get("segment_sha256"), what, "segment digest differs")
        _require(i_event.get("dataset") in policy_target["datasets"], what, "segment of a dataset not granted")
        try:
            merkle.verify_inclusion(i_index, cp.size, i_leaf, _path(proof.get("path"), what), cp.root)
        except TrustlaneError as exc:
            raise ReportInvalid(what, exc.message) from None
    checks.append(f"{len(inputs)} input segments included")

    # 5. the contract (both signatures) and the request (the party's signature)
    try:
        policy_ = verify_signed_contract(contract, holder.vkey)
    except TrustlaneError as exc:
        raise ReportInvalid("contract", exc.message) from None
    request = report["request"]
    assignee = parse_vkey(policy_["assignee"]["vkey"])
    try:
        verify_json(assignee, "analysis-request", request["body"], request["signature"], "request signature")
    except TrustlaneError as exc:
        raise ReportInvalid("request", exc.message) from None
    _require(request["body"]["contract"] == policy_["id"], "request", "the request is under another contract")
    _require(request["body"]["party"] == policy_["assignee"]["party"], "request", "requested by another party")
    _require(report["decision"].get("allow") is True, "decision", "the policy decision was not allow")
    checks.append("contract and request signatures")

    # 6. the algorithm is one the contract pins, with its approvals
    algorithm = report["algorithm"]
    pinned = {(a["name"], a["version"], a["digest"]) for a in policy_["constraints"]["algorithms"]}
    ref = (algorithm["name"], algorithm["version"], algorithm["digest"])
    _require(ref in pinned, "algorithm", "the algorithm run is not one the contract pins")
    for approval in algorithm["approvals"]:
        body_ = approval_body(*ref, approval["by"], approval["role"], int(approval["at_ns"]))
        approver = holder if approval["role"] == "holder" else parse_vkey(approval["vkey"])
        try:
            verify_json(approver, "algorithm-approval", body_, approval["signature"], "algorithm approval")
        except TrustlaneError as exc:
            raise ReportInvalid("algorithm", exc.message) from None
    _require(any(a["role"] == "holder" for a in algorithm["approvals"]), "algorithm", "no holder approval")
    if package is not None:
        from trustlane.analysis.package import tree_digest

        _require(tree_digest(package) == algorithm["digest"], "algorithm", "the package given has another digest")
        checks.append("algorithm package digest recomputed")
    checks.append(f"algorithm {algorithm['name']}@{algorithm['version']} pinned and approved")
    return VerifiedReport(
        report_id=report["id"],
        holder=holder.name,
        checkpoint_size=cp.size,
        cosigned_by=cosigned,
        inputs=len(inputs),
        algorithm=f"{algorithm['name']}@{algorithm['version']}",
        algorithm_digest=algorithm["digest"],
        contract=policy_["id"],
        party=policy_["assignee"]["party"],
        checks=checks,
    )
