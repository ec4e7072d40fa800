"""Bad input: every case gets one clear message, the exit code of docs/CLI.md, no traceback, and changes nothing."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.clirun import Result
from tests.clirun import cli as in_process
from trustlane.crypto.cosignature import CosignatureSigner
from trustlane.crypto.keys import NOTE_KEY, write_private_key
from trustlane.crypto.note import Ed25519Signer, parse_vkey
from trustlane.ledger.log import Log
from trustlane.ledger.policy import Policy
from trustlane.ledger.proofs import TlogProof
from trustlane.ledger.witness import Witness, create_witness_app, origin_hash
from trustlane.ledger.witness_client import format_add_checkpoint_request
from trustlane.node import Node
from trustlane.storage.base import WitnessState
from trustlane.storage.sqlite import SqliteStore

ORIGIN = "holder.example/log"


def trustlane(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    environment = {k: v for k, v in os.environ.items() if k not in ("TRUSTLANE_HOME", "TRUSTLANE_DEBUG")}
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "trustlane", *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=cwd,
        env=environment,
        timeout=120,
        check=False,
    )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def refused(
    code: int, *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, fork: bool = True
) -> str:
    """Run a command that must fail with ``code``; return its stderr, checked to be a clean message.

    ``fork=False`` runs the entry point in this process, for cases that touch no node home.
    """
    result = trustlane(*args, cwd=cwd, env=env) if fork else in_process(*args)
    assert result.code == code, f"exit {result.code}, not {code}: {result.err}"
    assert "Traceback" not in result.err, result.err
    assert "internal error" not in result.err, result.err
    assert result.err.strip(), "no message on stderr"
    return result.err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (SQLite's transient -wal/-shm aside), by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def tree_state(home: Path) -> tuple[int, list[int]]:
    store = SqliteStore(home / "ledger.db")
    try:
        return store.tree_size(), [c.size for c in store.checkpoints()]
    finally:
        store.close()


# --- a template home: 5 entries, checkpoints at 0, 3 and 5 ---------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("bad-input") / "template"
    with Node.init(home, origin=ORIGIN) as node:
        node.log.append_many([b"one", b"two", b"three"])
        node.log.publish_checkpoint()
        node.log.append_many([b"four", b"five"])
        node.log.publish_checkpoint()
    return home


@pytest.fixture
def home(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(template, copy)
    return copy


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.7 evidence")
    return path


# --- homes --------------------------------------------------------------------------------------------------------


def test_missing_home(tmp_path: Path, data_file: Path) -> None:
    err = refused(3, "ledger", "append", "--home", tmp_path / "nowhere", data_file)
    assert f"no trustlane node home at {tmp_path / 'nowhere'}" in err
    assert "hint:" in err
    assert not (tmp_path / "nowhere").exists()
    # the default, ./.trustlane, is not created either
    err = refused(3, "ledger", "append", data_file, cwd=tmp_path)
    assert str(tmp_path / ".trustlane") in err
    assert not (tmp_path / ".trustlane").exists()
    # nor is $TRUSTLANE_HOME
    err = refused(3, "ledger", "verify", env={"TRUSTLANE_HOME": str(tmp_path / "env-home")}, cwd=tmp_path)
    assert str(tmp_path / "env-home") in err
    assert not (tmp_path / "env-home").exists()


def test_folder_that_is_not_a_home(tmp_path: Path, data_file: Path) -> None:
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a node")
    before = snapshot(folder)
    err = refused(3, "ledger", "append", "--home", folder, data_file)
    assert "is not a trustlane node home (no config.toml)" in err
    assert snapshot(folder) == before


def test_home_path_with_markup_characters_is_printed_verbatim(tmp_path: Path) -> None:
    strange = tmp_path / "[/red]evidence[bold]"
    err = refused(3, "ledger", "verify", "--home", strange)
    assert f"no trustlane node home at {strange}" in err


def test_foreign_config_format(home: Path, data_file: Path) -> None:
    config = home / "config.toml"
    config.write_text(config.read_text().replace('format = "trustlane-home/1"', 'format = "other-tool/2"'))
    before = snapshot(home)
    err = refused(3, "ledger", "append", "--home", home, data_file)
    assert "is not a trustlane node configuration (format 'other-tool/2')" in err
    assert snapshot(home) == before


def test_config_that_is_not_toml(home: Path, data_file: Path) -> None:
    (home / "config.toml").write_text("format = [unterminated\n")
    before = snapshot(home)
    err = refused(3, "ledger", "append", "--home", home, data_file)
    assert "is not valid TOML" in err
    assert snapshot(home) == before


def test_config_origin_differs_from_the_database(home: Path, data_file: Path) -> None:
    config = home / "config.toml"
    config.write_text(config.read_text().replace(f'origin = "{ORIGIN}"', 'origin = "other.example/log"'))
    before = snapshot(home)
    err = refused(3, "ledger", "append", "--home", home, data_file)
    assert f"the database holds log '{ORIGIN}' but {config} names 'other.example/log'" in err
    assert "fix [storage] or the origin" in err  # printed as text, not eaten as markup
    assert snapshot(home) == before


def test_init_over_an_existing_home(home: Path) -> None:
    before = snapshot(home)
    err = refused(3, "init", "--home", home, "--origin", "new.example/log")
    assert f"{home} is already a trustlane node home" in err
    assert snapshot(home) == before
    assert sorted(p.name for p in home.parent.iterdir()) == ["home"]  # no half-made staging folder


def test_init_over_a_non_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    before = snapshot(folder)
    err = refused(3, "init", "--home", folder, "--origin", "new.example/log")
    assert "exists and is not an empty folder" in err
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


@pytest.mark.parametrize(
    ("origin", "problem"),
    [("holder example/log", "whitespace"), ("holder+example/log", "contains '+'"), ("", "is empty")],
    ids=["space", "plus", "empty"],
)
def test_init_with_an_invalid_origin(tmp_path: Path, origin: str, problem: str) -> None:
    err = refused(2, "init", "--home", tmp_path / "node", "--origin", origin)
    assert f"origin {origin!r} cannot name a log" in err
    assert problem in err
    assert list(tmp_path.iterdir()) == []


# --- keys ---------------------------------------------------------------------------------------------------------


def key_refused(home: Path, data_file: Path) -> str:
    before, state = snapshot(home), tree_state(home)
    err = refused(4, "ledger", "append", "--home", home, data_file)
    assert snapshot(home) == before
    assert tree_state(home) == state
    return err


def test_wrong_log_key_of_the_same_name(home: Path, data_file: Path) -> None:
    write_private_key(home / "keys/log.key", ORIGIN, NOTE_KEY, Ed25519Signer.generate(ORIGIN).private_key)
    err = key_refused(home, data_file)
    assert f"{home / 'keys/log.key'} is not the key this log was created with" in err


def test_wrong_log_key_of_another_log(home: Path, data_file: Path) -> None:
    write_private_key(home / "keys/log.key", "other.example/log", NOTE_KEY, Ed25519Signer.generate("x").private_key)
    err = key_refused(home, data_file)
    assert "belongs to 'other.example/log'" in err


def test_key_file_readable_by_others(home: Path, data_file: Path) -> None:
    (home / "keys/log.key").chmod(0o644)
    err = key_refused(home, data_file)
    assert "is readable by other users (mode 644)" in err
    assert f"chmod 600 {home / 'keys/log.key'}" in err


def test_garbage_key_file(home: Path, data_file: Path) -> None:
    (home / "keys/log.key").write_text("PRIVATE+KEY+this is not a key\n")
    err = key_refused(home, data_file)
    assert "is not a trustlane private key" in err


def test_missing_key_file(home: Path, data_file: Path) -> None:
    (home / "keys/log.key").unlink()
    err = key_refused(home, data_file)
    assert f"key file {home / 'keys/log.key'} is missing" in err


# --- storage --------------------------------------------------------------------------------------------------------


def test_corrupt_database(home: Path, data_file: Path) -> None:
    garbage = bytes(range(256)) * 64
    (home / "ledger.db").write_bytes(garbage)
    before = snapshot(home)
    for command in (["ledger", "append", data_file], ["ledger", "verify"], ["ledger", "checkpoint"]):
        err = refused(5, *command, "--home", home)
        assert f"{home / 'ledger.db'} is not a SQLite database" in err
    assert snapshot(home) == before
    assert (home / "ledger.db").read_bytes() == garbage


def test_missing_database(home: Path, data_file: Path) -> None:
    (home / "ledger.db").unlink()
    err = refused(5, "ledger", "append", "--home", home, data_file)
    assert "no ledger database at" in err
    assert not (home / "ledger.db").exists()


# --- appends and proofs ---------------------------------------------------------------------------------------------


def test_append_with_a_missing_file_appends_nothing(home: Path, data_file: Path, tmp_path: Path) -> None:
    before, state = (home / "ledger.db").read_bytes(), tree_state(home)
    err = refused(2, "ledger", "append", "--home", home, data_file, tmp_path / "missing.bin", data_file)
    assert f"input file {tmp_path / 'missing.bin'} does not exist" in err
    assert tree_state(home) == state == (5, [0, 3, 5])
    assert (home / "ledger.db").read_bytes() == before


def test_append_of_a_folder_appends_nothing(home: Path, data_file: Path, tmp_path: Path) -> None:
    state = tree_state(home)
    err = refused(2, "ledger", "append", "--home", home, data_file, tmp_path)
    assert "is a folder, not a file" in err
    assert tree_state(home) == state


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prove", "--index", "5"], "entry 5 is not in the tree of size 5"),
        (["prove", "--index", "3", "--size", "3"], "entry 3 is not in the tree of size 3"),
        (["prove", "--index", "-1"], "entry -1 is not in the tree of size 5"),
        (["prove", "--index", "0", "--size", "6"], "tree size 6 is outside 0..5"),
        (["consistency", "--old", "4", "--new", "3"], "no consistency proof from size 4 to size 3"),
        (["consistency", "--old", "6"], "no consistency proof from size 6 to size 5"),
        (["consistency", "--old", "1", "--new", "9"], "new size 9 is outside 0..5"),
        (["bundle", "--index", "5"], "entry 5 is not in the latest checkpoint (size 5)"),
        (["bundle", "--index", "-2"], "entry -2 is not in the latest checkpoint (size 5)"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_proof_requests_outside_the_tree(home: Path, args: list[str], message: str) -> None:
    before, state = (home / "ledger.db").read_bytes(), tree_state(home)
    json_out = [] if args[0] == "bundle" else ["--json"]
    err = refused(2, "ledger", *args, "--home", home, *json_out, fork=False)
    assert message in err
    assert tree_state(home) == state
    assert (home / "ledger.db").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ledger", "append"], "Missing argument"),
        (["ledger", "prove", "--index", "seven"], "Invalid value for '--index'"),
        (["ledger", "bogus"], "No such command 'bogus'"),
        (["init", "--colour", "blue"], "No such option: --colour"),
    ],
    ids=["missing-argument", "not-a-number", "unknown-command", "unknown-option"],
)
def test_command_line_mistakes_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    err = refused(2, *args, fork=False)
    assert message in err


def test_witness_that_no_policy_or_client_could_use_is_refused(home: Path) -> None:
    vkey = CosignatureSigner.generate("court.example/witness").verifier.vkey
    before = snapshot(home)
    err = refused(2, "ledger", "witnesses", "add", "--home", home, "court", "ftp://court.example", vkey, fork=False)
    assert "is not an http:// or https:// URL" in err
    err = refused(
        2, "ledger", "witnesses", "add", "--home", home, "the court", "http://court.example", vkey, fork=False
    )
    assert "witness name 'the court'" in err
    err = refused(4, "ledger", "witnesses", "add", "--home", home, "court", "http://court.example", "court+00+AA")
    assert "verifier key" in err
    log_vkey = (home / "keys/log.vkey").read_text().strip()
    err = refused(4, "ledger", "witnesses", "add", "--home", home, "court", "http://court.example", log_vkey)
    assert "is not a cosignature verifier key" in err
    assert snapshot(home) == before


# --- verify-bundle: malformed and foreign inputs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A bundle for entry 1 of the template, its policy, and the policy of another log."""
    folder = tmp_path_factory.mktemp("offline")
    with Node.open(template) as node:
        record = node.log.publish_checkpoint()
        entry = node.store.entry(1)
        assert entry is not None
        bundle = TlogProof(1, tuple(node.log.inclusion_proof(1, record.size)), record.note, extra=entry.data)
        (folder / "entry.tlog-proof").write_text(bundle.format())
        (folder / "trust.policy").write_text(Policy.simple(node.log_verifier, [], 0).format())
    other = Ed25519Signer.generate("other.example/log")
    (folder / "other.policy").write_text(Policy.simple(other.verifier, [], 0).format())
    return {
        "bundle": folder / "entry.tlog-proof",
        "policy": folder / "trust.policy",
        "other_policy": folder / "other.policy",
    }


