"""Typed rows of the catalog, validated on construction (nothing malformed reaches the database)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from trustlane.errors import MalformedInput

GENESIS_HEAD = "0" * 64
"""The chain head of a vehicle that has uploaded nothing yet."""

_HEX256 = re.compile(r"[0-9a-f]{64}")
_MAX_ID = 200


def check_digest(value: str, what: str) -> str:
    """``value`` if it is a lower-case hex SHA-256 digest; MalformedInput naming ``what`` otherwise."""
    if not isinstance(value, str) or not _HEX256.fullmatch(value):
        raise MalformedInput(
            f"{what} must be a SHA-256 digest in 64 lower-case hex digits, got {str(value)[:80]!r}",
            hint="compute it with hashlib.sha256(data).hexdigest()",
        )
    return value


def _check_text(value: str, what: str, limit: int = _MAX_ID) -> None:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise MalformedInput(f"{what} must be 1 to {limit} printable characters, got {str(value)[:80]!r}")


def _check_range(start: int, end: int, what: str) -> None:
    if start < 0 or end < start:
        raise MalformedInput(f"{what}: time range {start}..{end} ns is not ordered or is negative")


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedInput(f"{what} must be a non-negative integer, got {value!r}")


@dataclass(frozen=True)
class VehicleRecord:
    """One registered vehicle. ``vin_sealed`` and ``data_key_wrapped`` are None once it was erased."""

    pseudonym: str
    vin_sealed: bytes | None
    data_key_wrapped: bytes | None
    device_vkey: str | None
    registered_ns: int
    chain_head: str = GENESIS_HEAD
    chain_length: int = 0
    legal_hold: bool = False
    legal_hold_reason: str | None = None
    erased_ns: int | None = None

    def __post_init__(self) -> None:
        _check_text(self.pseudonym, "vehicle pseudonym")
        check_digest(self.chain_head, "chain head")
        _check_count(self.chain_length, "chain length")

    @property
    def erased(self) -> bool:
        return self.erased_ns is not None


@dataclass(frozen=True)
class SignalInfo:
    """A signal a dataset holds: its VSS (or overlay/vendor) path, unit and data categories."""

    path: str
    unit: str | None = None
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.path, "signal path", 500)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "unit": self.unit, "categories": list(self.categories)}

    @classmethod
    def from_json(cls, value: Any) -> SignalInfo:
        if not isinstance(value, dict) or not isinstance(value.get("path"), str):
            raise MalformedInput(f"a stored signal entry is not an object with a path: {str(value)[:80]}")
        unit = value.get("unit")
        return cls(value["path"], None if unit is None else str(unit), tuple(map(str, value.get("categories", ()))))


@dataclass(frozen=True)
class DroppedSignal:
    """A source channel ingest did not keep, and why (e.g. a category collected without consent)."""

    source_name: str
    reason: str
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.source_name, "dropped signal name", 500)
        _check_text(self.reason, "drop reason", 2000)

    def to_json(self) -> dict[str, Any]:
        return {"source_name": self.source_name, "reason": self.reason, "categories": list(self.categories)}

    @classmethod
    def from_json(cls, value: Any) -> DroppedSignal:
        if not isinstance(value, dict):
            raise MalformedInput(f"a stored dropped-signal entry is not an object: {str(value)[:80]}")
        return cls(
            str(value.get("source_name")), str(value.get("reason")), tuple(map(str, value.get("categories", ())))
        )


@dataclass(frozen=True)
class DatasetRecord:
    """One ingested recording of one vehicle."""

    id: str
    vehicle: str
    format: str
    source_sha256: str
    t_start_ns: int
    t_end_ns: int
    created_ns: int
    ledger_index: int
    signals: tuple[SignalInfo, ...] = ()
    dropped: tuple[DroppedSignal, ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.id, "dataset id")
        _check_text(self.vehicle, "dataset vehicle")
        _check_text(self.format, "dataset format", 40)
        check_digest(self.source_sha256, f"dataset {self.id}: source digest")
        _check_range(self.t_start_ns, self.t_end_ns, f"dataset {self.id}")
        _check_count(self.ledger_index, f"dataset {self.id}: ledger index")

    def signals_json(self) -> str:
        return json.dumps([s.to_json() for s in self.signals], separators=(",", ":"), sort_keys=True)

    def dropped_json(self) -> str:
        return json.dumps([d.to_json() for d in self.dropped], separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class SegmentRecord:
    """One stored segment: a Parquet file named by the SHA-256 of its plaintext."""

    digest: str
    dataset_id: str
    vehicle: str
    seq: int
    t_start_ns: int
    t_end_ns: int
    rows: int
    size: int
    ledger_index: int

    def __post_init__(self) -> None:
        check_digest(self.digest, "segment digest")
        _check_count(self.seq, f"segment {self.digest[:12]}: sequence number")
        _check_count(self.rows, f"segment {self.digest[:12]}: row count")
        _check_count(self.size, f"segment {self.digest[:12]}: size")
        _check_count(self.ledger_index, f"segment {self.digest[:12]}: ledger index")
        _check_range(self.t_start_ns, self.t_end_ns, f"segment {self.digest[:12]}")


@dataclass(frozen=True)
class ChainAdvance:
    """Move a vehicle's upload chain from (expected_head, expected_length) to (new_head, new_length)."""

    vehicle: str
    expected_head: str
    expected_length: int
    new_head: str
    new_length: int

    def __post_init__(self) -> None:
        check_digest(self.expected_head, "expected chain head")
        check_digest(self.new_head, "new chain head")
        if not 0 <= self.expected_length < self.new_length:
            raise MalformedInput(
                f"a chain can only grow: length {self.expected_length} -> {self.new_length}",
                hint="pass the head and length verify_manifest returned",
            )


@dataclass(frozen=True)
class SignalSummary:
    """One signal path across the catalog (for `trustlane catalog signals`)."""

    path: str
    unit: str | None
    datasets: int
    vehicles: int
    t_start_ns: int
    t_end_ns: int


__all__ = [
    "GENESIS_HEAD",
    "ChainAdvance",
    "DatasetRecord",
    "DroppedSignal",
    "SegmentRecord",
    "SignalInfo",
    "SignalSummary",
    "VehicleRecord",
    "check_digest",
]
