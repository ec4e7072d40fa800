"""`trustlane ledger verify` against a ledger edited behind trustlane's back.

An attacker with access to ledger.db can drop the append-only triggers and rewrite rows. Each case below
tampers with a fresh copy of one template home and expects the fsck to exit 7 naming what it found.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from trustlane.crypto.cosignature import CosignatureSigner
from trustlane.ledger.checkpoint import parse_signed_checkpoint
from trustlane.node import Node
from trustlane.storage.base import CosignatureRecord

ORIGIN = "holder.example/log"
WITNESSES = ("w1.example/witness", "w2.example/witness")
TRIGGERS = ("entries_append_only_u", "entries_append_only_d", "nodes_append_only_u", "checkpoints_append_only_u")


@dataclass(frozen=True)
class Template:
    home: Path
    size: int
    checkpoints: tuple[int, ...]
    events: tuple[int, ...]  # indices of entries that are event commitments


def verify(home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRUSTLANE_HOME", "TRUSTLANE_DEBUG")}
    result = subprocess.run(
        [sys.executable, "-m", "trustlane", "ledger", "verify", "--home", str(home), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """16 entries (plain data and event commitments), checkpoints at 0, 5, 9, 13, 16, two witnesses' cosignatures."""
    home = tmp_path_factory.mktemp("fsck") / "template"
    with Node.init(home, origin=ORIGIN) as node:
        node.log.append_many([f"report {i}".encode() for i in range(5)])
        node.log.publish_checkpoint()
        first = node.log.append_events([{"type": "ingest.segment", "vehicle": "veh-1", "n": i} for i in range(4)])
        node.log.publish_checkpoint()
        node.log.append_many([b"", b"x" * 1000, b"\x00\xff", b"last of the third"])
        node.log.publish_checkpoint()
        second = node.log.append_events([{"type": "dataset.classified", "n": i} for i in range(3)])
        node.log.publish_checkpoint()
        # Witnesses are configured after publishing (no network here); their cosignatures are produced in-process.
        signers = [CosignatureSigner.generate(name) for name in WITNESSES]
        for number, signer in enumerate(signers):
            node.add_witness(f"w{number + 1}", f"http://127.0.0.1:{9 + number}", signer.verifier.vkey)
        for record in node.store.checkpoints():
            body = parse_signed_checkpoint(record.note).checkpoint.body()
            cosignatures = []
            for signer in signers:
                line = signer.cosign(body, 1_760_000_000 + record.size)
                cosignatures.append(
                    CosignatureRecord(record.size, line.name, line.key_id, line.format(), 1_760_000_000)
                )
            node.store.add_cosignatures(cosignatures)
        checkpoints = tuple(c.size for c in node.store.checkpoints())
        size = node.store.tree_size()
    return Template(home, size, checkpoints, tuple(r.index for r in first + second))


def test_the_template_is_intact(template: Template) -> None:
    assert template.checkpoints == (0, 5, 9, 13, 16)
    assert template.events == (5, 6, 7, 8, 13, 14, 15)
    result = verify(template.home, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["entries"], report["checkpoints"], report["cosignatures"]) == (16, 5, 10)
    assert report["events"] == 7
    assert report["warnings"] == []


Tamper = Callable[[sqlite3.Connection], None]


def sql(statement: str, *params: object) -> Tamper:
    def apply(db: sqlite3.Connection) -> None:
        cursor = db.execute(statement, params)
        assert cursor.rowcount == 1, f"{statement} changed {cursor.rowcount} rows"

    return apply


def edit_note(size: int, edit: Callable[[str], str]) -> Tamper:
    def apply(db: sqlite3.Connection) -> None:
        (note,) = db.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        changed = edit(note)
        assert changed != note
        db.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (changed, size))

    return apply


def flip_signature_bit(note: str) -> str:
    head, signature = note.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 0x01
    return f"{head} {base64.b64encode(bytes(raw)).decode()}\n"


def replace_root_line(note: str) -> str:
    lines = note.split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    return "\n".join(lines)


def swap_cosignature(size: int) -> Tamper:
    """w1's stored cosignature line replaced by w2's line for the same checkpoint."""

    def apply(db: sqlite3.Connection) -> None:
        (other,) = db.execute(
            "SELECT line FROM cosignatures WHERE size = ? AND witness = ?", (size, WITNESSES[1])
        ).fetchone()
        cursor = db.execute(
            "UPDATE cosignatures SET line = ? WHERE size = ? AND witness = ?", (other, size, WITNESSES[0])
        )
        assert cursor.rowcount == 1

    return apply


def graft_cosignature_bytes(size: int) -> Tamper:
    """w1's line keeps its name and key ID but carries w2's timestamped signature bytes."""

    def apply(db: sqlite3.Connection) -> None:
        lines = dict(db.execute("SELECT witness, line FROM cosignatures WHERE size = ?", (size,)).fetchall())
        mine, theirs = (base64.b64decode(lines[w].rstrip("\n").rsplit(" ", 1)[1]) for w in WITNESSES)
        forged = f"— {WITNESSES[0]} {base64.b64encode(mine[:4] + theirs[4:]).decode()}\n"
        db.execute("UPDATE cosignatures SET line = ? WHERE size = ? AND witness = ?", (forged, size, WITNESSES[0]))

    return apply


