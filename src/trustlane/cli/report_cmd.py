"""`trustlane report ...` (verify offline, render, list, fetch) and `trustlane audit`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from trustlane.analysis.audit import audit_trail
from trustlane.analysis.holder import Holder
from trustlane.analysis.render import render_report_html
from trustlane.analysis.verify import ReportInvalid, parse_report, verify_report
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.cli.party_cmd import read_vkey_arg
from trustlane.errors import UsageError

app = typer.Typer(help="Reports: verify offline, render, list, fetch.", no_args_is_help=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", hint="check the path") from None


@app.command()
def verify(
    report: Annotated[Path, typer.Argument(help="The report file (JSON).")],
    trust: Annotated[str, typer.Option("--trust", help="The holder's verifier key (file or text).")],
    witness: Annotated[
        list[str] | None, typer.Option("--witness", help="A witness verifier key (file or text); repeat.")
    ] = None,
    quorum: Annotated[
        int | None, typer.Option("--quorum", help="Witness cosignatures required (default: all).")
    ] = None,
    algorithm: Annotated[
        Path | None, typer.Option("--algorithm", help="The algorithm package, to recompute its digest.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Verify a report offline: signature, proofs, checkpoint and quorum, contract, algorithm digest.

    Exit 0 valid, 1 invalid (naming what failed), 2 usage error.
    """
    data = _read(report)
    holder = read_vkey_arg(trust)
    witnesses = [read_vkey_arg(w) for w in witness or []]
    if quorum is not None and not 0 <= quorum <= len(witnesses):
        raise UsageError(f"--quorum {quorum} needs at least {quorum} --witness keys")
    try:
        result = verify_report(data, holder, witnesses, quorum, algorithm)
    except ReportInvalid as exc:
        if json_out:
            emit_json({"valid": False, "check": exc.check, "reason": exc.message})
        else:
            err.print(Text.assemble(("invalid", "red"), f": {exc.message}"), soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    if json_out:
        emit_json(result.to_json())
    else:
        print(
            f"valid: report {result.report_id} by {result.holder}; algorithm {result.algorithm} "
            f"({result.algorithm_digest}); {result.inputs} input segments; checkpoint {result.checkpoint_size} "
            f"cosigned by {', '.join(result.cosigned_by) or 'no witness'}"
        )


@app.command()
def html(
    report: Annotated[Path, typer.Argument(help="The report file (JSON).")],
    out: Annotated[Path | None, typer.Option("--out", help="HTML file (default: beside the report).")] = None,
) -> None:
    """Render a report file as an HTML page."""
    try:
        parsed = parse_report(_read(report))
    except ReportInvalid as exc:
        raise UsageError(f"{report} is not a report: {exc.message}") from None
    target = out or report.with_suffix(".html")
    target.write_text(render_report_html(parsed), encoding="utf-8")
    print(target)


@app.command("list")
def list_(
    party: Annotated[str | None, typer.Option("--party", help="Only reports for this party.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """List reports this node issued."""
    from trustlane.analysis.queries import list_reports

    with open_node(home) as node, Holder(node) as holder:
        rows = list_reports(holder, party)
    if json_out:
        emit_json(rows)
        return
    for r in rows:
        print(f"{r['id']}  {r['party']:24} {r['contract']}  {r['created']}")


@app.command()
def get(
    report_id: str,
    out: Annotated[Path | None, typer.Option("--out", help="File (default REPORT_ID.json).")] = None,
    node_url: Annotated[str | None, typer.Option("--node", help="A remote node's URL.")] = None,
    as_party: Annotated[str | None, typer.Option("--as", help="The party fetching, with --node.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="The party's private key file, with --node.")] = None,
    home: HomeOption = None,
) -> None:
    """Fetch a report (from this node's home, or from a remote node as a party)."""
    from trustlane.cli.analysis_cmd import write_report

    if node_url is not None:
        from trustlane.client import NodeClient

        if as_party is None:
            raise UsageError("--node needs --as PARTY")
        with NodeClient.for_party(node_url, as_party, key=key, home=home) as client:
            report = client.report(report_id)
    else:
        from trustlane.analysis.queries import get_report

        with open_node(home) as node, Holder(node) as holder:
            report = get_report(holder, report_id)
    path, page = write_report(report, out)
    err.print(f"wrote {escape(str(path))} and {escape(str(page))}")
    print(path)


def audit(
    dataset: Annotated[str | None, typer.Option("--dataset", help="A dataset id.")] = None,
    report: Annotated[str | None, typer.Option("--report", help="A report id.")] = None,
    party: Annotated[str | None, typer.Option("--party", help="A party name.")] = None,
    contract: Annotated[str | None, typer.Option("--contract", help="A contract id.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """The trail of ledger events about a dataset, report, party or contract, with its lineage."""
    chosen = [
        (k, v)
        for k, v in (("dataset", dataset), ("report", report), ("party", party), ("contract", contract))
        if v is not None
    ]
    if len(chosen) != 1:
        raise UsageError("name exactly one of --dataset, --report, --party, --contract")
    kind, value = chosen[0]
    with open_node(home) as node:
        trail = audit_trail(node, kind, value)
    if json_out:
        emit_json(trail)
        return
    if not trail["events"]:
        err.print(f"no events about {kind} {escape(value)}")
        sys.exit(0)
    lineage = trail["lineage"]
    for key_, values in lineage.items():
        if values:
            print(f"{key_:10} {', '.join(values)}")
    print()
    for e in trail["events"]:
        print(f"{e['index']:>8}  {e['time']}  {e['type']:28} {e['summary']}")
