"""A non-binding liability indication from the automation timeline, with rules kept as data (``rules/*.json``).

Facts are read from the timeline at T0 (who was in control, the SAE level, how long a transition demand had run,
faults, warnings). Every rule whose condition holds becomes a reasoning step with its citation; the matching rule
with the highest priority that carries an ``indication`` decides it (``null`` there: the data cannot decide).
The categories are those of the Chinese traffic police determination (full / primary / equal / secondary / none),
split between the automated-driving system side (the automaker) and this vehicle's driver. Only the police or a
court determines responsibility; the other party's conduct is outside the data.

Condition language (JSON): ``{"all": [...]}``, ``{"any": [...]}``, ``{"always": true}`` and
``{"fact": NAME, "op": OP, "value": V}`` with OP one of eq, ne, in, lt, gte, true, false, present, absent.
A fact the data does not give (null) satisfies only ``absent``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .timeline import FCW, HANDS, SeriesLike, Timeline, as_bool, bounds, state_at

RULES_DIR = Path(__file__).parent / "rules"
CATEGORIES = ("full", "primary", "equal", "secondary", "none")
FAULT_EVENTS = ("SEVERE_SYSTEM_FAILURE", "SEVERE_VEHICLE_FAILURE")
DRIVER_BELT = "Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted"
FAULT_LOOKBACK_NS = 20_000_000_000
RECENT_TAKEOVER_S = 2.0
STATEMENT = (
    "Non-binding indication derived from recorded vehicle data and rules kept as data. It is not a determination "
    "of responsibility: only the traffic police or a court determines responsibility, on all the evidence."
)
ALWAYS_UNKNOWN = (
    "the other party's conduct and its share of responsibility",
    "road, weather, lighting and visibility conditions",
    "whether the driver perceived the warnings and requests the vehicle displayed",
    "the driver's attention and fitness to drive (no driver monitoring data in this analysis)",
    "whether the system was used within its operational design domain and as the owner's manual allows",
    "whether a product defect existed (this needs a technical inspection of the vehicle)",
)


class RuleError(ValueError):
    """A rule file that cannot be used; rule sets are reviewed data, so this is a packaging error."""


def load_rules(folder: Path = RULES_DIR, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The rule sets in ``folder`` (all, or those whose ``rule_set`` is in ``names``), checked."""
    wanted = set(names) if names is not None else None
    sets: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if wanted is not None and data.get("rule_set") not in wanted:
            continue
        for rule in data.get("rules", []):
            _check_rule(rule, path.name)
        data["_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        data["_file"] = path.name
        sets.append(data)
    if wanted is not None and {s["rule_set"] for s in sets} != wanted:
        missing = sorted(wanted - {s["rule_set"] for s in sets})
        raise RuleError(f"unknown rule set(s): {', '.join(missing)}")
    return sets


def _check_rule(rule: Mapping[str, Any], source: str) -> None:
    for key in ("id", "instrument", "article", "confirmed", "text", "priority", "when"):
        if key not in rule:
            raise RuleError(f"{source}: rule {rule.get('id', '?')} lacks {key!r}")
    indication = rule.get("indication")
    if indication is not None and not (
        indication.get("system") in CATEGORIES and indication.get("driver") in CATEGORIES
    ):
        raise RuleError(f"{source}: rule {rule['id']} has an indication outside {CATEGORIES}")


# --- facts --------------------------------------------------------------------------------------------------------


def _level_class(level: str | None) -> str:
    if not level or not level.startswith("SAE_") or not level[4:5].isdigit():
        return "unknown"
    n = int(level[4])
    return "manual" if n <= 1 else "L2" if n == 2 else "L3+"


def _demand_before(timeline: Timeline, t0_ns: int) -> dict[str, Any] | None:
    started = [d for d in timeline.transition_demands if (d["start"]["by_ns"] or 0) <= t0_ns]
    return started[-1] if started else None


def _true_between(signals: Mapping[str, SeriesLike], name: str, lo: int, hi: int) -> bool | None:
    s = signals.get(name)
    if s is None or len(s.t_ns) == 0:
        return None
    t = np.asarray(s.t_ns, dtype=np.int64)
    a, b = np.searchsorted(t, [lo, hi], side="left")
    return bool(as_bool(np.asarray(s.values)[a : b + 1])[0].any())


def _faults(signals: Mapping[str, SeriesLike], timeline: Timeline, t0_ns: int) -> list[str]:
    lo = t0_ns - FAULT_LOOKBACK_NS
    found = [
        name
        for name in signals
        if name.startswith("Vehicle.ADAS.") and name.endswith(".IsError") and _true_between(signals, name, lo, t0_ns)
    ]
    found += [e["event"] for e in timeline.dssad_events if e["event"] in FAULT_EVENTS and lo <= e["t_ns"] <= t0_ns]
    return sorted(set(found))


def facts_at(signals: Mapping[str, SeriesLike], timeline: Timeline, t0_ns: int) -> dict[str, Any]:
    """The facts the rules test, read from the data at T0 (None where the data does not say)."""
    at = state_at(timeline, t0_ns)
    demand = _demand_before(timeline, t0_ns)
    elapsed: list[float | None] = [None, None]
    answered = False
    takeover_s: float | None = None
    if demand is not None and at["state"] in ("transition", "mrm", "changing"):
        after, by = bounds(demand["start"])
        elapsed = [(t0_ns - by) / 1e9 if by is not None else None, (t0_ns - after) / 1e9 if after else None]
    elif demand is not None and demand["response"] is not None:
        answered = True
        response_by = demand["response"]["at"]["by_ns"]
        takeover_s = None if response_by is None else (t0_ns - response_by) / 1e9
    faults = _faults(signals, timeline, t0_ns)
    hands = _true_between(signals, HANDS, t0_ns - 1_000_000_000, t0_ns)
    belt = _true_between(signals, DRIVER_BELT, t0_ns - 1_000_000_000, t0_ns)
    return {
        "state": at["state"],
        "state_certain": at["certain"],
        "level": at["level"],
        "level_class": "unknown" if at["state"] == "unknown" else _level_class(at["level"]),
        "demand_elapsed_min_s": None if elapsed[0] is None else round(elapsed[0], 3),
        "demand_elapsed_max_s": None if elapsed[1] is None else round(elapsed[1], 3),
        "demand_type": demand["type"] if demand is not None else None,
        "demand_answered": answered,
        "takeover_to_t0_s": None if takeover_s is None else round(takeover_s, 3),
        "system_fault": bool(faults),
        "faults": faults,
        "hands_on_wheel": hands,
        "forward_collision_warning": _true_between(signals, FCW, t0_ns - 10_000_000_000, t0_ns),
        "driver_present": belt,
    }


# --- rules --------------------------------------------------------------------------------------------------------


def holds(condition: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether ``condition`` (the rule condition language above) holds for ``facts``."""
    if "all" in condition:
        return all(holds(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, facts) for c in condition["any"])
    if "always" in condition:
        return bool(condition["always"])
    op, value = condition["op"], facts.get(condition["fact"])
    if op == "absent":
        return value is None
    if value is None:
        return False
    return _compare(op, value, condition.get("value"))


def _compare(op: str, value: Any, expected: Any) -> bool:
    if op == "present":
        return True
    if op in ("true", "false"):
        return value is (op == "true")
    if op == "eq":
        return bool(value == expected)
    if op == "ne":
        return bool(value != expected)
    if op == "in":
        return value in expected
    if op == "lt":
        return bool(value < expected)
    if op == "gte":
        return bool(value >= expected)
    raise RuleError(f"unknown operator {op!r} in a rule condition")


def _citation(rule: Mapping[str, Any]) -> str:
    return f"{rule['instrument']}, {rule['article']}" + ("" if rule["confirmed"] else " (unconfirmed)")


def _cannot_establish(facts: Mapping[str, Any]) -> list[str]:
    out = list(ALWAYS_UNKNOWN)
    if facts["hands_on_wheel"] is None:
        out.append("whether the driver's hands were on the steering wheel (no hands-on signal)")
    if facts["driver_present"] is None:
        out.append("whether a driver was in the driver's seat (no seat-belt signal)")
    if facts["takeover_to_t0_s"] is not None and facts["takeover_to_t0_s"] < RECENT_TAKEOVER_S:
        out.append(
            f"whether the collision was still avoidable when the driver took over "
            f"({facts['takeover_to_t0_s']:.1f} s before T0)"
        )
    if facts["state"] in ("unknown", "changing"):
        out.append("who was in control at the moment of the crash")
    return out


def indicate(facts: Mapping[str, Any], rule_sets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The indication, the reasoning steps citing rules, flags and what the data cannot establish."""
    matching = sorted(
        (r for s in rule_sets for r in s["rules"] if holds(r["when"], facts)),
        key=lambda r: (-int(r["priority"]), r["id"]),
    )
    decisive = next((r for r in matching if "indication" in r), None)
    steps: list[dict[str, Any]] = []
    for rule in matching:
        steps.append(
            {
                "step": len(steps) + 1,
                "rule": rule["id"],
                "citation": _citation(rule),
                "confirmed": bool(rule["confirmed"]),
                "rule_text": rule["text"],
                "finding": rule.get("finding") or rule.get("flag", ""),
                "decisive": rule is decisive,
            }
        )
    chosen = decisive.get("indication") if decisive is not None else None
    indication = {
        "determinable": chosen is not None,
        "system_side": chosen["system"] if chosen else None,
        "driver_side": chosen["driver"] if chosen else None,
        "basis": decisive["id"] if decisive is not None else None,
    }
    if decisive is None:
        indication["reason"] = "no rule covers the facts the data establishes"
    elif chosen is None:
        indication["reason"] = decisive.get("finding", "")
    return {
        "non_binding": True,
        "statement": STATEMENT,
        "sides": {"system_side": "the automated-driving system and its manufacturer", "driver_side": "the driver"},
        "indication": indication,
        "facts": dict(facts),
        "reasoning": steps,
        "flags": [r["flag"] for r in matching if r.get("flag")],
        "cannot_establish": _cannot_establish(facts),
        "rule_sets": [
            {"rule_set": s["rule_set"], "version": s.get("version"), "sha256": s["_sha256"]} for s in rule_sets
        ],
    }


def liability_indication(
    signals: Mapping[str, SeriesLike], timeline: Timeline, t0_ns: int, rule_sets: Iterable[str] | None = None
) -> dict[str, Any]:
    """Facts at ``t0_ns`` and the indication the rule sets (default: all shipped) give for them."""
    return indicate(facts_at(signals, timeline, t0_ns), load_rules(RULES_DIR, rule_sets))
