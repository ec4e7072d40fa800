"""Usage contracts: a holder's offer of datasets for analysis under an ODRL-style policy, and its agreement.

A contract's *policy* names the assignee, the action (``analyze``), the target (datasets, their vehicles,
signals and time range) and constraints (purpose, pinned algorithms, validity period, maximum runs, output
recipients, legal basis) and duties (delete working copies, notify the vehicle user). The holder signs the
policy (the *offer*); the assignee signs its acceptance; both signatures and every change of state are
ledger events. :func:`to_odrl` renders the policy in W3C ODRL 2.2 terms for other dataspace tools.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from trustlane.analysis.algorithms import AlgorithmRegistry, parse_ref
from trustlane.analysis.parties import Party, PartyRegistry
from trustlane.canonical import canonical_json
from trustlane.catalog import tables as t
from trustlane.catalog.db import CatalogDB
from trustlane.crypto.note import Ed25519KeyHolder, parse_vkey
from trustlane.crypto.signed_json import sign_json, verify_json
from trustlane.errors import ConflictError, UsageError
from trustlane.ingest.categories import UNCLASSIFIED
from trustlane.ledger.log import Log

CONTRACT_TYPE = "trustlane/contract/v1"
ACTION = "analyze"
LEGAL_BASES = (
    "consent",  # the vehicle user's consent (GDPR Art. 6(1)(a), PIPL Art. 13(1))
    "contract",
    "legal-obligation",
    "legal-claims",  # establishment, exercise or defence of legal claims (GDPR Art. 9(2)(f))
    "vital-interests",
    "public-task",
    "legitimate-interests",
)
DEFAULT_DUTIES = ({"action": "delete-working-copies"}, {"action": "notify", "target": "vehicle-user"})
ASSIGNEE_ROLES = ("agency", "insurer", "court", "regulator", "user")


def policy_digest(policy: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(policy)).hexdigest()


def _ns(value: str | None) -> int | None:
    return None if value is None else int(value)


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_when(text: str, what: str) -> int:
    """A date (``2027-01-31``, end of that day UTC) or ISO 8601 date-time → ns since the epoch."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return int(day.timestamp() * 1e9) + 86_400 * 10**9 - 1
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what} {text!r} is not a date", hint="write 2027-01-31 or 2027-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1e9)


@dataclass(frozen=True)
class Contract:
    id: str
    policy: dict[str, Any]
    holder_signature: dict[str, str]
    acceptance: dict[str, Any] | None
    runs_used: int
    created_ns: int
    ledger_index: int
    agreed_index: int | None
    revoked_ns: int | None
    revoked_reason: str | None

    @property
    def assignee(self) -> str:
        return str(self.policy["assignee"]["party"])

    @property
    def constraints(self) -> dict[str, Any]:
        return dict(self.policy["constraints"])

    @property
    def algorithms(self) -> list[dict[str, str]]:
        return list(self.constraints["algorithms"])

    @property
    def recipients(self) -> list[str]:
        return list(self.constraints["recipients"])

    @property
    def max_runs(self) -> int | None:
        value = self.constraints.get("max_runs")
        return None if value is None else int(value)

    @property
    def not_before_ns(self) -> int:
        return int(self.constraints["not_before_ns"])

    @property
    def not_after_ns(self) -> int | None:
        return _ns(self.constraints.get("not_after_ns"))

    @property
    def digest(self) -> str:
        return policy_digest(self.policy)

    def state(self, now_ns: int) -> str:
        if self.revoked_ns is not None:
            return "revoked"
        if self.not_after_ns is not None and now_ns > self.not_after_ns:
            return "expired"
        if self.max_runs is not None and self.runs_used >= self.max_runs:
            return "exhausted"
        if self.acceptance is None:
            return "offered"
        return "agreed"

    def signed(self) -> dict[str, Any]:
        """The contract as both parties signed it (what a report carries)."""
        return {"policy": self.policy, "holder_signature": self.holder_signature, "acceptance": self.acceptance}

    def to_json(self, now_ns: int | None = None) -> dict[str, Any]:
        now = time.time_ns() if now_ns is None else now_ns
        return {
            "id": self.id,
            "state": self.state(now),
            "assignee": self.assignee,
            "purpose": self.constraints["purpose"],
            "algorithms": [f"{a['name']}@{a['version']}" for a in self.algorithms],
            "datasets": self.policy["target"]["datasets"],
            "runs_used": self.runs_used,
            "max_runs": self.max_runs,
            "valid_until": None if self.not_after_ns is None else iso(self.not_after_ns),
            "recipients": self.recipients,
            "ledger_index": self.ledger_index,
            "agreed_index": self.agreed_index,
            "revoked_reason": self.revoked_reason,
            "policy_sha256": self.digest,
        }


