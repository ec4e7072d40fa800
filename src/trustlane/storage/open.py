"""Pick and open the ledger store a ``--database`` setting names."""

from __future__ import annotations

from pathlib import Path

from trustlane.errors import StorageError, UsageError
from trustlane.storage.base import LedgerStore

SQLITE_FILE = "ledger.db"
_SQLITE_URL = "sqlite:///"
_POSTGRES_URLS = ("postgresql://", "postgres://")

ACCEPTED_FORMS = (
    f"`sqlite` (the node home's {SQLITE_FILE}), `sqlite:///relative/path.db` (relative to the node home), "
    "`sqlite:////absolute/path.db`, or `postgresql://USER@HOST:PORT/DBNAME`"
)


def _sqlite_path(database: str, base_dir: Path) -> Path:
    if database == "sqlite":
        return base_dir / SQLITE_FILE
    rest = database[len(_SQLITE_URL) :]
    if not rest:
        raise UsageError("the sqlite:/// database URL names no file", hint=f"use one of: {ACCEPTED_FORMS}")
    path = Path(rest).expanduser()
    return path if path.is_absolute() else base_dir / path


def _scheme(database: str) -> str:
    """What to echo of an unknown setting: its scheme only, since the rest may hold a password."""
    head, sep, _ = database.partition("://")
    return f"{head}://..." if sep else "a value without a scheme"


def open_store(database: str, *, base_dir: Path, schema: str = "trustlane", create: bool = False) -> LedgerStore:
    """Open (or with ``create``, initialise) the store for ``database``.

    ``sqlite:///x.db`` is relative to ``base_dir`` and ``sqlite:////srv/x.db`` absolute, as in
    SQLAlchemy URLs. ``schema`` applies to PostgreSQL only.
    """
    if database == "sqlite" or database.startswith(_SQLITE_URL):
        from trustlane.storage.sqlite import SqliteStore

        path = _sqlite_path(database, base_dir)
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the folder for {path}: {exc.strerror}",
                    hint="pick a writable location for the ledger database",
                ) from exc
        return SqliteStore(path, create=create)
    if database.startswith(_POSTGRES_URLS):
        from trustlane.storage.postgres import PostgresStore

        return PostgresStore(database, schema=schema, create=create)
    raise UsageError(
        f"unknown ledger database setting ({_scheme(database)})",
        hint=f"use one of: {ACCEPTED_FORMS}",
    )
