"""The console over plain HTTP: sign-in, cross-site refusal, and every page's authorisation for every role."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import Request, Response

from tests.integration.test_console_support import OVERSIGHT, World, console_world
from trustlane.analysis.holder import Holder
from trustlane.analysis.parties import ROLES
from trustlane.analysis.queries import report_row
from trustlane.analysis.verify import verify_report
from trustlane.api.app import NodeState
from trustlane.console.analysis_pages import report_page
from trustlane.console.web import COOKIE, Console, set_session
from trustlane.node import Node


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with console_world(tmp_path_factory.mktemp("console")) as built:
        yield built


@contextmanager
def _session(world: World, role: str) -> Iterator[httpx.Client]:
    """A client signed in through the login form, as a browser would be."""
    with httpx.Client(base_url=world.url, timeout=30) as client:
        answer = client.post("/console/login", data={"token": world.tokens[role], "next": "/console/reports"},
                             headers={"Origin": world.url})  # fmt: skip
        assert answer.status_code == 303 and answer.headers["location"] == "/console/reports", answer.text
        yield client


def _pages(world: World) -> list[str]:
    return [
        "/console/", "/console/datasets", f"/console/datasets/{world.dataset}", "/console/contracts",
        f"/console/contracts/{world.contract}", "/console/analyses", "/console/reports",
        f"/console/reports/{world.report}", f"/console/reports/{world.report}/download", "/console/ledger",
        "/console/ledger/entries/0", "/console/decisions", f"/console/audit?kind=report&id={world.report}",
    ]  # fmt: skip


def test_every_page_needs_login(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as anonymous:
        for page in _pages(world):
            answer = anonymous.get(page)
            assert answer.status_code == 303, page
            assert answer.headers["location"].startswith("/console/login?next=/console/"), page
        assert anonymous.get("/console/login").status_code == 200
    with httpx.Client(base_url=world.url, timeout=30, cookies={COOKIE: "tlt_not-a-token"}) as forged:
        assert forged.get("/console/reports").status_code == 303


def test_login_sets_a_strict_http_only_cookie_and_logout_clears_it(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as client:
        answer = client.post("/console/login", data={"token": world.tokens["insurer"]}, headers={"Origin": world.url})
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
        assert "secure" not in cookie  # plain http on loopback; https adds Secure
        page = client.get("/console/")
        assert page.status_code == 200 and 'id="party-name">insurer<' in page.text and ">insurer</span>)" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        out = client.post("/console/logout", headers={"Origin": world.url})
        assert out.status_code == 303 and out.headers["location"] == "/console/login"
        assert client.get("/console/").status_code == 303


def test_cookie_is_secure_over_https() -> None:
    def request(scheme: str) -> Request:
        return Request({"type": "http", "scheme": scheme, "method": "POST", "path": "/console/login",
                        "headers": [(b"host", b"node.example")], "query_string": b""})  # fmt: skip

    for scheme, secure in (("https", True), ("http", False)):
        response = Response()
        set_session(response, request(scheme), "tlt_x")
        assert ("secure" in response.headers["set-cookie"].lower()) == secure


def test_bad_token_and_open_redirect_refused(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as client:
        bad = client.post("/console/login", data={"token": "tlt_wrong"}, headers={"Origin": world.url})
        assert bad.status_code == 401 and "unknown, revoked or expired" in bad.text
        assert "set-cookie" not in bad.headers
        away = client.post("/console/login", data={"token": world.tokens["agency"], "next": "https://evil.example/"},
                           headers={"Origin": world.url})  # fmt: skip
        assert away.status_code == 303 and away.headers["location"] == "/console/"


def test_cross_site_posts_refused(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=30) as client:
        token = {"token": world.tokens["holder"]}
        assert client.post("/console/login", data=token, headers={"Origin": "https://evil.example"}).status_code == 403
        assert client.post("/console/login", data=token).status_code == 403  # neither Origin nor Referer
        elsewhere = {"Referer": "https://evil.example/x"}
        assert client.post("/console/login", data=token, headers=elsewhere).status_code == 403
        same = client.post("/console/login", data=token, headers={"Referer": f"{world.url}/console/login"})
        assert same.status_code == 303
        assert client.post("/console/logout", headers={"Origin": "https://evil.example"}).status_code == 403
        assert client.get("/console/").status_code == 200  # still signed in


def _expected(world: World, role: str, page: str) -> int:
    """The status the API's own rules imply for this role and page."""
    if page in ("/console/", "/console/ledger", "/console/ledger/entries/0"):
        return 200
    if role == "witness":
        return 403
    if page == "/console/decisions":
        return 200 if role in OVERSIGHT else 403
    sees_contract = role in OVERSIGHT or role == "agency"
    reads_report = sees_contract or role == "insurer"
    if page.startswith(f"/console/datasets/{world.dataset}") or page.startswith(f"/console/contracts/{world.contract}"):
        return 200 if sees_contract else 404
    if page.startswith(f"/console/reports/{world.report}"):
        return 200 if reads_report else 404
    if page.startswith("/console/audit"):
        return 200 if reads_report else 403
    return 200


