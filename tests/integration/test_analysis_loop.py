"""The trusted-analysis loop end to end through the CLI: parties, algorithm, contract, sandboxed run,
signed report, offline verification, denials, blocks and the audit trail."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.clirun import cli, ok, refused
from tests.conftest import IN_CI
from trustlane.analysis.sandbox import sandbox_problem
from trustlane.ingest.readers.samples import write_csv

VIN = "1M8GDM9AXKP042788"
ORIGIN = "oem.example/log"
S = 1_000_000_000
T0 = 1_700_000_000 * S
DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"


@pytest.fixture(scope="module", autouse=True)
def _sandbox() -> None:
    problem = sandbox_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI must run the sandbox tests: {problem}")
        pytest.skip(f"no sandbox on this machine: {problem}")


def _recording(path: Path) -> Path:
    t = T0 + np.arange(0, 25 * S, 10_000_000, dtype=np.int64)  # 25 s at 100 Hz
    speed = 60 + 20 * np.sin(np.arange(t.size) / 300.0)
    accel = np.gradient(speed / 3.6, 0.01)
    return write_csv(
        path,
        {"Vehicle.Speed": (t, speed, "km/h"), "Vehicle.Acceleration.Longitudinal": (t, accel, "m/s^2")},
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("analysis-loop")
    home = root / "holder"
    ok("init", "--home", home, "--origin", ORIGIN)
    ok("vehicle", "register", VIN, "--home", home)
    receipt = ok("ingest", _recording(root / "drive.csv"), "--vehicle", VIN, "--home", home, "--json").json()
    for name, role in (("agency", "agency"), ("insurer", "insurer"), ("regulator", "regulator")):
        ok("party", "add", name, "--role", role, "--home", home)
    for name in ("speed_stats", "leaky", "vin_leak", "network"):
        ok("algorithm", "register", DATA / name, "--name", name.replace("_", "-"), "--version", "1.0", "--home", home)
        ok("algorithm", "approve", f"{name.replace('_', '-')}@1.0", "--home", home)
    return {"home": home, "dataset": receipt["dataset"]}


@pytest.fixture
def home(template: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "holder"
    shutil.copytree(template["home"], copy)
    return copy


def _grant(home: Path, dataset: str, algorithm: str = "speed-stats@1.0", *extra: str) -> str:
    out = ok(
        "contract", "grant", "--party", "agency", "--dataset", dataset, "--algorithm", algorithm,
        "--purpose", "accident-liability", "--home", home, *extra,
    ).out  # fmt: skip
    return out.strip()


def _vkey(home: Path) -> str:
    return ok("ledger", "vkey", "--home", home).out.strip()


def test_report_is_issued_and_verifies_offline(home: Path, template: dict[str, Any], tmp_path: Path) -> None:
    contract = _grant(home, template["dataset"], "speed-stats@1.0", "--max-runs", "3", "--recipient", "insurer")
    out = tmp_path / "report.json"
    params = json.dumps({"threshold_kmh": 70})
    run = ok("analysis", "run", "--as", "agency", "--contract", contract, "--params", params, "--out", out,
             "--home", home, "--json").json()  # fmt: skip
    assert run["status"] == "reported" and Path(run["html"]).is_file()
    report = json.loads(out.read_bytes())
    assert report["output"]["samples"] == 2500
    assert report["output"]["max_kmh"] == pytest.approx(80, abs=0.1)
    assert report["execution"]["isolated"] is True
    assert len(report["inputs"]) == 3  # 25 s in 10 s windows
    vkey = tmp_path / "holder.vkey"
    vkey.write_text(_vkey(home) + "\n")
    verified = ok("report", "verify", out, "--trust", vkey, "--json").json()
    assert verified["valid"] and verified["inputs"] == 3 and verified["algorithm"] == "speed-stats@1.0"
    # the recomputed package digest matches; another package does not
    ok("report", "verify", out, "--trust", vkey, "--algorithm", DATA / "speed_stats")
    assert cli("report", "verify", out, "--trust", vkey, "--algorithm", DATA / "leaky").code == 1
    # the trail of the report names its contract, run and dataset
    trail = ok("audit", "--report", report["id"], "--home", home, "--json").json()
    types = [e["type"] for e in trail["events"]]
    assert {"contract.offered", "contract.agreed", "analysis.decision", "analysis.report"} <= set(types)
    assert template["dataset"] in trail["lineage"]["dataset"]


def test_any_changed_byte_or_field_fails_verification(home: Path, template: dict[str, Any], tmp_path: Path) -> None:
    contract = _grant(home, template["dataset"])
    out = tmp_path / "r.json"
    ok("analysis", "run", "--as", "agency", "--contract", contract, "--out", out, "--home", home)
    vkey = _vkey(home)
    data = out.read_bytes()
    rng = random.Random(7)
    tampered = tmp_path / "t.json"
    for position in rng.sample(range(len(data)), 60):
        changed = bytearray(data)
        changed[position] ^= 1 << rng.randrange(7)
        tampered.write_bytes(bytes(changed))
        result = cli("report", "verify", tampered, "--trust", vkey)
        assert result.code == 1, f"a flip at byte {position} ({data[position - 20 : position + 20]!r}) still verified"
    report = json.loads(data)
    edits = {
        "output": lambda r: r["output"].update(max_kmh=1.0),
        "params": lambda r: r["request"]["body"]["params"].update(threshold_kmh=1),
        "purpose": lambda r: r["contract"]["policy"]["constraints"].update(purpose="marketing"),
        "input digest": lambda r: r["inputs"][0].update(segment_sha256="0" * 64),
        "proof": lambda r: r["proofs"]["inputs"][0]["path"].reverse(),
        "checkpoint": lambda r: r.update(checkpoint=r["checkpoint"].replace("\n", "\n\n", 1)),
        "algorithm": lambda r: r["algorithm"].update(digest="sha256:" + "1" * 64),
    }
    for what, edit in edits.items():
        changed_report = json.loads(data)
        edit(changed_report)
        tampered.write_text(json.dumps(changed_report))
        result = cli("report", "verify", tampered, "--trust", vkey, "--json")
        assert result.code == 1, f"changing the {what} still verified"
        assert json.loads(result.out)["valid"] is False
    assert report["id"]
    # a wrong trusted key, a missing file and a bad key are told apart (1 invalid vs 2 usage)
    other = ok("init", "--home", tmp_path / "other", "--origin", "other.example/log", "--json").json()["log_vkey"]
    assert cli("report", "verify", out, "--trust", other).code == 1
    assert cli("report", "verify", tmp_path / "missing.json", "--trust", vkey).code == 2
    assert cli("report", "verify", out, "--trust", "not-a-key").code == 2


def test_denials_are_refused_and_recorded(home: Path, template: dict[str, Any], tmp_path: Path) -> None:
    dataset = template["dataset"]
    contract = _grant(home, dataset, "speed-stats@1.0", "--max-runs", "1")
    # another party may not use the agency's contract
    msg = refused(cli("analysis", "run", "--as", "insurer", "--contract", contract, "--home", home), 10)
    assert "granted to agency" in msg
    # an algorithm the contract does not pin
    msg = refused(cli("analysis", "run", "--as", "agency", "--contract", contract, "--algorithm", "leaky@1.0",
                      "--home", home), 10)  # fmt: skip
    assert "does not allow leaky@1.0" in msg
    ok("analysis", "run", "--as", "agency", "--contract", contract, "--out", tmp_path / "1.json", "--home", home)
    msg = refused(cli("analysis", "run", "--as", "agency", "--contract", contract, "--home", home), 10)
    assert "runs are used" in msg
    revoked = _grant(home, dataset)
    ok("contract", "revoke", revoked, "--reason", "court order withdrawn", "--home", home)
    msg = refused(cli("analysis", "run", "--as", "agency", "--contract", revoked, "--home", home), 10)
    assert "revoked: court order withdrawn" in msg
    # an algorithm changed after approval no longer runs
    fresh = _grant(home, dataset)
    (home / "algorithms" / "speed-stats" / "1.0" / "algorithm.py").write_text("def run(i, p):\n    return {}\n")
    msg = refused(cli("analysis", "run", "--as", "agency", "--contract", fresh, "--home", home), 10)
    assert "modified after registration" in msg
    trail = ok("audit", "--party", "agency", "--home", home, "--json").json()
    denials = [e["event"] for e in trail["events"] if e["type"] == "analysis.decision" and not e["event"]["allow"]]
    assert len(denials) == 5, [(d["party"], d["reasons"]) for d in denials]  # with the insurer's try
    assert [d["party"] for d in denials].count("agency") == 4
    assert cli("contract", "grant", "--party", "agency", "--dataset", "nope", "--algorithm", "speed-stats@1.0",
               "--purpose", "x", "--home", home).code == 2  # fmt: skip


def test_hostile_outputs_are_blocked_and_failures_recorded(home: Path, template: dict[str, Any]) -> None:
    dataset = template["dataset"]
    leaky = _grant(home, dataset, "leaky@1.0")
    msg = refused(cli("analysis", "run", "--as", "agency", "--contract", leaky, "--home", home), 12)
    assert "blocked" in msg
    vin = _grant(home, dataset, "vin-leak@1.0")
    params = json.dumps({"echo": f"owner car {VIN.lower()}"})
    msg = refused(cli("analysis", "run", "--as", "agency", "--contract", vin, "--params", params, "--home", home), 12)
    assert "blocked" in msg
    network = _grant(home, dataset, "network@1.0")
    msg = refused(cli("analysis", "run", "--as", "agency", "--contract", network, "--home", home), 11)
    assert "failed" in msg
    trail = ok("audit", "--party", "agency", "--home", home, "--json").json()
    kinds = [e["type"] for e in trail["events"]]
    assert kinds.count("analysis.blocked") == 2 and kinds.count("analysis.failed") == 1
    assert "analysis.report" not in kinds


def test_witnessed_report_meets_the_quorum(home: Path, template: dict[str, Any], tmp_path: Path) -> None:
    from tests.served import serving
    from trustlane.crypto.note import parse_vkey
    from trustlane.ledger.witness import Witness, create_witness_app
    from trustlane.node import Node

    court = tmp_path / "court"
    ok("init", "--home", court, "--origin", "court.example/log")
    holder_vkey = _vkey(home)
    ok("witness", "trust", holder_vkey, "--home", court)
    witness_vkey = ok("witness", "vkey", "--home", court).out.strip()
    with Node.open(court) as node:
        witness = Witness(node.store, node.cosigner, [parse_vkey(v) for v in node.config.witnessed_logs])
        with serving(create_witness_app(witness)) as url:
            ok("ledger", "witnesses", "add", "court", url, witness_vkey, "--home", home)
            contract = _grant(home, template["dataset"])
            out = tmp_path / "w.json"
            ok("analysis", "run", "--as", "agency", "--contract", contract, "--out", out, "--home", home)
    result = ok("report", "verify", out, "--trust", holder_vkey, "--witness", witness_vkey, "--json").json()
    assert result["cosigned_by"] == [parse_vkey(witness_vkey).name]
    # a quorum the checkpoint cannot meet: a second, silent witness required
    silent = ok("init", "--home", tmp_path / "silent", "--origin", "silent.example/log", "--json").json()
    both = cli("report", "verify", out, "--trust", holder_vkey, "--witness", witness_vkey,
               "--witness", silent["witness_vkey"], "--quorum", "2")  # fmt: skip
    assert both.code == 1 and "checkpoint" in both.err
    # stripping the cosignature breaks the quorum (and the holder's signature)
    report = json.loads(out.read_bytes())
    report["checkpoint"] = "\n".join(line for line in report["checkpoint"].split("\n") if "court" not in line)
    out.write_text(json.dumps(report))
    assert cli("report", "verify", out, "--trust", holder_vkey, "--witness", witness_vkey).code == 1


def test_expired_contract_denies(home: Path, template: dict[str, Any]) -> None:
    from trustlane.analysis.holder import Holder
    from trustlane.analysis.service import AnalysisService, request_body, sign_request
    from trustlane.node import Node

    contract = _grant(home, template["dataset"], "speed-stats@1.0", "--until", "2099-12-31")
    later = 4_102_444_800 * S + 1  # 2100-01-01, after the contract's last day
    with Node.open(home) as node, Holder(node) as holder:
        signer = holder.parties.signer("agency")
        service = AnalysisService(holder, clock_ns=lambda: later)
        outcome = service.run(sign_request(signer, request_body(contract, "agency", None, {}, now_ns=later)))
    assert outcome.status == "denied" and "validity period has ended" in (outcome.reason or "")
    trail = ok("audit", "--contract", contract, "--home", home, "--json").json()
    decision = next(e["event"] for e in trail["events"] if e["type"] == "analysis.decision")
    assert decision["allow"] is False and any("validity period" in r for r in decision["reasons"])
