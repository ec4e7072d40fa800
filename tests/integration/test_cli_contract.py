"""The stable CLI contract of docs/CLI.md, driven through the real `trustlane` command in subprocesses."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from trustlane.cli.main import run
from trustlane.crypto.note import parse_vkey
from trustlane.errors import ProofError, SignatureError
from trustlane.ledger import merkle
from trustlane.ledger.checkpoint import verify_checkpoint
from trustlane.ledger.policy import Policy, verify_checkpoint_with_policy
from trustlane.ledger.witness import origin_hash
from trustlane.node import Node
from trustlane.ops.subprocess_server import free_port, trustlane_server

ORIGIN = "contract.example/log"
B64 = r"[A-Za-z0-9+/]+={0,2}"


@dataclass
class Result:
    code: int
    out: str
    err: str


def trustlane(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Result:
    """Run `python -m trustlane ARGS` with a clean environment (no TRUSTLANE_HOME unless given)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TRUSTLANE_HOME", "TRUSTLANE_DEBUG")}
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "trustlane", *map(str, args)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=cwd,
        env=environment,
        timeout=120,
        check=False,
    )
    result = Result(done.returncode, done.stdout.decode(), done.stderr.decode())
    assert "Traceback" not in result.err, result.err
    return result


def ok(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Result:
    result = trustlane(*args, cwd=cwd, env=env, stdin=stdin)
    assert result.code == 0, f"trustlane {' '.join(map(str, args))} exited {result.code}: {result.err}"
    return result


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def leaf(data: bytes) -> bytes:
    """RFC 9162 leaf hash, computed here independently of trustlane."""
    return hashlib.sha256(b"\x00" + data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 Merkle tree hash of leaf hashes, computed here independently of trustlane."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


# --- a ledger built through the CLI, shared by the read-only contract tests ----------------------------


@dataclass
class Ledger:
    home: Path
    files: Path
    datas: list[bytes] = field(default_factory=list)
    append_outputs: list[str] = field(default_factory=list)  # stdout of each `ledger append` call
    checkpoints: dict[int, str] = field(default_factory=dict)  # size -> `ledger checkpoint` stdout
    repeated_checkpoint: str = ""
    vkey: str = ""


BATCHES: list[list[bytes]] = [
    [b"alpha report\n", b"", b"read from stdin\n"],  # a file, an empty file, stdin
    [f"second batch {i}".encode() for i in range(4)],
    [f"third batch {i}".encode() * (i + 1) for i in range(6)],
]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    root = tmp_path_factory.mktemp("contract")
    built = Ledger(root / "holder", root / "files")
    built.files.mkdir()
    ok("init", "--home", built.home, "--origin", ORIGIN)
    built.checkpoints[0] = ok("ledger", "checkpoint", "--home", built.home).out
    for number, batch in enumerate(BATCHES):
        args: list[str | Path] = []
        stdin = None
        for position, data in enumerate(batch):
            if number == 0 and position == 2:
                args.append("-")
                stdin = data
            else:
                path = built.files / f"entry-{len(built.datas) + position}.bin"
                path.write_bytes(data)
                args.append(path)
        built.append_outputs.append(ok("ledger", "append", "--home", built.home, *args, stdin=stdin).out)
        built.datas += batch
        built.checkpoints[len(built.datas)] = ok("ledger", "checkpoint", "--home", built.home).out
    built.repeated_checkpoint = ok("ledger", "checkpoint", "--home", built.home).out
    built.vkey = ok("ledger", "vkey", "--home", built.home).out.strip()
    return built


def checkpoint_root(text: str) -> bytes:
    return base64.b64decode(text.split("\n")[2])


# --- --help everywhere ------------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["init"],
    ["demo"],
    ["version"],
    ["ledger"],
    ["ledger", "append"],
    ["ledger", "checkpoint"],
    ["ledger", "vkey"],
    ["ledger", "prove"],
    ["ledger", "consistency"],
    ["ledger", "verify"],
    ["ledger", "bundle"],
    ["ledger", "verify-bundle"],
    ["ledger", "policy"],
    ["ledger", "witnesses"],
    ["ledger", "witnesses", "add"],
    ["ledger", "witnesses", "list"],
    ["witness"],
    ["witness", "serve"],
    ["witness", "trust"],
    ["witness", "vkey"],
    ["bench"],
    ["bench", "ledger-append"],
    ["bench", "ledger-latency"],
    ["bench", "ledger-proofs"],
]


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The CLI configures logging for its process; undo that after an in-process run."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "trustlane")
def test_help_works_on_every_command_and_group(
    command: list[str], capsys: pytest.CaptureFixture[str], keep_logging: None
) -> None:
    run([*command, "--help"])  # returns (exit status 0) instead of exiting with an error
    out = capsys.readouterr().out
    assert re.search(r"Usage: trustlane " + re.escape(" ".join(command)), out), out
    assert "--help" in out


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str], keep_logging: None) -> None:
    groups: dict[tuple[str, ...], set[str]] = {}
    for command in COMMANDS:
        if command:
            groups.setdefault(tuple(command[:-1]), set()).add(command[-1])
    for group, members in groups.items():
        run([*group, "--help"])
        out = capsys.readouterr().out
        for member in members:
            assert re.search(rf"\b{re.escape(member)}\b", out), f"{member} missing from `{' '.join(group)} --help`"


