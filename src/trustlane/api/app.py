"""The node's HTTP API. ``create_app(home)`` opens the node once; ``trustlane serve`` runs it with uvicorn.

Public: ``/health`` and ``/v1/keys``. Everything else needs an authenticated party (see api/auth.py) and
passes :func:`trustlane.api.authz.authorize` for its action; objects are filtered by contract.

No ``from __future__ import annotations`` here: FastAPI reads the dependency annotations at runtime, and
they name closures of :func:`create_app`.
"""

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from trustlane import __version__
from trustlane.analysis.audit import audit_trail
from trustlane.analysis.contracts import Grant
from trustlane.analysis.holder import Holder
from trustlane.analysis.queries import list_reports, list_runs, report_row
from trustlane.analysis.render import render_report_html
from trustlane.analysis.service import AnalysisService
from trustlane.api.auth import AuthenticationFailed, Caller, authenticate
from trustlane.api.authz import Forbidden, authorize, may_audit, may_read_contract, may_read_report, may_see_dataset
from trustlane.errors import TrustlaneError, UsageError
from trustlane.node import Node

_STATUS = {2: 400, 3: 500, 4: 500, 5: 503, 6: 422, 7: 500, 8: 409, 9: 502}


class GrantBody(BaseModel):
    party: str
    datasets: list[str] = Field(min_length=1)
    algorithms: list[str] = Field(min_length=1)
    purpose: str
    max_runs: int | None = None
    not_after_ns: int | None = None
    signals: list[str] | None = None
    recipients: list[str] = []
    legal_basis: str | None = None
    legal_reference: str | None = None


class RevokeBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class NodeState:
    def __init__(self, node: Node, holder: Holder, allow_unisolated: bool) -> None:
        self.node = node
        self.holder = holder
        self.service = AnalysisService(holder, allow_unisolated=allow_unisolated)