def alter_event_json(index: int) -> Tamper:
    def apply(db: sqlite3.Connection) -> None:
        (event,) = db.execute("SELECT event FROM event_secrets WHERE idx = ?", (index,)).fetchone()
        changed = json.dumps({**json.loads(event), "vehicle": "veh-2"}, separators=(",", ":"), sort_keys=True)
        assert changed != event
        db.execute("UPDATE event_secrets SET event = ? WHERE idx = ?", (changed, index))

    return apply


ZERO = bytes(32)

CASES: dict[str, tuple[Tamper, str]] = {
    "entry data": (sql("UPDATE entries SET data = ? WHERE idx = 7", b"rewritten"), r"entry 7: stored leaf hash"),
    "entry data and its leaf hash together": (
        sql("UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 2", b"x", hashlib.sha256(b"\x00x").digest()),
        r"tree node \(level 1, index 1\) does not match",
    ),
    "leaf hash": (sql("UPDATE entries SET leaf_hash = ? WHERE idx = 10", ZERO), r"entry 10: stored leaf hash"),
    "internal node": (
        sql("UPDATE nodes SET hash = ? WHERE level = 2 AND idx = 1", ZERO),
        r"tree node \(level 2, index 1\) does not match",
    ),
    "deleted node": (
        sql("DELETE FROM nodes WHERE level = 1 AND idx = 5"),
        r"tree node \(level 1, index 5\) is missing",
    ),
    "extra node": (
        sql("INSERT INTO nodes (level, idx, hash) VALUES (1, 8, ?)", ZERO),
        r"tree node \(level 1, index 8\) exists beyond the tree's 16 leaves",
    ),
    "extra node far out": (
        sql("INSERT INTO nodes (level, idx, hash) VALUES (2, 4096, ?)", ZERO),
        r"tree node \(level 2, index 4096\) exists beyond",
    ),
    "extra node above the root": (
        sql("INSERT INTO nodes (level, idx, hash) VALUES (9, 0, ?)", ZERO),
        r"tree node \(level 9, index 0\) exists beyond",
    ),
    "deleted last entry": (
        sql("DELETE FROM entries WHERE idx = 15"),
        r"checkpoint of size 16 is larger than the tree \(15 entries\)",
    ),
    "deleted middle entry": (sql("DELETE FROM entries WHERE idx = 6"), r"entry 6 is missing"),
    "checkpoint root column": (
        sql("UPDATE checkpoints SET root = ? WHERE size = 9", ZERO),
        r"checkpoint of size 9: the signed note disagrees with the stored size or root",
    ),
    "checkpoint signature bytes": (
        edit_note(13, flip_signature_bit),
        rf"checkpoint of size 13: signature by '{re.escape(ORIGIN)}' .* does not verify",
    ),
    "checkpoint note root line": (
        edit_note(5, replace_root_line),
        rf"checkpoint of size 5: signature by '{re.escape(ORIGIN)}' .* does not verify",
    ),
    "swapped cosignature line": (
        swap_cosignature(9),
        rf"cosignature by {re.escape(WITNESSES[0])} on checkpoint 9 does not verify",
    ),
    "grafted cosignature bytes": (
        graft_cosignature_bytes(16),
        rf"cosignature by {re.escape(WITNESSES[0])} on checkpoint 16 does not verify",
    ),
    "cosignature moved to an unpublished size": (
        sql("UPDATE cosignatures SET size = 14 WHERE size = 13 AND witness = ?", WITNESSES[1]),
        rf"cosignature by {re.escape(WITNESSES[1])} on size 14 belongs to no checkpoint",
    ),
    "deleted cosigned checkpoint": (
        sql("DELETE FROM checkpoints WHERE size = 9"),
        r"cosignature by .* on size 9 belongs to no checkpoint",
    ),
    "event json": (alter_event_json(6), r"event 6: the stored event no longer matches its ledger commitment"),
    "event salt": (
        sql("UPDATE event_secrets SET salt = ? WHERE idx = 14", b"\x01" * 32),
        r"event 14: the stored event no longer matches its ledger commitment",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_found(template: Template, tmp_path: Path, case: str) -> None:
    tamper, expected = CASES[case]
    home = tmp_path / "home"
    shutil.copytree(template.home, home)
    db = sqlite3.connect(home / "ledger.db", isolation_level=None)
    try:
        triggers = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        assert set(TRIGGERS) <= set(triggers)
        for trigger in triggers:
            db.execute(f"DROP TRIGGER {trigger}")  # what an attacker with database access does first
        db.execute("BEGIN")
        tamper(db)
        db.execute("COMMIT")
    finally:
        db.close()
    result = verify(home)
    assert result.returncode == 7, f"exit {result.returncode}: {result.stdout}{result.stderr}"
    assert re.search(expected, result.stderr), result.stderr
    assert result.stderr.startswith("error: ")
    assert "hint: the ledger was modified outside trustlane" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_erasing_an_event_secret_keeps_the_ledger_valid(template: Template, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(template.home, home)
    with Node.open(home) as node:
        index = template.events[1]
        assert node.store.event_secret(index).event is not None  # type: ignore[union-attr]
        assert node.store.erase_event_secret(index, time.time_ns())
        erased = node.store.event_secret(index)
        assert erased is not None and erased.event is None and erased.salt is None
    result = verify(home, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["entries"], report["cosignatures"], report["events"]) == (16, 10, 6)
    # the ledger itself never held the event, only its commitment
    db = sqlite3.connect(home / "ledger.db")
    try:
        (data,) = db.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
    finally:
        db.close()
    assert len(data) == 32
    assert b"veh-1" not in data
