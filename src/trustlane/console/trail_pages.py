"""Transfer decisions with their citations, and the audit trail of any dataset, report, contract or party."""

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from trustlane.analysis.audit import KINDS, audit_trail
from trustlane.analysis.queries import report_row
from trustlane.api.authz import may_audit, may_read_contract, may_read_report
from trustlane.compliance.record import EVENT_TYPE as DECISION_EVENT
from trustlane.console.web import Console, PageRefused
from trustlane.errors import UsageError
from trustlane.node import Node


def decisions(node: Node) -> list[dict[str, Any]]:
    """Every ``compliance.decision`` event the node holds, newest first, with its ledger index."""
    out = []
    for secret in node.store.held_event_secrets():
        if secret.event is None or DECISION_EVENT not in secret.event:
            continue
        try:
            event = json.loads(secret.event)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("type") == DECISION_EVENT:
            out.append({"index": secret.index, **event})
    return list(reversed(out))


def add_trail_pages(router: APIRouter, console: Console) -> None:
    node = console.state.node
    holder = console.state.holder

    @router.get("/decisions", response_class=HTMLResponse)
    def transfer_decisions(request: Request) -> Response:
        party = console.allowed(request, "audit.read")
        # A decision concerns no party's own objects: only oversight audits it (authz.may_audit).
        if not may_audit(party, "decision", "", {}):
            raise PageRefused(403, f"a {party.role} may not audit compliance decisions")
        return console.page("decisions.html.j2", party, decisions=decisions(node))

    def context(party_request: Request, kind: str, value: str) -> dict[str, Any]:
        party = console.viewer(party_request)
        facts: dict[str, Any] = {}
        if kind == "report":
            try:
                report, recipients = report_row(holder, value)
                facts["report_readable"] = may_read_report(party, report["request"]["body"]["party"], recipients)
            except UsageError:
                facts["report_readable"] = False
        elif kind == "contract":
            found = holder.contracts.get(value)
            facts["contract_readable"] = found is not None and may_read_contract(party, found)
        return facts

    @router.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, kind: str | None = None, id: str | None = None) -> Response:
        party = console.allowed(request, "audit.read")
        if not kind or not id:
            return console.page("audit.html.j2", party, kinds=KINDS, kind=kind or "report", id=id or "", trail=None)
        if kind not in KINDS:
            raise PageRefused(400, f"cannot audit a {kind}: choose one of {', '.join(KINDS)}")
        if not may_audit(party, kind, id, context(request, kind, id)):
            raise PageRefused(403, f"a {party.role} may not audit this {kind}")
        trail = audit_trail(node, kind, id)
        return console.page("audit.html.j2", party, kinds=KINDS, kind=kind, id=id, trail=trail)