def edited_bundle(offline: dict[str, Path], tmp_path: Path, old: str, new: str) -> Path:
    text = offline["bundle"].read_text()
    assert old in text
    path = tmp_path / "edited.tlog-proof"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_untouched_bundle_verifies(offline: dict[str, Path]) -> None:
    result = in_process("ledger", "verify-bundle", offline["bundle"], "--policy", offline["policy"])
    assert result.code == 0, result.err
    assert f"verified: entry 1 is in {ORIGIN} at size 5" in result.out


def test_malformed_checkpoint_in_a_bundle(offline: dict[str, Path], tmp_path: Path) -> None:
    bundle = edited_bundle(offline, tmp_path, f"{ORIGIN}\n5\n", f"{ORIGIN}\nfive\n")
    err = refused(2, "ledger", "verify-bundle", bundle, "--policy", offline["policy"], fork=False)
    assert "checkpoint tree size 'five' is not a decimal number" in err


def test_malformed_note_signature_line_in_a_bundle(offline: dict[str, Path], tmp_path: Path) -> None:
    bundle = edited_bundle(offline, tmp_path, f"— {ORIGIN} ", f"-- {ORIGIN} ")
    err = refused(2, "ledger", "verify-bundle", bundle, "--policy", offline["policy"], fork=False)
    assert "does not start with an em dash" in err


