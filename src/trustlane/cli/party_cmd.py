"""`trustlane party ...`: the parties a node knows, their roles, keys and API tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from trustlane.analysis.holder import Holder
from trustlane.analysis.parties import ROLES, check_party_name
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.crypto.keys import NOTE_KEY, write_private_key
from trustlane.crypto.note import Ed25519Signer
from trustlane.errors import UsageError

app = typer.Typer(
    help="Parties: holder, agencies, insurers, courts, regulators, users, witnesses.", no_args_is_help=True
)


def read_vkey_arg(value: str) -> str:
    """A vkey given inline or as a file holding one."""
    path = Path(value)
    if "+" not in value and not path.is_file():
        raise UsageError(f"{value} is neither a vkey nor a readable file", hint="pass the file `party keygen` wrote")
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    return value.strip()


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="Party name, e.g. cn-inspection-agency.")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    vkey: Annotated[
        str | None, typer.Option("--vkey", help="The party's verifier key (file or text); omit to make a local key.")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a party. Without --vkey the node makes its key pair and keeps it (a local party)."""
    with open_node(home) as node, Holder(node) as holder:
        party = holder.parties.add(name, role, None if vkey is None else read_vkey_arg(vkey))
    if json_out:
        emit_json(party.to_json())
    else:
        err.print(f"[green]added[/] {escape(party.name)} ({party.role}{', local key' if party.key_held else ''})")
        print(party.vkey)


@app.command("list")
def list_(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """List parties."""
    with open_node(home) as node, Holder(node) as holder:
        parties = holder.parties.all()
    if json_out:
        emit_json([p.to_json() for p in parties])
        return
    for p in parties:
        state = "" if p.active else " (revoked)"
        print(f"{p.name:32} {p.role:10} {'local' if p.key_held else 'remote':6} {p.vkey}{state}")


@app.command()
def revoke(
    name: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")],
    home: HomeOption = None,
) -> None:
    """Revoke a party and all its API tokens."""
    with open_node(home) as node, Holder(node) as holder:
        holder.parties.revoke(name, reason)
    err.print(f"revoked {escape(name)}")


@app.command()
def token(
    name: str,
    days: Annotated[int, typer.Option(help="Lifetime in days.")] = 30,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Issue an API bearer token for a party's scripts (shown once; only its hash is stored)."""
    with open_node(home) as node, Holder(node) as holder:
        issued = holder.parties.issue_token(name, label, days)
    if json_out:
        emit_json({"party": issued.party, "token": issued.token, "expires_ns": issued.expires_ns})
    else:
        print(issued.token)


@app.command()
def keygen(
    name: Annotated[str, typer.Argument(help="The party name the key is for.")],
    out: Annotated[Path, typer.Option("--out", help="Private key file to write (0600); NAME.vkey beside it.")],
) -> None:
    """Make a key pair for a remote party (no node needed): the private key stays with the party."""
    check_party_name(name)
    if out.exists():
        raise UsageError(f"{out} exists", hint="pick another file; a key is never overwritten")
    signer = Ed25519Signer.generate(name)
    write_private_key(out, name, NOTE_KEY, signer.private_key)
    vkey_path = out.with_suffix(".vkey")
    vkey_path.write_text(signer.verifier.vkey + "\n")
    err.print(f"wrote {escape(str(out))} and {escape(str(vkey_path))}")
    print(signer.verifier.vkey)