# --- init and home resolution -------------------------------------------------------------------------------


def assert_home(home: Path, origin: str) -> None:
    assert (home / "config.toml").is_file()
    assert f'origin = "{origin}"' in (home / "config.toml").read_text()
    for key in ("keys/log.key", "keys/witness.key"):
        assert stat.S_IMODE((home / key).stat().st_mode) == 0o600, key
    assert (home / "ledger.db").is_file()


@pytest.mark.slow
def test_init_home_resolution_and_key_modes(tmp_path: Path) -> None:
    # --home wins over $TRUSTLANE_HOME
    env_home = tmp_path / "from-env"
    explicit = ["--home", str(tmp_path / "explicit"), "--origin", "a.example/log", "--json"]
    result = ok("init", *explicit, cwd=tmp_path, env={"TRUSTLANE_HOME": str(env_home)})
    info = json.loads(result.out)
    assert info["home"] == str(tmp_path / "explicit")
    assert info["origin"] == "a.example/log"
    assert parse_vkey(info["log_vkey"]).name == "a.example/log"
    assert parse_vkey(info["witness_vkey"]).sig_type == 0x04
    assert_home(tmp_path / "explicit", "a.example/log")
    assert not env_home.exists()

    # else $TRUSTLANE_HOME, for init and for every other command
    ok("init", "--origin", "b.example/log", cwd=tmp_path, env={"TRUSTLANE_HOME": str(env_home)})
    assert_home(env_home, "b.example/log")
    vkey = ok("ledger", "vkey", cwd=tmp_path, env={"TRUSTLANE_HOME": str(env_home)}).out.strip()
    assert vkey == (env_home / "keys/log.vkey").read_text().strip()

    # else ./.trustlane in the working directory
    ok("init", "--origin", "c.example/log", cwd=tmp_path)
    assert_home(tmp_path / ".trustlane", "c.example/log")
    assert ok("ledger", "vkey", cwd=tmp_path).out.strip().startswith("c.example/log+")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".trustlane", "explicit", "from-env"]  # no leftovers


# --- append ----------------------------------------------------------------------------------------------------


def test_append_prints_one_json_line_per_entry_with_its_leaf_hash(ledger: Ledger) -> None:
    index = 0
    for output, batch in zip(ledger.append_outputs, BATCHES, strict=True):
        lines = output.splitlines()
        assert len(lines) == len(batch)
        for line, data in zip(lines, batch, strict=True):
            record = json.loads(line)
            assert set(record) == {"index", "leaf_hash"}
            assert record["index"] == index  # indices continue across calls
            assert record["leaf_hash"] == b64(leaf(data))
            index += 1
    # the empty file is a leaf of its own: SHA-256(0x00)
    assert json.loads(ledger.append_outputs[0].splitlines()[1])["leaf_hash"] == b64(hashlib.sha256(b"\x00").digest())


# --- checkpoint and vkey -----------------------------------------------------------------------------------


def test_checkpoint_is_a_c2sp_note_verified_by_the_printed_vkey(ledger: Ledger) -> None:
    verifier = parse_vkey(ledger.vkey)
    assert verifier.name == ORIGIN
    leaves = [leaf(d) for d in ledger.datas]
    assert sorted(ledger.checkpoints) == [0, 3, 7, 13]
    for size, text in ledger.checkpoints.items():
        lines = text.split("\n")
        assert lines[0] == ORIGIN
        assert lines[1] == str(size)
        assert re.fullmatch(B64, lines[2])
        assert base64.b64decode(lines[2]) == mth(leaves[:size])
        assert lines[3] == ""
        assert re.fullmatch("— " + re.escape(ORIGIN) + " " + B64, lines[4])
        assert lines[5:] == [""]  # the note ends with a newline
        signed = verify_checkpoint(text, verifier)
        assert (signed.checkpoint.size, signed.checkpoint.root) == (size, mth(leaves[:size]))


def test_checkpoint_is_published_only_when_the_tree_grew(ledger: Ledger) -> None:
    assert ledger.repeated_checkpoint == ledger.checkpoints[13]
    with Node.open(ledger.home) as node:
        assert [c.size for c in node.store.checkpoints()] == [0, 3, 7, 13]


