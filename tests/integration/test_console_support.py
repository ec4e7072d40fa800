"""A node for the console tests: a dataset, every role as a party with an API token, a contract for the agency
(the insurer a recipient), a report, a compliance decision, all made through the CLI as users make them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
from trustlane.ingest.readers.samples import write_csv
from trustlane.node import Node

VIN = "1M8GDM9AXKP042788"
ORIGIN = "oem.example/log"
S = 1_000_000_000
T0 = 1_700_000_000 * S
DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"
OVERSIGHT = ("holder", "regulator")
TRANSFER = {"action": "transfer", "from": "CN", "to": "EU", "categories": ["location", "vehicle-operation"],
            "persons": 120, "vehicles": 3}  # fmt: skip


@dataclass(frozen=True)
class World:
    url: str
    home: Path
    tokens: dict[str, str]  # role -> API token of the party named after it
    dataset: str
    contract: str
    report: str
    decision_index: int
    vin: str = VIN


def _token(home: Path, name: str) -> str:
    return ok("party", "token", name, "--home", home).out.strip()


@contextmanager
def console_world(root: Path) -> Iterator[World]:
    problem = sandbox_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox tests: {problem}")
        pytest.skip(f"no sandbox on this machine: {problem}")
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
    contract = ok("contract", "grant", "--party", "agency", "--dataset", dataset, "--algorithm", "speed-stats@1",
                  "--purpose", "accident-liability", "--recipient", "insurer", "--home", home).out.strip()  # fmt: skip
    request = root / "transfer.json"
    request.write_text(json.dumps(TRANSFER), encoding="utf-8")
    decision = ok("compliance", "evaluate", request, "--home", home, "--json").json()
    tokens = {role: _token(home, role) for role in ROLES}
    app = create_app(home, start_log=False)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        with Node.open(home) as node, Holder(node) as holder:
            agency = holder.parties.signer("agency")
        headers = {"Authorization": f"Bearer {make_jwt(agency, ORIGIN)}"}
        answer = client.post("/v1/analyses", json=sign_request(agency, request_body(contract, "agency", None, {})),
                             headers=headers)  # fmt: skip
        assert answer.status_code == 200 and answer.json()["status"] == "reported", answer.text
        with Node.open(home) as node:
            node.log.publish_checkpoint()  # so the newest entries have a proof too
        yield World(url, home, tokens, dataset, contract, answer.json()["report"], decision["ledger_index"])
