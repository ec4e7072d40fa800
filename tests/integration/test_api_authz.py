"""The HTTP API's authorisation matrix: every endpoint against every role (and no credentials)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.clirun import ok
from tests.conftest import IN_CI
from tests.served import serving
from trustlane.analysis.holder import Holder
from trustlane.analysis.parties import ROLES
from trustlane.analysis.sandbox import sandbox_problem
from trustlane.analysis.service import request_body, sign_request
from trustlane.api.app import create_app
from trustlane.api.auth import make_jwt
from trustlane.crypto.note import Ed25519Signer
from trustlane.ingest.readers.samples import write_csv
from trustlane.node import Node

VIN = "1M8GDM9AXKP042788"
ORIGIN = "oem.example/log"
S = 1_000_000_000
T0 = 1_700_000_000 * S
DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"
OVERSIGHT = {"holder", "regulator"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    problem = sandbox_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox tests: {problem}")
        pytest.skip(f"no sandbox on this machine: {problem}")
    root = tmp_path_factory.mktemp("api")
    home = root / "holder"
    ok("init", "--home", home, "--origin", ORIGIN)
    ok("vehicle", "register", VIN, "--home", home)
    t = T0 + np.arange(0, 12 * S, 10_000_000, dtype=np.int64)
    csv = write_csv(root / "d.csv", {"Vehicle.Speed": (t, 50 + np.sin(t / 1e9), "km/h")})
    dataset = ok("ingest", csv, "--vehicle", VIN, "--home", home, "--json").json()["dataset"]
    for role in ROLES:
        ok("party", "add", role, "--role", role, "--home", home)
    ok("algorithm", "register", DATA / "speed_stats", "--name", "speed-stats", "--version", "1", "--home", home)
    ok("algorithm", "approve", "speed-stats@1", "--home", home)
    grant = ("contract", "grant", "--party", "agency", "--dataset", dataset, "--algorithm", "speed-stats@1",
             "--purpose", "accident-liability", "--recipient", "insurer", "--home", home)  # fmt: skip
    contract = ok(*grant).out.strip()
    spare = ok(*grant).out.strip()
    app = create_app(home, start_log=False)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        with Node.open(home) as node, Holder(node) as holder:
            signers = {role: holder.parties.signer(role) for role in ROLES}
        body = request_body(contract, "agency", None, {})
        first = client.post("/v1/analyses", json=sign_request(signers["agency"], body),
                            headers=_auth(signers["agency"]))  # fmt: skip
        assert first.status_code == 200 and first.json()["status"] == "reported", first.text
        yield {"client": client, "signers": signers, "contract": contract, "spare": spare, "dataset": dataset,
               "report": first.json()["report"], "home": home}  # fmt: skip


def _auth(signer: Ed25519Signer) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_jwt(signer, ORIGIN)}"}


def _get(world: dict[str, Any], role: str, path: str) -> httpx.Response:
    client: httpx.Client = world["client"]
    return client.get(path, headers=_auth(world["signers"][role]))


def test_public_endpoints_and_missing_credentials(world: dict[str, Any]) -> None:
    client: httpx.Client = world["client"]
    assert client.get("/health").status_code == 200
    assert client.get("/v1/keys").json()["origin"] == ORIGIN
    assert "/v1/reports/{report_id}" in client.get("/openapi.json").json()["paths"]
    for path in ("/v1/me", "/v1/contracts", f"/v1/reports/{world['report']}", "/v1/ledger/checkpoint"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer tlt_unknown"}).status_code == 401
    # a JWT made by a key the node does not know for that name, or for another node, is refused
    impostor = Ed25519Signer.generate("agency")
    assert client.get("/v1/me", headers=_auth(impostor)).status_code == 401
    other_node = {"Authorization": f"Bearer {make_jwt(world['signers']['agency'], 'other.example/log')}"}
    assert client.get("/v1/me", headers=other_node).status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_read_matrix(world: dict[str, Any], role: str) -> None:
    report, contract, dataset = world["report"], world["contract"], world["dataset"]
    assert _get(world, role, "/v1/me").json()["role"] == role
    assert _get(world, role, "/v1/algorithms").status_code == 200
    assert _get(world, role, "/v1/ledger/checkpoint").status_code == 200
    assert _get(world, role, "/v1/parties").status_code == (200 if role in OVERSIGHT else 403)
    if role == "witness":
        for path in ("/v1/datasets", "/v1/contracts", f"/v1/contracts/{contract}", "/v1/reports",
                     f"/v1/reports/{report}", f"/v1/audit?kind=report&id={report}"):  # fmt: skip
            assert _get(world, role, path).status_code == 403, path
        return
    sees_contract = role in OVERSIGHT or role == "agency"
    datasets = [d["id"] for d in _get(world, role, "/v1/datasets").json()]
    assert datasets == ([dataset] if sees_contract else [])
    contracts = {c["id"] for c in _get(world, role, "/v1/contracts").json()}
    assert (contract in contracts) == sees_contract
    assert _get(world, role, f"/v1/contracts/{contract}").status_code == (200 if sees_contract else 404)
    reads_report = role in OVERSIGHT or role in ("agency", "insurer")
    assert _get(world, role, f"/v1/reports/{report}").status_code == (200 if reads_report else 404)
    assert _get(world, role, f"/v1/reports/{report}/html").status_code == (200 if reads_report else 404)
    listed = {r["id"] for r in _get(world, role, "/v1/reports").json()}
    assert (report in listed) == reads_report
    assert _get(world, role, f"/v1/audit?kind=report&id={report}").status_code == (200 if reads_report else 403)
    assert _get(world, role, f"/v1/audit?kind=dataset&id={dataset}").status_code == (200 if role in OVERSIGHT else 403)


@pytest.mark.parametrize("role", ROLES)
def test_write_matrix(world: dict[str, Any], role: str) -> None:
    client: httpx.Client = world["client"]
    signer = world["signers"][role]
    headers = _auth(signer)
    grant = {"party": "court", "datasets": [world["dataset"]], "algorithms": ["speed-stats@1"],
             "purpose": "accident-liability"}  # fmt: skip
    assert client.post("/v1/contracts", json=grant, headers=headers).status_code == (201 if role == "holder" else 403)
    revoke = client.post(f"/v1/contracts/{world['spare']}/revoke", json={"reason": "test"}, headers=headers)
    assert revoke.status_code in ((200, 409) if role == "holder" else (403,))
    # a party may only submit requests it signed itself, under a contract granted to it
    own = sign_request(signer, request_body(world["contract"], role, None, {}))
    answer = client.post("/v1/analyses", json=own, headers=headers)
    if role in ("holder", "witness"):
        assert answer.status_code == 403
    elif role == "agency":
        assert answer.json()["status"] == "reported"
    else:
        assert answer.status_code == 200 and answer.json()["status"] == "denied", answer.text
        assert "granted to agency" in answer.json()["reason"]
    if role != "agency":
        forged = sign_request(world["signers"]["agency"], request_body(world["contract"], "agency", None, {}))
        assert client.post("/v1/analyses", json=forged, headers=headers).status_code == 403
    time.sleep(0.001)


@pytest.mark.parametrize("role", ROLES)
def test_metrics_for_oversight_only(world: dict[str, Any], role: str) -> None:
    answer = _get(world, role, "/metrics")
    if role not in OVERSIGHT:
        assert answer.status_code == 403
        return
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples["trustlane_ingest_datasets_total"] == 1
    assert samples['trustlane_analysis_runs_total{status="reported"}'] >= 1
    assert samples["trustlane_ledger_entries"] > 10
    assert samples["trustlane_checkpoint_age_seconds"] >= 0


def test_api_token_for_scripts(world: dict[str, Any]) -> None:
    home = world["home"]
    token = ok("party", "token", "insurer", "--home", home).out.strip()
    client: httpx.Client = world["client"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/me", headers=headers).json()["authenticated_by"] == "token"
    assert client.get(f"/v1/reports/{world['report']}", headers=headers).status_code == 200
    ok("party", "revoke", "insurer", "--reason", "contract ended", "--home", home)
    assert client.get("/v1/me", headers=headers).status_code == 401
