"""`trustlane ledger ...`: append, checkpoints, proofs, bundles and the fsck."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from trustlane.canonical import canonical_json
from trustlane.cli.common import HomeOption, JsonOption, b64, emit_json, err, open_node
from trustlane.crypto.note import parse_vkey
from trustlane.errors import MalformedInput, UsageError
from trustlane.ledger import merkle
from trustlane.ledger.events import commitment_of
from trustlane.ledger.fsck import fsck
from trustlane.ledger.policy import Policy, parse_policy
from trustlane.ledger.proofs import TlogProof, parse_tlog_proof, verify_tlog_proof
from trustlane.node import Node

app = typer.Typer(help="The evidence ledger: append, checkpoints, proofs, verification.", no_args_is_help=True)
witnesses_app = typer.Typer(help="Witnesses this log asks for cosignatures.", no_args_is_help=True)
app.add_typer(witnesses_app, name="witnesses")


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    path = Path(name)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"input file {name} does not exist", hint="check the path") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{name} is a folder, not a file", hint="pass files, or - for stdin") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from exc


def _read_file(path: Path, what: str) -> bytes:
    """The bytes of an input file named by an option; a missing or unreadable file is a usage error."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"{what} {path} does not exist", hint="check the path") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{what} {path} is a folder, not a file", hint="pass a file") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _tree_size(node: Node, size: int | None, what: str) -> int:
    """``size``, or the current tree size when None; a size the log has not reached is a usage error."""
    current = node.store.tree_size()
    if size is None:
        return current
    if not 0 <= size <= current:
        raise UsageError(f"{what} {size} is outside 0..{current}", hint="ask for a size the log has reached")
    return size


@app.command()
def append(
    files: Annotated[list[str], typer.Argument(help="Files whose bytes become one leaf each; - reads stdin.")],
    home: HomeOption = None,
) -> None:
    """Append each file as one leaf; print one JSON line per entry once it is durable."""
    if files.count("-") > 1:
        raise UsageError("stdin (-) can be given only once")
    datas = [_read_input(f) for f in files]  # read everything before writing anything
    with open_node(home) as node:
        for result in node.log.append_many(datas):
            emit_json({"index": result.index, "leaf_hash": b64(result.leaf_hash)})


@app.command()
def checkpoint(
    home: HomeOption = None,
    no_witnesses: Annotated[bool, typer.Option("--no-witnesses", help="Do not ask witnesses to cosign.")] = False,
) -> None:
    """Print the latest signed checkpoint, publishing (and getting cosigned) a new one first if the tree grew."""
    with open_node(home) as node:
        if no_witnesses:
            node.config = replace(node.config, witnesses=())
        record = node.log.publish_checkpoint()
        sys.stdout.write(node.log.signed_checkpoint(record).text)


@app.command()
def vkey(home: HomeOption = None) -> None:
    """Print the log's verifier key (C2SP vkey)."""
    with open_node(home) as node:
        print(node.log_verifier.vkey)


