"""Command groups imported when used: `trustlane accident report` should not pay for the web server, the
image models and the database layers of every other group before it starts (about a second per call).

``LAZY`` names each top-level command's module and attribute: a Typer app (a group) or a command function.
``trustlane --help`` and shell-wide listings still import them all.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import typer
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperGroup

LAZY: dict[str, tuple[str, str]] = {
    "ledger": ("trustlane.cli.ledger_cmd", "app"),
    "witness": ("trustlane.cli.witness_cmd", "app"),
    "bench": ("trustlane.cli.bench_cmd", "app"),
    "vehicle": ("trustlane.cli.vehicle_cmd", "app"),
    "data": ("trustlane.cli.ingest_cmd", "data_app"),
    "ingest": ("trustlane.cli.ingest_cmd", "ingest_app"),
    "catalog": ("trustlane.cli.ingest_cmd", "catalog"),
    "party": ("trustlane.cli.party_cmd", "app"),
    "algorithm": ("trustlane.cli.algorithm_cmd", "app"),
    "contract": ("trustlane.cli.contract_cmd", "app"),
    "analysis": ("trustlane.cli.analysis_cmd", "app"),
    "report": ("trustlane.cli.report_cmd", "app"),
    "audit": ("trustlane.cli.report_cmd", "audit"),
    "serve": ("trustlane.cli.serve_cmd", "serve"),
    "compliance": ("trustlane.cli.compliance_cmd", "app"),
    "accident": ("trustlane.cli.accident_cmd", "app"),
    "sample": ("trustlane.cli.sample_cmd", "app"),
    "transfer": ("trustlane.cli.transfer_cmd", "app"),
    "anonymize": ("trustlane.cli.anonymize_cmd", "app"),
}


def load(name: str) -> Any:
    """The command object (click) for a lazy top-level name."""
    module, attribute = LAZY[name]
    target = getattr(importlib.import_module(module), attribute)
    command: Any
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)  # a group even when it holds one command (`data export`)
    else:
        # A bare function: a one-command app turns into that command itself.
        single = typer.Typer()
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in LAZY:
            self.commands[cmd_name] = load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except ClickUsageError as exc:
            # Suggestions are drawn from the loaded commands only; offer the lazy names too.
            if args and "Did you mean" not in exc.message:
                matches = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise
