"""The catalog and the master key of a node home.

``keys/node.key`` (the envelope-encryption master key, mode 0600) is created on first use; the catalog
(``catalog.db`` beside a SQLite ledger, ``catalog_*`` tables in a PostgreSQL node's schema) is created
on first open. The catalog records the master key's id once a registry has used it
(:data:`MASTER_KEY_ID`), so a lost key file is reported instead of silently replaced.
"""

from __future__ import annotations

from trustlane.catalog.db import MASTER_KEY_ID, CatalogDB
from trustlane.crypto.envelope import MASTER_KEY_FILE, load_or_create_master_key
from trustlane.errors import KeyMaterialError
from trustlane.node import Node


def open_catalog(node: Node) -> CatalogDB:
    """The node's catalog, on the node's own database setting (tables created if absent)."""
    return CatalogDB.open(node.config.database, base_dir=node.home, schema=node.config.schema, create=True)


def master_key(node: Node) -> bytes:
    """The node's envelope-encryption master key; created (0600) on first use.

    Refuses to create a new key when the catalog already holds data wrapped under one: that key file was
    lost, and a new key would not open anything.
    """
    path = node.home / MASTER_KEY_FILE
    if not path.exists():
        with open_catalog(node) as catalog:
            recorded = catalog.get_meta(MASTER_KEY_ID)
        if recorded is not None:
            raise KeyMaterialError(
                f"master key file {path} is missing, but the catalog holds keys wrapped under master key {recorded}",
                hint="restore keys/node.key from backup; without it no vehicle's data can be decrypted",
            )
    return load_or_create_master_key(path)
