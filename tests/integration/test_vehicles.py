"""The vehicle registry on a real node (SQLite, and PostgreSQL when configured), upload manifests, and the CLI.

What must hold: the VIN never reaches the ledger (neither in clear nor as an unsalted hash), a legal hold
blocks erasure with a message saying how to release it, erasure destroys the salts of every event of the
vehicle and its data key while `ledger verify` still passes, and upload manifests refuse gaps, reorderings,
replays, foreign keys and altered files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.test_store_contract import fresh_schema, pg_dsn
from trustlane.catalog.db import CatalogDB
from trustlane.catalog.home import master_key, open_catalog
from trustlane.catalog.records import GENESIS_HEAD, ChainAdvance
from trustlane.cli import vehicle_cmd
from trustlane.crypto.envelope import context_aad, open_sealed, seal
from trustlane.crypto.note import Verifier, parse_vkey
from trustlane.errors import (
    ConflictError,
    KeyMaterialError,
    MalformedInput,
    SignatureError,
    UsageError,
    VerificationError,
)
from trustlane.ledger.fsck import fsck
from trustlane.node import Node
from trustlane.storage.postgres import drop_schema
from trustlane.vehicles.provenance import (
    ChainState,
    build_manifest,
    generate_device_key,
    load_device_key,
    parse_manifest,
    read_manifest,
    sign_manifest,
    verify_manifest,
    write_manifest,
)
from trustlane.vehicles.registry import VehicleRegistry

VIN_A = "1M8GDM9AXKP042788"
VIN_B = "1HGCM82633A004352"
VIN_C = "WVWZZZ1JZXW000001"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    home = tmp_path / "holder"
    if request.param == "sqlite":
        with Node.init(home, origin="holder.example/log") as n:
            yield n
        return
    dsn = pg_dsn()
    schema = fresh_schema()
    try:
        with Node.init(home, origin="holder.example/log", database=dsn, schema=schema) as n:
            yield n
    finally:
        drop_schema(dsn, schema)


@pytest.fixture
def catalog(node: Node) -> Iterator[CatalogDB]:
    db = open_catalog(node)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def registry(node: Node, catalog: CatalogDB) -> VehicleRegistry:
    return VehicleRegistry(catalog, master_key(node), node.log)


def check_fsck(node: Node) -> None:
    report = fsck(node.store, node.log_verifier)
    assert report.entries == node.store.tree_size()


# --- registration -------------------------------------------------------------------------------------


def test_register_and_lookup(node: Node, registry: VehicleRegistry) -> None:
    size = node.store.tree_size()
    v = registry.register(VIN_A)
    assert v.pseudonym.startswith("veh-") and len(v.pseudonym) == 30
    assert (v.chain_head, v.chain_length, v.legal_hold, v.erased) == (GENESIS_HEAD, 0, False, False)
    assert node.store.tree_size() == size + 1
    assert registry.lookup(" 1m8gdm9axkp042788 ") == v
    assert registry.get(v.pseudonym) == v
    assert registry.reveal_vin(v.pseudonym) == VIN_A
    assert len(registry.data_key(v.pseudonym)) == 32
    assert registry.data_key(v.pseudonym) == registry.data_key(v.pseudonym)
    event = node.store.event_secret(size)
    assert event is not None and event.event is not None
    assert json.loads(event.event) == {"type": "vehicle.registered", "vehicle": v.pseudonym, "device_key": False}
    assert (node.home / "keys/node.key").stat().st_mode & 0o777 == 0o600
    check_fsck(node)


def test_pseudonym_is_stable_per_node_and_differs_between_nodes(
    node: Node, registry: VehicleRegistry, tmp_path: Path
) -> None:
    p = registry.register(VIN_A).pseudonym
    with Node.open(node.home) as again:
        reopened = open_catalog(again)
        try:
            assert VehicleRegistry(reopened, master_key(again), again.log).pseudonym_of(VIN_A) == p
        finally:
            reopened.close()
    with Node.init(tmp_path / "other", origin="other.example/log") as other:
        other_catalog = open_catalog(other)
        try:
            assert VehicleRegistry(other_catalog, master_key(other), other.log).pseudonym_of(VIN_A) != p
        finally:
            other_catalog.close()


def test_registering_again_only_adds_a_device_key(
    node: Node, registry: VehicleRegistry, catalog: CatalogDB, tmp_path: Path
) -> None:
    v = registry.register(VIN_A)
    with pytest.raises(ConflictError, match="already registered") as info:
        registry.register(VIN_A)
    assert "--key" in (info.value.hint or "")
    vkey = generate_device_key(tmp_path / "dev.key", "device/truck-17")
    added = registry.register(VIN_A.lower(), vkey)
    assert added.pseudonym == v.pseudonym and added.device_vkey == vkey
    with pytest.raises(ConflictError, match="already registered with this device key"):
        registry.register(VIN_A, vkey)
    with pytest.raises(ConflictError, match="another device key"):
        registry.register(VIN_A, generate_device_key(tmp_path / "dev2.key"))
    events = [node.store.event_secret(i) for i in catalog.vehicle_event_indexes(v.pseudonym)]
    assert [json.loads(e.event)["type"] for e in events if e and e.event] == [
        "vehicle.registered",
        "vehicle.device_key_added",
    ]


def test_bad_input_changes_nothing(node: Node, registry: VehicleRegistry) -> None:
    size = node.store.tree_size()
    with pytest.raises(MalformedInput):
        registry.register("1M8GDM9AXKP04278")
    with pytest.raises(MalformedInput, match="check digit"):
        registry.register("1M8GDM9AXKP042789", strict=True)
    with pytest.raises(KeyMaterialError, match="not a device key"):
        registry.register(VIN_A, node.cosigner.verifier.vkey)  # a cosignature key (type 0x04)
    with pytest.raises(KeyMaterialError):
        registry.register(VIN_A, "device/x+00000000+garbage")
    assert node.store.tree_size() == size
    assert registry.vehicles() == []
    with pytest.raises(UsageError, match="no vehicle"):
        registry.lookup(VIN_A)


# --- personal data stays out of the ledger ------------------------------------------------------------


def forbidden_forms(vin: str) -> list[bytes]:
    forms: list[bytes] = []
    for text in (vin, vin.lower()):
        digest = hashlib.sha256(text.encode()).digest()
        forms += [text.encode(), digest, digest.hex().encode(), digest.hex().upper().encode()]
    return forms


def ledger_contents(node: Node) -> list[bytes]:
    store = node.store
    size = store.tree_size()
    out: list[bytes] = []
    for entry in store.entries(0, size):
        out += [entry.data, entry.leaf_hash]
        secret = store.event_secret(entry.index)
        if secret is not None:
            out += [(secret.event or "").encode(), secret.salt or b""]
    out += [c.note.encode() for c in store.checkpoints()]
    return out


def test_vin_never_reaches_the_ledger(
    node: Node, registry: VehicleRegistry, catalog: CatalogDB, tmp_path: Path
) -> None:
    vins = [VIN_A, VIN_B, VIN_C]
    for vin in vins:
        registry.register(vin, generate_device_key(tmp_path / f"{vin}.key"))
    registry.set_legal_hold(registry.pseudonym_of(VIN_B), "court case 4 O 123/25")
    registry.clear_legal_hold(registry.pseudonym_of(VIN_B))
    registry.erase(VIN_C)
    node.log.publish_checkpoint()
    contents = ledger_contents(node)
    assert len(contents) > 10
    for vin in vins:
        for form in forbidden_forms(vin):
            assert not any(form in blob for blob in contents), f"{form!r} found in the ledger"
    for v in catalog.vehicles():  # the catalog keeps the VIN sealed only
        assert v.vin_sealed is None or not any(form in v.vin_sealed for vin in vins for form in forbidden_forms(vin))
    if node.store.backend == "sqlite":  # and no database file holds it in clear, journals included
        for path in node.home.glob("*.db*"):
            raw = path.read_bytes()
            assert not any(vin.encode() in raw for vin in vins), path


# --- legal hold and erasure ---------------------------------------------------------------------------


def test_legal_hold_blocks_erasure(node: Node, registry: VehicleRegistry, catalog: CatalogDB) -> None:
    p = registry.register(VIN_A).pseudonym
    held = registry.set_legal_hold(p, "court case 4 O 123/25")
    assert held.legal_hold and held.legal_hold_reason == "court case 4 O 123/25"
    assert registry.set_legal_hold(p, "court case 4 O 123/25") == held  # idempotent
    with pytest.raises(ConflictError, match="already under legal hold"):
        registry.set_legal_hold(p, "another case")
    size = node.store.tree_size()
    with pytest.raises(ConflictError) as info:
        registry.erase(VIN_A)
    assert "court case 4 O 123/25" in info.value.message
    assert "legal hold" in info.value.message
    assert "trustlane vehicle release" in (info.value.hint or "")
    assert node.store.tree_size() == size  # nothing happened
    assert all(node.store.event_secret(i).salt for i in catalog.vehicle_event_indexes(p))  # type: ignore[union-attr]
    assert len(registry.data_key(p)) == 32
    released = registry.clear_legal_hold(p)
    assert not released.legal_hold and released.legal_hold_reason is None
    with pytest.raises(ConflictError, match="not under legal hold"):
        registry.clear_legal_hold(p)
    with pytest.raises(UsageError):
        registry.set_legal_hold(p, "   ")
    registry.erase(VIN_A)


def test_erase_shreds_salts_and_data_key(node: Node, registry: VehicleRegistry, catalog: CatalogDB) -> None:
    p = registry.register(VIN_A).pseudonym
    other = registry.register(VIN_B).pseudonym
    registry.set_legal_hold(p, "case 1")
    registry.clear_legal_hold(p)
    catalog.add_vehicle_events(p, [node.log.append_event({"type": "ingest.dataset", "vehicle": p}).index])
    data_key = registry.data_key(p)
    segment = seal(data_key, b"speed trace", context_aad(purpose="segment", vehicle=p))
    indexes = catalog.vehicle_event_indexes(p)
    assert len(indexes) == 4

    receipt = registry.erase(VIN_A)

    assert receipt.vehicle == p and receipt.events_shredded == 4
    for i in indexes:
        secret = node.store.event_secret(i)
        assert secret is not None and secret.salt is None and secret.event is None and secret.erased_ns
    erased_event = node.store.event_secret(receipt.ledger_index)
    assert erased_event is not None and erased_event.event is not None
    assert json.loads(erased_event.event) == {"type": "vehicle.erased", "vehicle": p, "events_shredded": 4}
    with pytest.raises(KeyMaterialError, match="erased") as info:
        registry.data_key(p)
    assert "permanent" in (info.value.hint or "")
    with pytest.raises(KeyMaterialError):
        registry.reveal_vin(p)
    record = catalog.vehicle(p)
    assert record is not None and record.data_key_wrapped is None and record.vin_sealed is None
    assert registry.lookup(VIN_A).erased
    assert open_sealed(data_key, segment, context_aad(purpose="segment", vehicle=p)) == b"speed trace"  # only with
    # the key held before erasure; the node itself can no longer produce it
    with pytest.raises(ConflictError, match="already erased"):
        registry.erase(VIN_A)
    with pytest.raises(ConflictError, match="erased"):
        registry.register(VIN_A)
    with pytest.raises(ConflictError, match="erased"):
        registry.set_legal_hold(p, "too late")
    # the other vehicle is untouched
    assert len(registry.data_key(other)) == 32
    assert all(node.store.event_secret(i).salt for i in catalog.vehicle_event_indexes(other))  # type: ignore[union-attr]
    check_fsck(node)


def test_erase_of_unknown_vin(registry: VehicleRegistry) -> None:
    with pytest.raises(UsageError, match="no vehicle"):
        registry.erase(VIN_A)


# --- upload manifests ---------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "upload"
    folder.mkdir()
    out = []
    for name in ("a.mf4", "b.mf4", "c.mf4", "d.mf4", "e.mf4"):
        path = folder / name
        path.write_bytes(os.urandom(4096))
        out.append(path)
    return out


@pytest.fixture
def device(tmp_path: Path) -> tuple[Path, Verifier]:
    path = tmp_path / "device.key"
    vkey = generate_device_key(path, "device/truck-17")
    return path, parse_vkey(vkey)


def signed(paths: Sequence[Path], key_path: Path, prev: str = GENESIS_HEAD, sequence: int = 1) -> dict[str, Any]:
    signer = load_device_key(key_path)
    return sign_manifest(build_manifest(paths, prev, signer.name, sequence=sequence), signer.private_key)


def resigned(manifest: dict[str, Any], key_path: Path, **changes: Any) -> dict[str, Any]:
    """A manifest the device key signed as given (a buggy or compromised gateway)."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    body.update(changes)
    return sign_manifest(body, load_device_key(key_path).private_key)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_device_key_file(device: tuple[Path, Verifier]) -> None:
    path, verifier = device
    assert path.stat().st_mode & 0o777 == 0o600
    assert verifier.name == "device/truck-17" and verifier.sig_type == 0x01
    assert load_device_key(path).verifier == verifier
    with pytest.raises(UsageError, match="already exists"):
        generate_device_key(path)
    with pytest.raises(UsageError):
        generate_device_key(path.with_name("x.key"), "bad name")