def test_bundle_whose_signature_was_altered(offline: dict[str, Path], tmp_path: Path) -> None:
    text = offline["bundle"].read_text()
    head, signature = text.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 0x01
    bundle = tmp_path / "forged.tlog-proof"
    bundle.write_text(f"{head} {base64.b64encode(bytes(raw)).decode()}\n")
    err = refused(6, "ledger", "verify-bundle", bundle, "--policy", offline["policy"], fork=False)
    assert "does not verify" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"c2sp.org/tlog-proof@v2\nindex 1\n\nx\n", "not 'c2sp.org/tlog-proof@v1'"),
        (b"just some text without structure", "no blank line before its checkpoint"),
        (b"\xff\xfe\x00binary", "not valid UTF-8"),
        (b"", "no blank line before its checkpoint"),
    ],
    ids=["wrong-version", "no-structure", "binary", "empty"],
)
def test_malformed_proof_bundle(offline: dict[str, Path], tmp_path: Path, content: bytes, message: str) -> None:
    bundle = tmp_path / "bad.tlog-proof"
    bundle.write_bytes(content)
    err = refused(2, "ledger", "verify-bundle", bundle, "--policy", offline["policy"], fork=False)
    assert message in err


def test_malformed_inclusion_path_in_a_bundle(offline: dict[str, Path], tmp_path: Path) -> None:
    bundle = edited_bundle(offline, tmp_path, "index 1\n", "index 1\nnot-base64!\n")
    err = refused(2, "ledger", "verify-bundle", bundle, "--policy", offline["policy"], fork=False)
    assert "inclusion hash 1 of the tlog proof is not valid base64" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("trust everything\n", "unknown keyword 'trust'"),
        ("log not-a-vkey\nquorum none\n", "verifier key"),
        ("quorum none\nquorum none\n", "more than one quorum line"),
    ],
    ids=["keyword", "vkey", "two-quorums"],
)
def test_malformed_policy(offline: dict[str, Path], tmp_path: Path, content: str, message: str) -> None:
    policy = tmp_path / "bad.policy"
    policy.write_text(content)
    err = refused(2, "ledger", "verify-bundle", offline["bundle"], "--policy", policy, fork=False)
    assert message in err


