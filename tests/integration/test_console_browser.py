"""The console in a real headless browser (Debian's chromium driven by Playwright): sign-in and sign-out,
per-role visibility, the ledger "verify" button checking a proof in the browser, and the report page's look."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import IN_CI
from tests.integration.test_console_support import ORIGIN, World, console_world
from trustlane.crypto.note import Ed25519Signer

CHROMIUM = Path(os.environ.get("TRUSTLANE_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with console_world(tmp_path_factory.mktemp("console-browser")) as built:
        yield built


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"no browser at {CHROMIUM} (Debian package chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def _sign_in(page: Page, world: World, role: str, path: str = "/console/") -> None:
    page.goto(world.url + path)
    assert "/console/login" in page.url
    page.fill("#token", world.tokens[role])
    page.click("button[type=submit]")
    page.wait_for_url(world.url + path)


def test_login_and_logout(page: Page, world: World) -> None:
    _sign_in(page, world, "insurer", "/console/reports")
    assert page.inner_text("#party-name") == "insurer" and page.inner_text("#party-role") == "insurer"
    assert world.report in page.inner_text("main")
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
    page.click("text=Sign out")
    page.wait_for_url("**/console/login")
    page.goto(world.url + "/console/reports")
    assert "/console/login" in page.url and world.report not in page.content()


def test_wrong_token_is_explained(page: Page, world: World) -> None:
    page.goto(world.url + "/console/login")
    page.fill("#token", "tlt_guessed")
    page.click("button[type=submit]")
    assert "unknown, revoked or expired" in page.inner_text("[role=alert]")


def test_an_insurer_off_the_contract_sees_no_report(page: Page, world: World) -> None:
    _sign_in(page, world, "court", "/console/reports")
    assert world.report not in page.inner_text("main")
    answer = page.goto(f"{world.url}/console/reports/{world.report}")
    assert answer is not None and answer.status == 404
    assert "Not found" in page.inner_text("h1")


def _verify(page: Page) -> str:
    page.click("#verify-button")
    page.wait_for_function("document.getElementById('verify-result').textContent.length > 0")
    return page.inner_text("#verify-result")


def test_ledger_verify_button(page: Page, world: World) -> None:
    _sign_in(page, world, "holder")
    with_proof = 0
    for index in (0, 1, world.decision_index, world.decision_index + 3):
        page.goto(f"{world.url}/console/ledger/entries/{index}")
        with_proof += page.locator("#proof li").count() > 0
        result = _verify(page)
        assert result.startswith("✓"), (index, result, page.inner_text("#verify-steps"))
    assert with_proof == 4
    # a proof altered in the page, a leaf that is not the entry, or another key: the browser says no
    flip = "(s, at) => s.slice(0, at) + (s[at] === '0' ? '1' : '0') + s.slice(at + 1)"
    tampers = (
        f"const c = document.querySelector('#proof code'); c.textContent = ({flip})(c.textContent.trim(), 0)",
        f"const c = document.getElementById('leaf-data'); c.textContent = ({flip})(c.textContent.trim(), 63)",
        "document.getElementById('leaf-index').textContent = '2'",
        # one base64 character inside the log's signature (after its 4-byte key ID)
        "const n = document.getElementById('checkpoint-note'); const t = n.textContent;"
        " const at = t.lastIndexOf(' ') + 12;"
        " n.textContent = t.slice(0, at) + (t[at] === 'A' ? 'B' : 'A') + t.slice(at + 1)",
        f"document.getElementById('trusted-vkey').value = '{Ed25519Signer.generate(ORIGIN).verifier.vkey}'",
    )
    for tamper in tampers:
        page.goto(f"{world.url}/console/ledger/entries/{world.decision_index}")
        page.evaluate(tamper)
        result = _verify(page)
        assert result.startswith("✗"), (tamper, result)


def test_report_page_screenshot(page: Page, world: World) -> None:
    _sign_in(page, world, "agency", f"/console/reports/{world.report}")
    text = page.inner_text("main")
    for expected in (world.report, "Result", "max kmh", "Policy decision", "trustlane report verify", "speed-stats@1"):
        assert expected in text, expected
    png = page.screenshot(full_page=True)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == 1280 and image.height > 900
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # text, tables and rules, not a blank page
    rows_with_ink = (pixels < 128).any(axis=1).mean()
    assert rows_with_ink > 0.2, rows_with_ink
