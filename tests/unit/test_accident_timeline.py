"""The automation timeline against the generator's ground truth, and on hand-made status streams."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from trustlane.accident.core import timeline as tl
from trustlane.accident.generator.recording import Recording, generate

TRUTH_STATE = {"active": "system", "transition-demand": "transition", "minimal-risk-manoeuvre": "mrm"}
T_START = 1_700_000_000_000_000_000


@functools.cache
def recording(name: str, seed: int) -> Recording:
    return generate(name, seed, duration_s=30.0)


def signals_of(rec: Recording) -> dict[str, Any]:
    return {
        c.name: SimpleNamespace(t_ns=rec.start_ns + np.round(c.t_s * 1e9).astype(np.int64), values=c.values)
        for c in rec.channels
    }


def within(t: int, boundary: dict[str, Any], slack_ns: int = 2_000) -> bool:
    lo = boundary["after_ns"] if boundary["after_ns"] is not None else -(2**62)
    hi = boundary["by_ns"] if boundary["by_ns"] is not None else 2**62
    return lo - slack_ns <= t <= hi + slack_ns


def truth_changes(truth: dict[str, Any]) -> list[tuple[int, str]]:
    """(time, new state) at each change of the true controller state."""
    out: list[tuple[int, str]] = []
    last = None
    for item in truth["automation"]["intervals"]:
        state = TRUTH_STATE.get(item["state"], "driver") if item["controller"] == "system" else "driver"
        if state != last and last is not None:
            out.append((item["start_ns"], state))
        last = state
    return out


CASES = [("l3-takeover", s) for s in (0, 1, 2, 3, 6)] + [("l2-override", 1), ("front", 2), ("rear", 1)]


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_state_changes_lie_between_the_samples_around_them(name: str, seed: int) -> None:
    rec = recording(name, seed)
    timeline = tl.build_timeline(signals_of(rec))
    changes = truth_changes(rec.truth)
    starts = [(i["start"], i["state"]) for i in timeline.intervals[1:]]
    assert len(starts) == len(changes), (starts, changes)
    for (t, state), (boundary, found) in zip(changes, starts, strict=True):
        assert found == state
        assert within(t, boundary)
        if boundary["source"] == "status":
            assert boundary["by_ns"] - boundary["after_ns"] <= 100_000_000 + 1


@pytest.mark.parametrize(("name", "seed"), [("l3-takeover", s) for s in range(8)])
def test_transition_demands_match_the_truth(name: str, seed: int) -> None:
    rec = recording(name, seed)
    timeline = tl.build_timeline(signals_of(rec))
    truth = rec.truth["automation"]
    [demand] = timeline.transition_demands
    [true] = truth["transition_demands"]
    assert within(true["t_ns"], demand["start"])
    assert demand["type"] == true["type"]
    assert demand["time_remaining_s"] == pytest.approx(true["lead_time_s"], abs=0.11)
    took_over = any(i["controller"] == "driver" and i["start_ns"] > true["t_ns"] for i in truth["intervals"])
    if took_over:
        assert demand["outcome"] == "taken-over"
        response = demand["response"]
        assert within(true["response_ns"], response["at"])
        shortest, longest = response["latency_s"]
        assert shortest - 1e-5 <= true["response_latency_s"] <= longest + 1e-5
        assert response["channel"] == true["channel"]
    elif truth["minimal_risk_manoeuvres"]:
        assert demand["outcome"] == "minimal-risk-manoeuvre"
        [mrm] = timeline.minimal_risk_manoeuvres
        assert within(truth["minimal_risk_manoeuvres"][0]["start_ns"], mrm["start"])
    else:
        assert demand["outcome"] == "unanswered" and demand["response"] is None


def test_overrides_hands_and_warnings_follow_the_truth() -> None:
    rec = recording("l2-override", 1)
    timeline = tl.build_timeline(signals_of(rec))
    truth = rec.truth["automation"]
    [override] = timeline.driver_overrides
    assert within(truth["driver_overrides"][0]["start_ns"], override["start"])
    assert override["channel"] == truth["driver_overrides"][0]["channel"]
    merged: list[list[int]] = []  # the truth may list overlapping hands-on spans
    for span in sorted(truth["hands_on_wheel"], key=lambda h: h["start_ns"]):
        if merged and span["start_ns"] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], span["end_ns"])
        else:
            merged.append([span["start_ns"], span["end_ns"]])
    assert len(timeline.hands_on_wheel) == len(merged)
    for (start, _), found in zip(merged, timeline.hands_on_wheel, strict=True):
        assert within(start, found["start"])
    fcw = [w for w in timeline.warnings if w["kind"] == "forward-collision-warning"]
    assert fcw and within(rec.truth["aeb"]["warning_ns"], fcw[0]["start"], slack_ns=10_000_001)


def test_numeric_codes_give_the_same_timeline_as_text() -> None:
    rec = recording("l3-takeover", 2)
    text = signals_of(rec)
    coded = {}
    for name, series in text.items():
        values = series.values
        if name in tl.ENUM_CODES:
            codes = tl.ENUM_CODES[name]
            values = np.array([float(codes.index(v)) for v in values.tolist()])
        elif values.dtype == bool:
            values = values.astype(np.float64)
        coded[name] = SimpleNamespace(t_ns=series.t_ns, values=values)
    assert tl.build_timeline(coded).to_json() == tl.build_timeline(text).to_json()


def stream(levels: list[str], period_ms: int = 100, **flags: list[bool]) -> dict[str, Any]:
    t = T_START + np.arange(len(levels), dtype=np.int64) * period_ms * 1_000_000
    out: dict[str, Any] = {tl.LEVEL: SimpleNamespace(t_ns=t, values=np.array(levels, dtype=object))}
    names = {"demand": tl.DEMAND, "mrm": tl.MRM, "override": tl.OVERRIDE}
    for key, values in flags.items():
        out[names[key]] = SimpleNamespace(t_ns=t, values=np.array(values))
    return out


def test_missing_level_leaves_control_unknown_with_a_finding() -> None:
    signals = stream(["SAE_3"] * 10)
    del signals[tl.LEVEL]
    signals[tl.DEMAND] = SimpleNamespace(t_ns=T_START + np.arange(10, dtype=np.int64) * 10**8, values=np.zeros(10))
    timeline = tl.build_timeline(signals)
    assert {i["state"] for i in timeline.intervals} == {"unknown"}
    assert "no-automation-level" in {f["code"] for f in timeline.findings}
    assert tl.state_at(timeline, T_START + 5 * 10**8)["state"] == "unknown"


def test_unreadable_level_codes_are_a_finding() -> None:
    signals = stream(["SAE_3"] * 5)
    signals[tl.LEVEL] = SimpleNamespace(t_ns=signals[tl.LEVEL].t_ns, values=np.full(5, np.nan))
    timeline = tl.build_timeline(signals)
    assert "automation-level-unreadable" in {f["code"] for f in timeline.findings}


def test_a_gap_in_the_status_stream_is_an_unknown_interval() -> None:
    signals = stream(["SAE_2"] * 20)
    t = signals[tl.LEVEL].t_ns.copy()
    t[10:] += 2_000_000_000  # two seconds without a status sample
    signals[tl.LEVEL] = SimpleNamespace(t_ns=t, values=signals[tl.LEVEL].values)
    timeline = tl.build_timeline(signals)
    assert [i["state"] for i in timeline.intervals] == ["system", "unknown", "system"]
    assert "status-gap" in {f["code"] for f in timeline.findings}
    assert tl.state_at(timeline, int(t[9]) + 1_000_000_000)["state"] == "unknown"


def test_state_at_a_change_is_uncertain_between_samples() -> None:
    timeline = tl.build_timeline(stream(["SAE_3"] * 5 + ["SAE_0"] * 5))
    between = tl.state_at(timeline, T_START + 450_000_000)
    assert between["state"] == "changing" and not between["certain"]
    assert between["sample_before"]["state"] == "system" and between["sample_after"]["state"] == "driver"
    settled = tl.state_at(timeline, T_START + 750_000_000)
    assert settled["state"] == "driver" and settled["certain"]
    window = tl.control_window(timeline, T_START + 900_000_000, seconds=0.2)
    assert [i["state"] for i in window["intervals"]] == ["driver"]


def test_mrm_and_override_take_precedence_over_the_level() -> None:
    n = 6
    timeline = tl.build_timeline(
        stream(
            ["SAE_3"] * n,
            demand=[False, True, True, True, False, False],
            mrm=[False, False, True, True, False, False],
            override=[False] * 5 + [True],
        )
    )
    assert [i["state"] for i in timeline.intervals] == ["system", "transition", "mrm", "system", "driver"]