def test_manifest_format(files: list[Path], device: tuple[Path, Verifier], tmp_path: Path) -> None:
    m = signed(files[:2], device[0])
    assert m["format"] == "trustlane-upload-manifest/1"
    assert m["device"] == "device/truck-17" and m["sequence"] == 1 and m["created_ns"].isdigit()
    assert m["items"] == [
        {"name": "a.mf4", "sha256": digest(files[0]), "size": 4096, "prev": GENESIS_HEAD},
        {"name": "b.mf4", "sha256": digest(files[1]), "size": 4096, "prev": digest(files[0])},
    ]
    assert m["signature"]["alg"] == "ed25519" and m["signature"]["key_id"] == device[1].key_id.hex()
    out = tmp_path / "m.json"
    write_manifest(out, m)
    assert read_manifest(out) == m
    assert verify_manifest(read_manifest(out), files[:2], device[1], GENESIS_HEAD, 0) == (digest(files[1]), 2)


def test_chain_accepts_consecutive_uploads(
    registry: VehicleRegistry, catalog: CatalogDB, files: list[Path], device: tuple[Path, Verifier]
) -> None:
    key_path, verifier = device
    v = registry.register(VIN_A, verifier.vkey)
    assert v.device_vkey is not None
    device_verifier = parse_vkey(v.device_vkey)
    first = signed(files[:3], key_path)
    state = verify_manifest(first, files[:3], device_verifier, v.chain_head, v.chain_length)
    assert state == ChainState(digest(files[2]), 3)
    catalog.advance_chain(ChainAdvance(v.pseudonym, v.chain_head, v.chain_length, *state))
    v = registry.get(v.pseudonym)
    second = signed(files[3:], key_path, prev=v.chain_head, sequence=v.chain_length + 1)
    assert verify_manifest(second, files[3:], device_verifier, v.chain_head, v.chain_length) == (digest(files[4]), 5)


