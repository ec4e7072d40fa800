"""Audit trails: every ledger event about a dataset, report, party or contract, with its lineage.

Lineage follows the links events carry: a dataset's contracts, the runs under them and their reports; a
report's run, contract, party and input datasets; a party's contracts, runs and reports. Only events the
node still holds in the clear take part (shredded events of an erased vehicle stay as bare commitments).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from trustlane.errors import UsageError
from trustlane.node import Node

KINDS = ("dataset", "report", "party", "contract")
_SKIP_IN_SUMMARY = {"type", "vehicle", "salt"}


def _events(node: Node) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for secret in node.store.held_event_secrets():
        if secret.event is not None:
            try:
                out.append((secret.index, json.loads(secret.event)))
            except json.JSONDecodeError:
                continue
    return out


def _refs(event: dict[str, Any], key: str) -> set[str]:
    value = event.get(key)
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, str)}
    return set()


def _lineage(events: list[tuple[int, dict[str, Any]]], kind: str, value: str) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {"dataset": set(), "contract": set(), "run": set(), "report": set(), "party": set()}
    ids[kind].add(value)
    contract_datasets = {e["contract"]: _refs(e, "datasets") for _, e in events if e.get("type") == "contract.offered"}
    contract_party = {e["contract"]: e.get("party") for _, e in events if e.get("type") == "contract.offered"}
    runs = {e["run"]: e for _, e in events if e.get("type") == "analysis.decision"}
    reports = {e["report"]: e for _, e in events if e.get("type") == "analysis.report"}
    if kind == "dataset":
        ids["contract"] = {c for c, ds in contract_datasets.items() if value in ds}
        ids["run"] = {r for r, e in runs.items() if e.get("contract") in ids["contract"]}
        ids["report"] = {p for p, e in reports.items() if e.get("run") in ids["run"]}
    elif kind == "party":
        ids["contract"] = {c for c, p in contract_party.items() if p == value}
        ids["run"] = {r for r, e in runs.items() if e.get("party") == value}
        ids["report"] = {p for p, e in reports.items() if e.get("party") == value}
    elif kind == "contract":
        ids["dataset"] = set(contract_datasets.get(value, set()))
        ids["run"] = {r for r, e in runs.items() if e.get("contract") == value}
        ids["report"] = {p for p, e in reports.items() if e.get("contract") == value}
        if contract_party.get(value):
            ids["party"].add(str(contract_party[value]))
    elif kind == "report":
        report = reports.get(value)
        if report is not None:
            ids["run"].add(str(report.get("run")))
            ids["contract"].add(str(report.get("contract")))
            ids["party"].add(str(report.get("party")))
            ids["dataset"] = set(contract_datasets.get(str(report.get("contract")), set()))
    return ids


def _about(event: dict[str, Any], ids: dict[str, set[str]], kind: str) -> bool:
    etype = str(event.get("type", ""))
    if _refs(event, "report") & ids["report"] or _refs(event, "run") & ids["run"]:
        return True
    if _refs(event, "contract") & ids["contract"]:
        # a report's trail shows its own run, not every other run under the same contract
        return not (kind == "report" and etype.startswith(("analysis.", "duty.")))
    if etype.startswith("ingest.") and _refs(event, "dataset") & ids["dataset"]:
        return kind == "dataset" or etype == "ingest.dataset"  # other trails show the dataset, not each segment
    return kind == "party" and etype.startswith("party.") and _refs(event, "party") & ids["party"] != set()


def _summary(event: dict[str, Any]) -> str:
    parts = []
    for k, v in event.items():
        if k in _SKIP_IN_SUMMARY:
            continue
        text = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        parts.append(f"{k}={text[:60]}")
    return " ".join(parts)


def audit_trail(node: Node, kind: str, value: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise UsageError(f"cannot audit a {kind}", hint=f"audit one of: {', '.join(KINDS)}")
    events = _events(node)
    ids = _lineage(events, kind, value)
    if kind == "party":
        ids["party"].add(value)
    times = {}
    chosen = [(i, e) for i, e in events if _about(e, ids, kind)]
    for i, _ in chosen:
        entry = node.store.entry(i)
        times[i] = entry.appended_ns if entry is not None else 0
    return {
        "subject": {"kind": kind, "id": value},
        "lineage": {k: sorted(v) for k, v in ids.items() if k != kind or len(v) > 1},
        "events": [
            {
                "index": i,
                "time": datetime.fromtimestamp(times[i] / 1e9, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                "type": e.get("type"),
                "summary": _summary(e),
                "event": e,
            }
            for i, e in chosen
        ],
    }