def create_app(home: Path, *, allow_unisolated: bool | None = None, start_log: bool = True) -> FastAPI:
    if allow_unisolated is None:
        allow_unisolated = os.environ.get("TRUSTLANE_DEV_ALLOW_UNISOLATED") == "1"
    node = Node.open(home)
    holder = Holder(node)
    state = NodeState(node, holder, allow_unisolated)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_log:
            node.log.start()
        try:
            yield
        finally:
            if start_log:
                node.log.stop()
            holder.close()
            node.close()

    app = FastAPI(
        title="trustlane node",
        version=__version__,
        description="A trustlane node: contracts, sandboxed analyses and signed reports.",
        lifespan=lifespan,
    )
    app.state.node = state

    @app.exception_handler(TrustlaneError)
    async def _trustlane_error(_: Request, exc: TrustlaneError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=_STATUS.get(exc.exit_code, 400))

    def caller(authorization: Annotated[str | None, Header()] = None) -> Caller:
        try:
            return authenticate(authorization, holder.parties, node.config.origin)
        except AuthenticationFailed as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None

    def allowed(action: str) -> Callable[[Caller], Caller]:
        def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
            try:
                authorize(who.party, action)
            except Forbidden as exc:
                raise HTTPException(403, str(exc)) from None
            return who

        return check

    # --- public ---------------------------------------------------------------------------------------
    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "origin": node.config.origin, "tree_size": node.store.tree_size()}

    @app.get("/v1/keys")
    def keys() -> dict[str, Any]:
        return {
            "origin": node.config.origin,
            "log_vkey": node.log_verifier.vkey,
            "witness_vkey": node.cosigner.verifier.vkey,
            "witnesses": [{"name": w.name, "url": w.url, "vkey": w.vkey} for w in node.config.witnesses],
        }

    # --- identity and catalog --------------------------------------------------------------------------
    @app.get("/v1/me")
    def me(who: Annotated[Caller, Depends(allowed("me.read"))]) -> dict[str, Any]:
        return {**who.party.to_json(), "authenticated_by": who.method}

    @app.get("/v1/parties")
    def parties(who: Annotated[Caller, Depends(allowed("parties.list"))]) -> list[dict[str, Any]]:
        return [p.to_json() for p in holder.parties.all()]

    @app.get("/v1/algorithms")
    def algorithms(who: Annotated[Caller, Depends(allowed("algorithms.list"))]) -> list[dict[str, Any]]:
        return [a.to_json() for a in holder.algorithms.all()]

    @app.get("/v1/datasets")
    def datasets(who: Annotated[Caller, Depends(allowed("datasets.list"))]) -> list[dict[str, Any]]:
        contracts = holder.contracts.all()
        return [
            {
                "id": d.id,
                "vehicle": d.vehicle,
                "format": d.format,
                "t_start_ns": str(d.t_start_ns),
                "t_end_ns": str(d.t_end_ns),
                "signals": [s.to_json() for s in d.signals],
                "ledger_index": d.ledger_index,
            }
            for d in holder.catalog.datasets()
            if may_see_dataset(who.party, d.id, contracts)
        ]

    # --- contracts ------------------------------------------------------------------------------------------
    @app.get("/v1/contracts")
    def contracts(who: Annotated[Caller, Depends(allowed("contracts.list"))]) -> list[dict[str, Any]]:
        return [c.to_json() for c in holder.contracts.all() if may_read_contract(who.party, c)]

    def _readable_contract(who: Caller, contract_id: str) -> Any:
        contract = holder.contracts.get(contract_id)
        if contract is None or not may_read_contract(who.party, contract):
            raise HTTPException(404, f"no contract {contract_id} visible to {who.party.name}")
        return contract

    @app.get("/v1/contracts/{contract_id}")
    def contract(contract_id: str, who: Annotated[Caller, Depends(allowed("contracts.read"))]) -> dict[str, Any]:
        found = _readable_contract(who, contract_id)
        return {**found.signed(), "status": found.to_json()}

    @app.post("/v1/contracts", status_code=201)
    def grant(body: GrantBody, who: Annotated[Caller, Depends(allowed("contracts.grant"))]) -> dict[str, Any]:
        created = holder.contracts.grant(Grant(**body.model_dump()))
        return {**created.signed(), "status": created.to_json()}

    @app.post("/v1/contracts/{contract_id}/accept")
    def accept(
        contract_id: str, acceptance: dict[str, Any], who: Annotated[Caller, Depends(allowed("contracts.accept"))]
    ) -> dict[str, Any]:
        found = _readable_contract(who, contract_id)
        if found.assignee != who.party.name:
            raise HTTPException(403, "only the assignee accepts a contract")
        return holder.contracts.accept(contract_id, acceptance).to_json()

    @app.post("/v1/contracts/{contract_id}/revoke")
    def revoke(
        contract_id: str, body: RevokeBody, who: Annotated[Caller, Depends(allowed("contracts.revoke"))]
    ) -> dict[str, Any]:
        return holder.contracts.revoke(contract_id, body.reason).to_json()

    # --- analyses and reports -------------------------------------------------------------------------------
    @app.post("/v1/analyses")
    def analyse(request: dict[str, Any], who: Annotated[Caller, Depends(allowed("analyses.run"))]) -> dict[str, Any]:
        body = request.get("body")
        if not isinstance(body, dict) or body.get("party") != who.party.name:
            raise HTTPException(403, "a party may only submit requests it signed itself")
        outcome = state.service.run(request)
        return {**outcome.to_json(), "report_json": outcome.report}

    @app.get("/v1/analyses")
    def analyses(who: Annotated[Caller, Depends(allowed("analyses.list"))]) -> list[dict[str, Any]]:
        party = None if who.party.role in ("holder", "regulator") else who.party.name
        return list_runs(holder, party)

    @app.get("/v1/reports")
    def reports(who: Annotated[Caller, Depends(allowed("reports.list"))]) -> list[dict[str, Any]]:
        party = None if who.party.role in ("holder", "regulator") else who.party.name
        return list_reports(holder, party)

    def _readable_report(who: Caller, report_id: str) -> dict[str, Any]:
        try:
            report, recipients = report_row(holder, report_id)
        except UsageError:
            raise HTTPException(404, f"no report {report_id} visible to {who.party.name}") from None
        if not may_read_report(who.party, report["request"]["body"]["party"], recipients):
            raise HTTPException(404, f"no report {report_id} visible to {who.party.name}")
        return report

    @app.get("/v1/reports/{report_id}")
    def report(report_id: str, who: Annotated[Caller, Depends(allowed("reports.read"))]) -> dict[str, Any]:
        return _readable_report(who, report_id)

    @app.get("/v1/reports/{report_id}/html", response_class=HTMLResponse)
    def report_html(report_id: str, who: Annotated[Caller, Depends(allowed("reports.read"))]) -> str:
        return render_report_html(_readable_report(who, report_id))

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics(who: Annotated[Caller, Depends(allowed("metrics.read"))]) -> PlainTextResponse:
        from trustlane.ops.metrics import render_metrics

        return PlainTextResponse(render_metrics(holder), media_type="text/plain; version=0.0.4")

    # --- ledger and audit -----------------------------------------------------------------------------------
    @app.get("/v1/ledger/checkpoint")
    def checkpoint(who: Annotated[Caller, Depends(allowed("ledger.read"))]) -> dict[str, Any]:
        signed = node.log.signed_checkpoint()
        return {"size": signed.checkpoint.size, "checkpoint": signed.text}

    @app.get("/v1/audit")
    def audit(kind: str, id: str, who: Annotated[Caller, Depends(allowed("audit.read"))]) -> dict[str, Any]:
        context: dict[str, Any] = {}
        if kind == "report":
            try:
                _readable_report(who, id)
                context["report_readable"] = True
            except HTTPException:
                context["report_readable"] = False
        elif kind == "contract":
            found = holder.contracts.get(id)
            context["contract_readable"] = found is not None and may_read_contract(who.party, found)
        if not may_audit(who.party, kind, id, context):
            raise HTTPException(403, f"a {who.party.role} may not audit this {kind}")
        return audit_trail(node, kind, id)

    from trustlane.console import mount_console

    mount_console(app, state)
    return app
