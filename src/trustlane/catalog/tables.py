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

CATALOG_SCHEMA_VERSION = 2
"""Version 2 added the trusted-analysis tables (parties to reports); a version-1 catalog gains them on open."""

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

# --- trusted analysis (schema version 2) ----------------------------------------------------------------

parties = Table(
    "catalog_parties",
    metadata,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("vkey", Text, nullable=False),
    Column("key_held", Boolean, nullable=False),  # the private key lies in the node home (a local party)
    Column("created_ns", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("revoked_ns", BigInteger, nullable=True),
)

api_tokens = Table(
    "catalog_api_tokens",
    metadata,
    Column("token_sha256", Text, primary_key=True),
    Column("party", Text, ForeignKey(parties.c.name), nullable=False),
    Column("label", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
    Column("revoked_ns", BigInteger, nullable=True),
)

algorithms = Table(
    "catalog_algorithms",
    metadata,
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("registered_ns", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("approvals_json", Text, nullable=False),
    PrimaryKeyConstraint("name", "version"),
)

contracts = Table(
    "catalog_contracts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("assignee", Text, ForeignKey(parties.c.name), nullable=False),
    Column("offer_json", Text, nullable=False),  # the signed offer: policy plus the holder's signature
    Column("acceptance_json", Text, nullable=True),  # the assignee's signature over the offer
    Column("runs_used", Integer, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("agreed_index", BigInteger, nullable=True),
    Column("revoked_ns", BigInteger, nullable=True),
    Column("revoked_reason", Text, nullable=True),
    Index("catalog_contracts_assignee", "assignee"),
)

analysis_runs = Table(
    "catalog_analysis_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("contract_id", Text, ForeignKey(contracts.c.id), nullable=False),
    Column("party", Text, ForeignKey(parties.c.name), nullable=False),
    Column("status", Text, nullable=False),  # denied | blocked | failed | reported
    Column("reason", Text, nullable=True),
    Column("request_json", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
    Column("report_id", Text, nullable=True),
    Index("catalog_analysis_runs_contract", "contract_id"),
)

reports = Table(
    "catalog_reports",
    metadata,
    Column("id", Text, primary_key=True),
    Column("run_id", Text, ForeignKey(analysis_runs.c.id), nullable=False),
    Column("contract_id", Text, ForeignKey(contracts.c.id), nullable=False),
    Column("party", Text, ForeignKey(parties.c.name), nullable=False),
    Column("recipients_json", Text, nullable=False),
    Column("report_json", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("ledger_index", BigInteger, nullable=False),
)
