"""Data category catalog: the shipped file, rule precedence and the checks on a category file."""

from __future__ import annotations

import pytest

from trustlane.errors import MalformedInput
from trustlane.ingest.categories import UNCLASSIFIED, CategoryCatalog, classify, default_categories
from trustlane.ingest.vss import default_catalog

REQUIRED = {
    "vehicle-operation",
    "vehicle-state",
    "location",
    "location-coarse",
    "external-imagery",
    "cabin-imagery",
    "cabin-audio",
    "biometrics",
    "driver-behaviour",
    "identifiers",
    "occupant-state",
    "adas-state",
    "crash-data",
    "infotainment",
    "charging",
    UNCLASSIFIED,
}


def test_shipped_catalog_has_the_required_categories() -> None:
    catalog = default_categories()
    assert {c.id for c in catalog.categories} >= REQUIRED
    for category in catalog.categories:
        assert category.description
        assert category.sources, category.id


def test_collect_by_default() -> None:
    catalog = default_categories()
    not_collected = {c.id for c in catalog.categories if not c.collect_by_default}
    assert {"cabin-audio", "cabin-imagery", "biometrics"} <= not_collected
    assert "vehicle-operation" not in not_collected
    assert "location" not in not_collected  # precision-limited instead (collection.py)
    assert UNCLASSIFIED not in not_collected  # kept, but not shareable


def test_every_catalog_signal_gets_a_category_and_none_is_unclassified() -> None:
    categories = default_categories()
    leaves = [n.path for n in default_catalog() if not n.is_branch]
    assert [p for p in leaves if not categories.classify(p)] == []
    assert [p for p in leaves if UNCLASSIFIED in categories.classify(p)] == []


def test_every_category_is_used_by_a_rule() -> None:
    catalog = default_categories()
    used = {cid for rule in catalog.rules for cid in rule.categories}
    assert used == {c.id for c in catalog.categories}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Vehicle.Speed", ("vehicle-operation",)),
        ("Vehicle.Acceleration.Longitudinal", ("vehicle-operation",)),
        ("Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed", ("vehicle-operation",)),
        ("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", ("vehicle-state",)),
        ("Vehicle.CurrentLocation.Latitude", ("location",)),
        ("Vehicle.CurrentLocation.Heading", ("location-coarse",)),
        ("Vehicle.Cabin.Infotainment.Navigation.DestinationSet.Longitude", ("location", "infotainment")),
        ("Vehicle.Cabin.Infotainment.Media.Played.Artist", ("infotainment",)),
        ("Vehicle.Cabin.Camera.Frame", ("cabin-imagery",)),
        ("Vehicle.Exterior.Camera.Frame", ("external-imagery",)),
        ("Vehicle.Cabin.Microphone.Audio", ("cabin-audio",)),
        ("Vehicle.Driver.HeartRate", ("biometrics",)),
        ("Vehicle.Driver.FatigueLevel", ("driver-behaviour",)),
        ("Vehicle.Occupant.Row1.DriverSide.MidEyeGaze.Azimuth", ("driver-behaviour",)),
        ("Vehicle.Occupant.Row1.DriverSide.Identifier.Subject", ("identifiers",)),
        ("Vehicle.VehicleIdentification.VIN", ("identifiers",)),
        ("Vehicle.VehicleIdentification.Brand", ("vehicle-state",)),
        ("Vehicle.Cabin.Seat.Row2.PassengerSide.IsBelted", ("occupant-state", "crash-data")),
        ("Vehicle.Cabin.Seat.Row1.DriverSide.Airbag.IsDeployed", ("occupant-state", "crash-data")),
        ("Vehicle.ADAS.ActiveAutonomyLevel", ("adas-state",)),
        ("Vehicle.ADAS.TransitionDemand.IsActive", ("adas-state",)),
        ("Vehicle.Driver.IsHandsOnWheel", ("adas-state",)),
        ("Vehicle.ADAS.DSSAD.Event", ("adas-state", "crash-data")),
        ("Vehicle.Safety.CrashPulse.Longitudinal", ("crash-data",)),
        ("Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.DC", ("charging",)),
        ("Vehicle.Powertrain.TractionBattery.Charging.Location.Latitude", ("location", "charging")),
        ("Vehicle.Powertrain.TractionBattery.StateOfHealth", ("vehicle-state",)),
        ("Vendor.hyundai.SCC12.CR_VSM_Alive", (UNCLASSIFIED,)),
    ],
)
def test_shipped_classification(path: str, expected: tuple[str, ...]) -> None:
    assert classify(path) == expected


