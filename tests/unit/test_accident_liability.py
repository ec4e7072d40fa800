"""The liability indication: rules as data, facts from the timeline, one case per regime."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from trustlane.accident.core import liability as li
from trustlane.accident.core import timeline as tl

T0 = 1_700_000_000_000_000_000
PERIOD = 100_000_000


def status(seconds: float, phases: list[tuple[float, str, dict[str, bool]]], **extra: Any) -> dict[str, Any]:
    """10 Hz status from ``phases`` (start s, level, flags) over ``seconds`` ending at T0 + 1 s."""
    t = T0 - round(seconds * 1e9) + np.arange(round((seconds + 1) * 10), dtype=np.int64) * PERIOD
    rel = (t - T0) / 1e9
    levels = np.empty(len(t), dtype=object)
    flags = {tl.DEMAND: np.zeros(len(t), bool), tl.MRM: np.zeros(len(t), bool), tl.OVERRIDE: np.zeros(len(t), bool)}
    for start, level, on in phases:
        here = rel >= start
        levels[here] = level
        for name in flags:
            flags[name][here] = on.get(name, False)
    out: dict[str, Any] = {tl.LEVEL: SimpleNamespace(t_ns=t, values=levels)}
    out.update({name: SimpleNamespace(t_ns=t, values=v) for name, v in flags.items()})
    out[li.DRIVER_BELT] = SimpleNamespace(t_ns=t, values=np.ones(len(t), bool))
    out[tl.HANDS] = SimpleNamespace(t_ns=t, values=np.ones(len(t), bool))
    for name, values in extra.items():
        out[name] = SimpleNamespace(t_ns=t, values=values(rel))
    return out


def indication(signals: dict[str, Any], t0: int = T0) -> dict[str, Any]:
    timeline = tl.build_timeline(signals)
    return li.liability_indication(signals, timeline, t0)


DEMAND = {tl.DEMAND: True}
MRM = {tl.DEMAND: True, tl.MRM: True}


def test_l2_crash_leaves_the_driver_responsible_and_flags_a_system_fault() -> None:
    fault = "Vehicle.ADAS.CruiseControl.IsError"
    result = indication(status(30, [(-30, "SAE_2", {})], **{fault: lambda rel: rel > -5}))
    assert result["indication"] == {
        "determinable": True,
        "system_side": "none",
        "driver_side": "full",
        "basis": "UNECE-R171-DRIVER-RESPONSIBLE",
    }
    assert result["facts"]["faults"] == [fault]
    rules = [s["rule"] for s in result["reasoning"]]
    assert "UNECE-R171-FAULT" in rules and "CN-CIVIL-CODE-1202-DEFECT" in rules
    assert any("fault" in f for f in result["flags"])
    assert result["non_binding"] is True


def test_l2_crash_without_fault_raises_no_fault_flag() -> None:
    result = indication(status(30, [(-30, "SAE_2", {})]))
    assert result["facts"]["system_fault"] is False
    assert "UNECE-R171-FAULT" not in [s["rule"] for s in result["reasoning"]]


def test_l3_crash_under_system_control_is_the_system_side() -> None:
    result = indication(status(30, [(-30, "SAE_0", {}), (-20, "SAE_3", {})]))
    assert (result["indication"]["system_side"], result["indication"]["driver_side"]) == ("full", "none")
    assert result["indication"]["basis"] == "UNECE-R157-SYSTEM-IN-CONTROL"


def test_l3_crash_early_in_a_transition_demand_is_still_the_system_side() -> None:
    result = indication(status(30, [(-30, "SAE_3", {}), (-4.0, "SAE_3_DISENGAGING", DEMAND)]))
    assert result["indication"]["basis"] == "UNECE-R157-DURING-TRANSITION-DEMAND"
    assert result["indication"]["system_side"] == "full"
    assert 3.9 <= result["facts"]["demand_elapsed_min_s"] <= result["facts"]["demand_elapsed_max_s"] <= 4.1


def test_l3_crash_after_an_unanswered_demand_of_10_s_is_the_driver_side() -> None:
    result = indication(
        status(30, [(-30, "SAE_3", {}), (-12.0, "SAE_3_DISENGAGING", DEMAND), (-2.0, "SAE_3_DISENGAGING", MRM)])
    )
    assert result["facts"]["state"] == "mrm"
    assert result["indication"]["basis"] == "UNECE-R157-UNANSWERED-DEMAND"
    assert (result["indication"]["driver_side"], result["indication"]["system_side"]) == ("primary", "secondary")


def test_the_10_s_mark_between_two_samples_is_not_decided() -> None:
    result = indication(status(30, [(-30, "SAE_3", {}), (-10.0, "SAE_3_DISENGAGING", DEMAND)]), T0 - 50_000_000)
    assert result["indication"]["determinable"] is False
    assert result["indication"]["basis"] == "UNECE-R157-DEMAND-BOUNDARY"


def test_answered_takeover_puts_the_driver_in_control() -> None:
    signals = status(
        30, [(-30, "SAE_3", {}), (-8.0, "SAE_3_DISENGAGING", DEMAND), (-3.0, "SAE_0", {tl.OVERRIDE: True})]
    )
    result = indication(signals)
    assert result["indication"]["basis"] == "UNECE-R157-TAKEOVER-COMPLETED"
    assert (result["indication"]["driver_side"], result["indication"]["system_side"]) == ("full", "none")
    assert result["facts"]["demand_answered"] is True
    assert 2.9 <= result["facts"]["takeover_to_t0_s"] <= 3.1


def test_a_late_takeover_says_avoidability_cannot_be_established() -> None:
    signals = status(30, [(-30, "SAE_3", {}), (-8.0, "SAE_3_DISENGAGING", DEMAND), (-0.5, "SAE_0", {})])
    result = indication(signals)
    assert any("still avoidable" in c for c in result["cannot_establish"])


def test_mrm_without_a_demand_is_the_system_side() -> None:
    result = indication(status(30, [(-30, "SAE_3", {}), (-3.0, "SAE_3", {tl.MRM: True})]))
    assert result["indication"]["basis"] == "UNECE-R157-MRM-WITHOUT-DEMAND"
    assert result["indication"]["system_side"] == "full"


def test_missing_adas_signals_give_no_indication() -> None:
    signals = status(30, [(-30, "SAE_3", {})])
    del signals[tl.LEVEL]
    result = indication(signals)
    assert result["indication"]["determinable"] is False
    assert result["indication"]["system_side"] is None and result["indication"]["driver_side"] is None
    assert any("in control" in c for c in result["cannot_establish"])


def test_manual_driving_is_the_driver_side() -> None:
    result = indication(status(30, [(-30, "SAE_0", {})]))
    assert result["indication"]["basis"] == "CN-RTSL-22-DRIVER-DUTY"
    assert result["indication"]["driver_side"] == "full"


def test_the_shipped_rules_cite_their_sources_and_say_when_unconfirmed() -> None:
    sets = li.load_rules()
    assert {s["rule_set"] for s in sets} == {"unece", "china", "cn-shenzhen"}
    rules = [r for s in sets for r in s["rules"]]
    assert len({r["id"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["instrument"] and rule["article"] and rule["text"]
        assert isinstance(rule["confirmed"], bool)
        if not rule["confirmed"]:
            assert rule.get("note") or "unconfirmed" in li._citation(rule)
    shenzhen = next(s for s in sets if s["rule_set"] == "cn-shenzhen")
    assert all(r["confirmed"] is False for r in shenzhen["rules"])


def test_rule_sets_can_be_chosen_and_unknown_ones_are_refused() -> None:
    assert [s["rule_set"] for s in li.load_rules(names=["unece"])] == ["unece"]
    with pytest.raises(li.RuleError, match="unknown rule set"):
        li.load_rules(names=["atlantis"])


def test_bad_rules_are_refused(tmp_path: Any) -> None:
    (tmp_path / "bad.json").write_text(
        json.dumps({"rule_set": "x", "rules": [{"id": "X", "when": {"always": True}}]}), encoding="utf-8"
    )
    with pytest.raises(li.RuleError, match="lacks"):
        li.load_rules(tmp_path)
    with pytest.raises(li.RuleError, match="operator"):
        li.holds({"fact": "state", "op": "roughly", "value": 1}, {"state": "system"})


def test_conditions_treat_absent_facts_as_unknown() -> None:
    facts = {"a": None, "b": 3.0}
    assert li.holds({"fact": "a", "op": "absent"}, facts)
    assert not li.holds({"fact": "a", "op": "lt", "value": 10}, facts)
    assert li.holds({"all": [{"fact": "b", "op": "gte", "value": 3}, {"fact": "b", "op": "lt", "value": 4}]}, facts)
    assert li.holds({"any": [{"fact": "a", "op": "present"}, {"fact": "b", "op": "in", "value": [3.0]}]}, facts)