def test_policy_without_quorum_line(offline: dict[str, Path], tmp_path: Path) -> None:
    policy = tmp_path / "bad.policy"
    policy.write_text(offline["policy"].read_text().replace("quorum none\n", ""))
    err = refused(2, "ledger", "verify-bundle", offline["bundle"], "--policy", policy, fork=False)
    assert "policy has no quorum line" in err
    assert "'quorum <witness or group name>'" in err  # hints are printed verbatim


def test_bundle_of_one_log_against_the_policy_of_another(offline: dict[str, Path]) -> None:
    err = refused(4, "ledger", "verify-bundle", offline["bundle"], "--policy", offline["other_policy"], fork=False)
    assert f"the policy trusts no log with origin '{ORIGIN}' (trusted logs: other.example/log)" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--data", "missing.bin", "data file {tmp}/missing.bin does not exist"),
        ("--data", ".", "data file {tmp} is a folder"),
        ("--event", "missing.json", "disclosed event {tmp}/missing.json does not exist"),
        ("--event", "bad.json", "is not a disclosed event"),
        ("--leaf-hash", "***", "--leaf-hash is not base64"),
    ],
    ids=["data-missing", "data-folder", "event-missing", "event-malformed", "leaf-hash"],
)
def test_malformed_entry_options(
    offline: dict[str, Path], tmp_path: Path, option: str, value: str, message: str
) -> None:
    (tmp_path / "bad.json").write_text('{"event": {"type": "x"}, "salt": "not hex"}')
    argument = value if option == "--leaf-hash" else str(tmp_path / value) if value != "." else str(tmp_path)
    err = refused(
        2, "ledger", "verify-bundle", offline["bundle"], "--policy", offline["policy"], option, argument, fork=False
    )
    assert message.format(tmp=tmp_path) in err