@pytest.mark.parametrize("role", ROLES)
def test_page_matrix(world: World, role: str) -> None:
    with _session(world, role) as client:
        for page in _pages(world):
            answer = client.get(page)
            assert answer.status_code == _expected(world, role, page), (page, answer.status_code, answer.text[:300])
        listing = client.get("/console/reports").text if role != "witness" else ""
        assert (world.report in listing) == (role in OVERSIGHT or role in ("agency", "insurer"))
        catalog = client.get("/console/datasets").text if role != "witness" else ""
        assert (world.dataset in catalog) == (role in OVERSIGHT or role == "agency")
        assert world.vin not in catalog  # pseudonyms only, for every role
        assert client.get("/console/reports/no-such-report").status_code == (403 if role == "witness" else 404)


def test_catalog_shows_units_categories_and_legal_classes(world: World) -> None:
    with _session(world, "regulator") as client:
        page = client.get(f"/console/datasets/{world.dataset}").text
    assert "Vehicle.Speed" in page and "km/h" in page and "vehicle-operation" in page
    for jurisdiction in ("CN", "EU", "US"):
        assert f'<th scope="col">{jurisdiction}</th>' in page


def test_ledger_shows_event_fields_only_to_those_concerned(world: World) -> None:
    with _session(world, "holder") as holder, _session(world, "court") as court:
        assert "Event JSON" in holder.get(f"/console/ledger/entries/{world.decision_index}").text
        court_entry = court.get(f"/console/ledger/entries/{world.decision_index}").text
        assert "compliance.decision" in court_entry and "Event JSON" not in court_entry
        assert "citation" not in court_entry  # the type, never the decision's fields
        holder_ledger = holder.get("/console/ledger?start=0").text
        assert "party.added" in holder_ledger and "Checkpoints" in holder_ledger
        assert holder.get("/console/ledger/entries/999999").status_code == 404
        assert holder.get("/console/ledger?start=-1").status_code == 400


def test_decisions_carry_rules_and_citations(world: World) -> None:
    with _session(world, "holder") as client:
        page = client.get("/console/decisions").text
    assert "transfer CN → EU" in page and f"/console/ledger/entries/{world.decision_index}" in page
    assert "Rules applied" in page and "Art." in page  # citations name the articles


def test_report_download_is_the_signed_file(world: World) -> None:
    with _session(world, "insurer") as client:
        answer = client.get(f"/console/reports/{world.report}/download")
        page = client.get(f"/console/reports/{world.report}").text
    assert answer.headers["content-disposition"] == f'attachment; filename="{world.report}.json"'
    assert f"trustlane report verify {world.report}.json --trust" in page
    with Node.open(world.home) as node:
        vkey = node.log_verifier.vkey
    assert verify_report(answer.content, vkey).report_id == world.report


def test_audit_form_and_bad_kind(world: World) -> None:
    with _session(world, "agency") as client:
        assert "Audit trail" in client.get("/console/audit").text
        trail = client.get(f"/console/audit?kind=report&id={world.report}").text
        assert "analysis.report" in trail
        assert client.get("/console/audit?kind=vehicle&id=x").status_code == 400
        assert client.get(f"/console/audit?kind=dataset&id={world.dataset}").status_code == 403


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="30" height="10"/></svg>'


def test_report_plots_are_shown_as_images_and_nothing_else(world: World) -> None:
    """Reports that carry ``output.plots`` ({name: data URI}) show each PNG/JPEG/SVG as an image, refuse the rest."""
    with Node.open(world.home) as node, Holder(node) as holder:
        report, _ = report_row(holder, world.report)
        svg = "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()
        report["output"] = {**report["output"], "plots": {
            "speed_profile": svg,
            "script": "data:text/html;base64," + base64.b64encode(b"<script>alert(1)</script>").decode(),
            "link": "javascript:alert(1)",
            "broken": "data:image/png;base64,%%%",
        }}  # fmt: skip
        console = Console.create(NodeState(node, holder, allow_unisolated=False))
        html = report_page(console, holder.parties.require("agency"), report).body.decode()
    assert f'<img src="{svg}" alt="Plot: speed profile">' in html
    assert html.count("<img") == 1 and "javascript:" not in html and "data:text/html" not in html
    for name in ("script", "link", "broken"):
        assert f"Plot {name} not shown" in html
    assert "max kmh" in html  # the rest of the output is still shown