def test_a_checkpoint_signed_by_another_key_does_not_verify(ledger: Ledger, tmp_path: Path) -> None:
    other = Node.init(tmp_path / "other", origin=ORIGIN)  # same origin, another key
    try:
        with pytest.raises(SignatureError, match="no signature from a trusted key"):
            verify_checkpoint(ledger.checkpoints[13], other.log_verifier)
    finally:
        other.close()


# --- prove -------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("index", "size"), [(0, None), (12, None), (5, 7), (2, 3), (6, 7)])
def test_prove_json_verifies_and_matches_the_checkpoint(ledger: Ledger, index: int, size: int | None) -> None:
    args = ["ledger", "prove", "--home", str(ledger.home), "--index", str(index), "--json"]
    if size is not None:
        args += ["--size", str(size)]
    out = json.loads(ok(*args).out)
    assert set(out) == {"leafIdx", "treeSize", "root", "leafHash", "proof"}
    tree_size = 13 if size is None else size
    assert (out["leafIdx"], out["treeSize"]) == (index, tree_size)
    assert out["leafHash"] == b64(leaf(ledger.datas[index]))
    assert out["root"] == b64(checkpoint_root(ledger.checkpoints[tree_size]))
    proof = [base64.b64decode(p) for p in out["proof"]]
    merkle.verify_inclusion(index, tree_size, leaf(ledger.datas[index]), proof, base64.b64decode(out["root"]))
    with pytest.raises(ProofError, match="does not lead to the expected root"):  # the proof is specific to the entry
        merkle.verify_inclusion(index, tree_size, leaf(b"another entry"), proof, base64.b64decode(out["root"]))


# --- consistency --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("old", "new"), [(3, None), (7, None), (3, 7), (1, 13), (5, 7), (13, None)])
def test_consistency_json_verifies_between_published_checkpoints(ledger: Ledger, old: int, new: int | None) -> None:
    args = ["ledger", "consistency", "--home", str(ledger.home), "--old", str(old), "--json"]
    if new is not None:
        args += ["--new", str(new)]
    out = json.loads(ok(*args).out)
    assert set(out) == {"size1", "size2", "root1", "root2", "proof"}
    size2 = 13 if new is None else new
    assert (out["size1"], out["size2"]) == (old, size2)
    leaves = [leaf(d) for d in ledger.datas]
    root1, root2 = base64.b64decode(out["root1"]), base64.b64decode(out["root2"])
    assert (root1, root2) == (mth(leaves[:old]), mth(leaves[:size2]))
    if old in ledger.checkpoints:
        assert root1 == checkpoint_root(ledger.checkpoints[old])
    assert root2 == checkpoint_root(ledger.checkpoints[size2])
    proof = [base64.b64decode(p) for p in out["proof"]]
    merkle.verify_consistency(old, size2, proof, root1, root2)
    if old not in (0, size2):
        with pytest.raises(ProofError, match="does not verify"):
            merkle.verify_consistency(old, size2, proof, mth(leaves[1 : old + 1]), root2)


# --- verify ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_verify_exits_zero_on_an_intact_ledger(ledger: Ledger) -> None:
    out = json.loads(ok("ledger", "verify", "--home", ledger.home, "--json").out)
    assert out["ok"] is True
    assert (out["entries"], out["checkpoints"], out["cosignatures"]) == (13, 4, 0)
    assert out["root"] == b64(mth([leaf(d) for d in ledger.datas]))
    text = ok("ledger", "verify", "--home", ledger.home).out
    assert "ledger intact: 13 entries" in text


# --- bundle, policy, verify-bundle ---------------------------------------------------------------------------


