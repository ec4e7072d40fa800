"""Countries and regions: what is inside each origin jurisdiction, countries of concern, EU adequacy."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

from pydantic import BaseModel, ConfigDict, ValidationError

from trustlane.compliance.model import validation_problem
from trustlane.compliance.vocabulary import JURISDICTIONS
from trustlane.errors import MalformedInput
from trustlane.ingest.yamlsrc import load_yaml


class _RegionsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: str
    countries: str
    inside: dict[str, str]
    countries_of_concern: str
    eu_adequacy: dict[str, str]


@dataclass(frozen=True)
class Regions:
    countries: frozenset[str]  # ISO 3166-1 alpha-2, plus EU
    inside: dict[str, frozenset[str]]  # origin jurisdiction -> places inside it
    countries_of_concern: frozenset[str]
    adequacy: dict[str, str]  # country -> "full" | "dpf"

    def adequacy_of(self, place: str) -> str:
        return self.adequacy.get(place, "none")

    @classmethod
    def load(cls) -> Regions:
        source = "trustlane/compliance/data/regions.yaml"
        text = resources.files("trustlane.compliance").joinpath("data/regions.yaml").read_text("utf-8")
        try:
            spec = _RegionsSpec.model_validate(load_yaml(text, source=source))
        except ValidationError as exc:
            raise validation_problem(exc, source, "regions file") from None
        countries = frozenset(spec.countries.split()) | {"EU"}
        inside = {j: frozenset(spec.inside.get(j, "").split()) for j in JURISDICTIONS}
        adequacy = {c: level for level, codes in spec.eu_adequacy.items() for c in codes.split()}
        named = set().union(*inside.values(), spec.countries_of_concern.split(), adequacy)
        unknown = sorted(named - countries)
        if unknown or not all(inside.values()) or set(spec.eu_adequacy) - {"full", "dpf"}:
            raise MalformedInput(f"{source}: unknown codes {unknown} or an empty or unknown region")
        return cls(countries, inside, frozenset(spec.countries_of_concern.split()), adequacy)


@functools.cache
def default_regions() -> Regions:
    return Regions.load()


__all__ = ["Regions", "default_regions"]
