"""The composition root: a node home wired to its store, keys, log and witnesses."""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from trustlane.config import CONFIG_FILE, NodeConfig, WitnessEndpoint, read_config, write_config
from trustlane.crypto.cosignature import CosignatureSigner
from trustlane.crypto.keys import COSIGNATURE_KEY, NOTE_KEY, read_private_key, write_private_key
from trustlane.crypto.note import Ed25519Signer, Verifier, key_name_problem, parse_vkey
from trustlane.errors import HomeError, KeyMaterialError, StorageError, UsageError
from trustlane.ledger.log import LedgerSettings, Log
from trustlane.ledger.policy import Policy
from trustlane.storage.base import CheckpointRecord, LedgerStore
from trustlane.storage.open import open_store

if TYPE_CHECKING:
    from trustlane.ledger.witness_client import WitnessClient

log = logging.getLogger("trustlane.node")

LOG_KEY = "keys/log.key"
WITNESS_KEY = "keys/witness.key"


def default_origin() -> str:
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.") or "localhost"
    return f"{host}/trustlane-{secrets.token_hex(4)}"


class Node:
    def __init__(self, home: Path, config: NodeConfig, store: LedgerStore) -> None:
        self.home = home
        self.config = config
        self.store = store
        self._log: Log | None = None
        self._signer: Ed25519Signer | None = None
        self._cosigner: CosignatureSigner | None = None

    # --- creation and opening -----------------------------------------------------------------
    @classmethod
    def init(
        cls,
        home: Path,
        *,
        origin: str | None = None,
        database: str = "sqlite",
        schema: str = "trustlane",
        ledger: LedgerSettings | None = None,
    ) -> Node:
        """Create a node home; built in a sibling folder and moved into place, so never half-made."""
        origin = default_origin() if origin is None else origin  # an empty --origin is an error, not a default
        problem = key_name_problem(origin)
        if problem:
            raise UsageError(f"origin {origin!r} cannot name a log: {problem}", hint="e.g. example.com/log")
        if (home / CONFIG_FILE).exists():
            raise HomeError(f"{home} is already a trustlane node home", hint="use it, or pick another --home")
        if home.exists() and (not home.is_dir() or any(home.iterdir())):
            raise HomeError(f"{home} exists and is not an empty folder", hint="pick a new or empty --home")
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = home.parent / f".{home.name}.init-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)
        try:
            signer = Ed25519Signer.generate(origin)
            cosigner = CosignatureSigner.generate(origin + "/witness")
            write_private_key(staging / LOG_KEY, origin, NOTE_KEY, signer.private_key)
            write_private_key(staging / WITNESS_KEY, cosigner.name, COSIGNATURE_KEY, cosigner.private_key)
            (staging / "keys/log.vkey").write_text(signer.verifier.vkey + "\n")
            (staging / "keys/witness.vkey").write_text(cosigner.verifier.vkey + "\n")
            config = NodeConfig(origin=origin, database=database, schema=schema, ledger=ledger or LedgerSettings())
            store = open_store(database, base_dir=staging, schema=schema, create=True)
            try:
                existing = store.get_meta("origin")
                if existing is not None:
                    raise StorageError(
                        f"the database already holds the log {existing!r}",
                        hint="give each node its own database or PostgreSQL schema (--schema)",
                    )
                store.set_meta("origin", origin)
                store.set_meta("log_vkey", signer.verifier.vkey)
                Log(store, signer, config.ledger).publish_checkpoint()  # the empty tree, size 0
            finally:
                store.close()
            write_config(staging, config)
            for path in staging.glob("ledger.db*"):
                path.chmod(0o600)  # holds event secrets (salts) as well as the public ledger
            if home.exists():
                home.rmdir()
            staging.rename(home)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.open(home)

    @classmethod
    def open(cls, home: Path) -> Node:
        config = read_config(home)
        store = open_store(config.database, base_dir=home, schema=config.schema)
        node = cls(home, config, store)
        try:
            stored_origin = store.get_meta("origin")
            if stored_origin is None:
                raise StorageError(
                    f"the database of {home} holds no trustlane ledger",
                    hint="restore the node home from a backup; `trustlane init` creates a new one",
                )
            if stored_origin != config.origin:
                raise HomeError(
                    f"the database holds log {stored_origin!r} but {home / CONFIG_FILE} names {config.origin!r}",
                    hint="this configuration points at another node's database; fix [storage] or the origin",
                )
            if store.get_meta("log_vkey") != node.signer.verifier.vkey:
                raise KeyMaterialError(
                    f"{home / LOG_KEY} is not the key this log was created with",
                    hint="restore the original log key; a log must never change keys silently",
                )
        except BaseException:
            store.close()
            raise
        return node

    # --- keys --------------------------------------------------------------------------------------
    @property
    def signer(self) -> Ed25519Signer:
        if self._signer is None:
            name, key = read_private_key(self.home / LOG_KEY, NOTE_KEY)
            if name != self.config.origin:
                raise KeyMaterialError(f"{self.home / LOG_KEY} belongs to {name!r}, not {self.config.origin!r}")
            self._signer = Ed25519Signer(name, key)
        return self._signer

    @property
    def cosigner(self) -> CosignatureSigner:
        if self._cosigner is None:
            name, key = read_private_key(self.home / WITNESS_KEY, COSIGNATURE_KEY)
            self._cosigner = CosignatureSigner(name, key)
        return self._cosigner

    @property
    def log_verifier(self) -> Verifier:
        return self.signer.verifier

    # --- the log and its witnesses -------------------------------------------------------------------
    @property
    def log(self) -> Log:
        if self._log is None:
            self._log = Log(self.store, self.signer, self.config.ledger, on_checkpoint=self._cosign)
        return self._log

    def witness_clients(self) -> list[WitnessClient]:
        from trustlane.ledger.witness_client import WitnessClient

        return [WitnessClient(w.name, w.url, parse_vkey(w.vkey)) for w in self.config.witnesses]

    def witness_verifiers(self) -> dict[str, Verifier]:
        """Configured witness keys by key name (the name their cosignature lines carry)."""
        return {v.name: v for v in (parse_vkey(w.vkey) for w in self.config.witnesses)}

    def _cosign(self, record: CheckpointRecord) -> None:
        if not self.config.witnesses:
            return
        from trustlane.ledger.witness_client import request_cosignatures

        clients = self.witness_clients()
        try:
            outcome = request_cosignatures(self.log, record, clients)
        finally:
            for client in clients:
                client.close()
        for name, result in outcome.items():
            if result != "ok":
                log.warning("witness %s did not cosign checkpoint %d: %s", name, record.size, result)

    def update_config(self, config: NodeConfig) -> None:
        write_config(self.home, config)
        self.config = config
        self._log = None

    def add_witness(self, name: str, url: str, vkey: str) -> None:
        verifier = parse_vkey(vkey)
        if any(w.name == name for w in self.config.witnesses):
            raise UsageError(f"a witness named {name!r} is already configured", hint="pick another name")
        if verifier.sig_type != COSIGNATURE_KEY:
            raise KeyMaterialError(
                f"{vkey} is not a cosignature verifier key (type 0x04)",
                hint="use the witness's key from `trustlane witness vkey`",
            )
        from trustlane.ledger.witness_client import WitnessClient

        WitnessClient(name, url, verifier).close()  # refuse a URL the log could never send checkpoints to
        witnesses = (*self.config.witnesses, WitnessEndpoint(name, url.rstrip("/"), verifier.vkey))
        # `trustlane ledger policy` names every witness: refuse a name or key no policy file can hold.
        Policy.simple(self.log_verifier, [(w.name, parse_vkey(w.vkey)) for w in witnesses], 0)
        self.update_config(replace(self.config, witnesses=witnesses))

    def trust_log(self, vkey: str) -> None:
        verifier = parse_vkey(vkey)
        if verifier.sig_type != NOTE_KEY:
            raise KeyMaterialError(f"{vkey} is not a log verifier key (type 0x01)", hint="use `trustlane ledger vkey`")
        if verifier.vkey in self.config.witnessed_logs:
            return
        self.update_config(replace(self.config, witnessed_logs=(*self.config.witnessed_logs, verifier.vkey)))

    def close(self) -> None:
        if self._log is not None:
            self._log.stop()
        self.store.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
