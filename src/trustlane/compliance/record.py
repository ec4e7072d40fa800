"""Every decision is a ledger event: ``compliance.decision``, committed under the salted event scheme.

The event holds the request (counts and categories, no personal data), the outcome, the rules applied with
their citations and the digests of the packs, so the decision can be disclosed and checked later against the
exact rules it was taken under.
"""

from __future__ import annotations

import hashlib
from typing import Any

from trustlane.canonical import canonical_json
from trustlane.compliance.decision import Decision
from trustlane.compliance.request import Request
from trustlane.ledger.log import AppendResult, Log

EVENT_TYPE = "compliance.decision"


def decision_event(request: Request, decision: Decision) -> dict[str, Any]:
    """The event body: what was asked, what was decided and under which rules."""
    request_json = request.to_json()
    return {
        "type": EVENT_TYPE,
        "request": request_json,
        "request_digest": hashlib.sha256(canonical_json(request_json)).hexdigest(),
        "decision": decision.decision,
        "at": decision.at.isoformat(),
        "rules": [{"id": a.rule.id, "citation": a.rule.citation, "outcome": a.outcome} for a in decision.rules],
        "obligations": [o.id for o in decision.obligations],
        "missing": list(decision.missing),
        "confirmed": decision.confirmed,
        "packs": [p.to_json() for p in decision.packs],
    }


def record_decision(log: Log, request: Request, decision: Decision) -> AppendResult:
    """Append the decision to ``log``; the result's index is the event's ledger index."""
    return log.append_event(decision_event(request, decision))


__all__ = ["EVENT_TYPE", "decision_event", "record_decision"]
