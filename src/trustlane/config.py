"""Node home and configuration.

A node home is a folder (``--home DIR``, else ``$TRUSTLANE_HOME``, else ``./.trustlane``) holding::

    config.toml          what this node is: origin, storage, ledger settings, witnesses
    keys/log.key         the log's Ed25519 note key (mode 0600)
    keys/log.vkey        its verifier key (public)
    keys/witness.key     the node's Ed25519 cosigner key, used when it acts as a witness (mode 0600)
    keys/witness.vkey
    ledger.db            the SQLite database (embedded default)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustlane.errors import HomeError, UsageError
from trustlane.ledger.log import LedgerSettings

HOME_FORMAT = "trustlane-home/1"
CONFIG_FILE = "config.toml"
DEFAULT_HOME = ".trustlane"


def resolve_home(home: Path | str | None) -> Path:
    if home is not None and str(home) != "":
        return Path(home).expanduser().absolute()
    env = os.environ.get("TRUSTLANE_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return (Path.cwd() / DEFAULT_HOME).absolute()


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness this log asks for cosignatures."""

    name: str
    url: str
    vkey: str


@dataclass(frozen=True)
class NodeConfig:
    origin: str
    database: str = "sqlite"
    schema: str = "trustlane"
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    witnesses: tuple[WitnessEndpoint, ...] = ()
    witnessed_logs: tuple[str, ...] = ()  # vkeys of logs this node cosigns as a witness
    witness_quorum: int = 0  # cosignatures a checkpoint needs before the node calls it witnessed

    def to_toml(self) -> str:
        def q(value: str) -> str:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = [
            "# trustlane node configuration",
            f"format = {q(HOME_FORMAT)}",
            f"origin = {q(self.origin)}",
            "",
            "[storage]",
            '# "sqlite" (ledger.db in this home) or a PostgreSQL DSN such as postgresql://host:5432/db',
            f"database = {q(self.database)}",
            f"schema = {q(self.schema)}",
            "",
            "[ledger]",
            f"batch_max_entries = {self.ledger.batch_max_entries}",
            f"batch_max_age_ms = {self.ledger.batch_max_age_ms}",
            f"checkpoint_interval_ms = {self.ledger.checkpoint_interval_ms}",
            f"witness_quorum = {self.witness_quorum}",
            "",
            "[witness]",
            "# vkeys of the logs this node cosigns when it runs `trustlane witness serve`",
            "logs = [" + ", ".join(q(v) for v in self.witnessed_logs) + "]",
        ]
        for w in self.witnesses:
            lines += ["", "[[witnesses]]", f"name = {q(w.name)}", f"url = {q(w.url)}", f"vkey = {q(w.vkey)}"]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, source: str) -> NodeConfig:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise HomeError(f"{source} is not valid TOML: {exc}", hint="fix the file or restore it") from exc
        if raw.get("format") != HOME_FORMAT:
            raise HomeError(
                f"{source} is not a trustlane node configuration (format {raw.get('format')!r})",
                hint="point --home at a folder created by `trustlane init`",
            )
        try:
            storage: dict[str, Any] = raw.get("storage", {})
            ledger: dict[str, Any] = dict(raw.get("ledger", {}))
            quorum = int(ledger.pop("witness_quorum", 0))
            witness: dict[str, Any] = raw.get("witness", {})
            return cls(
                origin=str(raw["origin"]),
                database=str(storage.get("database", "sqlite")),
                schema=str(storage.get("schema", "trustlane")),
                ledger=LedgerSettings(**{k: int(v) for k, v in ledger.items()}),
                witnesses=tuple(
                    WitnessEndpoint(str(w["name"]), str(w["url"]), str(w["vkey"])) for w in raw.get("witnesses", [])
                ),
                witnessed_logs=tuple(str(v) for v in witness.get("logs", [])),
                witness_quorum=quorum,
            )
        except (KeyError, TypeError, ValueError, UsageError) as exc:
            raise HomeError(f"{source} has an invalid setting: {exc}", hint="compare it with docs/CONFIG.md") from exc


def write_config(home: Path, config: NodeConfig) -> None:
    """Replace the configuration atomically (temp file, fsync, rename, fsync the folder)."""
    path = home / CONFIG_FILE
    tmp = path.with_name(CONFIG_FILE + ".tmp")
    with tmp.open("w") as f:
        f.write(config.to_toml())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(home, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_config(home: Path) -> NodeConfig:
    path = home / CONFIG_FILE
    if not home.is_dir():
        raise HomeError(f"no trustlane node home at {home}", hint="run `trustlane init` or pass --home DIR")
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise HomeError(
            f"{home} is not a trustlane node home (no {CONFIG_FILE})",
            hint="run `trustlane init --home DIR` to create one, or pass the right --home",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise HomeError(f"{path} cannot be read: {exc}") from exc
    return NodeConfig.from_toml(text, str(path))