def _catalog(rules: str, extra_categories: str = "") -> CategoryCatalog:
    text = (
        "version: 1\n"
        "categories:\n"
        "  a: {description: A, collect_by_default: true, sources: [{ref: R, note: n, verified: true}]}\n"
        "  b: {description: B, collect_by_default: false, sources: [{ref: S, note: n, verified: false}]}\n"
        "  c: {description: C, collect_by_default: true, sources: [{ref: T, note: n, verified: true}]}\n"
        f"{extra_categories}"
        "rules:\n"
        f"{rules}"
    )
    return CategoryCatalog.from_yaml(text, source="test.yaml")


def test_most_specific_rule_wins_and_ties_combine() -> None:
    catalog = _catalog(
        "  - {match: 'Vehicle.**', categories: [a]}\n"
        "  - {match: 'Vehicle.Cabin.**', categories: [b]}\n"
        "  - {match: 'Vehicle.Cabin.Seat.*.*.IsBelted', categories: [c]}\n"
        "  - {match: 'Vehicle.Cabin.Seat.Row*.*.IsBelted', categories: [a]}\n"
        "  - {match: ['Vehicle.X.Y', 'Vehicle.X.*'], categories: [b]}\n"
        "  - {match: 'Vehicle.X.Y', categories: [c]}\n"
    )
    assert catalog.classify("Vehicle.Speed") == ("a",)
    assert catalog.classify("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen") == ("b",)
    # a partly literal segment (Row*) beats a bare *
    assert catalog.classify("Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted") == ("a",)
    assert catalog.classify("Vehicle.Cabin.Seat.Back.DriverSide.IsBelted") == ("c",)
    # two equally specific rules: both apply
    assert catalog.classify("Vehicle.X.Y") == ("b", "c")
    assert catalog.classify("Vehicle.X.Z") == ("b",)
    # ** matches zero segments too
    assert catalog.classify("Vehicle.Cabin") == ("b",)
    assert catalog.classify("Other.Thing") == ()
    assert [r.pattern for r in catalog.winning_rules("Vehicle.X.Y")] == ["Vehicle.X.Y", "Vehicle.X.Y"]


def test_citation_text_marks_unverified_sources() -> None:
    catalog = _catalog("  - {match: 'Vehicle.**', categories: [a]}\n")
    assert catalog.category("a").citation_text() == "R"
    assert catalog.category("b").citation_text() == "S (unverified)"
    with pytest.raises(MalformedInput, match="unknown data category 'zz'"):
        catalog.category("zz")


def test_shipped_citations_flag_unchecked_clauses() -> None:
    location = default_categories().category("location")
    assert "CN-ADSP Art. 3" in location.citation_text()
    assert "(unverified)" in location.citation_text()


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ("  - {match: 'Vehicle.**', categories: [nope]}\n", r"test.yaml:\d+: unknown category 'nope'"),
        ("  - {match: 'Vehicle..X', categories: [a]}\n", r"test.yaml:\d+: bad pattern"),
        ("  - {match: 'Vehicle.a**', categories: [a]}\n", r"test.yaml:\d+: bad pattern"),
        ("  - {match: 'Vehicle.**', categories: []}\n", r"categories must be a non-empty list"),
        ("  - {match: 'Vehicle.**', category: [a]}\n", r"test.yaml:\d+: unknown key 'category'"),
        ("  - {categories: [a]}\n", r"match must be a pattern"),
        ("  - []\n", r"a rule must be a mapping"),
        ("  []\n", r"rules must be a non-empty list"),
    ],
)
def test_bad_rules_name_the_line(rules: str, error: str) -> None:
    with pytest.raises(MalformedInput, match=error):
        _catalog(rules)


def test_bad_categories_name_the_line() -> None:
    rule = "  - {match: 'Vehicle.**', categories: [a]}\n"
    with pytest.raises(MalformedInput, match=r"test.yaml:6: category d has no sources"):
        _catalog(rule, "  d: {description: D, collect_by_default: true, sources: []}\n")
    with pytest.raises(MalformedInput, match=r"collect_by_default must be true or false"):
        _catalog(rule, "  d: {description: D, collect_by_default: maybe, sources: [{ref: R, verified: true}]}\n")
    with pytest.raises(MalformedInput, match=r"test.yaml:6: key 'a' repeats the one on line 3"):
        _catalog(rule, "  a: {description: again, collect_by_default: true, sources: [{ref: R, verified: true}]}\n")
    with pytest.raises(MalformedInput, match=r"a source needs ref"):
        _catalog(rule, "  d: {description: D, collect_by_default: true, sources: [{ref: R}]}\n")


def test_version_is_required() -> None:
    with pytest.raises(MalformedInput, match="version is None, expected 1"):
        CategoryCatalog.from_yaml("categories: {}\nrules: []\n", source="v.yaml")
