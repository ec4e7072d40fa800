"""The request contract: strict fields and values, clear errors (exit 2), never a default allow."""

from __future__ import annotations

from typing import Any

import pytest

from trustlane.compliance import parse_request, parse_request_json
from trustlane.errors import MalformedInput

GOOD: dict[str, Any] = {
    "action": "transfer",
    "from": "CN",
    "to": "EU",
    "categories": ["vehicle-operation", "location"],
    "persons": 10,
    "sensitive_persons": 2,
    "exporter": {"ciio": False},
    "important_data_notified": False,
    "mechanisms": ["cn_standard_contract"],
    "recipient_country": "DE",
}


def test_a_full_request_round_trips() -> None:
    request = parse_request(GOOD)
    assert request.to_json() == GOOD
    assert request.ciio is False and request.from_ == "CN"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour: unknown field"),
        ({"action": "sell"}, "action"),
        ({"from": "XX"}, "from"),
        ({"to": "cn"}, "to"),
        ({"categories": ["spaceship"]}, "unknown category 'spaceship'"),
        ({"categories": []}, "categories"),
        ({"categories": "location"}, "categories"),
        ({"persons": -1}, "persons"),
        ({"persons": "10"}, "persons"),
        ({"persons": 1.5}, "persons"),
        ({"persons": True}, "persons"),
        ({"persons": 10**12}, "persons"),
        ({"sensitive_persons": None, "vehicles": -3}, "vehicles"),
        ({"exporter": {"ciio": "no"}}, "exporter.ciio"),
        ({"exporter": {"size": 3}}, "exporter.size: unknown field"),
        ({"important_data_notified": 1}, "important_data_notified"),
        ({"mechanisms": ["handshake"]}, "mechanisms.0"),
        ({"recipient_country": "XY"}, "not an ISO 3166-1"),
        ({"recipient_country": "de"}, "not an ISO 3166-1"),
        ({"at": "yesterday"}, "not an ISO date"),
    ],
)
def test_bad_requests_are_usage_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedInput) as info:
        parse_request(GOOD | change)
    assert message in info.value.diagnostics()
    assert info.value.exit_code == 2
    assert "docs/COMPLIANCE.md" in info.value.diagnostics()


@pytest.mark.parametrize("field", ["action", "from", "to", "categories"])
def test_required_fields(field: str) -> None:
    with pytest.raises(MalformedInput, match=f"{field}: required field is missing"):
        parse_request({k: v for k, v in GOOD.items() if k != field})


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '"transfer"', "\xff"])
def test_malformed_json(text: str) -> None:
    with pytest.raises(MalformedInput):
        parse_request_json(text, "r.json")


def test_every_request_field_and_fact_is_documented() -> None:
    from pathlib import Path

    from trustlane.compliance import Request
    from trustlane.compliance.vocabulary import facts

    docs = (Path(__file__).resolve().parents[2] / "docs/COMPLIANCE.md").read_text("utf-8")
    fields = [f.alias or name for name, f in Request.model_fields.items()]
    for name in [*fields, *facts(()), "compliance.decision", "recorded", "ledger_index", "needs_info"]:
        assert f"`{name}`" in docs or f'"{name}"' in docs, f"{name} is not documented in docs/COMPLIANCE.md"