def test_replay_is_refused(files: list[Path], device: tuple[Path, Verifier]) -> None:
    key_path, verifier = device
    first = signed(files[:2], key_path)
    head, length = verify_manifest(first, files[:2], verifier, GENESIS_HEAD, 0)
    with pytest.raises(VerificationError, match="replay"):
        verify_manifest(first, files[:2], verifier, head, length)
    # a replay whose sequence was bumped still starts from an old head
    bumped = resigned(first, key_path, sequence=3)
    with pytest.raises(VerificationError, match="replay"):
        verify_manifest(bumped, files[:2], verifier, head, length)
    # overlapping: re-sends b after a chain that already holds it
    overlap = signed(files[1:3], key_path, prev=digest(files[0]), sequence=2)
    with pytest.raises(VerificationError, match="replay"):
        verify_manifest(overlap, files[1:3], verifier, head, length)


def test_gaps_are_refused(files: list[Path], device: tuple[Path, Verifier]) -> None:
    key_path, verifier = device
    full = signed(files[:3], key_path)
    # c follows b, but b is not listed
    dropped = resigned(full, key_path, items=[full["items"][0], full["items"][2]])
    with pytest.raises(VerificationError, match=r"gap: item 2 \(c.mf4\)"):
        verify_manifest(dropped, [files[0], files[2]], verifier, GENESIS_HEAD, 0)
    # the sequence skips numbers the chain never saw
    head, length = verify_manifest(signed(files[:1], key_path), files[:1], verifier, GENESIS_HEAD, 0)
    skipped = signed(files[1:2], key_path, prev=head, sequence=length + 2)
    with pytest.raises(VerificationError, match="gap"):
        verify_manifest(skipped, files[1:2], verifier, head, length)
    # the upload starts after a file the node never received
    later = signed(files[2:3], key_path, prev=digest(files[1]), sequence=length + 1)
    with pytest.raises(VerificationError, match=r"item 1 \(c.mf4\)") as info:
        verify_manifest(later, files[2:3], verifier, head, length)
    assert "missing" in info.value.message
    # a file listed in the manifest but not uploaded
    with pytest.raises(VerificationError, match=r"not uploaded: c\.mf4"):
        verify_manifest(full, files[:2], verifier, GENESIS_HEAD, 0)


