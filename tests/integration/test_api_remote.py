"""A remote party talks to a running node over HTTP: `trustlane serve`, the client, `--node URL --key`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.clirun import cli, ok, refused
from tests.conftest import IN_CI
from tests.served import free_port
from trustlane.analysis.sandbox import sandbox_problem
from trustlane.client import NodeClient
from trustlane.ingest.readers.samples import write_csv

VIN = "1M8GDM9AXKP042788"
S = 1_000_000_000
T0 = 1_700_000_000 * S
DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    problem = sandbox_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox tests: {problem}")
        pytest.skip(f"no sandbox on this machine: {problem}")
    root = tmp_path_factory.mktemp("remote")
    home = root / "holder"
    ok("init", "--home", home, "--origin", "oem.example/log")
    ok("vehicle", "register", VIN, "--home", home)
    t = T0 + np.arange(0, 15 * S, 10_000_000, dtype=np.int64)
    csv = write_csv(root / "d.csv", {"Vehicle.Speed": (t, 40 + np.cos(t / 1e9), "km/h")})
    dataset = ok("ingest", csv, "--vehicle", VIN, "--home", home, "--json").json()["dataset"]
    ok("algorithm", "register", DATA / "speed_stats", "--name", "speed-stats", "--version", "1", "--home", home)
    ok("algorithm", "approve", "speed-stats@1", "--home", home)
    key = root / "agency.key"
    ok("party", "keygen", "remote-agency", "--out", key)
    ok("party", "add", "remote-agency", "--role", "agency", "--vkey", key.with_suffix(".vkey"), "--home", home)
    contract = ok("contract", "grant", "--party", "remote-agency", "--dataset", dataset, "--algorithm",
                  "speed-stats@1", "--purpose", "accident-liability", "--home", home).out.strip()  # fmt: skip
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TRUSTLANE_HOME"}
    server = subprocess.Popen(
        [sys.executable, "-m", "trustlane", "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {server.stderr.read() if server.stderr else ''}")  # noqa: B904
                time.sleep(0.1)
        yield {"url": url, "key": key, "contract": contract, "home": home, "root": root}
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()


def test_remote_party_accepts_runs_and_verifies(served: dict[str, object], tmp_path: Path) -> None:
    url, key, contract = str(served["url"]), Path(str(served["key"])), str(served["contract"])
    # before acceptance the contract is only offered: the run is denied
    result = cli("analysis", "run", "--as", "remote-agency", "--contract", contract, "--node", url, "--key", key)
    assert "offered but not yet accepted" in refused(result, 10)
    with NodeClient.for_party(url, "remote-agency", key=key) as client:
        assert client.me()["role"] == "agency"
        assert client.accept(contract)["state"] == "agreed"
        assert [c["id"] for c in client.contracts()] == [contract]
    out = tmp_path / "report.json"
    ok("analysis", "run", "--as", "remote-agency", "--contract", contract, "--node", url, "--key", key, "--out", out)
    with NodeClient.for_party(url, "remote-agency", key=key) as client:
        holder_vkey = client.keys()["log_vkey"]
        fetched = client.report(json.loads(out.read_bytes())["id"])
    assert fetched == json.loads(out.read_bytes())
    verified = ok("report", "verify", out, "--trust", holder_vkey, "--json").json()
    assert verified["party"] == "remote-agency"
    # a key the node does not know for that name cannot call it
    other = tmp_path / "other.key"
    ok("party", "keygen", "remote-agency", "--out", other)
    assert "401" in refused(cli("report", "get", verified["report"], "--node", url, "--as", "remote-agency",
                                "--key", other))  # fmt: skip
