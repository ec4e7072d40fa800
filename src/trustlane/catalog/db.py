"""The holder's metadata store: vehicles, datasets, segments and the ledger events of each vehicle.

It lives on the node's own database setting (a ``catalog.db`` beside SQLite's ``ledger.db``, or ``catalog_*``
tables in the node's PostgreSQL schema). Reads are single statements; writes go through
:meth:`CatalogDB.write`, one transaction that either commits whole or leaves nothing behind::

    with catalog.write() as w:
        v = w.vehicle(pseudonym)                # locked until commit on PostgreSQL; SQLite locks the file
        w.insert_dataset(dataset, segments, event_indexes, chain=advance)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, Row, and_, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from trustlane.catalog import tables as t
from trustlane.catalog.engine import WRITE_OPTION, CatalogEngine, open_engine, storage_error
from trustlane.catalog.records import (
    ChainAdvance,
    DatasetRecord,
    DroppedSignal,
    SegmentRecord,
    SignalInfo,
    SignalSummary,
    VehicleRecord,
)
from trustlane.errors import ConflictError, MalformedInput, StorageError, UsageError

AnyRow = Row[*tuple[Any, ...]]

MASTER_KEY_ID = "master_key_id"
"""Catalog setting: the id (``envelope.master_key_id``) of the master key the vehicles' keys are wrapped under."""

_VEHICLE_COLUMNS = (
    t.vehicles.c.pseudonym,
    t.vehicles.c.vin_sealed,
    t.vehicles.c.data_key_wrapped,
    t.vehicles.c.device_vkey,
    t.vehicles.c.registered_ns,
    t.vehicles.c.chain_head,
    t.vehicles.c.chain_length,
    t.vehicles.c.legal_hold,
    t.vehicles.c.legal_hold_reason,
    t.vehicles.c.erased_ns,
)


def _vehicle(row: AnyRow) -> VehicleRecord:
    (pseudonym, vin, key, vkey, registered, head, length, hold, reason, erased) = row
    return VehicleRecord(
        pseudonym=str(pseudonym),
        vin_sealed=None if vin is None else bytes(vin),
        data_key_wrapped=None if key is None else bytes(key),
        device_vkey=vkey,
        registered_ns=int(registered),
        chain_head=str(head),
        chain_length=int(length),
        legal_hold=bool(hold),
        legal_hold_reason=reason,
        erased_ns=None if erased is None else int(erased),
    )


def _dataset(row: AnyRow) -> DatasetRecord:
    m = row._mapping
    try:
        signals = tuple(SignalInfo.from_json(s) for s in json.loads(m["signals_json"]))
        dropped = tuple(DroppedSignal.from_json(d) for d in json.loads(m["dropped_json"]))
    except (ValueError, TypeError, MalformedInput) as exc:
        raise StorageError(
            f"catalog row of dataset {m['id']} holds unreadable signal lists: {exc}",
            hint="the catalog was edited outside trustlane; restore it from a backup",
        ) from exc
    return DatasetRecord(
        id=m["id"],
        vehicle=m["vehicle"],
        format=m["format"],
        source_sha256=m["source_sha256"],
        t_start_ns=int(m["t_start_ns"]),
        t_end_ns=int(m["t_end_ns"]),
        created_ns=int(m["created_ns"]),
        ledger_index=int(m["ledger_index"]),
        signals=signals,
        dropped=dropped,
    )


def _segment(row: AnyRow) -> SegmentRecord:
    m = row._mapping
    return SegmentRecord(
        digest=m["digest"],
        dataset_id=m["dataset_id"],
        vehicle=m["vehicle"],
        seq=int(m["seq"]),
        t_start_ns=int(m["t_start_ns"]),
        t_end_ns=int(m["t_end_ns"]),
        rows=int(m["rows"]),
        size=int(m["size"]),
        ledger_index=int(m["ledger_index"]),
    )


def _no_vehicle(pseudonym: str) -> UsageError:
    return UsageError(f"no vehicle {pseudonym} in the catalog", hint="list them with `trustlane vehicle list`")