def test_reordering_is_refused(files: list[Path], device: tuple[Path, Verifier]) -> None:
    key_path, verifier = device
    full = signed(files[:3], key_path)
    a, b, c = full["items"]
    swapped = resigned(full, key_path, items=[a, c, b])
    with pytest.raises(VerificationError, match=r"reordered: item 2 \(c.mf4\)"):
        verify_manifest(swapped, [files[0], files[2], files[1]], verifier, GENESIS_HEAD, 0)
    # files uploaded out of the manifest's order
    with pytest.raises(VerificationError, match=r"file c.mf4 is item 3 .* not item 2"):
        verify_manifest(full, [files[0], files[2], files[1]], verifier, GENESIS_HEAD, 0)


def test_wrong_or_missing_signature_is_refused(
    files: list[Path], device: tuple[Path, Verifier], tmp_path: Path
) -> None:
    key_path, verifier = device
    manifest = signed(files[:2], key_path)
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    with pytest.raises(SignatureError, match="not signed"):
        verify_manifest(unsigned, files[:2], verifier, GENESIS_HEAD, 0)
    impostor_path = tmp_path / "impostor.key"
    generate_device_key(impostor_path, "device/truck-17")  # same name, another key
    with pytest.raises(SignatureError, match="not by the vehicle's device key"):
        verify_manifest(signed(files[:2], impostor_path), files[:2], verifier, GENESIS_HEAD, 0)
    other_path = tmp_path / "other.key"
    generate_device_key(other_path, "device/other")
    with pytest.raises(SignatureError, match="device/other"):
        verify_manifest(signed(files[:2], other_path), files[:2], verifier, GENESIS_HEAD, 0)
    tampered = json.loads(json.dumps(manifest))
    tampered["items"][1]["size"] = 4095
    with pytest.raises(SignatureError, match="does not verify"):
        verify_manifest(tampered, files[:2], verifier, GENESIS_HEAD, 0)
    forged = json.loads(json.dumps(manifest))
    forged["signature"]["sig"] = forged["signature"]["sig"][:-4] + "AAA="
    with pytest.raises(SignatureError):
        verify_manifest(forged, files[:2], verifier, GENESIS_HEAD, 0)


