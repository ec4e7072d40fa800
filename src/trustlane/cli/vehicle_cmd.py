"""`trustlane vehicle ...`: registration, device keys, signed uploads, legal holds and erasure.

A VIN argument may be ``-`` to read it from stdin (so it stays out of shell history and process lists).
Output names vehicles by pseudonym only.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from trustlane.catalog.db import CatalogDB
from trustlane.catalog.home import master_key, open_catalog
from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.errors import UsageError
from trustlane.node import Node
from trustlane.storage.blobs import BlobStore
from trustlane.vehicles.provenance import (
    build_manifest,
    generate_device_key,
    load_device_key,
    sign_manifest,
    write_manifest,
)
from trustlane.vehicles.registry import Vehicle, VehicleRegistry, erase_refusal, when

app = typer.Typer(
    help="Vehicles: registration, device keys, signed uploads, legal holds, erasure.", no_args_is_help=True
)

VinArgument = Annotated[str, typer.Argument(help="The vehicle's VIN (17 characters), or - to read it from stdin.")]


def _vin(value: str) -> str:
    if value != "-":
        return value
    line = sys.stdin.readline()
    if not line.strip():
        raise UsageError("no VIN on stdin", hint="pipe the VIN in, e.g. `echo VIN | trustlane vehicle ... -`")
    return line


@contextmanager
def _holder(home: Path | None) -> Iterator[tuple[Node, CatalogDB, VehicleRegistry]]:
    with open_node(home) as node:
        catalog = open_catalog(node)
        try:
            yield node, catalog, VehicleRegistry(catalog, master_key(node), node.log)
        finally:
            catalog.close()


@contextmanager
def _registry(home: Path | None) -> Iterator[VehicleRegistry]:
    with _holder(home) as (_, _, registry):
        yield registry


def _delete_blobs(blobs: BlobStore, digests: list[str]) -> tuple[int, list[str]]:
    """Delete the blobs of ``digests``; return how many were there and deleted, and the problems met."""
    deleted = 0
    problems: list[str] = []
    for digest in digests:
        try:
            if blobs.exists(digest):
                blobs.delete(digest)
                deleted += 1
        except OSError as exc:
            problems.append(f"{blobs.path(digest)}: {exc.strerror or exc}")
    return deleted, problems


def _status(v: Vehicle) -> str:
    if v.erased_ns is not None:
        return f"erased {when(v.erased_ns)}"
    if v.legal_hold:
        return f"legal hold: {v.legal_hold_reason}"
    return "active"


@app.command()
def register(
    vin: VinArgument,
    key: Annotated[
        Path | None, typer.Option("--key", help="File holding the device's verifier key (from `vehicle keygen`).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Verify the North-American check digit.")] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Register a vehicle (or add a device key to one registered without); print its pseudonym."""
    vkey: str | None = None
    if key is not None:
        try:
            vkey = key.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read device key file {key}: {exc}", hint="pass the .vkey file") from exc
    with _registry(home) as registry:
        vehicle = registry.register(_vin(vin), vkey, strict=strict)
    if json_out:
        emit_json(vehicle.to_json())
        return
    err.print(f"[green]registered[/] {vehicle.pseudonym}" + (" with a device key" if vehicle.device_vkey else ""))
    print(vehicle.pseudonym)


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the device's private key (mode 0600).")],
    name: Annotated[
        str | None, typer.Option("--name", help="Key name (default: device/<random>), e.g. device/truck-17.")
    ] = None,
) -> None:
    """Create a device signing key (vehicle or gateway side); print its verifier key."""
    vkey = generate_device_key(out, name)
    err.print(f"[green]wrote device key[/] {escape(str(out))}; register it with `trustlane vehicle register VIN --key`")
    print(vkey)


