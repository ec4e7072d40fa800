"""Ledger and metadata stores: SQLite (embedded default) and PostgreSQL."""