def test_tampered_files_are_refused(files: list[Path], device: tuple[Path, Verifier]) -> None:
    key_path, verifier = device
    manifest = signed(files[:3], key_path)
    data = bytearray(files[1].read_bytes())
    data[100] ^= 0xFF
    files[1].write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=r"file b.mf4 has SHA-256 .* item 2 \(b.mf4\)"):
        verify_manifest(manifest, files[:3], verifier, GENESIS_HEAD, 0)
    files[2].write_bytes(files[2].read_bytes()[:-1])
    files[1].write_bytes(os.urandom(4096))
    with pytest.raises(VerificationError, match=r"file b\.mf4 has SHA-256"):
        verify_manifest(manifest, files[:3], verifier, GENESIS_HEAD, 0)
    files[1].unlink()
    with pytest.raises(VerificationError, match="missing"):
        verify_manifest(manifest, files[:3], verifier, GENESIS_HEAD, 0)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"[1]", "not a JSON object"),
        (b"{", "not valid JSON"),
        (b'{"format": "x"}', "format"),
        (b'{"format": "trustlane-upload-manifest/1", "format": "trustlane-upload-manifest/1"}', "twice"),
    ],
)
def test_malformed_manifests(raw: bytes, needle: str) -> None:
    with pytest.raises(MalformedInput, match=needle):
        parse_manifest(raw)