class CatalogWriter:
    """Operations inside one write transaction of the catalog."""

    def __init__(self, conn: Connection, backend: str) -> None:
        self._conn = conn
        self._backend = backend

    @property
    def conn(self) -> Connection:
        """The transaction's connection (for modules that keep their own tables in the catalog)."""
        return self._conn

    # --- vehicles -----------------------------------------------------------------------------------
    def vehicle(self, pseudonym: str) -> VehicleRecord | None:
        """The vehicle, locked against other writers until this transaction ends."""
        query = select(*_VEHICLE_COLUMNS).where(t.vehicles.c.pseudonym == pseudonym).with_for_update()
        row = self._conn.execute(query).first()
        return None if row is None else _vehicle(row)

    def require_vehicle(self, pseudonym: str) -> VehicleRecord:
        found = self.vehicle(pseudonym)
        if found is None:
            raise _no_vehicle(pseudonym)
        return found

    def insert_vehicle(self, record: VehicleRecord) -> None:
        if self.vehicle(record.pseudonym) is not None:
            raise ConflictError(f"vehicle {record.pseudonym} is already registered")
        self._conn.execute(
            t.vehicles.insert().values(
                pseudonym=record.pseudonym,
                vin_sealed=record.vin_sealed,
                data_key_wrapped=record.data_key_wrapped,
                device_vkey=record.device_vkey,
                registered_ns=record.registered_ns,
                chain_head=record.chain_head,
                chain_length=record.chain_length,
                legal_hold=record.legal_hold,
                legal_hold_reason=record.legal_hold_reason,
                erased_ns=record.erased_ns,
            )
        )

    def _update(self, pseudonym: str, **values: Any) -> None:
        result = self._conn.execute(t.vehicles.update().where(t.vehicles.c.pseudonym == pseudonym).values(**values))
        if result.rowcount != 1:
            raise _no_vehicle(pseudonym)

    def set_device_key(self, pseudonym: str, vkey: str) -> None:
        self._update(pseudonym, device_vkey=vkey)

    def set_legal_hold(self, pseudonym: str, reason: str | None) -> None:
        """Place (``reason`` given) or release (None) a legal hold."""
        self._update(pseudonym, legal_hold=reason is not None, legal_hold_reason=reason)

    def mark_erased(self, pseudonym: str, erased_ns: int) -> None:
        """Destroy the sealed VIN and the wrapped data key; record when."""
        self._update(pseudonym, vin_sealed=None, data_key_wrapped=None, erased_ns=erased_ns)

    def advance_chain(self, advance: ChainAdvance) -> None:
        """Compare-and-set the upload chain; ConflictError if another upload moved it first."""
        v = t.vehicles.c
        result = self._conn.execute(
            t.vehicles.update()
            .where(
                and_(
                    v.pseudonym == advance.vehicle,
                    v.chain_head == advance.expected_head,
                    v.chain_length == advance.expected_length,
                )
            )
            .values(chain_head=advance.new_head, chain_length=advance.new_length)
        )
        if result.rowcount != 1:
            current = self.require_vehicle(advance.vehicle)
            raise ConflictError(
                f"the upload chain of {advance.vehicle} is at length {current.chain_length}, not "
                f"{advance.expected_length}: another upload was accepted meanwhile",
                hint="verify the manifest again against the current chain head",
            )

    def add_vehicle_events(self, pseudonym: str, indexes: Iterable[int]) -> None:
        """Record ledger events that concern the vehicle (their salts are destroyed on erasure)."""
        wanted = sorted({int(i) for i in indexes})
        if any(i < 0 for i in wanted):
            raise MalformedInput("ledger indexes are never negative")
        if not wanted:
            return
        known = set(
            self._conn.scalars(
                select(t.vehicle_events.c.ledger_index).where(
                    t.vehicle_events.c.vehicle == pseudonym, t.vehicle_events.c.ledger_index.in_(wanted)
                )
            )
        )
        rows = [{"vehicle": pseudonym, "ledger_index": i} for i in wanted if i not in known]
        if rows:
            self._conn.execute(t.vehicle_events.insert(), rows)

    def vehicle_event_indexes(self, pseudonym: str) -> list[int]:
        c = t.vehicle_events.c
        query = select(c.ledger_index).where(c.vehicle == pseudonym).order_by(c.ledger_index)
        return [int(i) for i in self._conn.scalars(query)]

    # --- datasets -----------------------------------------------------------------------------------
    def insert_dataset(
        self,
        dataset: DatasetRecord,
        segments: Sequence[SegmentRecord],
        event_indexes: Iterable[int] = (),
        *,
        chain: ChainAdvance | None = None,
    ) -> None:
        """Add a dataset, its segments and its vehicle events (the dataset's and segments' ledger indexes are
        always included); with ``chain`` also advance the vehicle's upload chain, all or nothing."""
        _check_dataset(dataset, segments, chain)
        vehicle = self.require_vehicle(dataset.vehicle)
        if vehicle.erased:
            raise ConflictError(
                f"vehicle {dataset.vehicle} was erased; no data can be added for it",
                hint="erasure is permanent: data of an erased vehicle is never stored again",
            )
        if self._conn.execute(select(t.datasets.c.id).where(t.datasets.c.id == dataset.id)).first():
            raise ConflictError(f"dataset {dataset.id} is already in the catalog", hint="ingest each recording once")
        digests = [s.digest for s in segments]
        if digests:
            present = list(self._conn.scalars(select(t.segments.c.digest).where(t.segments.c.digest.in_(digests))))
            if present:
                raise ConflictError(
                    f"segment {present[0]} is already stored (in another dataset)",
                    hint="the same data was ingested before; segments are content-addressed",
                )
        if chain is not None:
            self.advance_chain(chain)
        self._conn.execute(
            t.datasets.insert().values(
                id=dataset.id,
                vehicle=dataset.vehicle,
                format=dataset.format,
                source_sha256=dataset.source_sha256,
                t_start_ns=dataset.t_start_ns,
                t_end_ns=dataset.t_end_ns,
                created_ns=dataset.created_ns,
                ledger_index=dataset.ledger_index,
                signals_json=dataset.signals_json(),
                dropped_json=dataset.dropped_json(),
            )
        )
        if segments:
            self._conn.execute(
                t.segments.insert(),
                [
                    {
                        "digest": s.digest,
                        "dataset_id": s.dataset_id,
                        "vehicle": s.vehicle,
                        "seq": s.seq,
                        "t_start_ns": s.t_start_ns,
                        "t_end_ns": s.t_end_ns,
                        "rows": s.rows,
                        "size": s.size,
                        "ledger_index": s.ledger_index,
                    }
                    for s in segments
                ],
            )
        indexes = {dataset.ledger_index, *(s.ledger_index for s in segments), *event_indexes}
        self.add_vehicle_events(dataset.vehicle, indexes)


