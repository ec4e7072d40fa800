"""`trustlane ingest`, `trustlane catalog`, `trustlane data export`."""

from __future__ import annotations

import math
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from typer._click.core import Context as ClickContext  # typer ships its own click
from typer.core import TyperGroup

from trustlane.catalog.home import master_key, open_catalog
from trustlane.cli import mqtt_cmd
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.errors import UsageError
from trustlane.ingest.collection import CollectionPolicy
from trustlane.ingest.pipeline import IngestOptions, Ingestor
from trustlane.ingest.readers import FORMATS
from trustlane.ingest.segments import DEFAULT_SEGMENT_NS
from trustlane.node import Node
from trustlane.storage.blobs import BlobStore
from trustlane.vehicles.provenance import read_manifest
from trustlane.vehicles.registry import VehicleRegistry

MAX_SEGMENT_NS = 86_400 * 10**9

data_app = typer.Typer(help="Read stored data back inside the holder's node.", no_args_is_help=True)


class FilesOrSubcommand(TyperGroup):
    """`trustlane ingest FILE... --vehicle VIN` and `trustlane ingest mqtt ...` under one name.

    Anything that is not a subcommand (or --help) is handed to the hidden `files` command.
    """

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["files", *args]
        return super().parse_args(ctx, args)


ingest_app = typer.Typer(
    cls=FilesOrSubcommand,
    help="Ingest recordings (`trustlane ingest FILE... --vehicle VIN`) or live telemetry (`ingest mqtt`).",
    no_args_is_help=True,
)


class HolderServices:
    """The node's catalog, vehicle registry and blob store, opened together and closed together."""

    def __init__(self, node: Node, stack: ExitStack) -> None:
        self.node = node
        self.catalog = stack.enter_context(open_catalog(node))
        self.registry = VehicleRegistry(self.catalog, master_key(node), node.log)
        self.blobs = BlobStore(node.home / "blobs")


