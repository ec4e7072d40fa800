"""The catalog's tables (SQLAlchemy Core). Names carry a ``catalog_`` prefix: on PostgreSQL they share the
node's schema with the ledger's own tables. Nanosecond times and ledger indexes are BIGINT."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)

CATALOG_SCHEMA_VERSION = 1

metadata = MetaData()

meta = Table(
    "catalog_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

vehicles = Table(
    "catalog_vehicles",
    metadata,
    Column("pseudonym", Text, primary_key=True),
    Column("vin_sealed", LargeBinary, nullable=True),  # NULL once erased
    Column("data_key_wrapped", LargeBinary, nullable=True),  # NULL once erased
    Column("device_vkey", Text, nullable=True),
    Column("chain_head", Text, nullable=False),
    Column("chain_length", BigInteger, nullable=False),
    Column("legal_hold", Boolean, nullable=False),
    Column("legal_hold_reason", Text, nullable=True),
    Column("registered_ns", BigInteger, nullable=False),
    Column("erased_ns", BigInteger, nullable=True),
)

datasets = Table(
    "catalog_datasets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("vehicle", Text, ForeignKey(vehicles.c.pseudonym), nullable=False),
    Column("format", Text, nullable=False),
    Column("source_sha256", Text, nullable=False),
    Column("t_start_ns", BigInteger, nullable=False),
    Column("t_end_ns", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("signals_json", Text, nullable=False),
    Column("dropped_json", Text, nullable=False),
    Index("catalog_datasets_vehicle", "vehicle", "t_start_ns"),
)

segments = Table(
    "catalog_segments",
    metadata,
    Column("digest", Text, primary_key=True),
    Column("dataset_id", Text, ForeignKey(datasets.c.id), nullable=False),
    Column("vehicle", Text, ForeignKey(vehicles.c.pseudonym), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("t_start_ns", BigInteger, nullable=False),
    Column("t_end_ns", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "seq", name="catalog_segments_dataset_seq"),
    Index("catalog_segments_vehicle_time", "vehicle", "t_start_ns"),
)

vehicle_events = Table(
    "catalog_vehicle_events",
    metadata,
    Column("vehicle", Text, ForeignKey(vehicles.c.pseudonym), nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    PrimaryKeyConstraint("vehicle", "ledger_index"),
)
