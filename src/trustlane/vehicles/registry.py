"""The vehicle registry: registration, legal holds and erasure (crypto-shredding), each a ledger event.

A vehicle is known by its keyed pseudonym. The catalog holds its VIN only sealed (AES-256-GCM under a
sub-key of the node master key, bound to the pseudonym) and a random data key wrapped under the master
key. Ledger events name the pseudonym, never the VIN, and every event that concerns a vehicle is recorded
in the catalog, so erasure can destroy their salts.

Erasure (GDPR Art. 17) runs in one catalog transaction that holds the vehicle's row: it refuses under a
legal hold, destroys the salt of every ledger event of the vehicle, appends ``vehicle.erased``, then drops
the sealed VIN and the wrapped data key. A crash part-way leaves the vehicle not yet erased and a rerun
completes it (the salts already destroyed stay destroyed; ``vehicle.erased`` may then appear twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trustlane.catalog.db import MASTER_KEY_ID, CatalogDB, CatalogWriter
from trustlane.catalog.records import VehicleRecord
from trustlane.crypto.envelope import (
    DataKey,
    context_aad,
    derive_key,
    master_key_id,
    open_sealed,
    seal,
    unwrap_data_key,
    wrap_data_key,
)
from trustlane.crypto.keys import NOTE_KEY
from trustlane.crypto.note import parse_vkey
from trustlane.errors import ConflictError, KeyMaterialError, UsageError, VerificationError
from trustlane.ledger.log import Log
from trustlane.vehicles.vin import PSEUDONYM_KEY_LABEL, check_pseudonym, pseudonym, validate_vin

VIN_SEAL_LABEL = "vin-seal/v1"
MAX_REASON = 500


def when(ns: int) -> str:
    """A nanosecond timestamp as an ISO 8601 UTC time (seconds), for messages."""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Vehicle:
    """A registered vehicle as the registry shows it: no VIN, no key material."""

    pseudonym: str
    device_vkey: str | None
    registered_ns: int
    chain_head: str
    chain_length: int
    legal_hold: bool
    legal_hold_reason: str | None
    erased_ns: int | None

    @property
    def erased(self) -> bool:
        return self.erased_ns is not None

    @classmethod
    def of(cls, record: VehicleRecord) -> Vehicle:
        return cls(
            record.pseudonym,
            record.device_vkey,
            record.registered_ns,
            record.chain_head,
            record.chain_length,
            record.legal_hold,
            record.legal_hold_reason,
            record.erased_ns,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pseudonym": self.pseudonym,
            "device_key": self.device_vkey,
            "registered_ns": self.registered_ns,
            "chain_head": self.chain_head,
            "chain_length": self.chain_length,
            "legal_hold": self.legal_hold,
            "legal_hold_reason": self.legal_hold_reason,
            "erased_ns": self.erased_ns,
        }


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure did; ``ledger_index`` is the ``vehicle.erased`` event (prove it with `ledger prove`)."""

    vehicle: str
    erased_ns: int
    events_shredded: int
    ledger_index: int
    leaf_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "vehicle": self.vehicle,
            "erased_ns": self.erased_ns,
            "events_shredded": self.events_shredded,
            "ledger_index": self.ledger_index,
            "leaf_hash": self.leaf_hash.hex(),
        }


def check_device_vkey(vkey: str) -> str:
    """``vkey`` in normal form if it is a device (Ed25519 note, type 0x01) verifier key."""
    verifier = parse_vkey(vkey)
    if verifier.sig_type != NOTE_KEY:
        raise KeyMaterialError(
            f"{verifier.name} is not a device key (type 0x{verifier.sig_type:02x}, expected 0x01)",
            hint="create a device key with `trustlane vehicle keygen --out device.key`",
        )
    return verifier.vkey


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or not reason.isprintable():
        raise UsageError(
            f"a legal hold needs a reason of 1 to {MAX_REASON} printable characters",
            hint="name the case or order, e.g. --reason 'court case 4 O 123/25'",
        )
    return reason


def erase_refusal(vehicle: Vehicle) -> ConflictError | None:
    """Why ``vehicle`` cannot be erased now (already erased, under legal hold), or None."""
    if vehicle.erased_ns is not None:
        return ConflictError(
            f"vehicle {vehicle.pseudonym} was already erased on {when(vehicle.erased_ns)}",
            hint="nothing left to erase",
        )
    if vehicle.legal_hold:
        return ConflictError(
            f"vehicle {vehicle.pseudonym} is under legal hold ({vehicle.legal_hold_reason}): its data must be "
            "kept, so it cannot be erased now",
            hint="once the case is closed, release the hold with `trustlane vehicle release VIN`, then erase it; "
            "record the erasure request meanwhile",
        )
    return None


