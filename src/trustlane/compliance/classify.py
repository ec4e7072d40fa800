"""Legal classes of data categories per jurisdiction, for one signal and for a whole dataset with its volumes.

The ingest catalog says what a signal is (``location``, ``external-imagery``, ...); ``data/classes.yaml`` says
what each category is in law under CN, EU and US rules: personal, sensitive personal, important data, trade
secret, non-personal or unclassified. Personal classes hold only while a natural person can be linked to the
data, so a dataset of 0 persons is non-personal.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from trustlane.compliance.model import validation_problem
from trustlane.compliance.vocabulary import JURISDICTIONS, LEGAL_CLASSES
from trustlane.errors import MalformedInput, UsageError
from trustlane.ingest.categories import classify as categories_of
from trustlane.ingest.categories import default_categories
from trustlane.ingest.yamlsrc import load_yaml

_PERSONAL = frozenset({"personal", "sensitive_personal"})


class _EntrySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    classes: list[str]
    basis: str
    confirmed: bool


class _ClassesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str
    jurisdictions: dict[str, dict[str, _EntrySpec]]


@dataclass(frozen=True)
class CategoryClass:
    """What one category is under one jurisdiction's law, and why."""

    category: str
    classes: tuple[str, ...]
    basis: str
    confirmed: bool

    @property
    def personal(self) -> bool:
        return not _PERSONAL.isdisjoint(self.classes)

    @property
    def sensitive(self) -> bool:
        return "sensitive_personal" in self.classes

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "classes": list(self.classes),
            "basis": self.basis,
            "confirmed": self.confirmed,
        }


@dataclass(frozen=True)
class DatasetClassification:
    """A dataset's legal classes under one jurisdiction: which categories put it in each class, with volumes."""

    jurisdiction: str
    classes: dict[str, tuple[str, ...]]  # class -> categories, in LEGAL_CLASSES order
    categories: tuple[CategoryClass, ...]
    persons: int | None
    sensitive_persons: int | None
    vehicles: int | None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "classes": {k: list(v) for k, v in self.classes.items()},
            "volumes": {
                "persons": self.persons,
                "sensitive_persons": self.sensitive_persons,
                "vehicles": self.vehicles,
            },
            "categories": [c.to_json() for c in self.categories],
            "notes": list(self.notes),
        }


class LegalClassTable:
    def __init__(self, table: dict[str, dict[str, CategoryClass]]) -> None:
        self.table = table

    @classmethod
    def load(cls) -> LegalClassTable:
        source = "trustlane/compliance/data/classes.yaml"
        text = resources.files("trustlane.compliance").joinpath("data/classes.yaml").read_text("utf-8")
        try:
            spec = _ClassesSpec.model_validate(load_yaml(text, source=source))
        except ValidationError as exc:
            raise validation_problem(exc, source, "legal class table") from None
        catalog = {c.id for c in default_categories().categories}
        table: dict[str, dict[str, CategoryClass]] = {}
        for jurisdiction in JURISDICTIONS:
            entries = spec.jurisdictions.get(jurisdiction, {})
            if set(entries) != catalog:
                raise MalformedInput(
                    f"{source}: {jurisdiction} must classify exactly the ingest categories; "
                    f"missing {sorted(catalog - set(entries))}, unknown {sorted(set(entries) - catalog)}"
                )
            for cid, entry in entries.items():
                bad = [c for c in entry.classes if c not in LEGAL_CLASSES or c == "non_personal"]
                if bad or not entry.classes:
                    raise MalformedInput(f"{source}: {jurisdiction}.{cid}: unknown or empty classes {bad}")
            table[jurisdiction] = {
                cid: CategoryClass(cid, tuple(e.classes), " ".join(e.basis.split()), e.confirmed)
                for cid, e in entries.items()
            }
        return cls(table)

    def of(self, jurisdiction: str, category: str) -> CategoryClass:
        try:
            return self.table[jurisdiction][category]
        except KeyError:
            raise UsageError(
                f"no legal class for category {category!r} under {jurisdiction!r}",
                hint=f"jurisdictions: {', '.join(JURISDICTIONS)}; categories as in `trustlane catalog`",
            ) from None


@functools.cache
def default_classes() -> LegalClassTable:
    return LegalClassTable.load()


def classify_signal(path: str, jurisdiction: str) -> tuple[CategoryClass, ...]:
    """The legal classes of one VSS signal path under ``jurisdiction`` (empty if no category rule matches it)."""
    table = default_classes()
    return tuple(table.of(jurisdiction, c) for c in categories_of(path))


def classify_dataset(
    categories: tuple[str, ...] | list[str],
    jurisdiction: str,
    *,
    persons: int | None,
    sensitive_persons: int | None = None,
    vehicles: int | None = None,
) -> DatasetClassification:
    """The legal classes of a dataset holding ``categories`` about ``persons`` natural persons (None: unknown)."""
    table = default_classes()
    entries = tuple(table.of(jurisdiction, c) for c in dict.fromkeys(categories))
    linked = None if persons is None and sensitive_persons is None else max(persons or 0, sensitive_persons or 0)
    by_class: dict[str, list[str]] = {}
    notes: list[str] = []
    for entry in entries:
        for cls in entry.classes:
            if cls in _PERSONAL and linked == 0:
                cls = "non_personal"
            by_class.setdefault(cls, []).append(entry.category)
        if not entry.personal and "unclassified" not in entry.classes:
            by_class.setdefault("non_personal", []).append(entry.category)
    if linked is None and any(e.personal for e in entries):
        notes.append("persons unknown: personal classes hold once any natural person can be linked to the data")
    if jurisdiction == "CN" and linked is not None and linked > 100_000 and any(e.personal for e in entries):
        by_class.setdefault("important_data", []).extend(e.category for e in entries if e.personal)
        notes.append("personal information of more than 100,000 persons is important data (ADSP Art. 3)")
    if "important_data" in by_class and jurisdiction == "CN":
        notes.append("important data need a security assessment once notified or published as such (CAC 2024 Art. 2)")
    ordered = {c: tuple(dict.fromkeys(by_class[c])) for c in LEGAL_CLASSES if c in by_class}
    return DatasetClassification(jurisdiction, ordered, entries, persons, sensitive_persons, vehicles, tuple(notes))


__all__ = [
    "CategoryClass",
    "DatasetClassification",
    "LegalClassTable",
    "classify_dataset",
    "classify_signal",
    "default_classes",
]
