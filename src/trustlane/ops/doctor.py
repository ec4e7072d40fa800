"""`trustlane doctor`: check a node's configuration, keys, storage, sandbox and witnesses; say what to fix."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from trustlane.catalog.home import open_catalog
from trustlane.config import CONFIG_FILE
from trustlane.crypto.envelope import MASTER_KEY_FILE
from trustlane.errors import TrustlaneError
from trustlane.ledger.checkpoint import verify_checkpoint
from trustlane.node import LOG_KEY, WITNESS_KEY, Node

LOW_DISK_BYTES = 5 << 30


@dataclass
class Finding:
    check: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail, "fix": self.fix}


def _key_mode(path: Path) -> Finding:
    name = f"key {path.name}"
    if not path.exists():
        return Finding(name, "fail", f"{path} is missing", "restore it from backup")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Finding(name, "fail", f"{path} is readable by others (mode {mode:o})", f"chmod 600 {path}")
    return Finding(name, "ok", f"{path} (mode {mode:o})")


def diagnose(home: Path, *, witness_timeout_s: float = 3.0) -> list[Finding]:
    findings: list[Finding] = []
    if not (home / CONFIG_FILE).is_file():
        return [Finding("home", "fail", f"{home} is not a node home", "run `trustlane init --home DIR` or pass --home")]
    try:
        node = Node.open(home)
    except TrustlaneError as exc:
        return [Finding("home", "fail", exc.message, exc.hint or "")]
    with node:
        findings.append(Finding("home", "ok", f"{home}: origin {node.config.origin}, {node.store.backend} storage"))
        for rel in (LOG_KEY, WITNESS_KEY):
            findings.append(_key_mode(home / rel))
        master = home / MASTER_KEY_FILE
        findings.append(
            _key_mode(master)
            if master.exists()
            else Finding("key node.key", "ok", "no master key yet (made on first vehicle registration)")
        )
        findings += _storage(node)
        findings.append(_sandbox())
        findings += _witnesses(node, witness_timeout_s)
        free = shutil.disk_usage(home).free
        findings.append(
            Finding(
                "disk",
                "ok" if free >= LOW_DISK_BYTES else "warn",
                f"{free / 2**30:.1f} GiB free under {home}",
                "" if free >= LOW_DISK_BYTES else "free space or move the blob store",
            )
        )
    return findings


def _storage(node: Node) -> list[Finding]:
    out = []
    try:
        size = node.store.tree_size()
        latest = node.store.latest_checkpoint()
        if latest is None:
            out.append(Finding("ledger", "fail", "no checkpoint", "run `trustlane ledger checkpoint`"))
        else:
            verify_checkpoint(latest.note, node.log_verifier)
            lag = size - latest.size
            out.append(
                Finding(
                    "ledger",
                    "ok" if lag == 0 else "warn",
                    f"{size} entries; latest checkpoint {latest.size} verifies",
                    "" if lag == 0 else "publish a checkpoint: `trustlane ledger checkpoint`",
                )
            )
        with open_catalog(node) as catalog:
            counts = catalog.counts()
        out.append(Finding("catalog", "ok", ", ".join(f"{v} {k}" for k, v in counts.items())))
    except TrustlaneError as exc:
        out.append(Finding("storage", "fail", exc.message, exc.hint or "run `trustlane ledger verify`"))
    return out


def _sandbox() -> Finding:
    from trustlane.analysis.sandbox import sandbox_problem

    problem = sandbox_problem()
    if problem is None:
        return Finding("sandbox", "ok", "bubblewrap isolates algorithm runs")
    if os.environ.get("TRUSTLANE_DEV_ALLOW_UNISOLATED") == "1":
        return Finding("sandbox", "warn", f"UNISOLATED development runs allowed: {problem}", "install bubblewrap")
    return Finding("sandbox", "fail", problem, "install bubblewrap (Debian: apt-get install bubblewrap)")


def _witnesses(node: Node, timeout_s: float, get: Callable[..., httpx.Response] = httpx.get) -> list[Finding]:
    if not node.config.witnesses:
        return [
            Finding(
                "witnesses",
                "warn",
                "no witness configured: checkpoints are signed by the holder alone",
                "add one: `trustlane ledger witnesses add NAME URL VKEY`",
            )
        ]
    out = []
    latest = node.store.latest_checkpoint()
    cosigned = {c.witness for c in node.store.cosignatures(latest.size)} if latest else set()
    for w in node.config.witnesses:
        key_name = w.vkey.split("+", 1)[0]
        try:
            get(w.url.rstrip("/") + "/", timeout=timeout_s)
            reachable = True
        except httpx.HTTPError:
            reachable = False
        if not reachable:
            out.append(
                Finding(
                    f"witness {w.name}",
                    "fail",
                    f"{w.url} cannot be reached",
                    "check the URL, the network and that the witness runs",
                )
            )
        elif key_name not in cosigned:
            out.append(
                Finding(
                    f"witness {w.name}",
                    "warn",
                    f"{w.url} answers but did not cosign the latest checkpoint",
                    "check that the witness trusts this log's vkey (`trustlane witness trust`)",
                )
            )
        else:
            out.append(
                Finding(f"witness {w.name}", "ok", f"{w.url} cosigned checkpoint {latest.size if latest else 0}")
            )
    return out