@ingest_app.command("files", hidden=True)
def ingest_files(
    files: Annotated[list[Path], typer.Argument(help="Recordings: MDF4, CSV, Parquet, candump log, MCAP.")],
    vehicle: Annotated[str, typer.Option("--vehicle", help="The vehicle's VIN (registered on this node).")],
    format: Annotated[str, typer.Option(help=f"auto (from content) or one of {', '.join(FORMATS)}.")] = "auto",
    dbc: Annotated[Path | None, typer.Option(help="DBC file to decode CAN logs.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML mapping of source names to VSS paths.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="The vehicle's signed upload manifest.")] = None,
    segment_seconds: Annotated[float, typer.Option(help="Segment length.")] = DEFAULT_SEGMENT_NS / 1e9,
    location_decimals: Annotated[int, typer.Option(help="Decimal places kept in coordinates.")] = 3,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ingest recordings of one vehicle: classify, drop what must not be collected, encrypt, commit."""
    if format != "auto" and format not in FORMATS:
        raise UsageError(f"unknown format {format!r}", hint=f"use auto or one of {', '.join(FORMATS)}")
    for path in files:
        if not path.is_file():
            raise UsageError(f"{path} is not a file", hint="check the path")
    # round, not int(): 8.2 s is 8199999999.999999 ns in binary floating point
    segment_ns = round(segment_seconds * 1e9) if math.isfinite(segment_seconds * 1e9) else 0
    if not 1 <= segment_ns <= MAX_SEGMENT_NS:
        raise UsageError(
            f"--segment-seconds must be more than 0 and at most {MAX_SEGMENT_NS // 10**9} (a day), "
            f"not {segment_seconds:g}",
            hint="e.g. --segment-seconds 10 (the default)",
        )
    options = IngestOptions(
        format=format,
        dbc=dbc,
        mapping=mapping,
        manifest=read_manifest(manifest) if manifest is not None else None,
        segment_ns=segment_ns,
        policy=CollectionPolicy(location_decimals=location_decimals),
    )
    with open_node(home) as node, ExitStack() as stack:
        services = HolderServices(node, stack)
        ingestor = Ingestor(node.log, services.catalog, services.registry, services.blobs)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=json_out or not err.is_terminal,
        ) as bar:
            task = bar.add_task("reading", total=sum(p.stat().st_size for p in files))

            def progress(name: str, done: int, total: int) -> None:
                bar.update(task, description=f"read {name}", completed=done, total=total)

            receipts = ingestor.ingest(files, vehicle, options, progress)
        node.log.publish_checkpoint()
    if json_out:
        emit_json(receipts if len(receipts) > 1 else receipts[0])
        return
    for r in receipts:
        kept, dropped = r["signals"]["kept"], r["signals"]["dropped"]
        state = "already ingested as" if r["duplicate"] else "stored as"
        print(
            f"{r.get('file', r['dataset'])}: {state} {r['dataset']} ({len(r['segments'])} segments, "
            f"{len(kept)} signals kept, {len(dropped)} dropped)"
        )
        for d in dropped:
            print(f"  dropped {d['source_name']}: {d['reason']}")


def catalog(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Datasets, vehicles (pseudonyms), signals, categories and time ranges held by this node."""
    with open_node(home) as node, open_catalog(node) as db:
        out: dict[str, Any] = {
            "vehicles": [
                {
                    "pseudonym": v.pseudonym,
                    "device_key": v.device_vkey is not None,
                    "legal_hold": v.legal_hold,
                    "erased": v.erased,
                }
                for v in db.vehicles()
            ],
            "datasets": [
                {
                    "id": d.id,
                    "vehicle": d.vehicle,
                    "format": d.format,
                    "t_start_ns": d.t_start_ns,
                    "t_end_ns": d.t_end_ns,
                    "signals": [s.to_json() for s in d.signals],
                    "dropped": [x.to_json() for x in d.dropped],
                    "ledger_index": d.ledger_index,
                }
                for d in db.datasets()
            ],
            "signals": [
                {
                    "path": s.path,
                    "unit": s.unit,
                    "datasets": s.datasets,
                    "vehicles": s.vehicles,
                    "t_start_ns": s.t_start_ns,
                    "t_end_ns": s.t_end_ns,
                }
                for s in db.signals()
            ],
        }
    categories: dict[str, int] = {}
    for d in out["datasets"]:
        for s in d["signals"]:
            for c in s["categories"]:
                categories[c] = categories.get(c, 0) + 1
    out["categories"] = categories
    if json_out:
        emit_json(out)
        return
    print(f"{len(out['vehicles'])} vehicles, {len(out['datasets'])} datasets, {len(out['signals'])} signals")
    for d in out["datasets"]:
        print(
            f"  {d['id']}  {d['vehicle']}  {d['format']}  {len(d['signals'])} signals  "
            f"{d['t_start_ns']}..{d['t_end_ns']}"
        )
    for name, count in sorted(categories.items()):
        print(f"  category {name}: {count} signal(s)")


@data_app.command("export")
def export(
    dataset: Annotated[str, typer.Argument(help="Dataset id (see `trustlane catalog`).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output file, .parquet or .csv.")],
    signals: Annotated[
        list[str] | None, typer.Option("--signals", help="Signal paths to export (repeatable); default all.")
    ] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Write a dataset's decrypted samples to a local file (holder only: it runs on the node's own keys)."""
    from trustlane.ingest.export import export_dataset

    wanted = [s for item in signals or [] for s in item.split(",") if s]
    with open_node(home) as node, ExitStack() as stack:
        services = HolderServices(node, stack)
        rows = export_dataset(services.catalog, services.registry, services.blobs, dataset, wanted or None, out)
    if json_out:
        emit_json({"dataset": dataset, "rows": rows, "out": str(out)})
    else:
        err.print(f"wrote {rows} rows to {out}")


ingest_app.command("mqtt")(mqtt_cmd.ingest_mqtt)
