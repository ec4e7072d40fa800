"""`trustlane analysis run`: ask for an approved algorithm to run on granted data; receive a signed report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from trustlane.analysis.holder import Holder
from trustlane.analysis.render import render_report_html
from trustlane.analysis.reports import report_bytes
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.errors import AnalysisRefused, MalformedInput, UsageError

if TYPE_CHECKING:
    from trustlane.analysis.service import Outcome

app = typer.Typer(help="Analyses: run an approved algorithm under a contract.", no_args_is_help=True)

DEV_UNISOLATED_ENV = "TRUSTLANE_DEV_ALLOW_UNISOLATED"


def parse_params(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedInput(f"--params is not JSON: {exc}", hint="e.g. --params '{\"window_s\": 20}'") from None
    if not isinstance(value, dict):
        raise MalformedInput("--params must be a JSON object", hint="e.g. --params '{\"window_s\": 20}'")
    return value


def write_report(report: dict[str, Any], out: Path | None) -> tuple[Path, Path]:
    path = out or Path(f"{report['id']}.json")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(report_bytes(report))
    tmp.replace(path)
    html = path.with_suffix(".html")
    html.write_text(render_report_html(report), encoding="utf-8")
    return path, html


def finish(outcome: Outcome, report: dict[str, Any] | None, out: Path | None, json_out: bool) -> None:
    if outcome.status != "reported" or report is None:
        hint = {
            "denied": "ask the holder for a contract that covers this request",
            "failed": "the algorithm crashed or broke a sandbox limit; see the reason",
            "blocked": "the output gate refused the output; it must not carry raw series or identifiers",
        }.get(outcome.status)
        raise AnalysisRefused(outcome.status, f"analysis {outcome.status}: {outcome.reason}", hint=hint)
    path, html = write_report(report, out)
    if json_out:
        emit_json({**outcome.to_json(), "file": str(path), "html": str(html)})
    else:
        err.print(f"[green]report[/] {escape(report['id'])} written to {escape(str(path))} and {escape(str(html))}")
        print(path)


@app.command()
def run(
    as_party: Annotated[str, typer.Option("--as", help="The party asking (its key signs the request).")],
    contract: Annotated[str, typer.Option("--contract", help="Contract id.")],
    params: Annotated[str | None, typer.Option("--params", help="Algorithm parameters as a JSON object.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Report file (default REPORT_ID.json).")] = None,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help="NAME@VERSION when the contract pins several.")
    ] = None,
    node_url: Annotated[str | None, typer.Option("--node", help="A remote node's URL (uses --key).")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="The party's private key file, with --node.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Run an analysis in the holder's sandbox and write the signed report (exit 10 denied, 11 failed, 12 blocked)."""
    # Imported here: the sandbox and gate load only for commands that run analyses.
    from trustlane.analysis.service import AnalysisService, Outcome, request_body, sign_request

    parameters = parse_params(params)
    if node_url is not None:
        from trustlane.client import NodeClient

        with NodeClient.for_party(node_url, as_party, key=key, home=home) as client:
            outcome_json, report = client.run_analysis(contract, parameters, algorithm)
        outcome = Outcome(outcome_json["run"], outcome_json["status"], outcome_json.get("reason"))
        finish(outcome, report, out, json_out)
        return
    allow = os.environ.get(DEV_UNISOLATED_ENV) == "1"
    with open_node(home) as node, Holder(node) as holder:
        signer = holder.parties.signer(as_party)
        request = sign_request(signer, request_body(contract, as_party, algorithm, parameters))
        outcome = AnalysisService(holder, allow_unisolated=allow).run(request)
    finish(outcome, outcome.report, out, json_out)
