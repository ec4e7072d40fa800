"""Rule packs as typed records (pydantic): what a pack file may say, checked before anything is compiled."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trustlane.canonical import canonical_json
from trustlane.errors import MalformedInput

PACK_FORMAT = "trustlane-rule-pack/1"

Action = Literal["collect", "access", "analyze", "transfer"]
Mechanism = Literal[
    "cn_security_assessment",
    "cn_standard_contract",
    "cn_certification",
    "eu_adequacy",
    "eu_scc",
    "eu_bcr",
    "explicit_consent",
]
_ID = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
_OBLIGATION_ID = r"^[a-z][a-z0-9_]{0,63}$"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CitationSpec(_Record):
    law: str = Field(min_length=1)
    article: str = Field(min_length=1)


class ObligationSpec(_Record):
    id: str = Field(pattern=_OBLIGATION_ID)
    text: str = Field(min_length=1)


class EffectiveSpec(_Record):
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None


class LawSpec(_Record):
    name: str = Field(min_length=1)
    title: str = Field(min_length=1)
    in_force: date


class RuleSpec(_Record):
    id: str = Field(pattern=_ID)
    effect: Literal["permit", "forbid", "require", "oblige"]
    title: str = Field(min_length=1)
    citation: CitationSpec
    see_also: tuple[CitationSpec, ...] = ()
    confirmed: bool
    note: str = ""
    actions: tuple[Action, ...] | None = None
    effective: EffectiveSpec | None = None
    thresholds: dict[str, int] = Field(default_factory=dict)
    when: dict[str, Any] | None = None
    mechanisms: tuple[Mechanism, ...] = ()
    obligations: tuple[ObligationSpec, ...] = ()
    mechanism_obligations: dict[Mechanism, tuple[ObligationSpec, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> RuleSpec:
        if self.effect == "require" and not self.mechanisms:
            raise ValueError("a require rule lists the mechanisms that satisfy it")
        if self.effect != "require" and (self.mechanisms or self.mechanism_obligations):
            raise ValueError("only a require rule has mechanisms")
        if self.effect == "oblige" and not self.obligations:
            raise ValueError("an oblige rule lists its obligations")
        stray = set(self.mechanism_obligations) - set(self.mechanisms)
        if stray:
            raise ValueError(f"mechanism_obligations names mechanisms the rule does not list: {sorted(stray)}")
        if not self.confirmed and not self.note.strip():
            raise ValueError("an unconfirmed rule says in its note what could not be confirmed")
        if self.actions is not None and not self.actions:
            raise ValueError("actions, when given, is not empty (leave it out to cover every action)")
        if self.effective and self.effective.from_ and self.effective.to and self.effective.to < self.effective.from_:
            raise ValueError("effective.to is before effective.from")
        return self


class PackSpec(_Record):
    format: Literal["trustlane-rule-pack/1"]
    id: str = Field(pattern=_ID)
    version: str = Field(min_length=1, max_length=40)
    jurisdiction: Literal["CN", "EU", "US", "*"]
    title: str = Field(min_length=1)
    laws: dict[str, LawSpec]
    rules: tuple[RuleSpec, ...]

    @model_validator(mode="after")
    def _references(self) -> PackSpec:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
            for citation in (rule.citation, *rule.see_also):
                if citation.law not in self.laws:
                    raise ValueError(f"rule {rule.id}: cites law {citation.law!r}, which `laws` does not define")
        return self

    def digest(self) -> str:
        """SHA-256 of the pack's canonical content (RFC 8785 JSON of the validated record), hex."""
        return hashlib.sha256(canonical_json(self.model_dump(mode="json", by_alias=True))).hexdigest()


def validation_problem(exc: ValidationError, source: str, what: str) -> MalformedInput:
    """A pydantic error as one MalformedInput listing each problem as ``field.path: message``."""
    lines = []
    for error in exc.errors()[:10]:
        path = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{path}: {message}")
    more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
    return MalformedInput(f"{source}: not a valid {what}: " + "; ".join(lines) + more)


def parse_pack(data: object, source: str) -> PackSpec:
    if isinstance(data, dict) and data.get("format") != PACK_FORMAT:
        raise MalformedInput(
            f"{source}: format {data.get('format')!r} is not a rule pack format this trustlane knows",
            hint=f"a rule pack starts with `format: {PACK_FORMAT}`",
        )
    try:
        return PackSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc, source, "rule pack") from None


__all__ = [
    "PACK_FORMAT",
    "Action",
    "CitationSpec",
    "EffectiveSpec",
    "LawSpec",
    "Mechanism",
    "ObligationSpec",
    "PackSpec",
    "RuleSpec",
    "parse_pack",
    "validation_problem",
]
