"""Decisions at the legal boundaries, table by table (CN, EU, US), and the fail-closed cases."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from trustlane.compliance import Decision, RuleSet, evaluate, parse_request

CN_EXPORT: dict[str, Any] = {
    "action": "transfer",
    "from": "CN",
    "to": "EU",
    "categories": ["vehicle-operation"],
    "exporter": {"ciio": False},
    "important_data_notified": False,
}


def decide(request: dict[str, Any], **kwargs: Any) -> Decision:
    return evaluate(parse_request(request), **kwargs)


def rule_ids(decision: Decision) -> set[str]:
    return {a.rule.id for a in decision.rules}


def obligation_ids(decision: Decision) -> set[str]:
    return {o.id for o in decision.obligations}


# --- CN: CAC 2024 Arts. 5, 7, 8 by volume ------------------------------------------------------------------
# (persons, mechanisms, decision, the rule that decides)
PERSONS_TABLE = [
    (0, [], "allow", "cn.non-personal-export"),
    (99_999, [], "allow", "cn.cac2024.exemption"),
    (100_000, [], "deny", "cn.cac2024.standard-contract"),
    (100_000, ["cn_standard_contract"], "allow", "cn.cac2024.standard-contract"),
    (100_000, ["cn_certification"], "allow", "cn.cac2024.standard-contract"),
    (999_999, ["cn_standard_contract"], "allow", "cn.cac2024.standard-contract"),
    (999_999, ["cn_security_assessment"], "deny", "cn.cac2024.standard-contract"),
    (1_000_000, ["cn_standard_contract"], "deny", "cn.cac2024.volume-assessment"),
    (1_000_000, ["cn_security_assessment"], "allow", "cn.cac2024.volume-assessment"),
]


@pytest.mark.parametrize(("persons", "mechanisms", "expected", "rule"), PERSONS_TABLE)
def test_cn_person_thresholds(persons: int, mechanisms: list[str], expected: str, rule: str) -> None:
    d = decide(CN_EXPORT | {"persons": persons, "sensitive_persons": 0, "mechanisms": mechanisms})
    assert d.decision == expected, d.reasons
    assert rule in rule_ids(d)
    assert d.missing == ()
    if expected == "deny":
        wanted = dict(d.required_mechanisms)[rule]
        assert not set(wanted) & set(mechanisms)
        assert any(m in " ".join(d.reasons) for m in wanted)  # the reason names the mechanism


# (sensitive persons, mechanisms, decision, deciding rule); persons stay under 100,000
SENSITIVE_TABLE = [
    (0, [], "allow", "cn.cac2024.exemption"),
    (1, [], "deny", "cn.cac2024.standard-contract"),
    (1, ["cn_standard_contract"], "allow", "cn.cac2024.standard-contract"),
    (9_999, ["cn_certification"], "allow", "cn.cac2024.standard-contract"),
    (9_999, [], "deny", "cn.cac2024.standard-contract"),
    (10_000, ["cn_standard_contract"], "deny", "cn.cac2024.volume-assessment"),
    (10_000, ["cn_security_assessment"], "allow", "cn.cac2024.volume-assessment"),
]


@pytest.mark.parametrize(("sensitive", "mechanisms", "expected", "rule"), SENSITIVE_TABLE)
def test_cn_sensitive_thresholds(sensitive: int, mechanisms: list[str], expected: str, rule: str) -> None:
    request = CN_EXPORT | {"categories": ["vehicle-operation", "location"], "persons": 50_000}
    d = decide(request | {"sensitive_persons": sensitive, "mechanisms": mechanisms})
    assert d.decision == expected, d.reasons
    assert rule in rule_ids(d)


def test_sensitive_persons_beyond_persons_count_as_persons() -> None:
    d = decide(CN_EXPORT | {"categories": ["location"], "persons": 0, "sensitive_persons": 10_000})
    assert d.decision == "deny"
    assert dict(d.required_mechanisms)["cn.cac2024.volume-assessment"] == ("cn_security_assessment",)


@pytest.mark.parametrize("persons", [1, 99_999, 500_000])
def test_ciio_needs_a_security_assessment_at_any_volume(persons: int) -> None:
    request = CN_EXPORT | {"persons": persons, "sensitive_persons": 0, "exporter": {"ciio": True}}
    denied = decide(request | {"mechanisms": ["cn_standard_contract"]})
    assert denied.decision == "deny"
    assert dict(denied.required_mechanisms)["cn.cac2024.ciio"] == ("cn_security_assessment",)
    assert "cn.cac2024.exemption" not in rule_ids(denied)
    allowed = decide(request | {"mechanisms": ["cn_security_assessment"]})
    assert allowed.decision == "allow"
    assert {"cn_security_assessment", "store_in_china"} <= obligation_ids(allowed)


def test_ciio_with_non_personal_data_needs_nothing() -> None:
    d = decide(CN_EXPORT | {"persons": 0, "exporter": {"ciio": True}})
    assert d.decision == "allow"
    assert rule_ids(d) == {"cn.non-personal-export"}


def test_notified_important_data_needs_a_security_assessment() -> None:
    request = CN_EXPORT | {"persons": 0, "important_data_notified": True}
    assert decide(request).decision == "deny"
    assert "cn.cac2024.important-data" in dict(decide(request).required_mechanisms)
    assert decide(request | {"mechanisms": ["cn_security_assessment"]}).decision == "allow"


def test_exterior_images_must_be_anonymised_and_checked_for_notification() -> None:
    request = CN_EXPORT | {"categories": ["external-imagery"], "persons": 500, "sensitive_persons": 0}
    d = decide(request)
    assert d.decision == "allow"
    assert {"anonymise_faces_and_plates", "identify_important_data", "separate_consent"} <= obligation_ids(d)
    unknown = decide({k: v for k, v in request.items() if k != "important_data_notified"})
    assert unknown.decision == "needs_info"
    assert unknown.missing == ("important_data_notified",)


def test_non_personal_vehicle_operation_data_leave_freely() -> None:
    for origin, to in (("CN", "EU"), ("EU", "CN"), ("US", "EU")):
        d = decide({"action": "transfer", "from": origin, "to": to, "categories": ["vehicle-operation"], "persons": 0})
        assert d.decision == "allow", (origin, d.reasons)
        assert d.obligations == () or origin == "US"
        assert not d.missing


def test_domestic_collection_of_sensitive_data_needs_separate_consent() -> None:
    request = {"action": "collect", "from": "CN", "to": "CN", "categories": ["location"], "persons": 10}
    denied = decide(request)
    assert denied.decision == "deny"
    assert ("cn.adsp.sensitive-collection", ("explicit_consent",)) in denied.required_mechanisms
    assert decide(request | {"mechanisms": ["explicit_consent"]}).decision == "allow"
    coarse = decide(request | {"categories": ["location-coarse", "vehicle-operation"]})
    assert coarse.decision == "allow"


# --- EU: GDPR Chapter V ------------------------------------------------------------------------------------
EU_TO_CN: dict[str, Any] = {
    "action": "transfer",
    "from": "EU",
    "to": "CN",
    "categories": ["vehicle-operation", "location"],
    "persons": 20_000,
}


@pytest.mark.parametrize(
    ("mechanisms", "expected"),
    [
        ([], "deny"),
        (["eu_scc"], "allow"),
        (["eu_bcr"], "allow"),
        (["eu_adequacy"], "deny"),  # the Commission has no adequacy decision for China
        (["explicit_consent"], "deny"),  # Art. 49 derogations do not carry systematic transfers
    ],
)
def test_eu_to_cn(mechanisms: list[str], expected: str) -> None:
    d = decide(EU_TO_CN | {"mechanisms": mechanisms})
    assert d.decision == expected, d.reasons
    assert "eu.gdpr.appropriate-safeguards" in rule_ids(d)
    if expected == "deny":
        assert "eu_scc" in " ".join(d.reasons)
    else:
        assert "transfer_impact_assessment" in obligation_ids(d)


def test_eu_adequacy_and_the_data_privacy_framework() -> None:
    to_japan = decide(EU_TO_CN | {"to": "EU", "recipient_country": "JP"})
    assert to_japan.decision == "allow"  # Japan has an adequacy decision covering every recipient
    assert "eu.gdpr.adequacy" in rule_ids(to_japan)
    assert decide(EU_TO_CN | {"to": "US", "recipient_country": "JP"}).decision == "deny"  # the US leg needs DPF
    assert decide(EU_TO_CN | {"to": "US", "mechanisms": ["eu_adequacy"]}).decision == "allow"
    assert decide(EU_TO_CN | {"to": "US"}).decision == "deny"
    inside = decide(EU_TO_CN | {"to": "EU", "recipient_country": "DE"})
    assert inside.decision == "allow"
    assert "eu.domestic" in rule_ids(inside)


def test_onward_recipient_outside_the_destination_is_a_transfer() -> None:
    d = decide(EU_TO_CN | {"to": "EU", "recipient_country": "CN"})
    assert d.decision == "deny"
    assert d.facts["cross_border"] is True


# --- US: 28 CFR 202 and the FTC standard --------------------------------------------------------------------
US_TO_CN: dict[str, Any] = {
    "action": "transfer",
    "from": "US",
    "to": "CN",
    "categories": ["location"],
    "mechanisms": ["explicit_consent"],
}


@pytest.mark.parametrize(
    ("devices", "expected"),
    [(999, "allow"), (1_000, "deny"), (250_000, "deny")],
)
def test_us_bulk_geolocation_to_a_country_of_concern_with_consent(devices: int, expected: str) -> None:
    d = decide(US_TO_CN | {"persons": devices})
    assert d.decision == expected, d.reasons
    if expected == "deny":
        assert "us.doj202.geolocation" in rule_ids(d)
        assert [a.outcome for a in d.rules if a.rule.id == "us.doj202.geolocation"] == ["forbid"]


def test_us_geolocation_counts_vehicles_as_devices_and_covers_covered_recipients() -> None:
    assert decide(US_TO_CN | {"persons": 10, "vehicles": 5_000}).decision == "deny"
    via_us_entity = decide(US_TO_CN | {"to": "US", "recipient_country": "HK", "persons": 5_000})
    assert via_us_entity.decision == "deny"
    to_eu = decide(US_TO_CN | {"to": "EU", "persons": 5_000})
    assert to_eu.decision == "allow"
    assert decide(US_TO_CN | {"to": "EU", "persons": 5_000, "mechanisms": []}).decision == "deny"  # FTC consent


def test_us_geolocation_to_country_of_concern_without_a_count_needs_info() -> None:
    d = decide(US_TO_CN)
    assert d.decision == "needs_info"
    assert "persons" in d.missing


# --- fail closed ---------------------------------------------------------------------------------------------
def test_unknown_or_empty_rule_sets_deny() -> None:
    request = CN_EXPORT | {"persons": 0}
    assert decide(request).decision == "allow"
    for packs in (["nonexistent"], [], ["eu", "us"], ["baseline"]):
        d = decide(request | {"rule_packs": packs})
        assert d.decision == "deny", packs
        assert d.rules == ()
    assert evaluate(parse_request(request), RuleSet.empty()).decision == "deny"


def test_no_permitting_rule_denies() -> None:
    only_baseline_and_cn = decide(CN_EXPORT | {"persons": 0, "rule_packs": ["cn", "baseline"]})
    assert only_baseline_and_cn.decision == "allow"


@pytest.mark.parametrize(
    ("drop", "missing"),
    [("persons", "persons"), ("exporter", "exporter.ciio")],
)
def test_missing_facts_give_needs_info(drop: str, missing: str) -> None:
    request = {k: v for k, v in (CN_EXPORT | {"persons": 5_000}).items() if k != drop}
    d = decide(request)
    assert d.decision == "needs_info"
    assert missing in d.missing
    assert d.undetermined


def test_a_missing_fact_that_cannot_change_the_outcome_is_not_asked() -> None:
    d = decide(CN_EXPORT | {"exporter": {}, "persons": 0})
    assert d.decision == "allow" and d.missing == ()
    sensitive = decide(CN_EXPORT | {"persons": 5, "sensitive_persons": 20_000, "exporter": {}})
    assert sensitive.decision == "deny"  # a security assessment is due whether or not the exporter is a CIIO


def test_unclassified_vendor_signals_never_leave() -> None:
    request = {"action": "access", "from": "EU", "to": "EU", "categories": ["vendor-unclassified"], "persons": 0}
    d = decide(request)
    assert d.decision == "deny"
    assert "baseline.unclassified-signals" in rule_ids(d)
    assert decide(request | {"action": "collect"}).decision == "allow"


def test_effective_dates_select_the_rules_in_force() -> None:
    request = {"action": "collect", "from": "EU", "to": "EU", "categories": ["vehicle-state"], "persons": 3}
    before = decide(request | {"at": "2026-09-11"})
    after = decide(request, at=date(2026, 9, 12))
    assert "data_act_access_by_design" not in obligation_ids(before)
    assert "data_act_access_by_design" in obligation_ids(after)
    assert before.at == date(2026, 9, 11)
    before_pipl = decide(CN_EXPORT | {"persons": 5, "sensitive_persons": 0, "at": "2020-01-01"})
    assert before_pipl.decision == "deny"  # no rule was in force: nothing permits


def test_unconfirmed_rules_are_flagged_in_the_decision() -> None:
    d = decide({"action": "collect", "from": "US", "to": "US", "categories": ["location"], "persons": 3})
    out = d.to_json()
    assert out["confirmed"] is False
    assert "us.ftc.affirmative-express-consent" in out["unconfirmed_rules"]
    ftc = next(r for r in out["rules"] if r["id"] == "us.ftc.affirmative-express-consent")
    assert ftc["confirmed"] is False and ftc["note"]
    confirmed = decide(EU_TO_CN | {"mechanisms": ["eu_scc"], "categories": ["vehicle-operation"]})
    assert confirmed.to_json()["confirmed"] is True


def test_decision_json_holds_the_contract_fields() -> None:
    out = decide(CN_EXPORT | {"persons": 150_000, "sensitive_persons": 0}).to_json()
    assert out["decision"] == "deny"
    assert {"decision", "obligations", "rules", "missing", "packs", "classification"} <= set(out)
    assert all({"id", "citation", "confirmed"} <= set(r) for r in out["rules"])
    assert {p["id"] for p in out["packs"]} == {"baseline", "cn", "eu", "us"}
    assert all(len(p["digest"]) == 64 for p in out["packs"])
    assert out["required_mechanisms"] == [
        {"rule": "cn.cac2024.standard-contract", "any_of": ["cn_certification", "cn_standard_contract"]}
    ]
