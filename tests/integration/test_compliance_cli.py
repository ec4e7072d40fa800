"""`trustlane compliance`: evaluate (recorded in the ledger when a node home exists), rules, classify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from trustlane.cli import compliance_cmd
from trustlane.compliance.record import EVENT_TYPE
from trustlane.errors import TrustlaneError
from trustlane.ledger.events import check_disclosure
from trustlane.node import Node

REQUEST: dict[str, Any] = {
    "action": "transfer",
    "from": "EU",
    "to": "CN",
    "categories": ["vehicle-operation", "location"],
    "persons": 20_000,
}

root = typer.Typer()
root.add_typer(compliance_cmd.app, name="compliance")
runner = CliRunner()


def run(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, BaseException | None]:
    environment = {"TRUSTLANE_HOME": ""} | (env or {})
    result = runner.invoke(root, ["compliance", *map(str, args)], env=environment)
    error = result.exception if result.exception and not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, error


def write(tmp_path: Path, request: dict[str, Any], name: str = "request.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(request))
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no ./.trustlane here
    return tmp_path


def test_evaluate_without_a_home_is_not_recorded(in_tmp: Path) -> None:
    code, out, error = run("evaluate", write(in_tmp, REQUEST), "--json")
    assert code == 0 and error is None
    decision = json.loads(out)
    assert decision["decision"] == "deny"
    assert decision["recorded"] is False and decision["ledger_index"] is None
    assert "eu_scc" in " ".join(decision["reasons"])
    assert not (in_tmp / ".trustlane").exists()


def test_evaluate_records_a_ledger_event_when_the_home_exists(in_tmp: Path) -> None:
    home = in_tmp / "node"
    Node.init(home, origin="compliance.example/log").close()
    request = REQUEST | {"mechanisms": ["eu_scc"]}
    first = json.loads(run("evaluate", write(in_tmp, request), "--json", "--home", home)[1])
    second = json.loads(run("evaluate", write(in_tmp, REQUEST), "--json", env={"TRUSTLANE_HOME": str(home)})[1])
    assert first["decision"] == "allow" and first["recorded"] is True
    assert second["decision"] == "deny" and second["ledger_index"] == first["ledger_index"] + 1
    with Node.open(home) as node:
        assert node.store.tree_size() == second["ledger_index"] + 1
        secret = node.store.event_secret(first["ledger_index"])
        entry = node.store.entry(first["ledger_index"])
        assert secret is not None and secret.event is not None and secret.salt is not None and entry is not None
        check_disclosure(entry.data, secret.event, secret.salt)  # the leaf commits to this event
        event = json.loads(secret.event)
    assert event["type"] == EVENT_TYPE
    assert event["decision"] == "allow"
    assert event["request"] == request
    assert {p["digest"] for p in event["packs"]} == {p["digest"] for p in first["packs"]}
    assert "eu.gdpr.appropriate-safeguards" in {r["id"] for r in event["rules"]}


def test_a_named_home_that_does_not_exist_is_an_error(in_tmp: Path) -> None:
    _, _, error = run("evaluate", write(in_tmp, REQUEST), "--home", in_tmp / "missing")
    assert isinstance(error, TrustlaneError) and error.exit_code == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"action": "transfer"}', "required field is missing"),
        (json.dumps(REQUEST | {"to": "MARS"}), "to: Input should be"),
        (json.dumps(REQUEST | {"categories": ["spaceship"]}), "unknown category"),
        (json.dumps(REQUEST | {"extra": 1}), "extra: unknown field"),
        ("not json", "not JSON"),
    ],
)
def test_bad_requests_exit_2_with_a_message(in_tmp: Path, content: str, message: str) -> None:
    path = in_tmp / "bad.json"
    path.write_text(content)
    _code, out, error = run("evaluate", path, "--json")
    assert isinstance(error, TrustlaneError) and error.exit_code == 2
    assert message in error.diagnostics()
    assert out == ""


def test_evaluate_reads_stdin_and_prints_a_readable_decision(in_tmp: Path) -> None:
    result = runner.invoke(root, ["compliance", "evaluate", "-"], input=json.dumps(REQUEST), env={"TRUSTLANE_HOME": ""})
    assert result.exit_code == 0
    assert "decision: deny" in result.stdout
    assert "GDPR Art. 46" in result.stdout


def test_custom_packs_replace_the_shipped_ones(in_tmp: Path) -> None:
    shipped = Path(compliance_cmd.__file__).parents[1] / "compliance/packs"
    cn_only = json.loads(run("evaluate", write(in_tmp, REQUEST), "--json", "--pack", shipped / "cn.yaml")[1])
    assert cn_only["decision"] == "deny"
    assert "no rule pack for EU" in cn_only["reasons"][0]
    broken = in_tmp / "broken.yaml"
    broken.write_text("format: trustlane-rule-pack/1\nid: x\n")
    _, _, error = run("evaluate", write(in_tmp, REQUEST), "--pack", broken)
    assert isinstance(error, TrustlaneError) and error.exit_code == 2


def test_rules_lists_packs_with_digests_and_citations(in_tmp: Path) -> None:
    code, out, _ = run("rules", "--json")
    listing = json.loads(out)["packs"]
    assert [p["id"] for p in listing] == ["baseline", "cn", "eu", "us"]
    cn = next(p for p in listing if p["id"] == "cn")
    volume = next(r for r in cn["rules"] if r["id"] == "cn.cac2024.volume-assessment")
    assert volume["thresholds"] == {"persons": 1_000_000, "sensitive_persons": 10_000}
    assert volume["citation"].endswith("Art. 7") and volume["mechanisms"] == ["cn_security_assessment"]
    code, out, _ = run("rules", "--jurisdiction", "US")
    assert code == 0
    assert "us.doj202.geolocation" in out and "cn." not in out
    _, _, error = run("rules", "--jurisdiction", "XX")
    assert isinstance(error, TrustlaneError) and error.exit_code == 2


def test_classify_signals_and_categories(in_tmp: Path) -> None:
    code, out, _ = run(
        "classify",
        "--signal",
        "Vehicle.Exterior.Camera.Front.Image",
        "--category",
        "charging",
        "--persons",
        "5",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    cn = next(d for d in result["datasets"] if d["jurisdiction"] == "CN")
    assert set(cn["classes"]["important_data"]) == {"external-imagery", "charging"}
    assert result["signals"][0]["jurisdictions"]["EU"][0]["classes"] == ["personal"]
    _, _, error = run("classify")
    assert isinstance(error, TrustlaneError) and error.exit_code == 2
