"""`trustlane contract ...`: offer datasets for analysis under a usage policy, and manage contracts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from trustlane.analysis.contracts import Grant, parse_when, to_odrl
from trustlane.analysis.holder import Holder
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node

app = typer.Typer(help="Contracts: grant, list, show, accept, revoke.", no_args_is_help=True)


@app.command()
def grant(
    party: Annotated[str, typer.Option("--party", help="The assignee party.")],
    dataset: Annotated[list[str], typer.Option("--dataset", help="Dataset id (repeat for several).")],
    algorithm: Annotated[list[str], typer.Option("--algorithm", help="NAME@VERSION (repeat for several).")],
    purpose: Annotated[str, typer.Option("--purpose", help="Purpose, e.g. accident-liability.")],
    max_runs: Annotated[int | None, typer.Option("--max-runs", help="Most analyses the contract allows.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day of validity (2027-01-31) or a time.")] = None,
    signal: Annotated[
        list[str] | None, typer.Option("--signal", help="Granted signal (repeat); default: every shareable one.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Granted time range start (ISO time).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Granted time range end (ISO time).")] = None,
    recipient: Annotated[
        list[str] | None, typer.Option("--recipient", help="Another party that receives the reports (repeat).")
    ] = None,
    legal_basis: Annotated[
        str | None,
        typer.Option(
            "--legal-basis", help="consent, contract, legal-claims, ... (default for accident-liability: legal-claims)."
        ),
    ] = None,
    legal_reference: Annotated[
        str | None, typer.Option("--legal-reference", help="The consent record or legal instrument.")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Grant a party analysis of datasets; prints the contract id."""
    terms = Grant(
        party=party,
        datasets=dataset,
        algorithms=algorithm,
        purpose=purpose,
        max_runs=max_runs,
        not_after_ns=None if until is None else parse_when(until, "--until"),
        signals=signal or None,
        t_start_ns=None if start is None else parse_when(start, "--from"),
        t_end_ns=None if end is None else parse_when(end, "--to"),
        recipients=recipient or (),
        legal_basis=legal_basis,
        legal_reference=legal_reference,
    )
    with open_node(home) as node, Holder(node) as holder:
        contract = holder.contracts.grant(terms)
    if json_out:
        emit_json(contract.to_json())
    else:
        print(contract.id)


@app.command("list")
def list_(
    party: Annotated[str | None, typer.Option("--party", help="Only this assignee's contracts.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """List contracts and their state."""
    with open_node(home) as node, Holder(node) as holder:
        contracts = holder.contracts.all(party)
    rows = [c.to_json() for c in contracts]
    if json_out:
        emit_json(rows)
        return
    for r in rows:
        runs = f"{r['runs_used']}/{r['max_runs'] or '∞'}"
        print(
            f"{r['id']}  {r['state']:9} {r['assignee']:24} {r['purpose']:20} runs {runs:7} {', '.join(r['algorithms'])}"
        )


@app.command()
def show(
    contract_id: str,
    odrl: Annotated[bool, typer.Option("--odrl", help="Print the policy as a W3C ODRL agreement.")] = False,
    home: HomeOption = None,
) -> None:
    """Print a contract: its signed policy (or its ODRL form) and state."""
    with open_node(home) as node, Holder(node) as holder:
        contract = holder.contracts.require(contract_id)
    emit_json(to_odrl(contract.policy) if odrl else {**contract.signed(), "status": contract.to_json()})


@app.command()
def accept(contract_id: str, home: HomeOption = None) -> None:
    """Accept an offered contract as its (local) assignee, signing with the assignee's key."""
    with open_node(home) as node, Holder(node) as holder:
        contract = holder.contracts.accept_locally(contract_id)
    err.print(f"{escape(contract.id)} agreed by {escape(contract.assignee)}")


@app.command()
def revoke(
    contract_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")],
    home: HomeOption = None,
) -> None:
    """Revoke a contract: later requests under it are denied."""
    with open_node(home) as node, Holder(node) as holder:
        holder.contracts.revoke(contract_id, reason)
    err.print(f"revoked {escape(contract_id)}")
