"""What the ledger explorer shows a party: checkpoints with their cosignatures, entries with the event fields
the party may see, and one entry's inclusion proof against the latest checkpoint.

The ledger itself is public (commitments only). Held events are the holder's: their type is shown to every
signed-in party; their fields to a party the event concerns (by the API's object rules); the raw event JSON to
oversight only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from trustlane.analysis.contracts import Contract
from trustlane.analysis.holder import Holder
from trustlane.analysis.parties import Party
from trustlane.analysis.queries import list_reports
from trustlane.api.authz import OVERSIGHT, may_read_contract, may_read_report, may_see_dataset
from trustlane.crypto.note import parse_signature_line
from trustlane.node import Node
from trustlane.storage.base import CheckpointRecord

PAGE_SIZE = 50
RECENT_CHECKPOINTS = 10
_PRIVATE_FIELDS = frozenset({"salt"})


@dataclass(frozen=True)
class EventView:
    type: str | None  # None: no event held (a raw leaf, or erased)
    fields: dict[str, str] = field(default_factory=dict)  # empty when the party may not see them
    raw: str | None = None  # the canonical JSON, for oversight


@dataclass(frozen=True)
class EntryView:
    index: int
    leaf_hash: str
    data: str  # the leaf data (a commitment) in hex
    appended_ns: int
    event: EventView


@dataclass(frozen=True)
class CheckpointView:
    size: int
    root: str
    published_ns: int
    cosigners: list[dict[str, Any]]


def _refs(event: dict[str, Any], key: str) -> list[str]:
    value = event.get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


class EventLens:
    """Decides, with the API's object rules, which held events concern a party."""

    def __init__(self, holder: Holder, party: Party) -> None:
        self.party = party
        self.oversight = party.role in OVERSIGHT
        self._contracts: list[Contract] = [] if self.oversight else holder.contracts.all()
        self._by_id = {c.id: c for c in self._contracts}
        self._reports = {} if self.oversight else {r["id"]: r for r in list_reports(holder)}

    def concerns(self, event: dict[str, Any]) -> bool:
        if self.oversight:
            return True
        if self.party.name in _refs(event, "party"):
            return True
        for report_id in _refs(event, "report"):
            row = self._reports.get(report_id)
            if row is not None and may_read_report(self.party, row["party"], row["recipients"]):
                return True
        for contract_id in _refs(event, "contract"):
            contract = self._by_id.get(contract_id)
            if contract is not None and may_read_contract(self.party, contract):
                return True
        datasets = _refs(event, "dataset") + _refs(event, "datasets")
        return any(may_see_dataset(self.party, d, self._contracts) for d in datasets)

    def view(self, event_json: str | None) -> EventView:
        if event_json is None:
            return EventView(None)
        try:
            event = json.loads(event_json)
        except json.JSONDecodeError:
            return EventView(None)
        if not isinstance(event, dict):
            return EventView(None)
        kind = str(event.get("type", "?"))
        if not self.concerns(event):
            return EventView(kind)
        fields = {k: _short(v) for k, v in event.items() if k != "type" and k not in _PRIVATE_FIELDS}
        return EventView(kind, fields, event_json if self.oversight else None)


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def entries_page(node: Node, lens: EventLens, start: int, count: int = PAGE_SIZE) -> list[EntryView]:
    out = []
    for entry in node.store.entries(start, start + count):
        secret = node.store.event_secret(entry.index)
        out.append(
            EntryView(
                entry.index,
                entry.leaf_hash.hex(),
                entry.data.hex(),
                entry.appended_ns,
                lens.view(None if secret is None else secret.event),
            )
        )
    return out


def checkpoint_view(node: Node, record: CheckpointRecord) -> CheckpointView:
    cosigners = []
    for cosignature in node.store.cosignatures(record.size):
        line = parse_signature_line(cosignature.line.rstrip("\n"))
        cosigners.append({"witness": line.name, "key_id": line.key_id.hex(), "timestamp": cosignature.timestamp})
    return CheckpointView(record.size, record.root.hex(), record.published_ns, cosigners)


def recent_checkpoints(node: Node, count: int = RECENT_CHECKPOINTS) -> tuple[list[CheckpointView], int]:
    """The newest ``count`` checkpoints, newest first, and how many there are in all."""
    records = list(node.store.checkpoints())
    return [checkpoint_view(node, r) for r in reversed(records[-count:])], len(records)


@dataclass(frozen=True)
class InclusionView:
    tree_size: int
    proof: list[str]  # hex, leaf to root
    note: str  # the signed checkpoint with every cosignature held
    log_vkey: str


def inclusion_view(node: Node, index: int) -> InclusionView | None:
    """The entry's RFC 9162 inclusion proof against the latest checkpoint; None until a checkpoint covers it."""
    record = node.store.latest_checkpoint()
    if record is None or index >= record.size:
        return None
    proof = node.log.inclusion_proof(index, record.size)
    note = node.log.signed_checkpoint(record).text
    return InclusionView(record.size, [p.hex() for p in proof], note, node.log_verifier.vkey)
