"""`trustlane doctor` names what is wrong with a node home and how to fix it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import cli, ok


def test_healthy_home_passes_with_advice(tmp_path: Path) -> None:
    home = tmp_path / "node"
    ok("init", "--home", home)
    findings = {f["check"]: f for f in json.loads(ok("doctor", "--home", home, "--json").out)}
    assert findings["ledger"]["status"] == "ok"
    assert findings["witnesses"]["status"] == "warn" and "witnesses add" in findings["witnesses"]["fix"]


def test_problems_fail_with_a_fix(tmp_path: Path) -> None:
    home = tmp_path / "node"
    ok("init", "--home", home)
    (home / "keys" / "witness.key").chmod(0o644)
    result = cli("doctor", "--home", home, "--json")
    assert result.code == 1
    bad = [f for f in json.loads(result.out) if f["status"] == "fail"]
    assert [f["check"] for f in bad] == ["key witness.key"] and bad[0]["fix"].startswith("chmod 600")
    missing = cli("doctor", "--home", tmp_path / "nowhere", "--json")
    assert missing.code == 1 and "trustlane init" in json.loads(missing.out)[0]["fix"]
