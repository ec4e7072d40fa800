"""`trustlane witness ...`: run this node as a C2SP tlog-witness for other logs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from trustlane.cli.common import HomeOption, err, open_node
from trustlane.crypto.note import parse_vkey

app = typer.Typer(help="Cosign other logs' checkpoints (C2SP tlog-witness).", no_args_is_help=True)


@app.command()
def vkey(home: HomeOption = None) -> None:
    """Print this node's witness (cosigner) verifier key."""
    with open_node(home) as node:
        print(node.cosigner.verifier.vkey)


@app.command()
def trust(
    vkey_text: Annotated[str, typer.Argument(metavar="VKEY", help="The log's verifier key (`trustlane ledger vkey`).")],
    home: HomeOption = None,
) -> None:
    """Cosign checkpoints of this log from now on."""
    with open_node(home) as node:
        node.trust_log(vkey_text)
    err.print(f"now witnessing {escape(parse_vkey(vkey_text).name)}")


@app.command()
def serve(
    home: HomeOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7380,
    log_vkey: Annotated[list[str] | None, typer.Option("--log", help="Also trust this log vkey (repeatable).")] = None,
) -> None:
    """Serve add-checkpoint: cosign a trusted log's checkpoint only after checking consistency."""
    import uvicorn

    from trustlane.ledger.witness import Witness, create_witness_app

    with open_node(home) as node:
        for v in log_vkey or []:
            node.trust_log(v)
        logs = [parse_vkey(v) for v in node.config.witnessed_logs]
        if not logs:
            err.print("[yellow]warning:[/] no log is trusted yet; add one with --log VKEY or `trustlane witness trust`")
        witness = Witness(node.store, node.cosigner, logs)
        err.print(f"witness {node.cosigner.verifier.vkey} on http://{escape(host)}:{port} for {len(logs)} log(s)")
        uvicorn.run(create_witness_app(witness), host=host, port=port, log_level="warning")