def _contract(row: object) -> Contract:
    r = row._mapping  # type: ignore[attr-defined]
    offer = json.loads(r["offer_json"])
    return Contract(
        id=r["id"],
        policy=offer["policy"],
        holder_signature=offer["holder_signature"],
        acceptance=None if r["acceptance_json"] is None else json.loads(r["acceptance_json"]),
        runs_used=int(r["runs_used"]),
        created_ns=int(r["created_ns"]),
        ledger_index=int(r["ledger_index"]),
        agreed_index=None if r["agreed_index"] is None else int(r["agreed_index"]),
        revoked_ns=None if r["revoked_ns"] is None else int(r["revoked_ns"]),
        revoked_reason=r["revoked_reason"],
    )


def acceptance_body(contract_id: str, digest: str, party: str, at_ns: int) -> dict[str, Any]:
    """What the assignee signs to agree (purpose ``contract-acceptance``)."""
    return {"contract": contract_id, "policy_sha256": digest, "party": party, "accepted_ns": str(at_ns)}


@dataclass(frozen=True)
class Grant:
    """What a holder offers (the CLI's `contract grant` options)."""

    party: str
    datasets: Sequence[str]
    algorithms: Sequence[str]  # NAME@VERSION
    purpose: str
    max_runs: int | None = None
    not_after_ns: int | None = None
    not_before_ns: int | None = None
    signals: Sequence[str] | None = None  # None: every classified signal the datasets hold
    t_start_ns: int | None = None
    t_end_ns: int | None = None
    recipients: Sequence[str] = ()
    legal_basis: str | None = None
    legal_reference: str | None = None


