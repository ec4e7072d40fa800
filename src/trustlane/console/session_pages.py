"""Signing in and out, and the overview page each role lands on."""

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trustlane.analysis.queries import list_reports, list_runs
from trustlane.api.auth import AuthenticationFailed, authenticate
from trustlane.api.authz import may_read_contract, may_see_dataset
from trustlane.console.web import (
    PREFIX,
    SECURITY_HEADERS,
    Console,
    LoginRequired,
    clear_session,
    safe_next,
    same_origin_post,
    set_session,
)

MAX_FORM_BYTES = 16 * 1024
CROSS_SITE = "cross-site form posts are refused: sign in from this node's own console page"


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form, at most MAX_FORM_BYTES; the first value of each field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def add_session_pages(router: APIRouter, console: Console) -> None:
    state = console.state

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> Response:
        try:
            console.viewer(request)
        except LoginRequired:
            return console.page("login.html.j2", None, next=safe_next(next), error=None)
        return RedirectResponse(safe_next(next), status_code=303, headers=SECURITY_HEADERS)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if not same_origin_post(request):
            return console.page("login.html.j2", None, 403, next=PREFIX + "/", error=CROSS_SITE)
        form = await _form(request)
        credential = form.get("token", "").strip()
        target = safe_next(form.get("next"))
        try:
            authenticate(f"Bearer {credential}", state.holder.parties, state.node.config.origin)
        except AuthenticationFailed as exc:
            error = f"not signed in: {exc}. Ask the node's holder for a token (`trustlane party token NAME`)."
            return console.page("login.html.j2", None, 401, next=target, error=error)
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        set_session(response, request, credential)
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        if not same_origin_post(request):
            return console.refusal(request, 403, CROSS_SITE)
        response = RedirectResponse(PREFIX + "/login", status_code=303, headers=SECURITY_HEADERS)
        clear_session(response, request)
        return response

    @router.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        party = console.allowed(request, "me.read")
        holder = state.holder
        counts: dict[str, int | None] = {"tree_size": state.node.store.tree_size()}
        if party.role != "witness":
            contracts = holder.contracts.all()
            mine = None if console.oversight(party) else party.name
            counts["datasets"] = sum(1 for d in holder.catalog.datasets() if may_see_dataset(party, d.id, contracts))
            counts["contracts"] = sum(1 for c in contracts if may_read_contract(party, c))
            counts["analyses"] = len(list_runs(holder, mine))
            counts["reports"] = len(list_reports(holder, mine))
        return console.page("overview.html.j2", party, counts=counts)
