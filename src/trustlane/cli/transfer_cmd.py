"""`trustlane transfer plan|run|verify`: cross-border transfers decided by the rule packs, processed first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from trustlane.analysis.holder import Holder
from trustlane.canonical import canonical_json
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.cli.party_cmd import read_vkey_arg
from trustlane.errors import MalformedInput, UsageError

app = typer.Typer(
    help="Cross-border transfers: plan (decision + processing), run (package), verify.", no_args_is_help=True
)


@app.command()
def plan(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset id.")],
    to: Annotated[str, typer.Option("--to", help="Destination jurisdiction: CN, EU or US.")],
    recipient: Annotated[str, typer.Option("--recipient", help="The receiving party.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why the data is sent.")],
    origin: Annotated[
        str, typer.Option("--from", help="The holder's jurisdiction (whose rules govern the data).")
    ] = "CN",
    mechanism: Annotated[
        list[str] | None,
        typer.Option("--mechanism", help="A transfer mechanism in place (repeat), e.g. cn_standard_contract."),
    ] = None,
    persons: Annotated[
        int | None, typer.Option(help="Persons this year (default: counted from this node's transfers).")
    ] = None,
    sensitive_persons: Annotated[int | None, typer.Option(help="Persons with sensitive data this year.")] = None,
    ciio: Annotated[bool | None, typer.Option("--ciio/--no-ciio", help="Whether the holder is a CIIO (CN).")] = None,
    important_data_notified: Annotated[
        bool | None, typer.Option("--important-data-notified/--no-important-data-notified", help="CN notification.")
    ] = None,
    recipient_country: Annotated[
        str | None, typer.Option(help="The recipient's country when not the --to one.")
    ] = None,
    max_unique_fraction: Annotated[
        float | None, typer.Option(help="Refuse the package if more trajectories than this are unique (0-1).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Plan file (default PLAN_ID.json).")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Decide a transfer under the rule packs and plan the processing it requires (signed, recorded)."""
    from trustlane.transfer.plan import PlanRequest, build_plan

    request = PlanRequest(
        dataset,
        to,
        recipient,
        purpose,
        origin,
        tuple(mechanism or ()),
        persons,
        sensitive_persons,
        ciio,
        important_data_notified,
        recipient_country,
        max_unique_fraction,
    )
    with open_node(home) as node, Holder(node) as holder:
        made = build_plan(holder, request)
    path = out or Path(f"{made['id']}.json")
    path.write_bytes(canonical_json(made))
    decision = made["decision"]
    if json_out:
        emit_json(
            {
                "plan": made["id"],
                "file": str(path),
                "decision": decision["decision"],
                "steps": [s["processor"] for s in made["steps"]],
                "rules": [{"id": r["id"], "citation": r.get("citation")} for r in decision["rules"]],
                "obligations": decision["obligations"],
                "missing": decision["missing"],
            }
        )
        return
    err.print(f"decision: [bold]{escape(decision['decision'])}[/] ({len(decision['rules'])} rules)")
    for r in decision["rules"]:
        err.print(f"  {escape(r['id'])}: {escape(str(r.get('citation', '')))}", soft_wrap=True)
    for s in made["steps"]:
        err.print(f"  step {escape(s['processor'])}: {escape(s['reason'])}", soft_wrap=True)
    if decision["missing"]:
        err.print(f"  missing facts: {escape(', '.join(decision['missing']))}")
    print(path)


@app.command()
def run(
    plan_file: Annotated[Path, typer.Argument(help="The plan from `transfer plan`.")],
    out: Annotated[Path | None, typer.Option("--out", help="Package folder (default PACKAGE_ID/).")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Apply a plan: process the data and write the export package with its signed manifest."""
    from trustlane.transfer.package import run_plan

    try:
        made = json.loads(plan_file.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read {plan_file}: {exc.strerror}") from None
    except ValueError:
        raise MalformedInput(f"{plan_file} is not JSON", hint="pass the file `trustlane transfer plan` wrote") from None
    target = out or Path(f"transfer-{made.get('id', 'plan')}")
    with open_node(home) as node, Holder(node) as holder:
        manifest = run_plan(holder, made, target)
    summary = {
        "package": manifest["id"],
        "folder": str(target),
        "steps": [s["processor"] for s in manifest["steps"]],
        "files": manifest["files"],
        "risk": manifest["risk"],
        "ledger_index": manifest["commitment"]["index"],
    }
    if json_out:
        emit_json(summary)
    else:
        err.print(f"[green]package[/] {escape(manifest['id'])} written to {escape(str(target))}")
        print(target)


@app.command()
def verify(
    package: Annotated[Path, typer.Argument(help="The package folder.")],
    trust: Annotated[str, typer.Option("--trust", help="The holder's verifier key (file or text).")],
    witness: Annotated[list[str] | None, typer.Option("--witness", help="A witness verifier key; repeat.")] = None,
    quorum: Annotated[
        int | None, typer.Option("--quorum", help="Witness cosignatures required (default: all).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Verify an export package offline (exit 0 valid, 1 invalid, 2 usage)."""
    from trustlane.transfer.verify import PackageInvalid, verify_package

    if not package.is_dir():
        raise UsageError(f"{package} is not a package folder")
    try:
        result = verify_package(package, read_vkey_arg(trust), [read_vkey_arg(w) for w in witness or []], quorum)
    except PackageInvalid as exc:
        if json_out:
            emit_json({"valid": False, "check": exc.check, "reason": exc.message})
        else:
            err.print(Text.assemble(("invalid", "red"), f": {exc.message}"), soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    if json_out:
        emit_json(result)
    else:
        print(
            f"valid: package {result['package']} ({result['from']} → {result['to']}, {result['recipient']}); "
            f"steps {', '.join(result['steps'])}"
        )