class ContractBook:
    """Contracts of one node (holder side)."""

    def __init__(
        self,
        catalog: CatalogDB,
        log: Log,
        parties: PartyRegistry,
        algorithms: AlgorithmRegistry,
        holder: Ed25519KeyHolder,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._catalog = catalog
        self._log = log
        self._parties = parties
        self._algorithms = algorithms
        self._holder = holder
        self._clock_ns = clock_ns

    # --- offering ------------------------------------------------------------------------------------
    def _target(self, grant: Grant) -> dict[str, Any]:
        if not grant.datasets:
            raise UsageError("a contract needs at least one dataset", hint="pass --dataset ID")
        vehicles: set[str] = set()
        held: set[str] = set()
        starts, ends = [], []
        for dataset_id in grant.datasets:
            dataset = self._catalog.dataset(dataset_id)
            if dataset is None:
                raise UsageError(f"no dataset {dataset_id!r} on this node", hint="list them with `trustlane catalog`")
            vehicles.add(dataset.vehicle)
            starts.append(dataset.t_start_ns)
            ends.append(dataset.t_end_ns)
            # Unclassified (vendor) signals are never shareable; the rest may be granted.
            held.update(s.path for s in dataset.signals if UNCLASSIFIED not in s.categories)
        if grant.signals is None:
            signals = sorted(held)
        else:
            missing = sorted(set(grant.signals) - held)
            if missing:
                raise UsageError(
                    f"signal {missing[0]!r} is not a shareable signal of these datasets",
                    hint=f"shareable signals: {', '.join(sorted(held)) or 'none'}",
                )
            signals = sorted(set(grant.signals))
        start = min(starts) if grant.t_start_ns is None else grant.t_start_ns
        end = max(ends) if grant.t_end_ns is None else grant.t_end_ns
        if end < start:
            raise UsageError("the granted time range ends before it starts")
        return {
            "datasets": sorted(set(grant.datasets)),
            "vehicles": sorted(vehicles),
            "signals": signals,
            "t_start_ns": str(start),
            "t_end_ns": str(end),
        }

    def _legal_basis(self, grant: Grant) -> dict[str, Any]:
        basis = grant.legal_basis
        if basis is None:
            if grant.purpose != "accident-liability":
                raise UsageError(
                    f"purpose {grant.purpose!r} needs a stated legal basis",
                    hint=f"pass --legal-basis, one of: {', '.join(LEGAL_BASES)}",
                )
            basis = "legal-claims"  # accident liability: establishment or defence of legal claims
        if basis not in LEGAL_BASES:
            raise UsageError(f"unknown legal basis {basis!r}", hint=f"choose one of: {', '.join(LEGAL_BASES)}")
        if basis == "consent" and not grant.legal_reference:
            raise UsageError("a consent basis must name the consent record", hint="pass --legal-reference CONSENT-ID")
        return {"basis": basis, "reference": grant.legal_reference}

    def grant(self, grant: Grant) -> Contract:
        """Offer a contract, signed by the holder; agreed at once when the node holds the assignee's key."""
        party = self._parties.require_active(grant.party)
        if party.role not in ASSIGNEE_ROLES:
            raise UsageError(f"a {party.role} cannot be granted analysis", hint=f"roles: {', '.join(ASSIGNEE_ROLES)}")
        if not grant.purpose or len(grant.purpose) > 100 or not grant.purpose.isprintable():
            raise UsageError("--purpose must be 1 to 100 printable characters, e.g. accident-liability")
        if grant.max_runs is not None and grant.max_runs < 1:
            raise UsageError("--max-runs must be at least 1")
        now = self._clock_ns()
        if grant.not_after_ns is not None and grant.not_after_ns <= now:
            raise UsageError("--until lies in the past", hint="give a date after today")
        if not grant.algorithms:
            raise UsageError("a contract names at least one algorithm", hint="pass --algorithm NAME@VERSION")
        pinned = []
        for ref in grant.algorithms:
            name, version = parse_ref(ref)
            algorithm = self._algorithms.require(name, version)
            if not algorithm.holder_approved:
                raise UsageError(
                    f"{ref} is not approved", hint=f"approve it first: `trustlane algorithm approve {ref}`"
                )
            pinned.append({"name": name, "version": version, "digest": algorithm.digest})
        recipients = sorted({party.name, *grant.recipients})
        for name in recipients:
            self._parties.require_active(name)
        contract_id = "ctr_" + secrets.token_hex(8)
        target = self._target(grant)
        policy: dict[str, Any] = {
            "type": CONTRACT_TYPE,
            "id": contract_id,
            "holder": self._holder.name,
            "holder_vkey": self._holder.verifier.vkey,
            "assignee": {"party": party.name, "role": party.role, "vkey": party.vkey},
            "action": ACTION,
            "target": target,
            "constraints": {
                "purpose": grant.purpose,
                "algorithms": pinned,
                "not_before_ns": str(now if grant.not_before_ns is None else grant.not_before_ns),
                "not_after_ns": None if grant.not_after_ns is None else str(grant.not_after_ns),
                "max_runs": grant.max_runs,
                "recipients": recipients,
                "legal_basis": self._legal_basis(grant),
            },
            "duties": [dict(d) for d in DEFAULT_DUTIES],
            "issued_ns": str(now),
        }
        signature = sign_json(self._holder, "contract-offer", policy)
        with self._catalog.write() as w:
            index = self._log.append_event(
                {
                    "type": "contract.offered",
                    "contract": contract_id,
                    "party": party.name,
                    "policy_sha256": policy_digest(policy),
                    "datasets": target["datasets"],
                    "purpose": grant.purpose,
                }
            ).index
            w.conn.execute(
                t.contracts.insert().values(
                    id=contract_id,
                    assignee=party.name,
                    offer_json=json.dumps({"policy": policy, "holder_signature": signature}, sort_keys=True),
                    acceptance_json=None,
                    runs_used=0,
                    created_ns=now,
                    ledger_index=index,
                    agreed_index=None,
                    revoked_ns=None,
                    revoked_reason=None,
                )
            )
        if party.key_held:
            self.accept_locally(contract_id)
        return self.require(contract_id)

    # --- agreement ------------------------------------------------------------------------------------
    def accept_locally(self, contract_id: str) -> Contract:
        contract = self.require(contract_id)
        signer = self._parties.signer(contract.assignee)
        at = self._clock_ns()
        body = acceptance_body(contract.id, contract.digest, contract.assignee, at)
        return self.accept(contract_id, {**body, "signature": sign_json(signer, "contract-acceptance", body)})

    def accept(self, contract_id: str, acceptance: dict[str, Any]) -> Contract:
        """Record the assignee's signed acceptance (from the API or a local key)."""
        contract = self.require(contract_id)
        if contract.acceptance is not None:
            raise ConflictError(f"contract {contract_id} is already agreed")
        if contract.revoked_ns is not None:
            raise ConflictError(f"contract {contract_id} was revoked: {contract.revoked_reason}")
        party = self._parties.require_active(contract.assignee)
        body = {k: v for k, v in acceptance.items() if k != "signature"}
        if body.get("contract") != contract.id or body.get("policy_sha256") != contract.digest:
            raise UsageError("the acceptance is for another contract or another version of its policy")
        if body.get("party") != party.name or set(body) != {"contract", "policy_sha256", "party", "accepted_ns"}:
            raise UsageError("the acceptance must name the assignee and hold exactly the signed fields")
        verify_json(party.verifier, "contract-acceptance", body, acceptance.get("signature"), "contract acceptance")
        with self._catalog.write() as w:
            index = self._log.append_event(
                {
                    "type": "contract.agreed",
                    "contract": contract.id,
                    "party": party.name,
                    "policy_sha256": contract.digest,
                }
            ).index
            w.conn.execute(
                t.contracts.update()
                .where(t.contracts.c.id == contract.id, t.contracts.c.acceptance_json.is_(None))
                .values(acceptance_json=json.dumps(acceptance, sort_keys=True), agreed_index=index)
            )
        return self.require(contract_id)

    def revoke(self, contract_id: str, reason: str) -> Contract:
        contract = self.require(contract_id)
        if contract.revoked_ns is not None:
            raise ConflictError(f"contract {contract_id} is already revoked")
        with self._catalog.write() as w:
            self._log.append_event({"type": "contract.revoked", "contract": contract.id, "reason": reason})
            w.conn.execute(
                t.contracts.update()
                .where(t.contracts.c.id == contract.id)
                .values(revoked_ns=self._clock_ns(), revoked_reason=reason)
            )
        return self.require(contract_id)

    def count_run(self, contract_id: str) -> None:
        with self._catalog.write() as w:
            w.conn.execute(
                t.contracts.update()
                .where(t.contracts.c.id == contract_id)
                .values(runs_used=t.contracts.c.runs_used + 1)
            )

    # --- reads -------------------------------------------------------------------------------------------
    def get(self, contract_id: str) -> Contract | None:
        with self._catalog.read() as conn:
            row = conn.execute(select(t.contracts).where(t.contracts.c.id == contract_id)).first()
        return None if row is None else _contract(row)

    def require(self, contract_id: str) -> Contract:
        found = self.get(contract_id)
        if found is None:
            raise UsageError(
                f"no contract {contract_id!r} on this node", hint="list them with `trustlane contract list`"
            )
        return found

    def all(self, party: str | None = None) -> list[Contract]:
        query = select(t.contracts).order_by(t.contracts.c.created_ns)
        if party is not None:
            query = query.where(t.contracts.c.assignee == party)
        with self._catalog.read() as conn:
            return [_contract(r) for r in conn.execute(query)]


def verify_signed_contract(signed: dict[str, Any], holder_vkey: str | None = None) -> dict[str, Any]:
    """Check both signatures of a contract as a report carries it; returns the policy."""
    policy = signed["policy"]
    holder = parse_vkey(holder_vkey or policy["holder_vkey"])
    verify_json(holder, "contract-offer", policy, signed["holder_signature"], "contract offer")
    acceptance = signed.get("acceptance")
    if acceptance is None:
        raise UsageError("the contract carries no acceptance by its assignee")
    body = {k: v for k, v in acceptance.items() if k != "signature"}
    if body.get("policy_sha256") != policy_digest(policy) or body.get("contract") != policy["id"]:
        raise UsageError("the contract's acceptance is for another policy")
    assignee = parse_vkey(policy["assignee"]["vkey"])
    verify_json(assignee, "contract-acceptance", body, acceptance.get("signature"), "contract acceptance")
    return dict(policy)


def to_odrl(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy as a W3C ODRL 2.2 Agreement (JSON-LD), for dataspace tools that speak ODRL."""
    c = policy["constraints"]
    constraints: list[dict[str, Any]] = [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": c["purpose"]},
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": iso(int(c["not_before_ns"]))},
    ]
    if c.get("not_after_ns") is not None:
        constraints.append({"leftOperand": "dateTime", "operator": "lteq", "rightOperand": iso(int(c["not_after_ns"]))})
    if c.get("max_runs") is not None:
        constraints.append({"leftOperand": "count", "operator": "lteq", "rightOperand": c["max_runs"]})
    constraints.append(
        {
            "leftOperand": "trustlane:algorithm",
            "operator": "isAnyOf",
            "rightOperand": [f"{a['name']}@{a['version']}#{a['digest']}" for a in c["algorithms"]],
        }
    )
    constraints.append({"leftOperand": "recipient", "operator": "isAnyOf", "rightOperand": c["recipients"]})
    constraints.append(
        {"leftOperand": "trustlane:legalBasis", "operator": "eq", "rightOperand": c["legal_basis"]["basis"]}
    )
    duties = []
    for duty in policy["duties"]:
        if duty["action"] == "delete-working-copies":
            duties.append({"action": "delete", "target": "trustlane:working-copies"})
        elif duty["action"] == "notify":
            duties.append({"action": "inform", "informedParty": duty.get("target", "vehicle-user")})
    return {
        "@context": ["http://www.w3.org/ns/odrl.jsonld", {"trustlane": "https://trustlane.dev/ns/odrl#"}],
        "@type": "Agreement",
        "uid": f"urn:trustlane:contract:{policy['id']}",
        "assigner": policy["holder"],
        "assignee": policy["assignee"]["party"],
        "permission": [
            {
                "target": [f"urn:trustlane:dataset:{d}" for d in policy["target"]["datasets"]],
                "action": [
                    {
                        "rdf:value": {"@id": "odrl:use"},
                        "refinement": [
                            {"leftOperand": "trustlane:operation", "operator": "eq", "rightOperand": policy["action"]}
                        ],
                    }
                ],
                "constraint": constraints,
                "duty": duties,
            }
        ],
    }


__all__ = [
    "LEGAL_BASES",
    "Contract",
    "ContractBook",
    "Grant",
    "Party",
    "acceptance_body",
    "iso",
    "parse_when",
    "policy_digest",
    "to_odrl",
    "verify_signed_contract",
]