def _check_dataset(dataset: DatasetRecord, segments: Sequence[SegmentRecord], chain: ChainAdvance | None) -> None:
    seqs: set[int] = set()
    digests: set[str] = set()
    for s in segments:
        if s.dataset_id != dataset.id or s.vehicle != dataset.vehicle:
            raise MalformedInput(
                f"segment {s.digest} belongs to dataset {s.dataset_id} of {s.vehicle}, "
                f"not to dataset {dataset.id} of {dataset.vehicle}"
            )
        if s.seq in seqs:
            raise MalformedInput(f"dataset {dataset.id} has two segments numbered {s.seq}")
        if s.digest in digests:
            raise MalformedInput(f"dataset {dataset.id} lists segment {s.digest} twice")
        seqs.add(s.seq)
        digests.add(s.digest)
    if chain is not None and chain.vehicle != dataset.vehicle:
        raise MalformedInput(f"the chain update is for {chain.vehicle}, the dataset for {dataset.vehicle}")


class CatalogDB:
    """The catalog of one node. Thread-safe; open it with :meth:`open` (or ``catalog.home.open_catalog``)."""

    def __init__(self, ce: CatalogEngine) -> None:
        self._ce = ce
        self.backend = ce.backend
        self.location = ce.location

    @classmethod
    def open(cls, database: str, *, base_dir: Path, schema: str = "trustlane", create: bool = True) -> CatalogDB:
        """Open the catalog of a node's ``database`` setting; with ``create``, make its tables if absent."""
        ce = open_engine(database, base_dir=base_dir, schema=schema, create=create)
        db = cls(ce)
        try:
            db._init(create)
        except BaseException:
            db.close()
            raise
        return db

    def __repr__(self) -> str:
        return f"CatalogDB({self.location})"

    # --- plumbing -----------------------------------------------------------------------------------
    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError as exc:
            raise ConflictError(
                f"catalog {self.location} refused a change that conflicts with its contents: "
                f"{storage_error(self._ce, exc).message}",
                hint="another process may have written the same record; reload and retry",
            ) from exc
        except (SQLAlchemyError, psycopg.Error) as exc:
            raise storage_error(self._ce, exc) from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read-only connection (for modules that keep their own tables in the catalog)."""
        with self._read() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self._ce.engine.connect() as conn:
            yield conn
            conn.rollback()

    @contextmanager
    def write(self) -> Iterator[CatalogWriter]:
        """One write transaction: commits when the block ends, rolls back if it raises."""
        with self._guard(), self._ce.engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield CatalogWriter(conn, self.backend)

    def _init(self, create: bool) -> None:
        with self.write() as w:
            conn = w._conn
            if self.backend == "postgres":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": self.location})
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self._ce.schema}"'))
            if not inspect(conn).has_table(t.meta.name, schema=self._ce.schema):
                if not create:
                    raise StorageError(f"no catalog in {self.location}", hint="check --home and the database setting")
                t.metadata.create_all(conn)
                conn.execute(t.meta.insert().values(key="schema_version", value=str(t.CATALOG_SCHEMA_VERSION)))
                return
            version = conn.scalar(select(t.meta.c.value).where(t.meta.c.key == "schema_version"))
            if version == "1":  # version 2 only added tables
                t.metadata.create_all(conn)
                conn.execute(
                    t.meta.update().where(t.meta.c.key == "schema_version").values(value=str(t.CATALOG_SCHEMA_VERSION))
                )
                version = str(t.CATALOG_SCHEMA_VERSION)
        if version != str(t.CATALOG_SCHEMA_VERSION):
            raise StorageError(
                f"catalog {self.location} has schema version {version}; this trustlane reads version "
                f"{t.CATALOG_SCHEMA_VERSION}",
                hint="use the trustlane release that created this node, or migrate the catalog",
            )

    def close(self) -> None:
        self._ce.engine.dispose()

    def __enter__(self) -> CatalogDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- settings ------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._read() as conn:
            value = conn.scalar(select(t.meta.c.value).where(t.meta.c.key == key))
        return None if value is None else str(value)

    def claim_meta(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless a value is already stored; return the stored value."""
        with self.write() as w:
            stored = w._conn.scalar(select(t.meta.c.value).where(t.meta.c.key == key))
            if stored is None:
                w._conn.execute(t.meta.insert().values(key=key, value=value))
                return value
        return str(stored)

    # --- reads ---------------------------------------------------------------------------------------
    def vehicle(self, pseudonym: str) -> VehicleRecord | None:
        with self._read() as conn:
            row = conn.execute(select(*_VEHICLE_COLUMNS).where(t.vehicles.c.pseudonym == pseudonym)).first()
        return None if row is None else _vehicle(row)

    def vehicles(self) -> list[VehicleRecord]:
        query = select(*_VEHICLE_COLUMNS).order_by(t.vehicles.c.registered_ns, t.vehicles.c.pseudonym)
        with self._read() as conn:
            return [_vehicle(r) for r in conn.execute(query)]

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.datasets).where(t.datasets.c.id == dataset_id)).first()
        return None if row is None else _dataset(row)

    def datasets(self, vehicle: str | None = None) -> list[DatasetRecord]:
        query = select(t.datasets).order_by(t.datasets.c.t_start_ns, t.datasets.c.id)
        if vehicle is not None:
            query = query.where(t.datasets.c.vehicle == vehicle)
        with self._read() as conn:
            return [_dataset(r) for r in conn.execute(query)]

    def segment(self, digest: str) -> SegmentRecord | None:
        with self._read() as conn:
            row = conn.execute(select(t.segments).where(t.segments.c.digest == digest)).first()
        return None if row is None else _segment(row)

    def stored_segments(self, digests: Sequence[str]) -> dict[str, str]:
        """Of ``digests``, those already stored: digest → the dataset holding it (one query per 500)."""
        found: dict[str, str] = {}
        unique = sorted(set(digests))
        with self._read() as conn:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                query = select(t.segments.c.digest, t.segments.c.dataset_id).where(t.segments.c.digest.in_(chunk))
                found.update({str(d): str(ds) for d, ds in conn.execute(query)})
        return found

    def segments(
        self,
        dataset_id: str | None = None,
        *,
        vehicle: str | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> list[SegmentRecord]:
        """Segments of a dataset and/or vehicle, overlapping ``[start_ns, end_ns]`` when given, in time order."""
        c = t.segments.c
        query = select(t.segments).order_by(c.vehicle, c.t_start_ns, c.dataset_id, c.seq)
        if dataset_id is not None:
            query = query.where(c.dataset_id == dataset_id)
        if vehicle is not None:
            query = query.where(c.vehicle == vehicle)
        if start_ns is not None:
            query = query.where(c.t_end_ns >= start_ns)
        if end_ns is not None:
            query = query.where(c.t_start_ns <= end_ns)
        with self._read() as conn:
            return [_segment(r) for r in conn.execute(query)]

    def signals(self, vehicle: str | None = None) -> list[SignalSummary]:
        """Every signal path in the catalog: its unit, how many datasets and vehicles hold it, and when."""
        acc: dict[str, tuple[str | None, set[str], set[str], int, int]] = {}
        for ds in self.datasets(vehicle):
            for sig in ds.signals:
                unit, sets, vehicles, lo, hi = acc.get(sig.path, (sig.unit, set(), set(), ds.t_start_ns, ds.t_end_ns))
                sets.add(ds.id)
                vehicles.add(ds.vehicle)
                acc[sig.path] = (unit, sets, vehicles, min(lo, ds.t_start_ns), max(hi, ds.t_end_ns))
        return [
            SignalSummary(path, unit, len(sets), len(vehicles), lo, hi)
            for path, (unit, sets, vehicles, lo, hi) in sorted(acc.items())
        ]

    def vehicle_event_indexes(self, pseudonym: str) -> list[int]:
        with self._read() as conn:
            return CatalogWriter(conn, self.backend).vehicle_event_indexes(pseudonym)

    def counts(self) -> dict[str, int]:
        """Rows per table (for status output)."""
        out: dict[str, int] = {}
        with self._read() as conn:
            for name, table in (
                ("vehicles", t.vehicles),
                ("datasets", t.datasets),
                ("segments", t.segments),
                ("vehicle_events", t.vehicle_events),
            ):
                out[name] = int(conn.scalar(select(func.count()).select_from(table)) or 0)
        return out

    # --- writes, one transaction each ------------------------------------------------------------------
    def insert_vehicle(self, record: VehicleRecord) -> None:
        with self.write() as w:
            w.insert_vehicle(record)

    def insert_dataset(
        self,
        dataset: DatasetRecord,
        segments: Sequence[SegmentRecord],
        event_indexes: Iterable[int] = (),
        *,
        chain: ChainAdvance | None = None,
    ) -> None:
        """See :meth:`CatalogWriter.insert_dataset`; one transaction."""
        with self.write() as w:
            w.insert_dataset(dataset, segments, event_indexes, chain=chain)

    def add_vehicle_events(self, pseudonym: str, indexes: Iterable[int]) -> None:
        with self.write() as w:
            w.require_vehicle(pseudonym)
            w.add_vehicle_events(pseudonym, indexes)

    def advance_chain(self, advance: ChainAdvance) -> None:
        with self.write() as w:
            w.advance_chain(advance)


__all__ = ["MASTER_KEY_ID", "CatalogDB", "CatalogWriter"]
