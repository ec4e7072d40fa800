"""Legal classes per jurisdiction, for signals and datasets, from the ingest category catalog."""

from __future__ import annotations

import pytest

from trustlane.compliance.classify import classify_dataset, classify_signal, default_classes
from trustlane.ingest.categories import default_categories


def test_every_catalog_category_has_a_class_in_every_jurisdiction() -> None:
    table = default_classes()
    catalog = {c.id for c in default_categories().categories}
    for jurisdiction in ("CN", "EU", "US"):
        assert set(table.table[jurisdiction]) == catalog
        assert all(entry.basis for entry in table.table[jurisdiction].values())


@pytest.mark.parametrize(
    ("path", "jurisdiction", "classes"),
    [
        ("Vehicle.CurrentLocation.Latitude", "CN", ("sensitive_personal",)),
        ("Vehicle.CurrentLocation.Latitude", "EU", ("personal",)),
        ("Vehicle.CurrentLocation.Latitude", "US", ("sensitive_personal",)),
        ("Vehicle.CurrentLocation.Heading", "US", ("sensitive_personal",)),  # within 1,000 m: precise (28 CFR 202)
        ("Vehicle.Exterior.Camera.Front.Image", "CN", ("personal", "important_data")),
        ("Vehicle.Exterior.Camera.Front.Image", "EU", ("personal",)),
        ("Vehicle.Speed", "EU", ("personal",)),
        ("Vendor.Acme.Secret", "CN", ("unclassified", "trade_secret")),
    ],
)
def test_signal_classes(path: str, jurisdiction: str, classes: tuple[str, ...]) -> None:
    (entry,) = classify_signal(path, jurisdiction)
    assert entry.classes == classes


def test_charging_network_data_are_important_in_china_only() -> None:
    for jurisdiction in ("CN", "EU", "US"):
        (entry,) = classify_signal("Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.DC", jurisdiction)
        assert ("important_data" in entry.classes) is (jurisdiction == "CN")


def test_dataset_classes_follow_the_persons_count() -> None:
    categories = ["vehicle-operation", "location", "charging"]
    nobody = classify_dataset(categories, "CN", persons=0)
    assert set(nobody.classes) == {"non_personal", "important_data"}
    some = classify_dataset(categories, "CN", persons=50, sensitive_persons=50, vehicles=20)
    assert some.classes["sensitive_personal"] == ("location",)
    assert some.classes["important_data"] == ("charging",)
    assert some.to_json()["volumes"] == {"persons": 50, "sensitive_persons": 50, "vehicles": 20}
    many = classify_dataset(categories, "CN", persons=100_001)
    assert set(many.classes["important_data"]) == set(categories)  # ADSP Art. 3: more than 100,000 persons
    assert any("100,000" in n for n in many.notes)
    at_limit = classify_dataset(categories, "CN", persons=100_000)
    assert at_limit.classes["important_data"] == ("charging",)
    unknown = classify_dataset(categories, "EU", persons=None)
    assert "personal" in unknown.classes and unknown.notes