@app.command()
def prove(
    index: Annotated[int, typer.Option("--index", help="Entry index.")],
    size: Annotated[int | None, typer.Option("--size", help="Tree size (default: current).")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Inclusion proof for one entry, in the transparency-dev vector layout."""
    with open_node(home) as node:
        tree_size = _tree_size(node, size, "tree size")
        if not 0 <= index < tree_size:
            raise UsageError(
                f"entry {index} is not in the tree of size {tree_size}",
                hint="pass an index below the tree size (see `trustlane ledger checkpoint`)",
            )
        proof = node.log.inclusion_proof(index, tree_size)
        entry = node.store.entry(index)
        assert entry is not None  # inclusion_proof checked the index
        out: dict[str, Any] = {
            "leafIdx": index,
            "treeSize": tree_size,
            "root": b64(node.log.root(tree_size)),
            "leafHash": b64(entry.leaf_hash),
            "proof": [b64(p) for p in proof],
        }
    if json_out:
        emit_json(out)
    else:
        print(f"entry {index} in tree of size {tree_size}\nroot {out['root']}\nleaf {out['leafHash']}")
        for p in out["proof"]:
            print(f"  {p}")


@app.command()
def consistency(
    old: Annotated[int, typer.Option("--old", help="Older tree size.")],
    new: Annotated[int | None, typer.Option("--new", help="Newer tree size (default: current).")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Consistency proof between two tree sizes."""
    with open_node(home) as node:
        size2 = _tree_size(node, new, "new size")
        if not 0 <= old <= size2:
            raise UsageError(
                f"no consistency proof from size {old} to size {size2}",
                hint="the old size must be between 0 and the new size",
            )
        proof = node.log.consistency_proof(old, size2)
        out: dict[str, Any] = {
            "size1": old,
            "size2": size2,
            "root1": b64(node.log.root(old)),
            "root2": b64(node.log.root(size2)),
            "proof": [b64(p) for p in proof],
        }
    if json_out:
        emit_json(out)
    else:
        print(f"{old} -> {size2}\nroot1 {out['root1']}\nroot2 {out['root2']}")
        for p in out["proof"]:
            print(f"  {p}")


@app.command()
def verify(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Fsck: recompute every leaf, node and root; check every checkpoint and cosignature."""
    with open_node(home) as node:
        witnesses = node.witness_verifiers()
        with Progress(
            TextColumn("verifying"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=json_out or not err.is_terminal,
        ) as bar:
            task = bar.add_task("fsck", total=node.store.tree_size())
            report = fsck(
                node.store, node.log_verifier, witnesses, lambda done, total: bar.update(task, completed=done)
            )
    out = {
        "ok": True,
        "entries": report.entries,
        "nodes": report.nodes,
        "checkpoints": report.checkpoints,
        "cosignatures": report.cosignatures,
        "events": report.events,
        "root": b64(report.root),
        "warnings": report.warnings,
    }
    if json_out:
        emit_json(out)
    else:
        print(
            f"ledger intact: {report.entries} entries, {report.nodes} nodes, {report.checkpoints} checkpoints, "
            f"{report.cosignatures} cosignatures, {report.events} event commitments"
        )
        for w in report.warnings:
            err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)


@app.command()
def bundle(
    index: Annotated[int, typer.Option("--index", help="Entry index.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    home: HomeOption = None,
) -> None:
    """Offline proof bundle (C2SP tlog-proof) for one entry against the latest cosigned checkpoint."""
    with open_node(home) as node:
        record = node.log.publish_checkpoint()
        if not 0 <= index < record.size:
            raise UsageError(f"entry {index} is not in the latest checkpoint (size {record.size})")
        signed = node.log.signed_checkpoint(record)
        entry = node.store.entry(index)
        assert entry is not None
        proof = TlogProof(
            index=index,
            inclusion_path=tuple(node.log.inclusion_proof(index, record.size)),
            checkpoint_text=signed.text,
            extra=entry.data,
        )
    text = proof.format()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        err.print(f"wrote {escape(str(out))}")


@app.command("verify-bundle")
def verify_bundle(
    proof_file: Annotated[Path, typer.Argument(help="A .tlog-proof file.")],
    policy_file: Annotated[Path, typer.Option("--policy", help="C2SP tlog-policy file with the trusted keys.")],
    data: Annotated[Path | None, typer.Option("--data", help="The entry's data, to recompute its leaf.")] = None,
    leaf_hash: Annotated[str | None, typer.Option("--leaf-hash", help="The entry's leaf hash (base64).")] = None,
    event: Annotated[
        Path | None,
        typer.Option("--event", help='A disclosed event: JSON {"event": {...}, "salt": "<hex>"}.'),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Verify a proof bundle offline with public keys only: log signature, witness quorum, inclusion.

    The entry is named by --data, --leaf-hash, --event (a disclosed event and its salt), or else the
    bundle's extra data.
    """
    proof = parse_tlog_proof(_read_file(proof_file, "proof bundle"))
    policy = parse_policy(_read_file(policy_file, "policy"))
    if data is not None:
        leaf = merkle.leaf_hash(_read_file(data, "data file"))
    elif leaf_hash is not None:
        try:
            leaf = base64.b64decode(leaf_hash, validate=True)
        except binascii.Error as exc:
            raise MalformedInput("--leaf-hash is not base64") from exc
    elif event is not None:
        leaf = merkle.leaf_hash(_disclosed_commitment(event))
    elif proof.extra is not None:
        leaf = merkle.leaf_hash(proof.extra)
    else:
        raise UsageError("say which entry the bundle proves", hint="pass --data FILE or --leaf-hash B64")
    signed = verify_tlog_proof(proof, leaf, policy)
    out = {
        "ok": True,
        "origin": signed.checkpoint.origin,
        "index": proof.index,
        "treeSize": signed.checkpoint.size,
        "root": b64(signed.checkpoint.root),
        "leafHash": b64(leaf),
    }
    if json_out:
        emit_json(out)
    else:
        print(f"verified: entry {proof.index} is in {out['origin']} at size {out['treeSize']}")


def _disclosed_commitment(path: Path) -> bytes:
    """The commitment a disclosed event opens (see docs/COMMITMENTS.md)."""
    raw = _read_file(path, "disclosed event")
    try:
        disclosed = json.loads(raw)
        salt = bytes.fromhex(disclosed["salt"])
        body = canonical_json(disclosed["event"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedInput(
            f"{path} is not a disclosed event", hint='expected {"event": {...}, "salt": "<64 hex digits>"}'
        ) from exc
    return commitment_of(body, salt)


@app.command()
def policy(
    quorum: Annotated[int, typer.Option(help="Witness cosignatures required (k of the configured n).")] = -1,
    home: HomeOption = None,
) -> None:
    """Print a C2SP tlog-policy file naming this log and its witnesses, for offline verifiers."""
    with open_node(home) as node:
        witnesses = [(w.name, parse_vkey(w.vkey)) for w in node.config.witnesses]
        k = node.config.witness_quorum if quorum < 0 else quorum
        if k > len(witnesses):
            raise UsageError(f"a quorum of {k} needs at least {k} witnesses; {len(witnesses)} are configured")
        sys.stdout.write(Policy.simple(node.log_verifier, witnesses, k).format())


@witnesses_app.command("add")
def witnesses_add(
    name: Annotated[str, typer.Argument(help="A short name for the witness.")],
    url: Annotated[str, typer.Argument(help="The witness's submission prefix, e.g. http://host:7380.")],
    vkey_text: Annotated[str, typer.Argument(metavar="VKEY", help="The witness's cosignature vkey.")],
    home: HomeOption = None,
) -> None:
    """Ask this witness to cosign every new checkpoint."""
    with open_node(home) as node:
        node.add_witness(name, url, vkey_text)
    err.print(f"witness {escape(name)} added")


@witnesses_app.command("list")
def witnesses_list(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Configured witnesses and the last size each cosigned."""
    with open_node(home) as node:
        last: dict[str, int] = {}
        for c in node.store.cosignatures():
            last[c.witness] = max(last.get(c.witness, 0), c.size)
        rows = [
            {"name": w.name, "url": w.url, "vkey": w.vkey, "last_cosigned": last.get(parse_vkey(w.vkey).name)}
            for w in node.config.witnesses
        ]
    if json_out:
        emit_json(rows)
    else:
        for r in rows:
            print(f"{r['name']}\t{r['url']}\tlast cosigned size {r['last_cosigned']}")