@pytest.mark.slow
def test_bundle_policy_verify_bundle_round_trip(ledger: Ledger, tmp_path: Path) -> None:
    index = 4
    bundle = tmp_path / "entry.tlog-proof"
    ok("ledger", "bundle", "--home", ledger.home, "--index", str(index), "--out", bundle)
    text = bundle.read_text()
    assert text.startswith("c2sp.org/tlog-proof@v1\n")
    assert text.endswith(ledger.checkpoints[13])  # the latest checkpoint, verbatim
    policy = tmp_path / "trust.policy"
    policy.write_text(ok("ledger", "policy", "--home", ledger.home).out)
    assert policy.read_text() == f"log {ledger.vkey}\nquorum none\n"
    data = ledger.files / f"entry-{index}.bin"
    assert data.read_bytes() == ledger.datas[index]

    for extra in ([], ["--data", str(data)], ["--leaf-hash", b64(leaf(ledger.datas[index]))]):
        out = json.loads(ok("ledger", "verify-bundle", bundle, "--policy", policy, "--json", *extra).out)
        assert out == {
            "ok": True,
            "origin": ORIGIN,
            "index": index,
            "treeSize": 13,
            "root": b64(checkpoint_root(ledger.checkpoints[13])),
            "leafHash": b64(leaf(ledger.datas[index])),
        }
    human = ok("ledger", "verify-bundle", bundle, "--policy", policy, "--data", data).out
    assert f"verified: entry {index} is in {ORIGIN} at size 13" in human

    # a data file that differs from the entry
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(ledger.datas[index] + b"!")
    failed = trustlane("ledger", "verify-bundle", bundle, "--policy", policy, "--data", wrong)
    assert failed.code == 6
    assert "does not lead to the expected root" in failed.err
    assert failed.out == ""

    # a policy requiring a witness quorum the bundle lacks
    strict_home = tmp_path / "strict"
    shutil.copytree(ledger.home, strict_home)
    witness_vkey = ok("witness", "vkey", "--home", strict_home).out.strip()  # any cosigner key will do
    ok("ledger", "witnesses", "add", "--home", strict_home, "court", "http://127.0.0.1:9", witness_vkey)
    strict = tmp_path / "strict.policy"
    strict.write_text(ok("ledger", "policy", "--home", strict_home, "--quorum", "1").out)
    assert f"witness court {witness_vkey}" in strict.read_text()
    failed = trustlane("ledger", "verify-bundle", bundle, "--policy", strict, "--data", data)
    assert failed.code == 6
    assert "quorum" in failed.err
    assert failed.out == ""


# --- a witness round over real HTTP ---------------------------------------------------------------------------


@pytest.mark.slow
def test_witness_round_over_http(tmp_path: Path) -> None:
    holder, court = tmp_path / "holder", tmp_path / "court"
    ok("init", "--home", holder, "--origin", "holder.example/log")
    ok("init", "--home", court, "--origin", "court.example/log")
    log_vkey = ok("ledger", "vkey", "--home", holder).out.strip()
    witness_vkey = ok("witness", "vkey", "--home", court).out.strip()
    ok("witness", "trust", "--home", court, log_vkey)
    assert log_vkey in (court / "config.toml").read_text()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("TRUSTLANE_HOME", "TRUSTLANE_DEBUG")}
    argv = ["witness", "serve", "--home", str(court), "--port", str(port)]
    with trustlane_server(argv, url + "/healthz", env):
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        assert httpx.get(url + "/vkey", timeout=5).text.strip() == witness_vkey
        ok("ledger", "witnesses", "add", "--home", holder, "court", url, witness_vkey)
        first = tmp_path / "first.bin"
        first.write_bytes(b"first")
        ok("ledger", "append", "--home", holder, first, "-", stdin=b"second")

        checkpoint = ok("ledger", "checkpoint", "--home", holder).out
        lines = checkpoint.split("\n")
        assert lines[:2] == ["holder.example/log", "2"]
        assert lines[4].startswith("— holder.example/log ")
        witness = parse_vkey(witness_vkey)
        assert re.fullmatch("— " + re.escape(witness.name) + " " + B64, lines[5]), checkpoint  # the cosignature
        policy = Policy.simple(parse_vkey(log_vkey), [("court", witness)], 1)
        assert verify_checkpoint_with_policy(checkpoint, policy).checkpoint.size == 2

        listed = json.loads(ok("ledger", "witnesses", "list", "--home", holder, "--json").out)
        assert listed == [{"name": "court", "url": url, "vkey": witness_vkey, "last_cosigned": 2}]

        # the tree grows: the witness cosigns again, after checking consistency from size 2
        ok("ledger", "append", "--home", holder, "-", stdin=b"third")
        checkpoint = ok("ledger", "checkpoint", "--home", holder).out
        assert verify_checkpoint_with_policy(checkpoint, policy).checkpoint.size == 3
        listed = json.loads(ok("ledger", "witnesses", "list", "--home", holder, "--json").out)
        assert listed[0]["last_cosigned"] == 3
        monitored = httpx.get(f"{url}/{origin_hash('holder.example/log')}/checkpoint", timeout=5)
        assert monitored.status_code == 200
        assert verify_checkpoint_with_policy(monitored.text, policy).checkpoint.size == 3

        report = json.loads(ok("ledger", "verify", "--home", holder, "--json").out)
        assert (report["entries"], report["cosignatures"], report["warnings"]) == (3, 2, [])

        # an offline bundle with the cosigned checkpoint satisfies a 1-of-1 witness policy
        bundle, trust = tmp_path / "e.tlog-proof", tmp_path / "trust.policy"
        ok("ledger", "bundle", "--home", holder, "--index", "1", "--out", bundle)
        trust.write_text(ok("ledger", "policy", "--home", holder, "--quorum", "1").out)
        out = json.loads(ok("ledger", "verify-bundle", bundle, "--policy", trust, "--json").out)
        assert (out["index"], out["treeSize"], out["leafHash"]) == (1, 3, b64(leaf(b"second")))
