"""Prometheus text exposition (format 0.0.4) of a node's state, computed from its stores on each scrape.

Counters are totals since the node was created (Prometheus derives rates with ``rate()``); gauges are
current values. Nothing here is held in process memory, so every API worker reports the same figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import Table, func, select

from trustlane.analysis.holder import Holder
from trustlane.catalog import tables as t


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def render_metrics(holder: Holder) -> str:
    node = holder.node
    store = node.store
    size = store.tree_size()
    latest = store.latest_checkpoint()
    now_ns = time.time_ns()
    lines: list[str] = []
    lines += _family(
        "trustlane_ledger_entries", "gauge", "Entries in the ledger.", [_line("trustlane_ledger_entries", size)]
    )
    checkpoint_size = latest.size if latest else 0
    age = (now_ns - latest.published_ns) / 1e9 if latest else float("nan")
    lines += _family(
        "trustlane_checkpoint_size",
        "gauge",
        "Tree size of the latest checkpoint.",
        [_line("trustlane_checkpoint_size", checkpoint_size)],
    )
    lines += _family(
        "trustlane_checkpoint_age_seconds",
        "gauge",
        "Seconds since the latest checkpoint was published.",
        [_line("trustlane_checkpoint_age_seconds", round(age, 3))],
    )
    lines += _family(
        "trustlane_uncheckpointed_entries",
        "gauge",
        "Entries not yet covered by a checkpoint.",
        [_line("trustlane_uncheckpointed_entries", size - checkpoint_size)],
    )
    cosigned = {c.witness for c in store.cosignatures(checkpoint_size)} if latest else set()
    witness_lines = []
    for w in node.config.witnesses:
        name = w.vkey.split("+", 1)[0]
        witness_lines.append(
            _line("trustlane_witness_cosigned_latest", 1 if name in cosigned else 0, {"witness": w.name})
        )
    lines += _family(
        "trustlane_witness_cosigned_latest",
        "gauge",
        "1 when the witness cosigned the latest checkpoint (0: it lags or is down).",
        witness_lines,
    )
    with holder.catalog.read() as conn:

        def count(table: Table, *where: object) -> int:
            query = select(func.count()).select_from(table)
            for clause in where:
                query = query.where(clause)  # type: ignore[arg-type]
            return int(conn.scalar(query) or 0)

        segments = count(t.segments)
        rows = int(conn.scalar(select(func.coalesce(func.sum(t.segments.c.rows), 0))) or 0)
        stored = int(conn.scalar(select(func.coalesce(func.sum(t.segments.c.size), 0))) or 0)
        datasets = count(t.datasets)
        vehicles = count(t.vehicles)
        statuses: dict[str, int] = dict(
            conn.execute(select(t.analysis_runs.c.status, func.count()).group_by(t.analysis_runs.c.status)).all()
        )
        reports = count(t.reports)
        contracts = count(t.contracts)
    lines += _family(
        "trustlane_ingest_datasets_total",
        "counter",
        "Recordings ingested.",
        [_line("trustlane_ingest_datasets_total", datasets)],
    )
    lines += _family(
        "trustlane_ingest_segments_total",
        "counter",
        "Encrypted segments stored.",
        [_line("trustlane_ingest_segments_total", segments)],
    )
    lines += _family(
        "trustlane_ingest_samples_total",
        "counter",
        "Samples stored in segments.",
        [_line("trustlane_ingest_samples_total", rows)],
    )
    lines += _family(
        "trustlane_ingest_bytes_total",
        "counter",
        "Parquet bytes stored in segments (before encryption).",
        [_line("trustlane_ingest_bytes_total", stored)],
    )
    lines += _family("trustlane_vehicles", "gauge", "Registered vehicles.", [_line("trustlane_vehicles", vehicles)])
    lines += _family(
        "trustlane_contracts_total", "counter", "Contracts offered.", [_line("trustlane_contracts_total", contracts)]
    )
    lines += _family(
        "trustlane_analysis_runs_total",
        "counter",
        "Analysis requests by outcome (denied, failed and blocked are sandbox and policy rejections).",
        [
            _line("trustlane_analysis_runs_total", int(statuses.get(s, 0)), {"status": s})
            for s in ("reported", "denied", "failed", "blocked")
        ],
    )
    lines += _family(
        "trustlane_reports_total", "counter", "Signed reports issued.", [_line("trustlane_reports_total", reports)]
    )
    return "\n".join(lines) + "\n"
