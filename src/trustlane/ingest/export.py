"""Read a dataset's data back, decrypted, inside the holder's node (`trustlane data export`)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from trustlane.catalog.db import CatalogDB
from trustlane.errors import UsageError
from trustlane.ingest.readback import decrypted_segments
from trustlane.ingest.segments import read_segment
from trustlane.storage.blobs import BlobStore
from trustlane.vehicles.registry import VehicleRegistry


def export_dataset(
    catalog: CatalogDB,
    registry: VehicleRegistry,
    blobs: BlobStore,
    dataset_id: str,
    signals: Sequence[str] | None,
    out: Path,
) -> int:
    """Write the dataset's samples (optionally only ``signals``) to ``out`` (.parquet or .csv); return rows."""
    dataset = catalog.dataset(dataset_id)
    if dataset is None:
        raise UsageError(f"no dataset {dataset_id!r} on this node", hint="list them with `trustlane catalog`")
    known = {s.path for s in dataset.signals}
    if signals:
        unknown = sorted(set(signals) - known)
        if unknown:
            raise UsageError(
                f"dataset {dataset_id} has no signal {unknown[0]!r}",
                hint=f"its signals: {', '.join(sorted(known))}",
            )
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise UsageError(f"cannot write {out.name}: choose a .parquet or .csv file name")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist", hint="create it first")
    tables = [
        read_segment(plain, signals or None) for _, plain in decrypted_segments(catalog, registry, blobs, dataset_id)
    ]
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    if table.num_columns:  # the same schema whether or not rows were selected
        table = table.set_column(0, "path", pc.cast(table.column("path"), pa.string()))
        table = table.sort_by([("path", "ascending"), ("t_ns", "ascending")])
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        if out.suffix.lower() == ".parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
        tmp.replace(out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc}", hint="check the path, permissions and free space") from None
    finally:
        tmp.unlink(missing_ok=True)
    return int(table.num_rows)