def test_missing_bundle_and_policy_files(offline: dict[str, Path], tmp_path: Path) -> None:
    err = refused(2, "ledger", "verify-bundle", tmp_path / "none.tlog-proof", "--policy", offline["policy"], fork=False)
    assert f"proof bundle {tmp_path / 'none.tlog-proof'} does not exist" in err
    err = refused(2, "ledger", "verify-bundle", offline["bundle"], "--policy", tmp_path, fork=False)
    assert f"policy {tmp_path} is a folder" in err


# --- witnesses: forks and rollbacks over real HTTP -------------------------------------------------------------------


@dataclass
class ServedWitness:
    url: str
    store: SqliteStore
    witness: Witness

    def post(self, old: int, proof: list[bytes], note: str) -> httpx.Response:
        return httpx.post(
            self.url + "/add-checkpoint", content=format_add_checkpoint_request(old, proof, note), timeout=10
        )

    def state(self) -> tuple[WitnessState | None, str]:
        monitored = httpx.get(f"{self.url}/{origin_hash(ORIGIN)}/checkpoint", timeout=10)
        return self.store.witness_state(ORIGIN), monitored.text


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[tuple[Log, Log]]:
    """The holder's log and a fork of it: a copy of the home taken at init, so the same key and origin."""
    holder = Node.init(tmp_path / "holder", origin=ORIGIN)
    holder.close()
    shutil.copytree(tmp_path / "holder", tmp_path / "fork")
    holder, fork = Node.open(tmp_path / "holder"), Node.open(tmp_path / "fork")
    try:
        yield holder.log, fork.log
    finally:
        holder.close()
        fork.close()


@pytest.fixture
def served(tmp_path: Path, logs: tuple[Log, Log]) -> Iterator[ServedWitness]:
    store = SqliteStore(tmp_path / "witness.db", create=True)
    witness = Witness(store, CosignatureSigner.generate("court.example/witness"), [logs[0].signer.verifier])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_witness_app(witness), log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield ServedWitness(f"http://127.0.0.1:{port}", store, witness)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        store.close()


def grow(log: Log, datas: list[bytes]) -> str:
    log.append_many(datas)
    return log.publish_checkpoint().note


def test_witness_refuses_a_forked_log_and_keeps_its_state(served: ServedWitness, logs: tuple[Log, Log]) -> None:
    holder, fork = logs
    assert parse_vkey(holder.signer.verifier.vkey) == parse_vkey(fork.signer.verifier.vkey)  # one key, two histories
    note4 = grow(holder, [b"a", b"b", b"c", b"d"])
    assert served.post(0, [], note4).status_code == 200
    before = served.state()
    assert before[0] is not None and before[0].size == 4

    forked4 = grow(fork, [b"a", b"b", b"c", b"EVIL"])
    response = served.post(4, [], forked4)  # same size, another root
    assert response.status_code == 422
    assert "different root hash for tree size 4" in response.text
    assert served.state() == before

    forked6 = grow(fork, [b"e", b"f"])  # consistent with the fork's own size 4, not with the cosigned one
    response = served.post(4, fork.consistency_proof(4, 6), forked6)
    assert response.status_code == 422
    assert "consistency proof does not verify" in response.text
    assert served.state() == before

    # the honest log still gets its next checkpoint cosigned
    note6 = grow(holder, [b"e", b"f"])
    assert served.post(4, holder.consistency_proof(4, 6), note6).status_code == 200
    assert served.state()[0].size == 6  # type: ignore[union-attr]


def test_witness_refuses_a_rolled_back_checkpoint_and_keeps_its_state(
    served: ServedWitness, logs: tuple[Log, Log]
) -> None:
    holder, _ = logs
    note3 = grow(holder, [b"a", b"b", b"c"])
    note8 = grow(holder, [b"d", b"e", b"f", b"g", b"h"])
    assert served.post(0, [], note8).status_code == 200
    before = served.state()
    assert before[0] is not None and before[0].size == 8

    response = served.post(8, [], note3)  # honest old size, smaller checkpoint
    assert response.status_code == 400
    assert "old size 8 is larger than the checkpoint size 3" in response.text
    assert served.state() == before

    response = served.post(0, [], note3)  # pretending the witness never saw size 8
    assert response.status_code == 409
    assert (response.headers["content-type"], response.text) == ("text/x.tlog.size", "8\n")
    assert served.state() == before
