"""The request the engine decides on: a stable JSON contract, checked strictly (unknown fields are errors)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from trustlane.compliance.model import Mechanism, validation_problem
from trustlane.compliance.regions import default_regions
from trustlane.errors import MalformedInput
from trustlane.ingest.categories import default_categories

MAX_COUNT = 10_000_000_000  # more natural persons or vehicles than exist is a typo
MAX_REQUEST_BYTES = 1 << 20
Jurisdiction = Literal["CN", "EU", "US"]


class Exporter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ciio: StrictBool | None = None


class Request(BaseModel):
    """What is to be done with which data, from where to where, with which facts and transfer mechanisms.

    ``persons`` and ``sensitive_persons`` count distinct natural persons since 1 January of the current year
    (the export so far plus this one); ``vehicles`` counts the devices the data come from.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    action: Literal["collect", "access", "analyze", "transfer"]
    from_: Jurisdiction = Field(alias="from")
    to: Jurisdiction
    categories: tuple[StrictStr, ...] = Field(min_length=1, max_length=64)
    persons: StrictInt | None = Field(default=None, ge=0, le=MAX_COUNT)
    sensitive_persons: StrictInt | None = Field(default=None, ge=0, le=MAX_COUNT)
    vehicles: StrictInt | None = Field(default=None, ge=0, le=MAX_COUNT)
    exporter: Exporter = Exporter()
    important_data_notified: StrictBool | None = None
    mechanisms: tuple[Mechanism, ...] = ()
    recipient_country: StrictStr | None = None
    rule_packs: tuple[StrictStr, ...] | None = None
    at: StrictStr | None = None  # ISO date the decision is taken for (default: today, UTC)

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = [c.id for c in default_categories().categories]
        for name in value:
            if name not in known:
                raise ValueError(f"unknown category {name!r}; known categories: {', '.join(known)}")
        return tuple(dict.fromkeys(value))

    @field_validator("recipient_country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None and value not in default_regions().countries:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (upper case, e.g. CN, DE, US) or EU")
        return value

    @field_validator("at")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO date such as 2026-03-01") from None
        return value

    @property
    def ciio(self) -> bool | None:
        return self.exporter.ciio

    def to_json(self) -> dict[str, Any]:
        """The request as given (fields left out stay out), for the decision record."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def parse_request(data: object, source: str = "request") -> Request:
    """A checked :class:`Request`; anything else raises MalformedInput naming each bad field (exit 2)."""
    if not isinstance(data, dict):
        raise MalformedInput(f"{source}: a request is a JSON object", hint='e.g. {"action": "transfer", ...}')
    try:
        return Request.model_validate(data)
    except ValidationError as exc:
        problem = validation_problem(exc, source, "compliance request")
        problem.hint = (
            "fields: action, from, to, categories, persons, sensitive_persons, vehicles, exporter {ciio}, "
            "important_data_notified, mechanisms, recipient_country, rule_packs, at (see docs/COMPLIANCE.md)"
        )
        raise problem from None


def parse_request_json(text: str | bytes, source: str = "request") -> Request:
    if len(text) > MAX_REQUEST_BYTES:
        raise MalformedInput(f"{source}: larger than {MAX_REQUEST_BYTES} bytes; a request is a small JSON object")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedInput(f"{source}: not JSON: {exc}", hint="check the file is a JSON object") from None
    return parse_request(data, source)


__all__ = ["MAX_COUNT", "Exporter", "Request", "parse_request", "parse_request_json"]
