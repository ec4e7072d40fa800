"""The closed vocabularies of the compliance engine: actions, jurisdictions, mechanisms and the facts rules test."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ACTIONS = ("collect", "access", "analyze", "transfer")
JURISDICTIONS = ("CN", "EU", "US")
ANY_JURISDICTION = "*"
MECHANISMS = (
    "cn_security_assessment",
    "cn_standard_contract",
    "cn_certification",
    "eu_adequacy",
    "eu_scc",
    "eu_bcr",
    "explicit_consent",
)
ADEQUACY_LEVELS = ("full", "dpf", "none")
LEGAL_CLASSES = ("personal", "sensitive_personal", "important_data", "trade_secret", "non_personal", "unclassified")


class FactType(Enum):
    BOOL = "bool"
    INT = "int"
    STR = "str"
    SET = "set"


@dataclass(frozen=True)
class Fact:
    """A fact a rule may test: its type, the values it may take (strings) and the request field behind it."""

    type: FactType
    source: str  # the request field a user supplies when the fact is unknown ("" when it is always known)
    values: tuple[str, ...] = ()


def facts(categories: tuple[str, ...]) -> dict[str, Fact]:
    """The fact vocabulary; ``categories`` are the ingest catalog's category ids."""
    return {
        "action": Fact(FactType.STR, "", ACTIONS),
        "from": Fact(FactType.STR, "", JURISDICTIONS),
        "to": Fact(FactType.STR, "", JURISDICTIONS),
        "cross_border": Fact(FactType.BOOL, ""),
        "recipient_country_of_concern": Fact(FactType.BOOL, ""),
        "recipient_adequacy": Fact(FactType.STR, "", ADEQUACY_LEVELS),
        "categories": Fact(FactType.SET, "", categories),
        "mechanisms": Fact(FactType.SET, "", MECHANISMS),
        "persons": Fact(FactType.INT, "persons"),
        "sensitive_persons": Fact(FactType.INT, "sensitive_persons"),
        "devices": Fact(FactType.INT, "persons"),
        "ciio": Fact(FactType.BOOL, "exporter.ciio"),
        "important_data_notified": Fact(FactType.BOOL, "important_data_notified"),
        "personal": Fact(FactType.BOOL, "persons"),
        "sensitive": Fact(FactType.BOOL, "sensitive_persons"),
        "important_data": Fact(FactType.BOOL, "important_data_notified"),
        "important_candidate": Fact(FactType.BOOL, ""),
        "trade_secret": Fact(FactType.BOOL, ""),
        "unclassified": Fact(FactType.BOOL, ""),
    }


__all__ = [
    "ACTIONS",
    "ADEQUACY_LEVELS",
    "ANY_JURISDICTION",
    "JURISDICTIONS",
    "LEGAL_CLASSES",
    "MECHANISMS",
    "Fact",
    "FactType",
    "facts",
]
