"""The analysis loop inside the holder's node: decide, read the granted data, run in the sandbox, gate the
output, and issue a signed report.

Every request ends in exactly one recorded outcome — ``denied`` (the policy decision said no),
``failed`` (the algorithm crashed, timed out or broke a limit), ``blocked`` (the output gate refused its
output) or ``reported`` — and each step is a ledger event: the decision with its reasons, the failure or
block with its reason, the duties performed, and the report itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trustlane.analysis.algorithms import RegisteredAlgorithm, parse_ref
from trustlane.analysis.contracts import Contract
from trustlane.analysis.gate import check_output
from trustlane.analysis.holder import Holder
from trustlane.analysis.package import AlgorithmPackage
from trustlane.analysis.reports import REPORT_TYPE, DisclosedEvent, core_digest, disclose, prove, seal_report
from trustlane.analysis.sandbox import InputSeries, SandboxLimits, run_algorithm, sandbox_problem
from trustlane.canonical import canonical_json
from trustlane.catalog import tables as t
from trustlane.crypto.note import Ed25519KeyHolder
from trustlane.crypto.signed_json import sign_json, verify_json
from trustlane.errors import IntegrityError, TrustlaneError, UsageError
from trustlane.ingest.readback import collect_series, decrypted_segments
from trustlane.storage.base import CheckpointRecord

REQUEST_MAX_AGE_NS = 300 * 10**9
MAX_PARAMS_BYTES = 64 << 10
COSIGN_WAIT_S = 5.0


def request_body(
    contract_id: str, party: str, algorithm: str | None, params: Mapping[str, Any], now_ns: int | None = None
) -> dict[str, Any]:
    """What a party signs to ask for an analysis (purpose ``analysis-request``)."""
    return {
        "contract": contract_id,
        "party": party,
        "algorithm": algorithm,
        "params": dict(params),
        "nonce": secrets.token_hex(16),
        "requested_ns": str(time.time_ns() if now_ns is None else now_ns),
    }


def sign_request(signer: Ed25519KeyHolder, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"body": dict(body), "signature": sign_json(signer, "analysis-request", body)}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Decision:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    @property
    def allow(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]


@dataclass
class Outcome:
    run_id: str
    status: str  # denied | failed | blocked | reported
    reason: str | None
    report: dict[str, Any] | None = None
    events: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "status": self.status,
            "reason": self.reason,
            "report": None if self.report is None else self.report["id"],
            "events": self.events,
        }


@dataclass
class _Granted:
    inputs: dict[str, InputSeries]
    segments: list[tuple[str, DisclosedEvent]]  # (segment digest, its disclosed ledger event)
    samples: dict[str, int]


class AnalysisService:
    def __init__(
        self,
        holder: Holder,
        *,
        limits: SandboxLimits | None = None,
        allow_unisolated: bool = False,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.holder = holder
        self.node = holder.node
        self.limits = limits or SandboxLimits()
        self.allow_unisolated = allow_unisolated
        self._clock_ns = clock_ns

    # --- the policy decision -----------------------------------------------------------------------
    def _decide(
        self, request: Mapping[str, Any], run_id: str
    ) -> tuple[Decision, Contract | None, tuple[RegisteredAlgorithm, AlgorithmPackage] | None]:
        d = Decision()
        now = self._clock_ns()
        body = request.get("body")
        if not isinstance(body, dict) or set(body) != {
            "contract", "party", "algorithm", "params", "nonce", "requested_ns"
        }:  # fmt: skip
            d.add("request", False, "the request does not have the fields of an analysis request")
            return d, None, None
        party = self.holder.parties.get(str(body["party"]))
        if not d.add(
            "party",
            party is not None and party.active,
            "known and active" if party and party.active else f"{body['party']!r} is not an active party of this node",
        ):
            return d, None, None
        assert party is not None
        try:
            verify_json(party.verifier, "analysis-request", body, request.get("signature"), "request signature")
            d.add("request signature", True, f"signed by {party.name}")
        except TrustlaneError as exc:
            d.add("request signature", False, exc.message)
            return d, None, None
        try:
            age = now - int(body["requested_ns"])
        except (TypeError, ValueError):
            age = REQUEST_MAX_AGE_NS + 1
        d.add(
            "fresh",
            abs(age) <= REQUEST_MAX_AGE_NS,
            "made within 5 minutes"
            if abs(age) <= REQUEST_MAX_AGE_NS
            else "the request is older than 5 minutes or from the future; sign a new one",
        )
        with self.holder.catalog.read() as conn:
            replay = conn.execute(t.analysis_runs.select().where(t.analysis_runs.c.id == run_id)).first()
        d.add("not replayed", replay is None, "first use" if replay is None else "this exact request already ran")
        contract = self.holder.contracts.get(str(body["contract"]))
        if not d.add("contract", contract is not None, "exists" if contract else f"no contract {body['contract']!r}"):
            return d, None, None
        assert contract is not None
        d.add(
            "assignee",
            contract.assignee == party.name,
            f"granted to {contract.assignee}"
            if contract.assignee == party.name
            else f"the contract is granted to {contract.assignee}, not {party.name}",
        )
        state = contract.state(now)
        d.add(
            "contract state",
            state == "agreed",
            {
                "agreed": "agreed by both parties",
                "offered": "offered but not yet accepted by the assignee",
                "revoked": f"revoked: {contract.revoked_reason}",
                "expired": "its validity period has ended",
                "exhausted": f"all {contract.max_runs} runs are used",
            }[state],
        )
        d.add(
            "valid period",
            now >= contract.not_before_ns,
            "started" if now >= contract.not_before_ns else "the contract is not valid yet",
        )
        if len(canonical_json(body["params"])) > MAX_PARAMS_BYTES:
            d.add("params", False, f"parameters exceed {MAX_PARAMS_BYTES >> 10} KiB")
        pinned = contract.algorithms
        wanted = body["algorithm"] or f"{pinned[0]['name']}@{pinned[0]['version']}"
        try:
            name, version = parse_ref(str(wanted))
        except UsageError as exc:
            d.add("algorithm", False, exc.message)
            return d, contract, None
        pin = next((a for a in pinned if a["name"] == name and a["version"] == version), None)
        if not d.add(
            "algorithm",
            pin is not None,
            f"{wanted} is pinned by the contract" if pin else f"the contract does not allow {wanted}",
        ):
            return d, contract, None
        assert pin is not None
        runnable = None
        try:
            runnable = self.holder.algorithms.runnable(name, version, pin["digest"])
            d.add("algorithm integrity", True, f"approved; stored copy matches {pin['digest']}")
        except TrustlaneError as exc:
            d.add("algorithm integrity", False, exc.message)
        for pseudonym in contract.policy["target"]["vehicles"]:
            vehicle = self.holder.catalog.vehicle(pseudonym)
            ok = vehicle is not None and vehicle.erased_ns is None
            d.add("data available", ok, f"{pseudonym} present" if ok else f"the data of {pseudonym} was erased")
        problem = sandbox_problem()
        d.add(
            "sandbox",
            problem is None or self.allow_unisolated,
            "isolation available"
            if problem is None
            else (f"UNISOLATED development run: {problem}" if self.allow_unisolated else problem),
        )
        return d, contract, runnable

    # --- reading exactly what the contract grants ----------------------------------------------------
    def _granted(self, contract: Contract) -> _Granted:
        target = contract.policy["target"]
        start, end = int(target["t_start_ns"]), int(target["t_end_ns"])
        disclosed: list[tuple[str, DisclosedEvent]] = []
        plains: list[bytes] = []
        for dataset_id in target["datasets"]:
            if self.holder.catalog.dataset(dataset_id) is None:
                raise IntegrityError(f"dataset {dataset_id} of contract {contract.id} is gone from the catalog")
            for segment, plain in decrypted_segments(
                self.holder.catalog, self.holder.vehicles, self.holder.blobs, dataset_id, start_ns=start, end_ns=end
            ):
                plains.append(plain)
                disclosed.append((segment.digest, disclose(self.node.log, segment.ledger_index)))
        series = collect_series(plains, target["signals"], start_ns=start, end_ns=end, text_as_codes=True)
        inputs = {signal: InputSeries(t_ns=t, values=v) for signal, (t, v) in series.items()}
        return _Granted(inputs, disclosed, {s: len(v.t_ns) for s, v in inputs.items()})

    # --- the loop ------------------------------------------------------------------------------------------
    def _event(self, event: dict[str, Any], outcome: Outcome) -> int:
        index = self.node.log.append_event(event).index
        outcome.events.append(index)
        return index

    def _record(self, outcome: Outcome, request: Mapping[str, Any], contract_id: str, party: str) -> None:
        with self.holder.catalog.write() as w:
            w.conn.execute(
                t.analysis_runs.insert().values(
                    id=outcome.run_id,
                    contract_id=contract_id,
                    party=party,
                    status=outcome.status,
                    reason=outcome.reason,
                    request_json=json.dumps(request, sort_keys=True),
                    created_ns=self._clock_ns(),
                    ledger_index=outcome.events[0],
                    report_id=None if outcome.report is None else outcome.report["id"],
                )
            )
            if outcome.report is not None:
                report = outcome.report
                w.conn.execute(
                    t.reports.insert().values(
                        id=report["id"],
                        run_id=outcome.run_id,
                        contract_id=contract_id,
                        party=party,
                        recipients_json=json.dumps(report["recipients"]),
                        report_json=canonical_json(report).decode(),
                        created_ns=self._clock_ns(),
                        ledger_index=report["commitment"]["index"],
                    )
                )

    def run(self, request: Mapping[str, Any]) -> Outcome:
        """Serve one signed analysis request; the outcome says what happened (nothing raises for a denial)."""
        run_id = "run_" + hashlib.sha256(canonical_json(dict(request))).hexdigest()[:24]
        decision, contract, runnable = self._decide(request, run_id)
        body = request.get("body") if isinstance(request.get("body"), dict) else {}
        assert isinstance(body, dict)
        party = str(body.get("party", "?"))
        outcome = Outcome(run_id, "denied", None)
        decision_index = self._event(
            {
                "type": "analysis.decision",
                "run": run_id,
                "contract": str(body.get("contract")),
                "party": party,
                "allow": decision.allow,
                "reasons": decision.reasons,
            },
            outcome,
        )
        known_contract = contract is not None and self.holder.parties.get(party) is not None
        if not decision.allow or contract is None or runnable is None:
            outcome.reason = "; ".join(decision.reasons) or "denied"
            if known_contract:
                assert contract is not None
                self._record(outcome, request, contract.id, party)
            return outcome
        algorithm, package = runnable
        granted = self._granted(contract)
        identifiers = [self.holder.vehicles.reveal_vin(p) for p in contract.policy["target"]["vehicles"]]
        started = self._clock_ns()
        # Context only the node knows, beside the party's signed parameters (which it may not override).
        context = {
            "vehicle": contract.policy["target"]["vehicles"][0],
            "input_digests": [digest for digest, _ in granted.segments],
        }
        result = run_algorithm(
            package, granted.inputs, {**body["params"], **context}, self.limits, allow_unisolated=self.allow_unisolated
        )
        finished = self._clock_ns()
        granted_inputs = granted.inputs
        granted.inputs = {}  # the sandbox removed its staged copy; the gate below holds the last reference
        self._event({"type": "duty.performed", "run": run_id, "duty": "delete-working-copies"}, outcome)
        if result.status != "ok" or result.output is None:
            outcome.status, outcome.reason = "failed", result.reason or result.status
            self._event({"type": "analysis.failed", "run": run_id, "reason": outcome.reason}, outcome)
            self._record(outcome, request, contract.id, party)
            return outcome
        problems = _canonical_problems(result.output) or check_output(
            result.output, algorithm.schema, granted_inputs, max_bytes=self.limits.output_bytes, identifiers=identifiers
        )
        if problems:
            outcome.status, outcome.reason = "blocked", "; ".join(problems)
            self._event({"type": "analysis.blocked", "run": run_id, "problems": problems}, outcome)
            self._record(outcome, request, contract.id, party)
            return outcome
        self.holder.contracts.count_run(contract.id)
        for pseudonym in contract.policy["target"]["vehicles"]:
            self._event(
                {
                    "type": "duty.performed",
                    "run": run_id,
                    "duty": "notify",
                    "vehicle": pseudonym,
                    "purpose": contract.constraints["purpose"],
                },
                outcome,
            )
        report_id = "rpt_" + secrets.token_hex(12)
        approvals = []
        for a in algorithm.approvals:
            approver = self.holder.parties.get(a.by)
            vkey = self.node.signer.verifier.vkey if a.role == "holder" else (approver.vkey if approver else "")
            approvals.append({**a.to_json(), "vkey": vkey})
        target = contract.policy["target"]
        core: dict[str, Any] = {
            "type": REPORT_TYPE,
            "id": report_id,
            "created_ns": str(self._clock_ns()),
            "holder": {"origin": self.node.config.origin, "vkey": self.node.signer.verifier.vkey},
            "request": dict(request),
            "contract": contract.signed(),
            "decision": {
                "allow": True,
                "checks": [c.to_json() for c in decision.checks],
                "ledger_index": decision_index,
            },
            "algorithm": {
                "name": algorithm.name,
                "version": algorithm.version,
                "digest": algorithm.digest,
                "approvals": approvals,
                "output_schema_sha256": hashlib.sha256(canonical_json(algorithm.schema)).hexdigest(),
            },
            "inputs": [{**e.to_json(), "segment_sha256": digest} for digest, e in granted.segments],
            "selection": {
                "signals": target["signals"],
                "t_start_ns": target["t_start_ns"],
                "t_end_ns": target["t_end_ns"],
                "samples": granted.samples,
            },
            "output": result.output,
            "execution": {
                "isolated": result.isolated,
                "started_ns": str(started),
                "finished_ns": str(finished),
                "cpu_s": round(result.cpu_s, 3),
                "wall_s": round(result.wall_s, 3),
                "limits": dataclasses.asdict(self.limits),
            },
            "duties": [
                {"duty": "delete-working-copies", "done": True},
                {"duty": "notify", "vehicles": target["vehicles"], "done": True},
            ],
            "recipients": contract.recipients,
        }
        report_event = {
            "type": "analysis.report",
            "report": report_id,
            "run": run_id,
            "contract": contract.id,
            "party": party,
            "core_sha256": core_digest(core),
        }
        report_index = self._event(report_event, outcome)
        record = self._covering_checkpoint(report_index)
        proof = prove(self.node.log, record, disclose(self.node.log, report_index), [e for _, e in granted.segments])
        outcome.report = seal_report(core, proof, self.node.signer)
        outcome.status = "reported"
        self._record(outcome, request, contract.id, party)
        return outcome

    def _covering_checkpoint(self, index: int) -> CheckpointRecord:
        """A checkpoint including ``index``, with the configured witnesses' cosignatures when they answer."""
        record = self.node.log.publish_checkpoint()
        wanted = len(self.node.config.witnesses)
        deadline = time.monotonic() + COSIGN_WAIT_S
        while wanted and len(self.node.store.cosignatures(record.size)) < wanted and time.monotonic() < deadline:
            time.sleep(0.05)  # a background publisher made this checkpoint and is collecting cosignatures
        if record.size <= index:
            raise IntegrityError(f"checkpoint {record.size} does not cover report event {index}")
        return record


def _canonical_problems(output: Any) -> list[str]:
    """A report is canonical JSON (RFC 8785): refuse outputs it cannot carry exactly (e.g. ints beyond ±2^53)."""
    try:
        canonical_json(output)
    except TrustlaneError as exc:
        return [f"output: {exc.message} (write nanosecond times and other big integers as strings)"]
    return []


def report_from_row(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value
