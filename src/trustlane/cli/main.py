"""Entry point: builds the typer app and turns every error into a message and an exit code."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.markup import escape
from rich.text import Text

from trustlane import __version__
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err
from trustlane.cli.lazy import LazyGroup
from trustlane.config import resolve_home
from trustlane.errors import TrustlaneError, UsageError

app = typer.Typer(
    name="trustlane",
    help="trustlane: a trusted data space for connected-vehicle data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,  # the command groups (cli/lazy.py) are imported when called
)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", envvar="TRUSTLANE_LOG_FORMAT", help="text, or json (one object a line).")
    ] = "text",
) -> None:
    from trustlane.ops.logs import configure

    if log_format not in ("text", "json"):
        raise UsageError(f"unknown log format {log_format!r}", hint="use text or json")
    configure(logging.INFO if verbose else logging.WARNING, log_format)


@app.command()
def version() -> None:
    """Print the trustlane version."""
    print(__version__)


@app.command()
def init(
    home: HomeOption = None,
    origin: Annotated[
        str | None, typer.Option(help="Log origin (key name), e.g. example.com/log; default: host-derived.")
    ] = None,
    database: Annotated[
        str, typer.Option(help='"sqlite" (embedded, default) or a PostgreSQL DSN postgresql://host:port/db.')
    ] = "sqlite",
    schema: Annotated[str, typer.Option(help="PostgreSQL schema for this node's tables.")] = "trustlane",
    batch_max_entries: Annotated[int, typer.Option(help="Most entries one commit holds.")] = 256,
    batch_max_age_ms: Annotated[int, typer.Option(help="Longest an entry waits for its batch to fill.")] = 250,
    checkpoint_interval_ms: Annotated[int, typer.Option(help="How often a grown tree gets a checkpoint.")] = 1000,
    json_out: JsonOption = False,
) -> None:
    """Create a node home: configuration, Ed25519 keys (0600) and the ledger database."""
    from trustlane.ledger.log import LedgerSettings
    from trustlane.node import Node

    path = resolve_home(home)
    settings = LedgerSettings(batch_max_entries, batch_max_age_ms, checkpoint_interval_ms)
    with Node.init(path, origin=origin, database=database, schema=schema, ledger=settings) as node:
        info = {
            "home": str(path),
            "origin": node.config.origin,
            "database": node.store.backend,
            "log_vkey": node.log_verifier.vkey,
            "witness_vkey": node.cosigner.verifier.vkey,
        }
    if json_out:
        emit_json(info)
    else:
        err.print(f"[green]created node home[/] {escape(str(path))}")
        print(f"origin       {info['origin']}\nlog vkey     {info['log_vkey']}\nwitness vkey {info['witness_vkey']}")


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Where the demo nodes and outputs go (default: ./trustlane-demo).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for the generated fleet data (repeatable runs).")] = 7,
    json_out: JsonOption = False,
) -> None:
    """The closed loop on loopback: nodes, witness, ingest, sandboxed analysis, signed reports, transfer."""
    from trustlane.demo import clean, run_demo

    target = (workdir or Path("trustlane-demo")).absolute()
    clean(target)  # the demo owns this folder; a rerun starts clean
    with err.status("starting") as status:

        def step(text: str) -> None:
            status.update(text)
            mark = "[yellow]![/]" if text.startswith("WARNING") else "[green]✓[/]"
            err.print(f"{mark} {escape(text)}", soft_wrap=True)

        result = run_demo(target, seed, step)
    summary = {
        "workdir": str(result.workdir),
        "events": result.events,
        "checkpoint_size": result.checkpoint_size,
        "cosigned_by": result.cosigned_by,
        "reports": result.reports,
        "transfer": result.transfer,
        "bundle": str(result.bundle),
        "policy": str(result.policy),
        "isolated": result.isolated,
        "seconds": round(result.seconds, 2),
    }
    if json_out:
        emit_json(summary)
        return
    holder_vkey, witness_vkey = result.holder_vkey, result.witness_vkey
    lines = [
        "",
        f"ingested a fleet day: {result.events} ledger entries; checkpoint {result.checkpoint_size} cosigned by "
        f"{', '.join(result.cosigned_by)}",
    ]
    for entry in result.reports:
        page = Path(entry["file"]).with_suffix(".html")
        lines.append(f"report {entry['report']} ({entry['case']}): {entry['file']}")
        lines.append(f"  for people:          {page}")
        pdf = Path(entry["file"]).with_suffix(".pdf")
        if pdf.exists():
            lines.append(f"  PDF:                 {pdf}")
    first = result.reports[0]["file"]
    lines += [
        f"verify a report:      trustlane report verify {first} --trust {holder_vkey} --witness {witness_vkey}",
        f"transfer CN → EU:     {result.transfer['decision']} under {'; '.join(result.transfer['rules'])}",
        f"  processing:         {', '.join(result.transfer['steps'])}",
        f"  export package:     {result.transfer['package']}",
        f"  verify it:          trustlane transfer verify {result.transfer['package']} --trust {holder_vkey} "
        f"--witness {witness_vkey}",
        f"offline proof bundle: {result.bundle}",
        f"verify it yourself:   trustlane ledger verify-bundle {result.bundle} --policy {result.policy} "
        f"--event {result.workdir / 'event.json'}",
        f"open the console:     trustlane serve --home {result.workdir / 'holder'}   (then http://127.0.0.1:8700/console/,",
        f"                      sign in as oem-staff with the token {result.console_token})",
        f"finished in {result.seconds:.1f} s",
    ]
    print("\n".join(lines))


@app.command()
def doctor(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Check the node's configuration, keys, storage, sandbox and witnesses, and say what to fix."""
    from trustlane.ops.doctor import diagnose

    findings = diagnose(resolve_home(home))
    if json_out:
        emit_json([f.to_json() for f in findings])
    else:
        marks = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}
        for f in findings:
            err.print(f"{marks[f.status]} {escape(f.check)}: {escape(f.detail)}", soft_wrap=True)
            if f.fix and f.status != "ok":
                err.print(f"    fix: {escape(f.fix)}", soft_wrap=True)
    if any(f.status == "fail" for f in findings):
        sys.exit(1)


def run(argv: list[str] | None = None) -> None:
    """Console entry point: never shows a traceback for a user error."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="trustlane", standalone_mode=False)
    except TrustlaneError as exc:
        # Messages quote paths, names and file contents: print them as text, never as Rich markup, unwrapped.
        err.print(Text.assemble(("error:", "red"), " ", exc.diagnostics()), soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        err.print("aborted")
        sys.exit(130)
    except (click.ClickException, typer.TyperException) as exc:
        # typer vendors its own click: its usage errors are TyperExceptions, not click.ClickExceptions.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(Text(f"error: {exc}"), soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if os.environ.get("TRUSTLANE_DEBUG"):
            raise
        err.print(
            Text.assemble(
                ("internal error:", "red"),
                f" {type(exc).__name__}: {exc}\n"
                "hint: this is a bug in trustlane; rerun with TRUSTLANE_DEBUG=1 for the traceback and report it",
            ),
            soft_wrap=True,
            highlight=False,
        )
        sys.exit(70)
    if isinstance(code, int) and code != 0:  # a command raised typer.Exit(code)
        sys.exit(code)
