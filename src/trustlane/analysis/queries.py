"""Read-side queries over runs and reports (shared by the CLI and the HTTP API)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from trustlane.analysis.contracts import iso
from trustlane.analysis.holder import Holder
from trustlane.catalog import tables as t
from trustlane.errors import UsageError


def list_reports(holder: Holder, party: str | None = None) -> list[dict[str, Any]]:
    query = select(
        t.reports.c.id, t.reports.c.party, t.reports.c.contract_id, t.reports.c.created_ns,
        t.reports.c.recipients_json, t.reports.c.ledger_index,
    ).order_by(t.reports.c.created_ns)  # fmt: skip
    with holder.catalog.read() as conn:
        rows = conn.execute(query).all()
    out = []
    for r in rows:
        recipients = json.loads(r.recipients_json)
        if party is not None and party != r.party and party not in recipients:
            continue
        out.append(
            {
                "id": r.id,
                "party": r.party,
                "contract": r.contract_id,
                "recipients": recipients,
                "created": iso(int(r.created_ns)),
                "ledger_index": int(r.ledger_index),
            }
        )
    return out


def report_row(holder: Holder, report_id: str) -> tuple[dict[str, Any], list[str]]:
    """(report, recipients) or a UsageError."""
    with holder.catalog.read() as conn:
        row = conn.execute(
            select(t.reports.c.report_json, t.reports.c.recipients_json).where(t.reports.c.id == report_id)
        ).first()
    if row is None:
        raise UsageError(f"no report {report_id!r} on this node", hint="list them with `trustlane report list`")
    return json.loads(row.report_json), json.loads(row.recipients_json)


def get_report(holder: Holder, report_id: str) -> dict[str, Any]:
    return report_row(holder, report_id)[0]


def list_runs(holder: Holder, party: str | None = None) -> list[dict[str, Any]]:
    query = select(
        t.analysis_runs.c.id, t.analysis_runs.c.contract_id, t.analysis_runs.c.party, t.analysis_runs.c.status,
        t.analysis_runs.c.reason, t.analysis_runs.c.created_ns, t.analysis_runs.c.report_id,
        t.analysis_runs.c.ledger_index,
    ).order_by(t.analysis_runs.c.created_ns)  # fmt: skip
    if party is not None:
        query = query.where(t.analysis_runs.c.party == party)
    with holder.catalog.read() as conn:
        return [
            {
                "id": r.id,
                "contract": r.contract_id,
                "party": r.party,
                "status": r.status,
                "reason": r.reason,
                "created": iso(int(r.created_ns)),
                "report": r.report_id,
                "ledger_index": int(r.ledger_index),
            }
            for r in conn.execute(query)
        ]