def test_build_manifest_checks_its_input(files: list[Path], tmp_path: Path) -> None:
    with pytest.raises(MalformedInput):
        build_manifest(files[:1], "abc", "device/x")
    with pytest.raises(UsageError, match="sequence 1"):
        build_manifest(files[:1], GENESIS_HEAD, "device/x", sequence=4)
    with pytest.raises(UsageError, match="does not exist"):
        build_manifest([tmp_path / "nope.mf4"], GENESIS_HEAD, "device/x")
    with pytest.raises(UsageError, match="same content"):
        build_manifest([files[0], files[0]], GENESIS_HEAD, "device/x")


# --- the CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "cli-home"
    Node.init(path, origin="cli.example/log").close()
    return path


def invoke(args: list[str], input: str | None = None) -> Any:
    return CliRunner().invoke(vehicle_cmd.app, args, input=input)


def test_cli_register_list_hold_erase(home: Path, tmp_path: Path) -> None:
    keygen = invoke(["keygen", "--out", str(tmp_path / "dev.key"), "--name", "device/van-3"])
    assert keygen.exit_code == 0, keygen.output
    vkey = keygen.stdout.strip()
    assert parse_vkey(vkey).name == "device/van-3"
    (tmp_path / "dev.vkey").write_text(vkey + "\n")

    reg = invoke(["register", VIN_A, "--key", str(tmp_path / "dev.vkey"), "--home", str(home), "--json"])
    assert reg.exit_code == 0, reg.output
    vehicle = json.loads(reg.stdout)
    assert vehicle["device_key"] == vkey and vehicle["pseudonym"].startswith("veh-")

    plain = invoke(["register", "-", "--home", str(home)], input=VIN_B + "\n")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.strip().startswith("veh-")

    listed = invoke(["list", "--home", str(home), "--json"])
    assert listed.exit_code == 0
    assert [v["pseudonym"] for v in json.loads(listed.stdout)] == [vehicle["pseudonym"], plain.stdout.strip()]
    text = invoke(["list", "--home", str(home)])
    for out in (listed.output, text.output):
        assert VIN_A not in out and VIN_B not in out

    held = invoke(["hold", VIN_A, "--reason", "court case 4 O 123/25", "--home", str(home)])
    assert held.exit_code == 0 and "legal hold: court case 4 O 123/25" in held.stdout
    refused = invoke(["erase", VIN_A, "--yes", "--home", str(home)])
    assert isinstance(refused.exception, ConflictError)
    assert "court case 4 O 123/25" in refused.exception.message
    assert invoke(["release", VIN_A, "--home", str(home)]).exit_code == 0

    declined = invoke(["erase", VIN_A, "--home", str(home)], input="n\n")
    assert declined.exit_code != 0
    erased = invoke(["erase", VIN_A, "--home", str(home), "--json"], input="y\n")
    assert erased.exit_code == 0, erased.output
    receipt = json.loads(erased.stdout.strip().splitlines()[-1])
    assert receipt["vehicle"] == vehicle["pseudonym"] and receipt["events_shredded"] == 3
    again = invoke(["erase", VIN_A, "--yes", "--home", str(home)])
    assert isinstance(again.exception, ConflictError)
    with Node.open(home) as node:
        check_fsck(node)


