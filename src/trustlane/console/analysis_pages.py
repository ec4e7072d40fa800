"""Contracts (with their ODRL view), analysis runs with their outcome, and reports with plots and proofs."""

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from trustlane.analysis.contracts import Contract, to_odrl
from trustlane.analysis.parties import Party
from trustlane.analysis.queries import list_reports, list_runs, report_row
from trustlane.analysis.reports import report_bytes
from trustlane.api.authz import may_audit, may_read_contract, may_read_report
from trustlane.console.report_view import flat_result, split_output, verify_command
from trustlane.console.web import SECURITY_HEADERS, Console, PageRefused
from trustlane.errors import UsageError


def report_page(console: Console, party: Party, r: dict[str, Any]) -> HTMLResponse:
    """A report the party may read: its result and plots, the evidence behind it, and how to verify it."""
    result, plots = split_output(r["output"])
    return console.page(
        "report.html.j2",
        party,
        r=r,
        policy=r["contract"]["policy"],
        result=result,
        rows=flat_result(result),
        plots=plots,
        verify=verify_command(console.state.node, r["id"]),
        may_audit=may_audit(party, "report", r["id"], {"report_readable": True}),
    )


def add_analysis_pages(router: APIRouter, console: Console) -> None:
    holder = console.state.holder

    def readable_contract(request: Request, contract_id: str) -> tuple[Contract, str]:
        party = console.allowed(request, "contracts.read")
        found = holder.contracts.get(contract_id)
        if found is None or not may_read_contract(party, found):
            raise PageRefused(404, f"no contract {contract_id} visible to {party.name}")
        return found, party.name

    def readable_report(request: Request, report_id: str) -> dict[str, Any]:
        party = console.allowed(request, "reports.read")
        try:
            report, recipients = report_row(holder, report_id)
        except UsageError:
            raise PageRefused(404, f"no report {report_id} visible to {party.name}") from None
        if not may_read_report(party, report["request"]["body"]["party"], recipients):
            raise PageRefused(404, f"no report {report_id} visible to {party.name}")
        return report

    @router.get("/contracts", response_class=HTMLResponse)
    def contracts(request: Request) -> Response:
        party = console.allowed(request, "contracts.list")
        rows = [c.to_json() for c in holder.contracts.all() if may_read_contract(party, c)]
        return console.page("contracts.html.j2", party, contracts=rows)

    @router.get("/contracts/{contract_id}", response_class=HTMLResponse)
    def contract(request: Request, contract_id: str) -> Response:
        found, _ = readable_contract(request, contract_id)
        party = console.viewer(request)
        mine = None if console.oversight(party) else party.name
        runs = [r for r in list_runs(holder, mine) if r["contract"] == found.id]
        return console.page(
            "contract.html.j2",
            party,
            c=found.to_json(),
            policy=found.policy,
            odrl=json.dumps(to_odrl(found.policy), indent=2, ensure_ascii=False),
            runs=runs,
            may_audit=may_audit(party, "contract", found.id, {"contract_readable": True}),
        )

    @router.get("/analyses", response_class=HTMLResponse)
    def analyses(request: Request) -> Response:
        party = console.allowed(request, "analyses.list")
        runs = list_runs(holder, None if console.oversight(party) else party.name)
        return console.page("analyses.html.j2", party, runs=list(reversed(runs)))

    @router.get("/reports", response_class=HTMLResponse)
    def reports(request: Request) -> Response:
        party = console.allowed(request, "reports.list")
        rows = list_reports(holder, None if console.oversight(party) else party.name)
        return console.page("reports.html.j2", party, reports=list(reversed(rows)))

    @router.get("/reports/{report_id}", response_class=HTMLResponse)
    def report(request: Request, report_id: str) -> Response:
        r = readable_report(request, report_id)
        return report_page(console, console.viewer(request), r)

    @router.get("/reports/{report_id}/download")
    def download(request: Request, report_id: str) -> Response:
        r = readable_report(request, report_id)
        headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{report_id}.json"'}
        return Response(report_bytes(r), media_type="application/json", headers=headers)
