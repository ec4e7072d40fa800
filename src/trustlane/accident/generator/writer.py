"""Write a generated recording as CSV (sparse multi-rate rows), MDF4 (one data group per rate), Parquet, and its
ground truth as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trustlane.accident.generator.recording import CLOCK_SOURCE, Recording

FORMATS = ("csv", "mdf4", "parquet")


def _table(rec: Recording) -> pa.Table:
    stamps = [rec.start_ns + np.round(c.t_s * 1e9).astype(np.int64) for c in rec.channels]
    union = np.unique(np.concatenate(stamps))
    columns: dict[str, pa.Array] = {"timestamp_ns": pa.array(union, pa.int64())}
    for channel, times in zip(rec.channels, stamps, strict=True):
        where = np.searchsorted(union, times)
        mask = np.ones(len(union), dtype=bool)
        mask[where] = False
        values = channel.values
        if values.dtype == object:
            full = np.full(len(union), None, dtype=object)
            full[where] = values
            columns[channel.name] = pa.array(full.tolist(), pa.string())
        else:
            dense = np.zeros(len(union), dtype=values.dtype)
            dense[where] = values
            columns[channel.name] = pa.array(dense, mask=mask)
    return pa.table(columns)


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".tmp-{path.name}")  # keeps the suffix: asammdf would change another
    write(tmp)
    tmp.replace(path)


def write_csv(rec: Recording, path: Path) -> None:
    table = _table(rec)
    names = ["timestamp_ns"] + [f"{c.name}[{c.unit}]" if c.unit else c.name for c in rec.channels]
    _atomic(path, lambda p: pacsv.write_csv(table.rename_columns(names), p))


def write_parquet(rec: Recording, path: Path) -> None:
    table = _table(rec)
    units = {c.name: c.unit for c in rec.channels}
    fields = [f.with_metadata({"unit": units[f.name]}) if units.get(f.name) else f for f in table.schema]
    schema = pa.schema(fields, metadata={"clock_source": CLOCK_SOURCE, "scenario": rec.name})
    _atomic(path, lambda p: pq.write_table(table.cast(schema), p))


def write_mdf4(rec: Recording, path: Path) -> None:
    from asammdf import MDF, Signal

    with MDF(version="4.10") as mdf:
        mdf.header.start_time = datetime.fromtimestamp(rec.start_ns // 10**9, tz=UTC)
        offset = (rec.start_ns % 10**9) / 1e9
        mdf.header.comment = (
            f"<HDcomment><TX>trustlane generated scenario {rec.name}</TX><common_properties>"
            f'<e name="clock_source">{CLOCK_SOURCE}</e><e name="scenario">{rec.name}</e>'
            "</common_properties></HDcomment>"
        )
        groups: dict[tuple[int, float], list[Any]] = {}
        for c in rec.channels:
            values = c.values
            encoding: str | None = None
            if values.dtype == object:
                values = np.array([str(v).encode() for v in values])
                encoding = "utf-8"
            elif values.dtype == bool:
                values = values.astype(np.uint8)
            key = (len(c.t_s), float(c.t_s[0]) if len(c.t_s) else 0.0)
            groups.setdefault(key, []).append(
                Signal(values, c.t_s + offset, name=c.name, unit=c.unit or "", encoding=encoding)
            )
        for signals in groups.values():
            mdf.append(signals, common_timebase=True)
        _atomic(path, lambda p: mdf.save(p, overwrite=True))


def write(rec: Recording, out: Path, formats: tuple[str, ...] = ("csv", "mdf4")) -> dict[str, str]:
    """Write the recording in ``formats`` and ``<name>.truth.json`` into ``out``; returns the file names."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for fmt in formats:
        path = out / f"{rec.name}.{ {'csv': 'csv', 'mdf4': 'mf4', 'parquet': 'parquet'}[fmt] }"
        {"csv": write_csv, "mdf4": write_mdf4, "parquet": write_parquet}[fmt](rec, path)
        written[fmt] = path.name
    truth = dict(rec.truth, files=written)
    _atomic(out / f"{rec.name}.truth.json", lambda p: p.write_text(json.dumps(truth, indent=2) + "\n"))
    return written
