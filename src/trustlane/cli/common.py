"""Options and helpers shared by every command group."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from trustlane.config import resolve_home
from trustlane.node import Node

err = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Node home (default: $TRUSTLANE_HOME, else ./.trustlane).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def open_node(home: Path | None) -> Node:
    return Node.open(resolve_home(home))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()