def test_cli_sign_produces_a_verifiable_manifest(files: list[Path], tmp_path: Path) -> None:
    key_path = tmp_path / "gw.key"
    vkey = invoke(["keygen", "--out", str(key_path)]).stdout.strip()
    out = tmp_path / "upload.json"
    result = invoke(
        ["sign", *map(str, files[:2]), "--key", str(key_path), "--prev", GENESIS_HEAD, "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["head"] == digest(files[1]) and summary["items"] == 2
    head, length = verify_manifest(read_manifest(out), files[:2], parse_vkey(vkey), GENESIS_HEAD, 0)
    nxt = invoke(
        ["sign", str(files[2]), "--key", str(key_path), "--prev", head, "--sequence", str(length + 1), "-o", str(out)]
    )
    assert nxt.exit_code == 0 and nxt.stdout.strip() == digest(files[2])
    assert verify_manifest(read_manifest(out), files[2:3], parse_vkey(vkey), head, length) == (digest(files[2]), 3)
    bad = invoke(["sign", str(files[0]), "--key", str(key_path), "--prev", "nothex", "-o", str(out)])
    assert isinstance(bad.exception, MalformedInput)


def test_cli_errors_are_typed(home: Path) -> None:
    result = invoke(["register", "1M8GDM9AXKP0427", "--home", str(home)])
    assert isinstance(result.exception, MalformedInput)
    result = invoke(["hold", VIN_A, "--reason", "x", "--home", str(home)])
    assert isinstance(result.exception, UsageError)
    result = invoke(["register", VIN_A, "--key", str(home / "absent.vkey"), "--home", str(home)])
    assert isinstance(result.exception, UsageError)


# --- the master key ---------------------------------------------------------------------------------------


def test_lost_or_replaced_master_key_is_reported(node: Node, registry: VehicleRegistry, catalog: CatalogDB) -> None:
    p = registry.register(VIN_A).pseudonym
    key_file = node.home / "keys/node.key"
    original = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(KeyMaterialError, match="missing") as info:
        master_key(node)
    assert "backup" in (info.value.hint or "")
    assert not key_file.exists()  # no new key was made in its place
    with pytest.raises(KeyMaterialError, match="not the key"):
        VehicleRegistry(catalog, bytes(32), node.log)
    key_file.write_bytes(original)
    key_file.chmod(0o600)
    assert len(VehicleRegistry(catalog, master_key(node), node.log).data_key(p)) == 32


def test_sign_refuses_sequence_one_after_genesis(files: list[Path]) -> None:
    with pytest.raises(UsageError, match="first upload"):
        build_manifest(files[:1], digest(files[0]), "device/x")
