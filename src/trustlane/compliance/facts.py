"""From a request to the facts rules test: places, classes under the origin's law, volumes and what is unknown.

An absent fact is None, and rules that need it come out undetermined. Two defaults keep questions that cannot
matter from being asked: ``sensitive_persons`` is 0 when no category is sensitive under the origin's law, and
``important_data`` is false when no category is one the origin's law names as important data (so
``important_data_notified`` is asked only where it could apply).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from trustlane.compliance.classify import LegalClassTable, default_classes
from trustlane.compliance.regions import Regions, default_regions
from trustlane.compliance.request import Request
from trustlane.compliance.vocabulary import JURISDICTIONS

_ADEQUACY_RANK = {"none": 0, "dpf": 1, "full": 2}


@dataclass(frozen=True)
class CategoryFlags:
    personal: bool
    sensitive: bool
    important: bool
    trade_secret: bool
    unclassified: bool


@functools.cache
def _flags(classes: LegalClassTable | None = None) -> dict[str, dict[str, CategoryFlags]]:
    table = classes or default_classes()
    return {
        j: {
            cid: CategoryFlags(
                entry.personal,
                entry.sensitive,
                "important_data" in entry.classes,
                "trade_secret" in entry.classes,
                "unclassified" in entry.classes,
            )
            for cid, entry in table.table[j].items()
        }
        for j in JURISDICTIONS
    }


def build_facts(request: Request, regions: Regions | None = None) -> dict[str, Any]:
    regions = regions or default_regions()
    origin = request.from_
    flags = [_flags()[origin][c] for c in request.categories]
    inside = regions.inside[origin]
    places = (request.to,) if request.recipient_country is None else (request.to, request.recipient_country)
    outside = [p for p in places if p not in inside]
    adequacy = min((regions.adequacy_of(p) for p in outside), key=_ADEQUACY_RANK.__getitem__, default="full")

    persons, sensitive_persons = request.persons, request.sensitive_persons
    if sensitive_persons is None and not any(f.sensitive for f in flags):
        sensitive_persons = 0
    if persons is None:
        linked = sensitive_persons if sensitive_persons else None  # some sensitive persons: persons exist
    else:
        linked = max(persons, sensitive_persons or 0)
    personal: bool | None = False
    if any(f.personal for f in flags):
        personal = None if linked is None else linked > 0
    important_candidate = any(f.important for f in flags)
    notified = request.important_data_notified
    return {
        "action": request.action,
        "from": origin,
        "to": request.to,
        "cross_border": bool(outside),
        "recipient_country_of_concern": any(p in regions.countries_of_concern for p in places),
        "recipient_adequacy": adequacy,
        "categories": frozenset(request.categories),
        "mechanisms": frozenset(request.mechanisms),
        "persons": persons,
        "sensitive_persons": sensitive_persons,
        "devices": request.vehicles if request.vehicles is not None else linked,
        "ciio": request.ciio,
        "important_data_notified": notified,
        "personal": personal,
        "sensitive": None if sensitive_persons is None else sensitive_persons > 0,
        "important_data": notified if notified is not None else (None if important_candidate else False),
        "important_candidate": important_candidate,
        "trade_secret": any(f.trade_secret for f in flags),
        "unclassified": any(f.unclassified for f in flags),
    }


__all__ = ["build_facts"]
