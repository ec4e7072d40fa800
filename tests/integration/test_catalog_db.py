"""The catalog on every backend: SQLite always, PostgreSQL (fresh schema) when TRUSTLANE_TEST_PG_DSN is set.

Without the variable the PostgreSQL cases skip, except under CI=true where they fail (see test_store_contract).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.test_store_contract import fresh_schema, pg_dsn
from trustlane.catalog.db import CatalogDB
from trustlane.catalog.engine import catalog_sqlite_path
from trustlane.catalog.records import (
    GENESIS_HEAD,
    ChainAdvance,
    DatasetRecord,
    DroppedSignal,
    SegmentRecord,
    SignalInfo,
    VehicleRecord,
)
from trustlane.errors import ConflictError, MalformedInput, StorageError, UsageError
from trustlane.storage.postgres import drop_schema

V1 = "veh-aaaaaaaaaaaaaaaaaaaaaaaaaa"
V2 = "veh-bbbbbbbbbbbbbbbbbbbbbbbbbb"
T0 = 1_767_225_600_000_000_000  # 2026-01-01, beyond 2^53: must survive as BIGINT


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Where:
    """One backend: how to open its catalog and how to reach behind its back."""

    def __init__(self, name: str, base_dir: Path, dsn: str | None = None, schema: str = "trustlane") -> None:
        self.name = name
        self.base_dir = base_dir
        self.dsn = dsn
        self.schema = schema

    @property
    def database(self) -> str:
        return self.dsn or "sqlite"

    def open(self, *, create: bool = True) -> CatalogDB:
        return CatalogDB.open(self.database, base_dir=self.base_dir, schema=self.schema, create=create)

    def raw(self, sql: str) -> None:
        if self.dsn is None:
            conn = sqlite3.connect(self.base_dir / "catalog.db")
            try:
                with conn:
                    conn.execute(sql)
            finally:
                conn.close()
            return
        with psycopg.connect(self.dsn, autocommit=True) as pg:
            pg.execute(f'SET search_path TO "{self.schema}"')
            pg.execute(sql)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Where]:
    if request.param == "sqlite":
        yield Where("sqlite", tmp_path)
        return
    dsn = pg_dsn()
    schema = fresh_schema()
    try:
        yield Where("postgres", tmp_path, dsn, schema)
    finally:
        drop_schema(dsn, schema)


@pytest.fixture
def catalog(where: Where) -> Iterator[CatalogDB]:
    db = where.open()
    try:
        yield db
    finally:
        db.close()


def vehicle(p: str = V1, **changes: Any) -> VehicleRecord:
    base = VehicleRecord(p, b"sealed-vin", b"wrapped-key", None, T0)
    return replace(base, **changes)


def dataset(ds_id: str = "ds-1", p: str = V1, index: int = 10, start: int = T0) -> DatasetRecord:
    return DatasetRecord(
        id=ds_id,
        vehicle=p,
        format="mdf4",
        source_sha256=h(ds_id),
        t_start_ns=start,
        t_end_ns=start + 60_000_000_000,
        created_ns=start + 1,
        ledger_index=index,
        signals=(
            SignalInfo("Vehicle.Speed", "km/h", ("driving-dynamics",)),
            SignalInfo("Vehicle.Acceleration.Longitudinal", "m/s^2"),
        ),
        dropped=(DroppedSignal("CabinMic", "category cabin-audio needs consent", ("cabin-audio",)),),
    )


def segments(ds: DatasetRecord, count: int = 3, first_index: int = 11) -> list[SegmentRecord]:
    step = (ds.t_end_ns - ds.t_start_ns) // count
    return [
        SegmentRecord(
            digest=h(f"{ds.id}/{i}"),
            dataset_id=ds.id,
            vehicle=ds.vehicle,
            seq=i,
            t_start_ns=ds.t_start_ns + i * step,
            t_end_ns=ds.t_start_ns + (i + 1) * step - 1,
            rows=1000 + i,
            size=10_000_000 + i,
            ledger_index=first_index + i,
        )
        for i in range(count)
    ]


# --- opening ------------------------------------------------------------------------------------------


def test_open_creates_and_reopens(where: Where) -> None:
    db = where.open()
    db.insert_vehicle(vehicle())
    db.close()
    again = where.open(create=False)
    try:
        assert again.vehicle(V1) == vehicle()
        assert again.counts() == {"vehicles": 1, "datasets": 0, "segments": 0, "vehicle_events": 0}
    finally:
        again.close()


def test_missing_catalog_without_create(where: Where) -> None:
    with pytest.raises(StorageError, match="no catalog"):
        where.open(create=False)


def test_other_schema_version_is_refused(where: Where) -> None:
    where.open().close()
    where.raw("UPDATE catalog_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StorageError, match="schema version 99") as info:
        where.open()
    assert "release" in (info.value.hint or "")


def test_sqlite_settings(tmp_path: Path) -> None:
    db = CatalogDB.open("sqlite", base_dir=tmp_path)
    try:
        path = tmp_path / "catalog.db"
        assert path.stat().st_mode & 0o777 == 0o600
        with db._ce.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.close()


def test_catalog_path_follows_the_ledger_setting(tmp_path: Path) -> None:
    assert catalog_sqlite_path("sqlite", tmp_path) == tmp_path / "catalog.db"
    assert catalog_sqlite_path("sqlite:///data/node.db", tmp_path) == tmp_path / "data" / "node.catalog.db"
    assert catalog_sqlite_path("sqlite:////srv/x/ledger.db", tmp_path) == Path("/srv/x/ledger.catalog.db")


@pytest.mark.parametrize("database", ["mysql://host/db", "catalog.db", "sqlite:///"])
def test_unknown_settings_are_usage_errors(tmp_path: Path, database: str) -> None:
    with pytest.raises(UsageError):
        CatalogDB.open(database, base_dir=tmp_path)


def test_bad_postgres_schema_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="schema name"):
        CatalogDB.open("postgresql://127.0.0.1:1/none", base_dir=tmp_path, schema="Bad-Name")


def test_unreachable_postgres_is_a_storage_error_without_password(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as info:
        CatalogDB.open("postgresql://u:hunter2@127.0.0.1:1/none?connect_timeout=2", base_dir=tmp_path)
    assert "hunter2" not in info.value.diagnostics()


# --- vehicles -----------------------------------------------------------------------------------------


def test_vehicle_insert_get_list(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle(V2, registered_ns=T0 + 5))
    catalog.insert_vehicle(vehicle(V1, device_vkey="device/x+01020304+AAAA"))
    assert [v.pseudonym for v in catalog.vehicles()] == [V1, V2]
    got = catalog.vehicle(V1)
    assert got is not None
    assert got.chain_head == GENESIS_HEAD and got.chain_length == 0
    assert got.device_vkey == "device/x+01020304+AAAA"
    assert catalog.vehicle("veh-cccccccccccccccccccccccccc") is None
    with pytest.raises(ConflictError):
        catalog.insert_vehicle(vehicle(V1))


def test_vehicle_updates(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    with catalog.write() as w:
        w.set_device_key(V1, "device/y+01020304+BBBB")
        w.set_legal_hold(V1, "case 7")
    v = catalog.vehicle(V1)
    assert v is not None and v.legal_hold and v.legal_hold_reason == "case 7" and v.device_vkey
    with catalog.write() as w:
        w.set_legal_hold(V1, None)
        w.mark_erased(V1, T0 + 99)
    v = catalog.vehicle(V1)
    assert v is not None
    assert not v.legal_hold and v.legal_hold_reason is None
    assert v.erased and v.erased_ns == T0 + 99
    assert v.vin_sealed is None and v.data_key_wrapped is None
    with pytest.raises(UsageError, match="no vehicle"), catalog.write() as w:
        w.set_legal_hold(V2, "x")


def test_write_block_rolls_back_on_error(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    with pytest.raises(RuntimeError), catalog.write() as w:
        w.set_legal_hold(V1, "case")
        w.add_vehicle_events(V1, [1, 2])
        raise RuntimeError("boom")
    v = catalog.vehicle(V1)
    assert v is not None and not v.legal_hold
    assert catalog.vehicle_event_indexes(V1) == []


def test_vehicle_events_are_deduplicated(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    catalog.add_vehicle_events(V1, [5, 3, 5])
    catalog.add_vehicle_events(V1, [3, 8])
    assert catalog.vehicle_event_indexes(V1) == [3, 5, 8]
    with pytest.raises(UsageError):
        catalog.add_vehicle_events(V2, [1])


# --- datasets and segments ----------------------------------------------------------------------------


def test_insert_dataset_in_one_transaction(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    ds = dataset()
    segs = segments(ds)
    catalog.insert_dataset(ds, segs, [42])
    assert catalog.dataset("ds-1") == ds
    assert catalog.datasets() == [ds]
    assert catalog.datasets(V2) == []
    assert catalog.segments("ds-1") == segs
    assert catalog.segment(segs[1].digest) == segs[1]
    assert catalog.vehicle_event_indexes(V1) == [10, 11, 12, 13, 42]
    assert catalog.counts() == {"vehicles": 1, "datasets": 1, "segments": 3, "vehicle_events": 5}


def test_segments_by_vehicle_and_time_window(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    catalog.insert_vehicle(vehicle(V2))
    a, b = dataset("ds-a"), dataset("ds-b", V2, index=20, start=T0 + 10**12)
    catalog.insert_dataset(a, segments(a))
    catalog.insert_dataset(b, segments(b, first_index=21))
    assert [s.seq for s in catalog.segments(vehicle=V1)] == [0, 1, 2]
    window = catalog.segments(vehicle=V1, start_ns=T0 + 25_000_000_000, end_ns=T0 + 35_000_000_000)
    assert [s.seq for s in window] == [1]
    assert len(catalog.segments(start_ns=T0 + 10**12)) == 3  # only the later dataset's


def test_signals_summary(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    catalog.insert_vehicle(vehicle(V2))
    catalog.insert_dataset(dataset("ds-a"), [])
    catalog.insert_dataset(dataset("ds-b", V2, index=20, start=T0 + 10**12), [])
    summary = {s.path: s for s in catalog.signals()}
    speed = summary["Vehicle.Speed"]
    assert (speed.unit, speed.datasets, speed.vehicles) == ("km/h", 2, 2)
    assert speed.t_start_ns == T0 and speed.t_end_ns == T0 + 10**12 + 60_000_000_000
    assert [s.datasets for s in catalog.signals(V1)] == [1, 1]
    ds = catalog.dataset("ds-a")
    assert ds is not None and ds.dropped[0].categories == ("cabin-audio",)


def test_duplicate_segment_leaves_nothing_behind(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    first = dataset("ds-1")
    catalog.insert_dataset(first, segments(first))
    second = dataset("ds-2", index=30)
    clash = segments(second, first_index=31)
    clash[2] = replace(clash[2], digest=segments(first)[0].digest)
    with pytest.raises(ConflictError, match="already stored"):
        catalog.insert_dataset(second, clash, [99])
    assert catalog.dataset("ds-2") is None
    assert catalog.segments("ds-2") == []
    assert 99 not in catalog.vehicle_event_indexes(V1)
    with pytest.raises(ConflictError, match="already in the catalog"):
        catalog.insert_dataset(first, [])


def test_inconsistent_dataset_is_refused_before_writing(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    ds = dataset()
    segs = segments(ds)
    with pytest.raises(MalformedInput, match="numbered 1"):
        catalog.insert_dataset(ds, [segs[0], segs[1], replace(segs[2], seq=1)])
    with pytest.raises(MalformedInput, match="belongs to dataset"):
        catalog.insert_dataset(ds, [replace(segs[0], dataset_id="other")])
    with pytest.raises(UsageError, match="no vehicle"):
        catalog.insert_dataset(dataset(p=V2), [])
    assert catalog.counts()["datasets"] == 0


def test_records_validate_fields() -> None:
    with pytest.raises(MalformedInput, match="SHA-256"):
        SegmentRecord("XYZ", "ds", V1, 0, 0, 1, 1, 1, 1)
    with pytest.raises(MalformedInput, match="not ordered"):
        DatasetRecord("ds", V1, "csv", h("x"), 10, 5, 0, 0)
    with pytest.raises(MalformedInput, match="non-negative"):
        SegmentRecord(h("x"), "ds", V1, -1, 0, 1, 1, 1, 1)
    with pytest.raises(MalformedInput, match="only grow"):
        ChainAdvance(V1, GENESIS_HEAD, 3, h("a"), 3)


def test_erased_vehicle_takes_no_data(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle(erased_ns=T0, vin_sealed=None, data_key_wrapped=None))
    with pytest.raises(ConflictError, match="erased"):
        catalog.insert_dataset(dataset(), [])


# --- the upload chain ---------------------------------------------------------------------------------


def test_chain_advances_with_the_dataset(catalog: CatalogDB) -> None:
    catalog.insert_vehicle(vehicle())
    ds = dataset()
    catalog.insert_dataset(ds, segments(ds), chain=ChainAdvance(V1, GENESIS_HEAD, 0, h("a"), 2))
    v = catalog.vehicle(V1)
    assert v is not None and (v.chain_head, v.chain_length) == (h("a"), 2)
    stale = dataset("ds-2", index=40)
    with pytest.raises(ConflictError, match="another upload"):
        catalog.insert_dataset(
            stale, segments(stale, first_index=41), chain=ChainAdvance(V1, GENESIS_HEAD, 0, h("b"), 1)
        )
    assert catalog.dataset("ds-2") is None  # the failed compare-and-set took the dataset with it
    v = catalog.vehicle(V1)
    assert v is not None and v.chain_length == 2


def test_concurrent_chain_advances_let_exactly_one_win(where: Where) -> None:
    setup = where.open()
    setup.insert_vehicle(vehicle())
    setup.close()
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def attempt(i: int) -> None:
        db = where.open()
        try:
            barrier.wait()
            db.advance_chain(ChainAdvance(V1, GENESIS_HEAD, 0, h(f"head-{i}"), 1))
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")
        finally:
            db.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["ok"]


@pytest.mark.postgres
def test_postgres_tables_live_in_the_node_schema(tmp_path: Path) -> None:
    dsn = pg_dsn()
    a, b = fresh_schema(), fresh_schema()
    try:
        for schema, p in ((a, V1), (b, V2)):
            db = CatalogDB.open(dsn, base_dir=tmp_path, schema=schema)
            db.insert_vehicle(vehicle(p))
            db.close()
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'catalog_vehicles' "
                "AND table_schema IN (%s, %s)",
                (a, b),
            ).fetchall()
        assert sorted(r[0] for r in rows) == sorted([a, b])
        db = CatalogDB.open(dsn, base_dir=tmp_path, schema=a)
        try:
            assert [v.pseudonym for v in db.vehicles()] == [V1]
        finally:
            db.close()
    finally:
        drop_schema(dsn, a)
        drop_schema(dsn, b)
