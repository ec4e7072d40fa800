"""`trustlane serve`: the node's HTTP API on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trustlane.cli.common import HomeOption, err
from trustlane.config import resolve_home


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8700,
    home: HomeOption = None,
) -> None:
    """Run the node's HTTP API (OpenAPI at /docs and /openapi.json) until interrupted."""
    import uvicorn

    from trustlane.api.app import create_app

    path: Path = resolve_home(home)
    app = create_app(path)
    err.print(f"serving {path} on http://{host}:{port} (console: /console/, OpenAPI: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
