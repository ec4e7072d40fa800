"""Collection rules at ingest: default non-collection with consent, location precision, vendor signals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trustlane.canonical import canonical_json
from trustlane.errors import UsageError
from trustlane.ingest.categories import UNCLASSIFIED
from trustlane.ingest.collection import (
    CollectionPolicy,
    apply_collection_rules,
    consent_problem,
    time_range,
)
from trustlane.ingest.mapping import apply_mapping, parse_mapping
from trustlane.ingest.model import Channel, ConsentRecord, RawRecording, Signal

S = 10**9
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def _signal(path: str, values: list[Any], categories: tuple[str, ...], *, unit: str | None = None) -> Signal:
    array = np.array(values, dtype=object) if isinstance(values[0], str) else np.array(values)
    return Signal(
        path=path,
        unit=unit,
        timestamps_ns=np.arange(len(values), dtype=np.int64) * S + T0,
        values=array,
        source_name=f"src.{path.rsplit('.', 1)[-1]}",
        categories=categories,
        classified=UNCLASSIFIED not in categories,
    )


SPEED = _signal("Vehicle.Speed", [10.0, 20.0, 30.0], ("vehicle-operation",), unit="km/h")
AUDIO = _signal("Vehicle.Cabin.Microphone.Audio", ["sha256:aa", "sha256:bb"], ("cabin-audio",))
HEART = _signal("Vehicle.Driver.HeartRate", [70, 72], ("biometrics",), unit="bpm")
LAT = _signal("Vehicle.CurrentLocation.Latitude", [48.1371549, 48.1379999], ("location",), unit="degrees")
LON = _signal("Vehicle.CurrentLocation.Longitude", [11.5753822, 11.5760001], ("location",), unit="degrees")
EVSE = _signal("Vehicle.Powertrain.TractionBattery.Charging.EvseId", ["DEABCE123"], ("location", "charging"))
VENDOR = _signal("Vendor.hyundai.SCC12.CR_VSM_Alive", [1, 2, 3], (UNCLASSIFIED,))


def _consent(category: str, granted: int = T0 - S, expires: int | None = None, basis: str = "consent") -> ConsentRecord:
    return ConsentRecord(category=category, legal_basis=basis, granted_ns=granted, expires_ns=expires, reference="c-1")


def test_default_keeps_vehicle_data_and_drops_what_needs_consent() -> None:
    result = apply_collection_rules([SPEED, AUDIO, HEART], [])
    assert [s.path for s in result.kept] == ["Vehicle.Speed"]
    assert result.kept[0] is SPEED
    assert [(d.path, d.category) for d in result.dropped] == [
        ("Vehicle.Cabin.Microphone.Audio", "cabin-audio"),
        ("Vehicle.Driver.HeartRate", "biometrics"),
    ]
    audio = result.dropped[0]
    assert audio.source_name == "src.Audio"
    assert "not collected by default" in audio.reason
    assert "no consent record for cabin-audio" in audio.reason
    assert "CN-ADSP Art. 3" in audio.citation
    assert "GB/T 41871-2022 3.6" in audio.citation
    assert result.adjusted == []


def test_a_valid_consent_lets_the_category_in() -> None:
    result = apply_collection_rules([AUDIO, HEART], [_consent("cabin-audio", expires=T0 + 60 * S)])
    assert [s.path for s in result.kept] == ["Vehicle.Cabin.Microphone.Audio"]
    assert [d.category for d in result.dropped] == ["biometrics"]


@pytest.mark.parametrize(
    ("consent", "why"),
    [
        (_consent("cabin-audio", granted=T0 + S // 2), "granted at 2026-01-01T00:00:00Z, after the recording starts"),
        (_consent("cabin-audio", expires=T0 + S // 2), "expired at 2026-01-01T00:00:00Z, before the recording ends"),
        (_consent("cabin-audio", basis="contract"), "legal basis 'contract' is not accepted"),
    ],
)
def test_a_consent_that_does_not_cover_the_recording_is_explained(consent: ConsentRecord, why: str) -> None:
    result = apply_collection_rules([AUDIO], [consent])
    [drop] = result.dropped
    assert "covers 2026-01-01T00:00:00Z to 2026-01-01T00:00:01Z" in drop.reason
    assert f"consent c-1: {why}" in drop.reason


def test_accepted_legal_bases_are_configurable() -> None:
    policy = CollectionPolicy(accepted_legal_bases=frozenset({"consent", "contract"}))
    result = apply_collection_rules([AUDIO], [_consent("cabin-audio", basis="contract")], policy)
    assert [s.path for s in result.kept] == [AUDIO.path]


def test_consent_must_cover_the_whole_recording_span() -> None:
    # the audio itself ends early, but the recording (speed) goes on past the consent's expiry
    consent = _consent("cabin-audio", expires=T0 + S + S // 2)
    assert apply_collection_rules([AUDIO, SPEED], [consent]).dropped != []
    assert apply_collection_rules([AUDIO], [consent]).dropped == []
    assert apply_collection_rules([AUDIO], [consent], span=(T0, T0 + 5 * S)).dropped != []


def test_location_is_rounded_without_consent() -> None:
    result = apply_collection_rules([LAT, LON, SPEED], [])
    by = {s.path: s for s in result.kept}
    assert by[LAT.path].values.tolist() == [48.137, 48.138]
    assert by[LON.path].values.tolist() == [11.575, 11.576]
    assert by[LAT.path].categories == ("location-coarse",)
    assert LAT.values.tolist() == [48.1371549, 48.1379999]  # the input is not changed
    assert [(a.path, a.kind, a.category) for a in result.adjusted] == [
        (LAT.path, "location-precision", "location"),
        (LON.path, "location-precision", "location"),
    ]
    assert "rounded to 3 decimal places" in result.adjusted[0].reason
    assert "111 m" in result.adjusted[0].reason
    assert "EDPB 01/2020 §2.1.1" in result.adjusted[0].citation


def test_location_precision_is_configurable_and_consent_keeps_it_precise() -> None:
    coarse = apply_collection_rules([LAT], [], CollectionPolicy(location_decimals=1))
    assert coarse.kept[0].values.tolist() == [48.1, 48.1]
    assert "(a 0.1° grid, about 1.11e+04 m north-south)" in coarse.adjusted[0].reason
    precise = apply_collection_rules([LAT], [_consent("location")])
    assert precise.kept == [LAT]
    assert precise.adjusted == []


def test_location_that_cannot_be_rounded_is_dropped() -> None:
    result = apply_collection_rules([EVSE], [])
    [drop] = result.dropped
    assert drop.category == "location"
    assert "cannot be rounded" in drop.reason
    assert apply_collection_rules([EVSE], [_consent("location")]).kept == [EVSE]


def test_vendor_signals_are_kept_but_not_shareable() -> None:
    result = apply_collection_rules([VENDOR, SPEED], [])
    assert result.kept == [VENDOR, SPEED]
    [adjustment] = result.adjusted
    assert (adjustment.kind, adjustment.category) == ("not-shareable", UNCLASSIFIED)
    assert "never shared" in adjustment.reason
    assert result.not_shareable == [VENDOR.path]


def test_unknown_or_missing_categories_fail_closed() -> None:
    odd = _signal("Vehicle.X", [1.0], ("mystery",))
    bare = _signal("Vehicle.Y", [1.0], ())
    result = apply_collection_rules([odd, bare], [])
    assert [(d.path, d.category) for d in result.dropped] == [("Vehicle.X", "mystery"), ("Vehicle.Y", UNCLASSIFIED)]
    assert "fail closed" in result.dropped[0].citation


def test_every_category_of_a_signal_counts() -> None:
    both = _signal("Vehicle.Occupant.Row1.DriverSide.MidEyeGaze.Azimuth", [1.0], ("driver-behaviour", "occupant-state"))
    assert [d.category for d in apply_collection_rules([both], []).dropped] == ["driver-behaviour"]
    assert apply_collection_rules([both], [_consent("driver-behaviour")]).dropped == []


@pytest.mark.parametrize("decimals", [-1, 9, True, 2.5])
def test_policy_checks_location_decimals(decimals: Any) -> None:
    with pytest.raises(UsageError, match="location_decimals must be a whole number"):
        CollectionPolicy(location_decimals=decimals)


def test_records_are_canonical_json_ready() -> None:
    result = apply_collection_rules([AUDIO, LAT, VENDOR], [])
    records = [d.as_record() for d in result.dropped] + [a.as_record() for a in result.adjusted]
    assert [r["action"] for r in records] == ["drop", "adjust", "adjust"]
    assert {"path", "source_name", "category", "reason", "citation"} <= set(records[0])
    assert records[1]["kind"] == "location-precision"
    for record in records:
        assert json.loads(canonical_json(record)) == record


def test_time_range_and_consent_problem() -> None:
    assert time_range([]) is None
    assert time_range([SPEED, AUDIO]) == (T0, T0 + 2 * S)
    consent = _consent("cabin-audio", granted=T0, expires=T0 + 2 * S)
    assert consent_problem(consent, (T0, T0 + 2 * S), frozenset({"consent"})) is None
    assert consent_problem(consent, None, frozenset({"consent"})) is None


def test_ingest_pipeline_from_channels_to_kept_signals() -> None:
    mapping = parse_mapping(
        "version: 1\nvendor: acme\nidentity: true\nsignals:\n  mic: Vehicle.Cabin.Microphone.Audio\n",
        source="m.yaml",
    )
    times = np.array([T0, T0 + S], dtype=np.int64)
    recording = RawRecording(
        source=Path("drive.csv"),
        format="csv",
        channels=(
            Channel("Vehicle.Speed", "km/h", times, np.array([50.0, 51.0])),
            Channel("Vehicle.CurrentLocation.Latitude", "deg", times, np.array([48.13715, 48.13799])),
            Channel("mic", None, times, np.array(["sha256:01", "sha256:02"], dtype=object)),
            Channel("oem_flag", None, times, np.array([0, 1])),
        ),
        consents=(_consent("cabin-audio", granted=T0 - 10 * S, basis="contract"),),
    )
    signals = apply_mapping(recording, mapping)
    result = apply_collection_rules(signals, recording.consents)
    assert [s.path for s in result.kept] == [
        "Vehicle.Speed",
        "Vehicle.CurrentLocation.Latitude",
        "Vendor.acme.oem_flag",
    ]
    assert [d.path for d in result.dropped] == ["Vehicle.Cabin.Microphone.Audio"]
    assert "legal basis 'contract' is not accepted" in result.dropped[0].reason
    assert [a.kind for a in result.adjusted] == ["location-precision", "not-shareable"]
