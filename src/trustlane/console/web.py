"""What every console page shares: templates, the signed-in party, refusals and security headers.

The session is the party's own credential (an API token or a short-lived EdDSA JWT) kept in an HttpOnly,
SameSite=Strict cookie and checked on every request exactly as the API checks a bearer credential, so a
revoked party or token loses the console at once. Roles and objects are authorised by trustlane.api.authz.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from trustlane.analysis.parties import Party
from trustlane.api.auth import AuthenticationFailed, authenticate
from trustlane.api.authz import OVERSIGHT, Forbidden, authorize, may_audit

if TYPE_CHECKING:
    from trustlane.api.app import NodeState

COOKIE = "trustlane_console"
PREFIX = "/console"
SECURITY_HEADERS = {
    # No external resources, no inline script; report plots arrive as data: images.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


_NAV = (  # label, path, the API action that page needs
    ("Overview", "/", "me.read"),
    ("Datasets", "/datasets", "datasets.list"),
    ("Contracts", "/contracts", "contracts.list"),
    ("Analyses", "/analyses", "analyses.list"),
    ("Reports", "/reports", "reports.list"),
    ("Ledger", "/ledger", "ledger.read"),
    ("Transfer decisions", "/decisions", "audit.read"),
    ("Audit", "/audit", "audit.read"),
)


def navigation(party: Party) -> list[tuple[str, str]]:
    """The pages this party may open, decided by the same table as the pages themselves."""
    out = []
    for label, path, action in _NAV:
        try:
            authorize(party, action)
        except Forbidden:
            continue
        if path == "/decisions" and not may_audit(party, "decision", "", {}):
            continue
        out.append((label, path))
    return out


class LoginRequired(Exception):
    """No valid credential in the cookie: the browser is sent to the login page."""


class PageRefused(Exception):
    """A page the party may not see: 403 for its role, 404 for an object it may not know exists."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def when(ns: Any) -> str:
    """Nanoseconds since the epoch as an ISO time (UTC), or a dash."""
    try:
        value = int(ns)
    except (TypeError, ValueError):
        return "—"
    return datetime.fromtimestamp(value / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("trustlane.console", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return env


@dataclass(frozen=True)
class Console:
    state: NodeState
    env: Environment

    @classmethod
    def create(cls, state: NodeState) -> Console:
        return cls(state, _environment())

    # --- who is asking ---------------------------------------------------------------------------------
    def viewer(self, request: Request) -> Party:
        credential = request.cookies.get(COOKIE)
        if not credential:
            raise LoginRequired
        try:
            caller = authenticate(f"Bearer {credential}", self.state.holder.parties, self.state.node.config.origin)
        except AuthenticationFailed:
            raise LoginRequired from None
        return caller.party

    def allowed(self, request: Request, action: str) -> Party:
        """The signed-in party, if its role may take ``action`` (the API's table decides)."""
        party = self.viewer(request)
        try:
            authorize(party, action)
        except Forbidden as exc:
            raise PageRefused(403, str(exc)) from None
        return party

    @staticmethod
    def oversight(party: Party) -> bool:
        return party.role in OVERSIGHT

    # --- answers ---------------------------------------------------------------------------------------
    def page(self, template: str, party: Party | None, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            party=party,
            nav=navigation(party) if party is not None else [],
            oversight=party is not None and self.oversight(party),
            origin=self.state.node.config.origin,
            prefix=PREFIX,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def refusal(self, request: Request, status: int, message: str, hint: str | None = None) -> HTMLResponse:
        try:
            party: Party | None = self.viewer(request)
        except LoginRequired:
            party = None
        return self.page("error.html.j2", party, status, status_code=status, message=message, hint=hint)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"{PREFIX}/login?next={_quote(target)}", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def safe_next(target: str | None) -> str:
    """Only a console path may follow a login (no open redirect to another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


def same_origin_post(request: Request) -> bool:
    """A form post must come from a page of this very origin (Origin header, else Referer)."""
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == expected
    referer = request.headers.get("referer")
    return referer is not None and (referer == expected or referer.startswith(expected + "/"))


def set_session(response: Response, request: Request, credential: str) -> None:
    response.set_cookie(
        COOKIE,
        credential,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=PREFIX,
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https")
