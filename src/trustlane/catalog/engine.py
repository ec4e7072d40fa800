"""SQLAlchemy engines for the catalog, on the same ``database`` setting as the node's ledger.

* ``sqlite`` → ``catalog.db`` in the node home; ``sqlite:///dir/NAME.db`` → ``dir/NAME.catalog.db`` beside
  the ledger file. WAL, ``synchronous=FULL``, foreign keys on, and write transactions begin IMMEDIATE
  so two writers queue on the busy timeout instead of failing half-way.
* ``postgresql://...`` → ``postgresql+psycopg``, connected by libpq from the DSN exactly as the ledger
  store is, with the node's schema applied through SQLAlchemy's schema translation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from trustlane.errors import StorageError, UsageError
from trustlane.storage.open import ACCEPTED_FORMS
from trustlane.storage.postgres import describe_dsn

CATALOG_FILE = "catalog.db"
WRITE_OPTION = "trustlane_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
_BUSY_TIMEOUT_MS = 60_000
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_POSTGRES_URLS = ("postgresql://", "postgres://")
_SQLITE_URL = "sqlite:///"

# Keep commits durable even where the server turned synchronous_commit off, and bound lock waits.
_PG_SESSION_SETUP = """
SELECT
    CASE WHEN current_setting('synchronous_commit') = 'off'
        THEN set_config('synchronous_commit', 'on', false) END,
    CASE WHEN current_setting('lock_timeout') = '0'
        THEN set_config('lock_timeout', '60s', false) END
"""


@dataclass(frozen=True)
class CatalogEngine:
    engine: Engine
    backend: str  # "sqlite" | "postgres"
    location: str  # for messages: a path, or the server without its password
    schema: str | None  # PostgreSQL schema; None on SQLite
    secret: str | None = None  # the DSN password, scrubbed from every message


def catalog_sqlite_path(database: str, base_dir: Path) -> Path:
    """Where the catalog lives for a SQLite ``database`` setting."""
    if database == "sqlite":
        return base_dir / CATALOG_FILE
    rest = database[len(_SQLITE_URL) :]
    if not rest:
        raise UsageError("the sqlite:/// database URL names no file", hint=f"use one of: {ACCEPTED_FORMS}")
    ledger = Path(rest).expanduser()
    ledger = ledger if ledger.is_absolute() else base_dir / ledger
    return ledger.with_name(ledger.stem + ".catalog.db")


def _sqlite_engine(path: Path, create: bool) -> CatalogEngine:
    if not path.exists():
        if not create:
            raise StorageError(f"no catalog at {path}", hint="check --home and the [storage] database setting")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # SQLite's WAL files inherit the mode
        except OSError as exc:
            raise StorageError(
                f"cannot create the catalog {path}: {exc.strerror}", hint="pick a writable node home"
            ) from exc
    engine = create_engine(f"sqlite+pysqlite:///{path}", hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _setup(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin hook below emits BEGIN itself
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    return CatalogEngine(engine, "sqlite", str(path), None)


def _postgres_engine(dsn: str, schema: str) -> CatalogEngine:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise UsageError(
            f"{schema!r} is not a usable PostgreSQL schema name",
            hint="use 1 to 63 lower-case letters, digits and underscores, not starting with a digit",
        )
    location = describe_dsn(dsn)  # also rejects a DSN that does not parse, without echoing it
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    secret = params.get("password") or None

    def connect() -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            dsn,
            connect_timeout=params.get("connect_timeout", "10"),
            application_name=params.get("application_name", "trustlane-catalog"),
            autocommit=True,
        )
        try:
            conn.execute(_PG_SESSION_SETUP)
            conn.autocommit = False
        except BaseException:
            conn.close()
            raise
        return conn

    engine = create_engine(
        "postgresql+psycopg://", creator=connect, hide_parameters=True, pool_pre_ping=True
    ).execution_options(schema_translate_map={None: schema})
    return CatalogEngine(engine, "postgres", f"schema {schema} in {location}", schema, secret)


def open_engine(database: str, *, base_dir: Path, schema: str, create: bool) -> CatalogEngine:
    """The engine for the catalog that goes with the ledger ``database`` setting."""
    if database == "sqlite" or database.startswith(_SQLITE_URL):
        return _sqlite_engine(catalog_sqlite_path(database, base_dir), create)
    if database.startswith(_POSTGRES_URLS):
        return _postgres_engine(database, schema)
    head, sep, _ = database.partition("://")
    shown = f"{head}://..." if sep else "a value without a scheme"
    raise UsageError(f"unknown database setting ({shown})", hint=f"use one of: {ACCEPTED_FORMS}")


def storage_error(ce: CatalogEngine, exc: SQLAlchemyError | psycopg.Error) -> StorageError:
    """A StorageError naming the catalog and the driver's complaint, never parameters or the password."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    message = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if ce.secret:
        message = message.replace(ce.secret, "***")
    if isinstance(original, psycopg.OperationalError) or "unable to open" in message:
        hint = "check that the database is reachable and writable (pg_isready for PostgreSQL), then retry"
    else:
        hint = "restore the catalog from a backup if this persists; the ledger (`trustlane ledger verify`) is separate"
    return StorageError(f"catalog {ce.location} cannot be used: {message}", hint=hint)
