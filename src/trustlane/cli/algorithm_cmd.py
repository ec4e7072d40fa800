"""`trustlane algorithm ...`: pin algorithm packages by digest and approve them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from trustlane.analysis.algorithms import parse_ref
from trustlane.analysis.holder import Holder
from trustlane.analysis.package import tree_digest
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node

app = typer.Typer(help="Algorithms: register (pin by digest), approve, list.", no_args_is_help=True)


@app.command()
def register(
    path: Annotated[Path, typer.Argument(help="Package folder: algorithm.py with run(inputs, params), schema.json.")],
    name: Annotated[str, typer.Option("--name", help="Algorithm name, e.g. collision-timing.")],
    version: Annotated[str, typer.Option("--version", help="Version, e.g. 1.0.0.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Pin a package: copy it into the node and record the digest of its file tree in the ledger."""
    with open_node(home) as node, Holder(node) as holder:
        algorithm = holder.algorithms.register(path, name, version)
    if json_out:
        emit_json(algorithm.to_json())
    else:
        err.print(f"[green]registered[/] {escape(algorithm.ref)}")
        print(algorithm.digest)


@app.command()
def approve(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    as_party: Annotated[
        str | None, typer.Option("--as", help="A local regulator party approving (default: the holder).")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Approve a registered, unmodified algorithm (holder by default; a regulator with --as)."""
    name, version = parse_ref(ref)
    with open_node(home) as node, Holder(node) as holder:
        if as_party is None:
            algorithm = holder.algorithms.approve(name, version, node.signer, "holder")
        else:
            party = holder.parties.require_active(as_party)
            algorithm = holder.algorithms.approve(name, version, holder.parties.signer(as_party), party.role)
    if json_out:
        emit_json(algorithm.to_json())
    else:
        by = ", ".join(f"{a.by} ({a.role})" for a in algorithm.approvals)
        print(f"{algorithm.ref} approved by {by}")


@app.command("list")
def list_(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """List registered algorithms with digests and approvals."""
    with open_node(home) as node, Holder(node) as holder:
        algorithms = holder.algorithms.all()
    if json_out:
        emit_json([a.to_json() for a in algorithms])
        return
    for a in algorithms:
        approved = ", ".join(f"{x.by} ({x.role})" for x in a.approvals) or "not approved"
        print(f"{a.ref:32} {a.digest}  {approved}")


@app.command()
def digest(path: Annotated[Path, typer.Argument(help="Package folder.")]) -> None:
    """Print the digest of a package's file tree (what a contract pins and a report names)."""
    print(tree_digest(path))
