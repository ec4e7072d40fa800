"""Reading stored data back inside the node: decrypted, digest-checked segments, and per-signal series.

Used by `data export`, by the analysis service (the inputs a contract grants) and by transfer packages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trustlane.catalog.db import CatalogDB
from trustlane.catalog.records import SegmentRecord
from trustlane.crypto.envelope import context_aad, open_sealed
from trustlane.errors import IntegrityError, UsageError
from trustlane.ingest.segments import read_segment
from trustlane.storage.blobs import BlobStore
from trustlane.vehicles.registry import VehicleRegistry

Series = dict[str, tuple[np.ndarray, np.ndarray]]  # signal -> (t_ns int64, values float64), in time order


def decrypted_segments(
    catalog: CatalogDB,
    registry: VehicleRegistry,
    blobs: BlobStore,
    dataset_id: str,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Iterator[tuple[SegmentRecord, bytes]]:
    """Each segment of the dataset (overlapping the range, if given) as Parquet bytes, checked against its digest."""
    dataset = catalog.dataset(dataset_id)
    if dataset is None:
        raise UsageError(f"no dataset {dataset_id!r} on this node", hint="list them with `trustlane catalog`")
    key = registry.data_key(dataset.vehicle)
    for segment in catalog.segments(dataset_id=dataset_id, start_ns=start_ns, end_ns=end_ns):
        aad = context_aad(purpose="segment", vehicle=dataset.vehicle, digest=segment.digest)
        plain = open_sealed(key, blobs.get(segment.digest), aad)
        if hashlib.sha256(plain).hexdigest() != segment.digest:
            raise IntegrityError(
                f"segment {segment.digest} does not match its digest after decryption",
                hint="the blob store was altered; restore it from backup",
            )
        yield segment, plain


def _codes(signal: str, values: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Text samples of an enumerated signal as the index of the value in its allowed list (VSS catalog or
    overlay); text with no allowed list, or not in it, becomes NaN."""
    if not any(t is not None for t in texts):
        return values
    from trustlane.ingest.vss import default_catalog

    node = default_catalog().lookup(signal)
    codes = {v: float(i) for i, v in enumerate(node.allowed)} if node is not None else {}
    out = values.copy()
    for i, text in enumerate(texts):
        if text is not None:
            out[i] = codes.get(str(text), np.nan)
    return out


def collect_series(
    segments: Iterable[bytes],
    signals: Iterable[str],
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    text_as_codes: bool = False,
) -> Series:
    """The samples of ``signals`` in the segments (within the range, if given), one time-ordered series each."""
    wanted = list(signals)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {s: [] for s in wanted}
    for plain in segments:
        table = read_segment(plain, wanted)
        if start_ns is not None:
            table = table.filter(pc.greater_equal(table["t_ns"], start_ns))
        if end_ns is not None:
            table = table.filter(pc.less_equal(table["t_ns"], end_ns))
        paths = table.column("path").cast(pa.string()).to_numpy(zero_copy_only=False)
        t_ns = table.column("t_ns").to_numpy()
        values = np.asarray(table.column("value").to_numpy(zero_copy_only=False), dtype=np.float64)
        texts = table.column("text").to_numpy(zero_copy_only=False) if text_as_codes else None
        for signal in wanted:
            mask = paths == signal
            if mask.any():
                v = values[mask] if texts is None else _codes(signal, values[mask], texts[mask])
                parts[signal].append((t_ns[mask], v))
    out: Series = {}
    for signal, chunks in parts.items():
        if chunks:
            t = np.concatenate([c[0] for c in chunks]).astype(np.int64)
            v = np.concatenate([c[1] for c in chunks])
            order = np.argsort(t, kind="stable")
            out[signal] = (t[order], v[order])
    return out