class VehicleRegistry:
    def __init__(
        self, catalog: CatalogDB, master_key: bytes, log: Log, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        recorded = catalog.claim_meta(MASTER_KEY_ID, master_key_id(master_key))
        if recorded != master_key_id(master_key):
            raise KeyMaterialError(
                f"the node master key (id {master_key_id(master_key)}) is not the key this catalog's vehicle keys "
                f"are wrapped under (id {recorded})",
                hint="restore the original keys/node.key from backup; a node must never change master keys silently",
            )
        self._catalog = catalog
        self._master = master_key
        self._pseudonym_key = derive_key(master_key, PSEUDONYM_KEY_LABEL)
        self._vin_key = derive_key(master_key, VIN_SEAL_LABEL)
        self._log = log
        self._clock_ns = clock_ns

    # --- identities ------------------------------------------------------------------------------------
    def pseudonym_of(self, vin: str) -> str:
        """The pseudonym this node gives ``vin`` (whether or not it is registered)."""
        return pseudonym(vin, self._pseudonym_key)

    def _record(self, pseudonym_: str) -> VehicleRecord:
        record = self._catalog.vehicle(pseudonym_)
        if record is None:
            raise UsageError(f"no vehicle {pseudonym_} is registered", hint="list them with `trustlane vehicle list`")
        return record

    def lookup(self, vin: str) -> Vehicle:
        record = self._catalog.vehicle(self.pseudonym_of(vin))
        if record is None:
            raise UsageError(
                "no vehicle with this VIN is registered on this node",
                hint="register it with `trustlane vehicle register VIN`",
            )
        return Vehicle.of(record)

    def get(self, pseudonym_: str) -> Vehicle:
        return Vehicle.of(self._record(check_pseudonym(pseudonym_)))

    def vehicles(self) -> list[Vehicle]:
        return [Vehicle.of(r) for r in self._catalog.vehicles()]

    def _vin_aad(self, pseudonym_: str) -> bytes:
        return context_aad(type="trustlane/vin", vehicle=pseudonym_)

    def reveal_vin(self, pseudonym_: str) -> str:
        """The VIN of a registered vehicle, for the holder's own use (e.g. an access request); never log it."""
        record = self._record(pseudonym_)
        if record.vin_sealed is None:
            raise self._erased(record)
        return open_sealed(self._vin_key, record.vin_sealed, self._vin_aad(pseudonym_)).decode("ascii")

    # --- registration ------------------------------------------------------------------------------------
    def _append(self, w: CatalogWriter, vehicle: str, event: dict[str, Any]) -> int:
        """Commit an event concerning ``vehicle`` and record it for erasure (inside the catalog transaction)."""
        index = self._log.append_event(event).index
        w.add_vehicle_events(vehicle, [index])
        return index

    def register(self, vin: str, device_vkey: str | None = None, *, strict: bool = False) -> Vehicle:
        """Register a vehicle, or add a device key to one registered without; returns it.

        ``strict`` verifies the North-American check digit. Registering a VIN again is a ConflictError unless
        the call only adds a device key to a vehicle that has none.
        """
        vin = validate_vin(vin, strict=strict)
        vkey = None if device_vkey is None else check_device_vkey(device_vkey)
        p = self.pseudonym_of(vin)
        with self._catalog.write() as w:
            existing = w.vehicle(p)
            if existing is not None:
                updated = self._add_device_key(w, existing, vkey)
                return Vehicle.of(updated)
            record = VehicleRecord(
                pseudonym=p,
                vin_sealed=seal(self._vin_key, vin.encode("ascii"), self._vin_aad(p)),
                data_key_wrapped=wrap_data_key(self._master, DataKey.generate(), p),
                device_vkey=vkey,
                registered_ns=self._clock_ns(),
            )
            w.insert_vehicle(record)
            self._append(w, p, {"type": "vehicle.registered", "vehicle": p, "device_key": vkey is not None})
        return Vehicle.of(record)

    def _add_device_key(self, w: CatalogWriter, existing: VehicleRecord, vkey: str | None) -> VehicleRecord:
        p = existing.pseudonym
        if existing.erased_ns is not None:
            raise ConflictError(
                f"this VIN was registered as {p} and erased on {when(existing.erased_ns)}",
                hint="an erased vehicle cannot be registered again on this node",
            )
        if vkey is None:
            raise ConflictError(
                f"this VIN is already registered as {p}",
                hint="to add a device key to it, run `trustlane vehicle register VIN --key DEVICE.vkey`",
            )
        if existing.device_vkey == vkey:
            raise ConflictError(f"{p} is already registered with this device key", hint="nothing to do")
        if existing.device_vkey is not None:
            raise ConflictError(
                f"{p} already has another device key ({existing.device_vkey.split('+')[0]})",
                hint="a registered device key cannot be replaced by registering again",
            )
        w.set_device_key(p, vkey)
        self._append(w, p, {"type": "vehicle.device_key_added", "vehicle": p})
        return w.require_vehicle(p)

    # --- data keys -----------------------------------------------------------------------------------------
    def _erased(self, record: VehicleRecord) -> KeyMaterialError:
        return KeyMaterialError(
            f"vehicle {record.pseudonym} was erased on {when(record.erased_ns or 0)}: its data key is destroyed "
            "and its data can no longer be read",
            hint="erasure is permanent; the ledger keeps only unlinkable commitments",
        )

    def data_key(self, pseudonym_: str) -> bytes:
        """The vehicle's data encryption key; KeyMaterialError once the vehicle was erased."""
        record = self._record(pseudonym_)
        if record.data_key_wrapped is None:
            raise self._erased(record)
        try:
            return unwrap_data_key(self._master, record.data_key_wrapped, pseudonym_).key
        except VerificationError as exc:
            raise KeyMaterialError(exc.message, hint=exc.hint) from exc

    # --- legal holds ----------------------------------------------------------------------------------------
    def set_legal_hold(self, pseudonym_: str, reason: str) -> Vehicle:
        """Keep the vehicle's data: erasure is refused until the hold is released."""
        reason = _check_reason(reason)
        with self._catalog.write() as w:
            record = w.require_vehicle(pseudonym_)
            if record.erased_ns is not None:
                raise ConflictError(f"vehicle {pseudonym_} was erased on {when(record.erased_ns)}; nothing to hold")
            if record.legal_hold:
                if record.legal_hold_reason == reason:
                    return Vehicle.of(record)
                raise ConflictError(
                    f"vehicle {pseudonym_} is already under legal hold ({record.legal_hold_reason})",
                    hint="release it first with `trustlane vehicle release VIN`, then place the new hold",
                )
            w.set_legal_hold(pseudonym_, reason)
            self._append(w, pseudonym_, {"type": "vehicle.legal_hold.placed", "vehicle": pseudonym_, "reason": reason})
            return Vehicle.of(w.require_vehicle(pseudonym_))

    def clear_legal_hold(self, pseudonym_: str) -> Vehicle:
        with self._catalog.write() as w:
            record = w.require_vehicle(pseudonym_)
            if not record.legal_hold:
                raise ConflictError(f"vehicle {pseudonym_} is not under legal hold", hint="nothing to release")
            w.set_legal_hold(pseudonym_, None)
            self._append(
                w,
                pseudonym_,
                {"type": "vehicle.legal_hold.released", "vehicle": pseudonym_, "reason": record.legal_hold_reason},
            )
            return Vehicle.of(w.require_vehicle(pseudonym_))

    # --- erasure ----------------------------------------------------------------------------------------------
    def erase(self, vin: str) -> ErasureReceipt:
        """Crypto-shred the vehicle: its data key, sealed VIN and the salts of all its ledger events."""
        p = self.pseudonym_of(vin)
        store = self._log.store
        with self._catalog.write() as w:
            record = w.vehicle(p)
            if record is None:
                raise UsageError("no vehicle with this VIN is registered on this node", hint="nothing to erase")
            refusal = erase_refusal(Vehicle.of(record))
            if refusal is not None:
                raise refusal
            now = self._clock_ns()
            shredded = 0
            for index in w.vehicle_event_indexes(p):
                if store.erase_event_secret(index, now):
                    shredded += 1
                    continue
                secret = store.event_secret(index)
                if secret is not None and secret.erased_ns is not None:  # shredded by an interrupted run
                    shredded += 1
            result = self._log.append_event({"type": "vehicle.erased", "vehicle": p, "events_shredded": shredded})
            w.mark_erased(p, now)
        return ErasureReceipt(p, now, shredded, result.index, result.leaf_hash)


__all__ = ["ErasureReceipt", "Vehicle", "VehicleRegistry", "check_device_vkey", "erase_refusal", "when"]
