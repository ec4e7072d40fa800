"""The contract every ledger store meets (SQLite, PostgreSQL).

A store keeps the public ledger (entries, perfect-subtree nodes, checkpoints, cosignatures), the holder's
private event secrets (event JSON and salt, erasable), and, for a node acting as a witness, the latest
cosigned checkpoint per log. Writes to the tree happen inside :meth:`LedgerStore.write`, which holds a
lock that excludes every other writer, in this process or another, until the transaction commits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple

from trustlane.ledger.merkle import Coord

SCHEMA_VERSION = 1


class EntryRecord(NamedTuple):
    """A tuple, so batches go to the database driver without conversion.

    The field ``index`` deliberately shadows ``tuple.index``, which no caller of a record needs.
    """

    index: int  # type: ignore[assignment]
    leaf_hash: bytes
    data: bytes
    appended_ns: int


@dataclass(frozen=True)
class CheckpointRecord:
    size: int
    root: bytes
    note: str  # the signed note text, with the log's signature only
    published_ns: int


@dataclass(frozen=True)
class CosignatureRecord:
    size: int
    witness: str  # key name of the cosigner
    key_id: bytes
    line: str  # the note signature line, newline included
    timestamp: int  # seconds, from the cosignature itself


@dataclass(frozen=True)
class EventSecret:
    index: int
    event: str | None  # canonical JSON of the event; None once erased
    salt: bytes | None
    erased_ns: int | None


@dataclass(frozen=True)
class WitnessState:
    origin: str
    size: int
    root: bytes
    note: str  # the checkpoint as cosigned, log signature and our cosignature included
    updated_ns: int


class LedgerWriter(ABC):
    """Operations available inside one exclusive write transaction."""

    @abstractmethod
    def tree_size(self) -> int: ...

    @abstractmethod
    def fetch_nodes(self, coords: Sequence[Coord]) -> Mapping[Coord, bytes]: ...

    @abstractmethod
    def add_entries(self, entries: Sequence[EntryRecord]) -> None: ...

    @abstractmethod
    def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Perfect-subtree nodes of level >= 1 (leaf hashes live with their entries)."""

    @abstractmethod
    def add_event_secrets(self, secrets: Sequence[EventSecret]) -> None: ...

    @abstractmethod
    def latest_checkpoint(self) -> CheckpointRecord | None: ...

    @abstractmethod
    def add_checkpoint(self, checkpoint: CheckpointRecord) -> None: ...


class LedgerStore(ABC):
    backend: str = "abstract"

    # --- metadata -------------------------------------------------------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    # --- tree -----------------------------------------------------------------------------------
    @abstractmethod
    def write(self) -> AbstractContextManager[LedgerWriter]: ...

    @abstractmethod
    def tree_size(self) -> int: ...

    @abstractmethod
    def fetch_nodes(self, coords: Sequence[Coord]) -> Mapping[Coord, bytes]:
        """Hashes of perfect subtrees; level 0 reads leaf hashes. Raises StorageError if one is absent."""

    @abstractmethod
    def entries(self, start: int, end: int) -> Iterator[EntryRecord]: ...

    def entry(self, index: int) -> EntryRecord | None:
        return next(iter(self.entries(index, index + 1)), None)

    @abstractmethod
    def nodes(self, level: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Stored nodes of one level (>= 1) with ``start <= index < end``, in index order."""

    # --- checkpoints and cosignatures -----------------------------------------------------------
    @abstractmethod
    def latest_checkpoint(self) -> CheckpointRecord | None: ...

    @abstractmethod
    def checkpoint(self, size: int) -> CheckpointRecord | None: ...

    @abstractmethod
    def checkpoints(self) -> Iterator[CheckpointRecord]: ...

    @abstractmethod
    def add_cosignatures(self, cosignatures: Sequence[CosignatureRecord]) -> None: ...

    @abstractmethod
    def cosignatures(self, size: int | None = None) -> list[CosignatureRecord]: ...

    @abstractmethod
    def checkpoint_covering(self, index: int) -> CheckpointRecord | None:
        """The smallest published checkpoint that includes entry ``index``."""

    # --- holder-private event secrets ------------------------------------------------------------
    @abstractmethod
    def event_secret(self, index: int) -> EventSecret | None: ...

    @abstractmethod
    def held_event_secrets(self) -> Iterator[EventSecret]:
        """Every event secret still holding an event or a salt, in index order."""

    @abstractmethod
    def erase_event_secret(self, index: int, erased_ns: int) -> bool: ...

    # --- witness state (when this node cosigns other logs) --------------------------------------
    @abstractmethod
    def witness_state(self, origin: str) -> WitnessState | None: ...

    @abstractmethod
    def witness_advance(self, origin: str, expected_size: int, new: WitnessState) -> int | None:
        """Atomically replace the state for ``origin`` if its size is still ``expected_size``.

        Returns None on success, else the size actually stored (the caller answers 409 Conflict).
        """

    @abstractmethod
    def close(self) -> None: ...
