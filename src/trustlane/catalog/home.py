"""The catalog and the master key of a node home.

``keys/node.key`` (the envelope-encryption master key, mode 0600) is created on first use; the catalog
(``catalog.db`` beside a SQLite ledger, ``catalog_*`` tables in a PostgreSQL node's schema) is created
on first open.
"""

from __future__ import annotations

from trustlane.catalog.db import CatalogDB
from trustlane.crypto.envelope import MASTER_KEY_FILE, load_or_create_master_key
from trustlane.node import Node


def open_catalog(node: Node) -> CatalogDB:
    """The node's catalog, on the node's own database setting (tables created if absent)."""
    return CatalogDB.open(node.config.database, base_dir=node.home, schema=node.config.schema, create=True)


def master_key(node: Node) -> bytes:
    """The node's envelope-encryption master key; created (0600) on first use."""
    return load_or_create_master_key(node.home / MASTER_KEY_FILE)
