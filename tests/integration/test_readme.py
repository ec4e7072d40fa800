"""The README's quickstart works as documented."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def quickstart_commands() -> list[str]:
    """The `./quickstart.sh` lines of the fenced block under "## Quickstart"."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.DOTALL | re.MULTILINE)
    assert section is not None, "README.md has no '## Quickstart' section"
    block = re.search(r"^```[a-z]*\n(.*?)^```", section.group(1), re.DOTALL | re.MULTILINE)
    assert block is not None, "the Quickstart section has no fenced code block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.startswith("./quickstart.sh")]


def test_quickstart_documents_exactly_demo_and_test() -> None:
    commands = quickstart_commands()
    assert [shlex.split(c) for c in commands] == [["./quickstart.sh", "demo"], ["./quickstart.sh", "test"]]
    assert os.access(ROOT / "quickstart.sh", os.X_OK)


@pytest.mark.slow
def test_quickstart_demo_runs_and_its_bundle_verifies_offline(tmp_path: Path) -> None:
    (demo,) = [c for c in quickstart_commands() if shlex.split(c)[1] == "demo"]
    workdir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("TRUSTLANE_HOME", "TRUSTLANE_DEBUG")}
    # As documented, from the project root; `./quickstart.sh test` is not run here (it runs this suite).
    done = subprocess.run(
        [*shlex.split(demo), "--workdir", str(workdir)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    bundle_line = re.search(r"^offline proof bundle: (\S+)$", done.stdout, re.MULTILINE)
    assert bundle_line is not None, done.stdout
    bundle = Path(bundle_line.group(1))
    assert bundle == workdir / "event.tlog-proof"
    assert bundle.read_text().startswith("c2sp.org/tlog-proof@v1\n")
    assert re.search(r"checkpoint \d+ cosigned by \S+", done.stdout), done.stdout

    # the report verification the demo prints, run as printed: the signed report verifies offline
    report_cmd = re.search(r"^verify a report:\s+(trustlane report verify .*)$", done.stdout, re.MULTILINE)
    assert report_cmd is not None, done.stdout
    checked = subprocess.run(
        [sys.executable, "-m", *shlex.split(report_cmd.group(1))],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0 and checked.stdout.startswith("valid: report"), checked.stderr
    package_cmd = re.search(r"^\s+verify it:\s+(trustlane transfer verify .*)$", done.stdout, re.MULTILINE)
    assert package_cmd is not None, done.stdout
    checked = subprocess.run(
        [sys.executable, "-m", *shlex.split(package_cmd.group(1))],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0 and checked.stdout.startswith("valid: package"), checked.stderr

    # the command the demo prints, run as printed (with this interpreter's trustlane)
    printed = re.search(r"^verify it yourself:\s+(trustlane ledger verify-bundle .*)$", done.stdout, re.MULTILINE)
    assert printed is not None, done.stdout
    argv = shlex.split(printed.group(1))
    assert argv[:3] == ["trustlane", "ledger", "verify-bundle"]
    assert "--event" in argv
    verified = subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert verified.returncode == 0, verified.stderr
    assert re.match(r"verified: entry \d+ is in holder\.trustlane\.example/demo-7 at size \d+", verified.stdout)

    # and the disclosed event is what the bundle proves: an altered event is refused
    event_file = Path(argv[argv.index("--event") + 1])
    disclosed = json.loads(event_file.read_text())
    disclosed["event"]["rows"] = disclosed["event"].get("rows", 0) + 1
    altered = tmp_path / "altered-event.json"
    altered.write_text(json.dumps(disclosed))
    argv[argv.index("--event") + 1] = str(altered)
    refused = subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert refused.returncode == 6, refused.stderr
    assert "Traceback" not in refused.stderr
