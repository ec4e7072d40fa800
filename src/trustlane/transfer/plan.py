"""Transfer plans: what the rule packs decide for sending a dataset across a border, and the processing the
decision requires before the data may leave.

A plan holds the compliance request built from the dataset (its categories, the persons whose data this node
sent abroad this calendar year, the mechanisms in place), the decision with its rules and citations, which
signals go and which stay (with reasons), and the ordered processing steps with their settings. The holder
signs it (purpose ``transfer-plan``) and its decision is a ledger event. ``transfer run`` executes it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trustlane.analysis.holder import Holder
from trustlane.compliance import evaluate, parse_request, record_decision
from trustlane.compliance.classify import classify_dataset
from trustlane.crypto.signed_json import sign_json, verify_json
from trustlane.errors import UsageError
from trustlane.ingest.categories import UNCLASSIFIED

PLAN_TYPE = "trustlane/transfer-plan/v1"
LATITUDE = "Vehicle.CurrentLocation.Latitude"
LONGITUDE = "Vehicle.CurrentLocation.Longitude"
LOCATION_CATEGORIES = frozenset({"location", "location-coarse"})
# Obligations a processor discharges; every other obligation is organisational and listed for the holder.
PROCESSING_OBLIGATIONS = {
    "anonymise_faces_and_plates": "image.anonymise",
    "pseudonymise_identifiers": "identifiers.vin",
    "aggregate_with_dp": "aggregates.dp",
}
# Location leaving its jurisdiction is minimised by default (GDPR Art. 5(1)(c), PIPL Art. 6, EDPB 01/2020 §2.1).
LOCATION_STEPS = (
    ("location.zones", {"min_dwell_s": 600.0, "stop_radius_m": 100.0, "zone_radius_m": 500.0, "mode": "drop"}),
    ("location.trim", {"start_m": 500.0, "end_m": 500.0}),
    ("location.coarsen", {"method": "grid", "cell_m": 1000.0}),
)


@dataclass(frozen=True)
class PlanRequest:
    dataset: str
    to: str
    recipient: str
    purpose: str
    origin: str = "CN"
    mechanisms: Sequence[str] = ()
    persons: int | None = None
    sensitive_persons: int | None = None
    ciio: bool | None = None
    important_data_notified: bool | None = None
    recipient_country: str | None = None
    max_unique_fraction: float | None = None  # refuse the package when trajectory uniqueness exceeds this


def _year_start_ns() -> int:
    now = datetime.now(UTC)
    return int(datetime(now.year, 1, 1, tzinfo=UTC).timestamp() * 1e9)


def _persons_sent_this_year(holder: Holder, origin: str) -> tuple[set[str], set[str]]:
    """Vehicles (one person each) whose data left ``origin`` in packages this calendar year: all, sensitive."""
    since = _year_start_ns()
    everyone: set[str] = set()
    sensitive: set[str] = set()
    for secret in holder.node.store.held_event_secrets():
        if secret.event is None or '"transfer.package"' not in secret.event:
            continue
        event = json.loads(secret.event)
        if event.get("type") != "transfer.package" or event.get("from") != origin or event.get("to") == origin:
            continue
        if int(event.get("created_ns", "0")) < since:
            continue
        everyone.add(str(event.get("vehicle")))
        if event.get("sensitive"):
            sensitive.add(str(event.get("vehicle")))
    return everyone, sensitive


def build_plan(holder: Holder, req: PlanRequest) -> dict[str, Any]:
    """Decide and plan; the plan is signed and its decision recorded in the ledger."""
    if req.max_unique_fraction is not None and not 0 <= req.max_unique_fraction <= 1:
        raise UsageError("--max-unique-fraction must lie between 0 and 1", hint="e.g. 0.05")
    dataset = holder.catalog.dataset(req.dataset)
    if dataset is None:
        raise UsageError(f"no dataset {req.dataset!r} on this node", hint="list them with `trustlane catalog`")
    recipient = holder.parties.require_active(req.recipient)
    kept = [s for s in dataset.signals if UNCLASSIFIED not in s.categories]
    dropped = [
        {"signal": s.path, "reason": "unclassified vendor signal: never shared"}
        for s in dataset.signals
        if UNCLASSIFIED in s.categories
    ]
    categories = sorted({c for s in kept for c in s.categories})
    if not categories:
        raise UsageError(f"dataset {dataset.id} holds no shareable signal", hint="nothing could be transferred")
    classes = classify_dataset(tuple(categories), req.origin, persons=None).classes
    is_sensitive = bool(classes.get("sensitive_personal"))
    sent, sent_sensitive = _persons_sent_this_year(holder, req.origin)
    persons = req.persons if req.persons is not None else len(sent | {dataset.vehicle})
    sensitive_persons = (
        req.sensitive_persons
        if req.sensitive_persons is not None
        else len(sent_sensitive | ({dataset.vehicle} if is_sensitive else set()))
    )
    request: dict[str, Any] = {
        "action": "transfer",
        "from": req.origin,
        "to": req.to,
        "categories": categories,
        "persons": persons,
        "sensitive_persons": sensitive_persons,
        "vehicles": persons,
        "mechanisms": sorted(set(req.mechanisms)),
    }
    if req.ciio is not None:
        request["exporter"] = {"ciio": req.ciio}
    if req.important_data_notified is not None:
        request["important_data_notified"] = req.important_data_notified
    if req.recipient_country is not None:
        request["recipient_country"] = req.recipient_country
    parsed = parse_request(request)
    decision = evaluate(parsed)
    decision_index = record_decision(holder.node.log, parsed, decision).index
    decided = decision.to_json()
    steps: list[dict[str, Any]] = []
    organisational: list[dict[str, str]] = []
    kept_paths = [s.path for s in kept]
    cross_border = req.to != req.origin or (req.recipient_country not in (None, req.origin))
    if decided["decision"] == "allow":
        has_location = {LATITUDE, LONGITUDE} <= set(kept_paths)
        if cross_border and has_location:
            for name, settings in LOCATION_STEPS:
                steps.append(
                    {
                        "processor": name,
                        "settings": settings,
                        "signals": [LATITUDE, LONGITUDE],
                        "reason": "location minimised before it leaves its jurisdiction",
                    }
                )
        loose_location = [
            p for p in kept_paths if p.startswith("Vehicle.CurrentLocation.") and p not in (LATITUDE, LONGITUDE)
        ]
        for path in loose_location:  # heading, altitude... without a position pair: not worth the risk
            kept_paths.remove(path)
            dropped.append({"signal": path, "reason": "location detail not needed once positions are coarsened"})
        for obligation in decided["obligations"]:
            processor = PROCESSING_OBLIGATIONS.get(obligation["id"])
            if processor is None:
                organisational.append({"id": obligation["id"], "text": obligation.get("text", "")})
            elif processor == "aggregates.dp":
                steps.append(
                    {
                        "processor": processor,
                        "settings": {"epsilon": 1.0},
                        "signals": kept_paths,
                        "reason": obligation["id"],
                    }
                )
            elif processor == "image.anonymise":
                steps.append(
                    {
                        "processor": processor,
                        "settings": {"mask": "fill"},
                        "signals": [],
                        "reason": f"{obligation['id']} (the dataset holds no images: nothing to mask)",
                    }
                )
        # The vehicle is named to the recipient by a pseudonym keyed for that recipient alone.
        steps.append(
            {
                "processor": "identifiers.vin",
                "settings": {"method": "hmac", "key_id": f"recipient:{recipient.name}"},
                "signals": [],
                "reason": "pseudonymise_identifiers: vehicle known to the recipient by a recipient-keyed pseudonym",
            }
        )
    plan_id = "tp_" + secrets.token_hex(8)
    plan: dict[str, Any] = {
        "type": PLAN_TYPE,
        "id": plan_id,
        "created_ns": str(time.time_ns()),
        "holder": {"origin": holder.node.config.origin, "vkey": holder.node.signer.verifier.vkey},
        "dataset": dataset.id,
        "vehicle": dataset.vehicle,
        "from": req.origin,
        "to": req.to,
        "recipient": {"party": recipient.name, "role": recipient.role, "vkey": recipient.vkey},
        "purpose": req.purpose,
        "request": request,
        "decision": decided,
        "decision_ledger_index": decision_index,
        "signals": {"kept": kept_paths, "dropped": dropped},
        "steps": steps,
        "organisational_obligations": organisational,
        "sensitive": is_sensitive,
        "risk_threshold": None if req.max_unique_fraction is None else {"max_unique_fraction": req.max_unique_fraction},
    }
    holder.node.log.append_event(
        {
            "type": "transfer.planned",
            "plan": plan_id,
            "dataset": dataset.id,
            "to": req.to,
            "recipient": recipient.name,
            "decision": decided["decision"],
        }
    )
    return {**plan, "signature": sign_json(holder.node.signer, "transfer-plan", plan)}


def check_plan(plan: dict[str, Any], holder_vkey_text: str) -> dict[str, Any]:
    """The plan's body after checking the holder's signature."""
    from trustlane.crypto.note import parse_vkey

    if plan.get("type") != PLAN_TYPE:
        raise UsageError("not a trustlane transfer plan", hint="make one with `trustlane transfer plan`")
    body = {k: v for k, v in plan.items() if k != "signature"}
    verify_json(parse_vkey(holder_vkey_text), "transfer-plan", body, plan.get("signature"), "transfer plan")
    return body
