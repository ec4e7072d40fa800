"""Ingest: file → channels → VSS signals → collection rules → segments → encrypted blobs → ledger → catalog.

Everything that can reject an upload (format, content, provenance, mapping, units) runs before anything is
written. Then, in order: encrypted segment blobs (content-addressed; an orphan blob is harmless), the ledger
events (salted commitments, see docs/COMMITMENTS.md), and the catalog rows in one transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustlane.catalog.db import CatalogDB
from trustlane.catalog.records import ChainAdvance, DatasetRecord, DroppedSignal, SegmentRecord, SignalInfo
from trustlane.crypto.envelope import context_aad, seal
from trustlane.crypto.note import parse_vkey
from trustlane.errors import ConflictError, MalformedInput, SignatureError, UsageError
from trustlane.ingest.collection import CollectionPolicy, CollectionResult, apply_collection_rules
from trustlane.ingest.mapping import Mapping, apply_mapping, load_mapping, shipped_mapping, shipped_mapping_names
from trustlane.ingest.model import RawRecording
from trustlane.ingest.readers import read_recording
from trustlane.ingest.segments import DEFAULT_SEGMENT_NS, Segment, segment_signals
from trustlane.ledger.log import Log
from trustlane.storage.blobs import BlobStore
from trustlane.vehicles.provenance import verify_manifest
from trustlane.vehicles.registry import Vehicle, VehicleRegistry

Progress = Callable[[str, int, int], None]  # (file name, bytes done, bytes total)
GENERIC_MAPPING = "trustlane_generic"
_BLOB_WRITERS = 8


@dataclass(frozen=True)
class IngestOptions:
    format: str = "auto"
    dbc: Path | None = None
    mapping: Path | None = None
    manifest: dict[str, Any] | None = None
    segment_ns: int = DEFAULT_SEGMENT_NS
    policy: CollectionPolicy = field(default_factory=CollectionPolicy)


@dataclass
class Prepared:
    """One recording (a file, or a window of live telemetry), processed in memory, not yet stored."""

    name: str
    source_sha256: str
    recording: RawRecording
    collection: CollectionResult
    segments: list[Segment]
    dataset_id: str


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # reads into one reused buffer


def choose_mapping(options: IngestOptions) -> Mapping:
    """The mapping file given, else a shipped mapping named after the DBC, else the generic VSS identity."""
    if options.mapping is not None:
        return load_mapping(options.mapping)
    if options.dbc is not None and options.dbc.stem in shipped_mapping_names():
        return shipped_mapping(options.dbc.stem)
    return shipped_mapping(GENERIC_MAPPING)


def dataset_id(vehicle: str, source_sha256: str) -> str:
    """Stable per (vehicle, file): uploading the same file twice finds the first dataset."""
    return "ds-" + hashlib.sha256(f"{vehicle}\n{source_sha256}".encode()).hexdigest()[:24]


class Ingestor:
    def __init__(self, log: Log, catalog: CatalogDB, registry: VehicleRegistry, blobs: BlobStore) -> None:
        self.log = log
        self.catalog = catalog
        self.registry = registry
        self.blobs = blobs

    # --- validation: nothing is written --------------------------------------------------------------
    def _check_provenance(self, vehicle: Vehicle, files: Sequence[Path], options: IngestOptions) -> ChainAdvance | None:
        if options.manifest is None:
            if vehicle.device_vkey is not None:
                raise SignatureError(
                    f"vehicle {vehicle.pseudonym} signs its uploads, but no upload manifest was given",
                    hint="pass the manifest the vehicle produced (`trustlane vehicle sign`) with --manifest",
                )
            return None
        if vehicle.device_vkey is None:
            raise UsageError(
                f"vehicle {vehicle.pseudonym} has no registered device key to check the manifest with",
                hint="register it with `trustlane vehicle register VIN --key DEVICE.vkey`",
            )
        state = verify_manifest(
            options.manifest, files, parse_vkey(vehicle.device_vkey), vehicle.chain_head, vehicle.chain_length
        )
        return ChainAdvance(vehicle.pseudonym, vehicle.chain_head, vehicle.chain_length, state.head, state.length)

    def prepare(self, path: Path, vehicle: Vehicle, mapping: Mapping, options: IngestOptions) -> Prepared:
        # hashlib releases the GIL: the file digest is computed while the reader parses
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trustlane-hash") as pool:
            digest = pool.submit(file_sha256, path)
            recording = read_recording(path, format=options.format, dbc=options.dbc)
            source_sha256 = digest.result()
        return self.prepare_recording(path.name, source_sha256, recording, vehicle, mapping, options)

    def prepare_recording(
        self,
        name: str,
        source_sha256: str,
        recording: RawRecording,
        vehicle: Vehicle,
        mapping: Mapping,
        options: IngestOptions,
    ) -> Prepared:
        if recording.start_ns < 0:
            raise MalformedInput(
                f"{name}: its first sample is at {recording.start_ns} ns, before 1970-01-01T00:00:00Z",
                hint="times are stored as nanoseconds since the Unix epoch (UTC); check the time column's unit "
                "and the recording's start time",
            )
        signals = apply_mapping(recording, mapping)
        collection = apply_collection_rules(
            signals, recording.consents, options.policy, span=(recording.start_ns, recording.end_ns)
        )
        segments = list(segment_signals(collection.kept, options.segment_ns))
        if not segments:
            raise UsageError(
                f"{name}: nothing to store — every signal was empty or dropped",
                hint="check the receipt's dropped signals; consent records unlock categories not collected by default",
            )
        item = Prepared(
            name, source_sha256, recording, collection, segments, dataset_id(vehicle.pseudonym, source_sha256)
        )
        try:  # the catalog's checks (times, names, lengths), run now so that a refusal stores nothing
            dataset_record(item, vehicle.pseudonym, 0)
            segment_records(item, vehicle.pseudonym, [0] * len(segments))
        except MalformedInput as exc:
            raise MalformedInput(f"{name}: {exc.message}", hint=exc.hint) from None
        return item

    def _check_segments_are_new(self, prepared: Sequence[Prepared], new: set[int]) -> None:
        """Refuse a recording whose segment (same samples, same window) is stored, or also in another file.

        Segments are content-addressed; storing one again would overwrite the blob of the dataset that holds it
        (under another vehicle's key, it would make that data unreadable), and the catalog refuses it anyway.
        """
        claimed: dict[str, str] = {}
        stored = self.catalog.stored_segments(
            [s.digest for number, item in enumerate(prepared) if number in new for s in item.segments]
        )
        for number, item in enumerate(prepared):
            if number not in new:
                continue
            for segment in item.segments:
                holder = claimed.get(segment.digest)
                if holder is None and segment.digest in stored:
                    holder = f"dataset {stored[segment.digest]}"
                if holder is not None:
                    raise ConflictError(
                        f"{item.name}: its samples from {segment.t_start_ns} to {segment.t_end_ns} ns are the same "
                        f"data as {holder} holds (segment {segment.digest})",
                        hint="the same data was ingested before, perhaps from another file or format; "
                        "ingest each recording once",
                    )
                claimed[segment.digest] = item.name

    # --- storing -------------------------------------------------------------------------------------
    def ingest(
        self, files: Sequence[Path], vin: str, options: IngestOptions, progress: Progress | None = None
    ) -> list[dict[str, Any]]:
        """Ingest files of one vehicle; return one receipt per file (a re-upload returns the first receipt)."""
        vehicle = self.registry.lookup(vin)
        if vehicle.erased:
            raise UsageError(f"vehicle {vehicle.pseudonym} was erased; its data can no longer be stored")
        chain = self._check_provenance(vehicle, files, options)
        mapping = choose_mapping(options)
        prepared: list[Prepared] = []
        total = sum(p.stat().st_size for p in files)
        done = 0
        for path in files:
            prepared.append(self.prepare(path, vehicle, mapping, options))
            done += path.stat().st_size
            if progress is not None:
                progress(path.name, done, total)
        # New recordings: not in the catalog, and not an earlier file of this call again.
        new: set[int] = set()
        ids: set[str] = set()
        for number, item in enumerate(prepared):
            if item.dataset_id not in ids and self.catalog.dataset(item.dataset_id) is None:
                new.add(number)
            ids.add(item.dataset_id)
        self._check_segments_are_new(prepared, new)
        data_key = self.registry.data_key(vehicle.pseudonym)
        # The chain moves with the last new recording, so that an interrupted upload can be sent again.
        last_new = max(new, default=-1)
        pending = chain
        receipts: list[dict[str, Any]] = []
        for number, item in enumerate(prepared):
            existing = self.catalog.dataset(item.dataset_id)
            if existing is not None:
                receipts.append({"file": item.name, **self._receipt_of_existing(existing)})
                continue
            attach = pending if number == last_new else None
            receipts.append(self.store(item, vehicle, data_key, attach))
            if attach is not None:
                pending = None
        if pending is not None:
            self.catalog.advance_chain(pending)  # the chain still moves: the signed upload was accepted
        return receipts

    def store(
        self, item: Prepared, vehicle: Vehicle, data_key: bytes, chain: ChainAdvance | None = None
    ) -> dict[str, Any]:
        """Write one prepared recording: blobs, ledger events, catalog rows; return its receipt."""
        pseudonym = vehicle.pseudonym

        def put(segment: Segment) -> None:
            aad = context_aad(purpose="segment", vehicle=pseudonym, digest=segment.digest)
            self.blobs.put(segment.digest, seal(data_key, segment.parquet, aad))

        # Each blob is fsynced before the ledger names it; several writes in flight let the disk overlap
        # those waits (the interpreter lock is released while a file syncs).
        if len(item.segments) > 1:
            with ThreadPoolExecutor(max_workers=_BLOB_WRITERS, thread_name_prefix="trustlane-blob") as pool:
                list(pool.map(put, item.segments))
        else:
            for segment in item.segments:
                put(segment)
        events: list[dict[str, Any]] = [
            {
                "type": "ingest.segment",
                "dataset": item.dataset_id,
                "vehicle": pseudonym,
                "seq": seq,
                "segment_sha256": s.digest,
                "t_start_ns": str(s.t_start_ns),
                "t_end_ns": str(s.t_end_ns),
                "rows": s.rows,
                "signals": list(s.paths),
            }
            for seq, s in enumerate(item.segments)
        ]
        events += [
            {"type": "ingest.drop", "dataset": item.dataset_id, "vehicle": pseudonym, **d.as_record()}
            for d in item.collection.dropped
        ]
        events += [
            {"type": "ingest.adjust", "dataset": item.dataset_id, "vehicle": pseudonym, **a.as_record()}
            for a in item.collection.adjusted
        ]
        events.append(
            {
                "type": "ingest.dataset",
                "dataset": item.dataset_id,
                "vehicle": pseudonym,
                "format": item.recording.format,
                "source_sha256": item.source_sha256,
                "t_start_ns": str(item.recording.start_ns),
                "t_end_ns": str(item.recording.end_ns),
                "segments": [s.digest for s in item.segments],
                "signals_kept": len(item.collection.kept),
                "signals_dropped": len(item.collection.dropped),
            }
        )
        results = self.log.append_events(events)
        indexes = [r.index for r in results]
        segments = segment_records(item, pseudonym, indexes)
        dataset = dataset_record(item, pseudonym, indexes[-1])
        self.catalog.insert_dataset(dataset, segments, indexes, chain=chain)
        return receipt(item, dataset, segments, indexes)

    def _receipt_of_existing(self, dataset: DatasetRecord) -> dict[str, Any]:
        segments = self.catalog.segments(dataset_id=dataset.id)
        return {
            "dataset": dataset.id,
            "vehicle": dataset.vehicle,
            "duplicate": True,
            "format": dataset.format,
            "source_sha256": dataset.source_sha256,
            "t_start_ns": dataset.t_start_ns,
            "t_end_ns": dataset.t_end_ns,
            "ledger_index": dataset.ledger_index,
            "segments": [_segment_json(s) for s in segments],
            "signals": {
                "kept": [s.to_json() for s in dataset.signals],
                "dropped": [d.to_json() for d in dataset.dropped],
            },
        }


def segment_records(item: Prepared, vehicle: str, indexes: Sequence[int]) -> list[SegmentRecord]:
    """The catalog rows of ``item``'s segments; ``indexes[seq]`` is the ledger index of segment ``seq``."""
    return [
        SegmentRecord(
            s.digest,
            item.dataset_id,
            vehicle,
            seq,
            s.t_start_ns,
            s.t_end_ns,
            s.rows,
            len(s.parquet),
            indexes[seq],
        )
        for seq, s in enumerate(item.segments)
    ]


def dataset_record(item: Prepared, vehicle: str, ledger_index: int) -> DatasetRecord:
    """The catalog row of ``item``, its ``ingest.dataset`` event at ``ledger_index``."""
    return DatasetRecord(
        id=item.dataset_id,
        vehicle=vehicle,
        format=item.recording.format,
        source_sha256=item.source_sha256,
        t_start_ns=item.recording.start_ns,
        t_end_ns=item.recording.end_ns,
        created_ns=time.time_ns(),
        ledger_index=ledger_index,
        signals=tuple(SignalInfo(s.path, s.unit, s.categories) for s in item.collection.kept),
        dropped=tuple(
            DroppedSignal(d.source_name, f"{d.reason} ({d.citation})", (d.category,)) for d in item.collection.dropped
        ),
    )


def _segment_json(s: SegmentRecord) -> dict[str, Any]:
    return {
        "digest": s.digest,
        "seq": s.seq,
        "t_start_ns": s.t_start_ns,
        "t_end_ns": s.t_end_ns,
        "rows": s.rows,
        "size": s.size,
        "ledger_index": s.ledger_index,
    }


def receipt(
    item: Prepared, dataset: DatasetRecord, segments: Sequence[SegmentRecord], indexes: Sequence[int]
) -> dict[str, Any]:
    return {
        "dataset": dataset.id,
        "vehicle": dataset.vehicle,
        "duplicate": False,
        "file": item.name,
        "format": dataset.format,
        "source_sha256": dataset.source_sha256,
        "t_start_ns": dataset.t_start_ns,
        "t_end_ns": dataset.t_end_ns,
        "ledger_index": dataset.ledger_index,
        "ledger_indexes": [indexes[0], indexes[-1]],
        "segments": [_segment_json(s) for s in segments],
        "signals": {
            "kept": [
                {
                    "path": s.path,
                    "source": s.source_name,
                    "unit": s.unit,
                    "categories": list(s.categories),
                    "classified": s.classified,
                }
                for s in item.collection.kept
            ],
            "dropped": [d.as_record() for d in item.collection.dropped],
            "adjusted": [a.as_record() for a in item.collection.adjusted],
        },
        "metadata": {"undecoded_frames": item.recording.metadata.get("undecoded_frames", "0")},
    }