@app.command()
def sign(
    files: Annotated[list[Path], typer.Argument(help="Files to upload, in upload order.")],
    key: Annotated[Path, typer.Option("--key", help="The device's private key file.")],
    prev: Annotated[
        str, typer.Option("--prev", help="Digest of the last file uploaded before (64 zeros for the first upload).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the signed manifest (JSON).")],
    sequence: Annotated[int, typer.Option("--sequence", help="Sequence number of the first file (1 at first).")] = 1,
    json_out: JsonOption = False,
) -> None:
    """Sign an upload manifest chaining FILES onto --prev; print the new chain head (the last file's digest)."""
    signer = load_device_key(key)
    manifest = sign_manifest(build_manifest(files, prev, signer.name, sequence=sequence), signer.private_key)
    write_manifest(out, manifest)
    items = manifest["items"]
    head = items[-1]["sha256"]
    summary = {"manifest": str(out), "device": signer.name, "sequence": sequence, "items": len(items), "head": head}
    if json_out:
        emit_json(summary)
        return
    err.print(
        f"[green]signed[/] {len(items)} file(s), sequence {sequence}..{sequence + len(items) - 1}, "
        f"into {escape(str(out))}; next upload: --prev {head} --sequence {sequence + len(items)}"
    )
    print(head)


@app.command()
def hold(
    vin: VinArgument,
    reason: Annotated[str, typer.Option("--reason", help="The case or order that requires keeping the data.")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Place a legal hold: the vehicle's data is kept, and erasure refused, until it is released."""
    with _registry(home) as registry:
        vehicle = registry.set_legal_hold(registry.lookup(_vin(vin)).pseudonym, reason)
    if json_out:
        emit_json(vehicle.to_json())
    else:
        print(f"{vehicle.pseudonym} {_status(vehicle)}")


@app.command()
def release(vin: VinArgument, home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Release a legal hold."""
    with _registry(home) as registry:
        vehicle = registry.clear_legal_hold(registry.lookup(_vin(vin)).pseudonym)
    if json_out:
        emit_json(vehicle.to_json())
    else:
        print(f"{vehicle.pseudonym} {_status(vehicle)}")


@app.command()
def erase(
    vin: VinArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Erase a vehicle (GDPR Art. 17): destroy its data key, sealed VIN and ledger salts. Cannot be undone.

    The encrypted segments of its data are deleted from the node's blob store as well: the destroyed data key
    already makes them unreadable; deleting them frees the space and leaves no ciphertext behind.
    """
    with _holder(home) as (node, catalog, registry):
        vin_text = _vin(vin)
        vehicle = registry.lookup(vin_text)
        refusal = erase_refusal(vehicle)
        if refusal is not None:
            raise refusal
        if not yes and not typer.confirm(
            f"erase {vehicle.pseudonym}? its data becomes unreadable for good", err=True, default=False
        ):
            raise typer.Abort()
        receipt = registry.erase(vin_text)
        digests = [s.digest for s in catalog.segments(vehicle=receipt.vehicle)]
        deleted, problems = _delete_blobs(BlobStore(node.home / "blobs"), digests)
    for problem in problems:  # the erasure itself stands: without the data key these blobs cannot be read
        err.print(Text.assemble(("warning:", "yellow"), f" could not delete encrypted segment {problem}"))
    if json_out:
        emit_json({**receipt.to_json(), "blobs_deleted": deleted, "blobs_not_deleted": len(problems)})
        return
    err.print(
        f"[green]erased[/] {receipt.vehicle}: {receipt.events_shredded} ledger event salt(s) destroyed, "
        f"{deleted} encrypted segment(s) deleted"
    )
    print(f"{receipt.vehicle} erased {when(receipt.erased_ns)}; erasure event at ledger index {receipt.ledger_index}")


@app.command("list")
def list_(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """List registered vehicles by pseudonym (never by VIN)."""
    with _registry(home) as registry:
        vehicles = registry.vehicles()
    if json_out:
        emit_json([v.to_json() for v in vehicles])
        return
    if not vehicles:
        err.print("no vehicles registered")
        return
    for v in vehicles:
        device = v.device_vkey.split("+", 1)[0] if v.device_vkey else "-"
        print(f"{v.pseudonym}  {when(v.registered_ns)}  device={device}  chain={v.chain_length}  {_status(v)}")
