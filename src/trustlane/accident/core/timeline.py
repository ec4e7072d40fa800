"""Who was in control: the automation timeline from ADAS / DSSAD status signals.

Status signals are sampled (every 10–100 ms), so a change of state is only known to lie between the last
sample before it and the first sample after it. Every boundary here is given as that pair:
``after_ns`` (last sample still in the old state; None before the first sample) and ``by_ns`` (first sample in
the new state; None after the last sample). A sparse DSSAD event of the matching kind inside the pair pins the
boundary exactly (``source: "dssad"``).

Controller states: ``system`` (SAE level 2 or higher, engaged), ``driver`` (SAE 0/1, or a driver override),
``transition`` (a transition demand is active or the level reports ``*_DISENGAGING``), ``mrm`` (a minimal risk
manoeuvre) and ``unknown`` (no level sample, unreadable, or a gap in the status stream).

Text signals may arrive as strings or as numeric codes: the position of the value in the signal's allowed
list in the VSS catalog / trustlane overlay (``ENUM_CODES``), which is how a node hands text to a sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]

LEVEL = "Vehicle.ADAS.ActiveAutonomyLevel"
DEMAND = "Vehicle.ADAS.TransitionDemand.IsActive"
DEMAND_TYPE = "Vehicle.ADAS.TransitionDemand.Type"
DEMAND_REMAINING = "Vehicle.ADAS.TransitionDemand.TimeRemaining"
MRM = "Vehicle.ADAS.MinimalRiskManeuver.IsActive"
OVERRIDE = "Vehicle.ADAS.DriverOverride.IsActive"
OVERRIDE_TYPE = "Vehicle.ADAS.DriverOverride.Type"
HANDS = "Vehicle.Driver.IsHandsOnWheel"
DSSAD = "Vehicle.ADAS.DSSAD.Event"
FCW = "Vehicle.ADAS.AEB.IsWarning"
AEB = "Vehicle.ADAS.AEB.IsEngaged"
BRAKE_SWITCH = "Vehicle.Chassis.Brake.IsPedalPressed"
ACCELERATOR = "Vehicle.Chassis.Accelerator.PedalPosition"
STEERING_RATE = "Vehicle.Chassis.SteeringWheel.AngularSpeed"

#: Allowed values, in catalog order: a numeric sample ``k`` stands for ``codes[k]``.
ENUM_CODES: dict[str, tuple[str, ...]] = {
    LEVEL: (
        "SAE_0",
        "SAE_1",
        "SAE_2_DISENGAGING",
        "SAE_2",
        "SAE_3_DISENGAGING",
        "SAE_3",
        "SAE_4_DISENGAGING",
        "SAE_4",
        "SAE_5_DISENGAGING",
        "SAE_5",
    ),
    DEMAND_TYPE: ("UNKNOWN", "PLANNED", "UNPLANNED"),
    OVERRIDE_TYPE: ("NONE", "STEERING", "BRAKING", "ACCELERATING", "MULTIPLE", "UNKNOWN"),
    DSSAD: (
        "SYSTEM_ACTIVATED",
        "SYSTEM_DEACTIVATED_BY_SWITCH",
        "SYSTEM_DEACTIVATED_BY_DRIVER_OVERRIDE",
        "SYSTEM_DEACTIVATED_OTHER",
        "TRANSITION_DEMAND_PLANNED",
        "TRANSITION_DEMAND_UNPLANNED",
        "DRIVER_INPUT_SUPPRESSED",
        "EMERGENCY_MANEUVER_STARTED",
        "EMERGENCY_MANEUVER_ENDED",
        "MINIMAL_RISK_MANEUVER_STARTED",
        "EDR_TRIGGERED",
        "COLLISION_DETECTED",
        "SEVERE_SYSTEM_FAILURE",
        "SEVERE_VEHICLE_FAILURE",
        "OTHER",
    ),
}
STATES = ("system", "driver", "transition", "mrm", "unknown")
#: A status stream silent for longer than this many nominal periods (and 0.3 s) has a gap: state unknown.
GAP_PERIODS = 5.0
GAP_MIN_NS = 300_000_000
MAX_LISTED = 200  # intervals / events listed; more are counted, not listed
#: Driver inputs that count as a response when the override signal does not name one.
BRAKE_PEDAL_PCT = 5.0
ACCELERATOR_PCT = 5.0
STEERING_RATE_DEG_S = 60.0


class SeriesLike(Protocol):
    @property
    def t_ns(self) -> Any: ...

    @property
    def values(self) -> Any: ...


@dataclass
class Timeline:
    intervals: list[dict[str, Any]]
    transition_demands: list[dict[str, Any]]
    minimal_risk_manoeuvres: list[dict[str, Any]]
    driver_overrides: list[dict[str, Any]]
    hands_on_wheel: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    dssad_events: list[dict[str, Any]]
    status_period_ms: float | None
    findings: list[dict[str, Any]] = field(default_factory=list)
    # per-sample states, kept for the window and the liability facts (not part of the JSON)
    grid_ns: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    states: ObjArray = field(default_factory=lambda: np.zeros(0, dtype=object))
    levels: ObjArray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def to_json(self) -> dict[str, Any]:
        return {
            "status_period_ms": self.status_period_ms,
            "intervals": self.intervals,
            "transition_demands": self.transition_demands,
            "minimal_risk_manoeuvres": self.minimal_risk_manoeuvres,
            "driver_overrides": self.driver_overrides,
            "hands_on_wheel": self.hands_on_wheel,
            "warnings": self.warnings,
            "dssad_events": self.dssad_events,
        }


def _finding(code: str, severity: str, message: str) -> dict[str, Any]:
    return {"code": code, "severity": severity, "message": message}


# --- reading samples ---------------------------------------------------------------------------------------------


def decode_enum(name: str, values: Any) -> ObjArray:
    """Text values of an enum signal ("" where a sample is missing or not a known code)."""
    array = np.asarray(values)
    if array.dtype.kind in "OUS":
        return np.array(["" if v is None else str(v) for v in array.tolist()], dtype=object)
    codes = ENUM_CODES.get(name, ())
    out = np.full(len(array), "", dtype=object)
    numbers = array.astype(np.float64)
    ok = np.isfinite(numbers) & (numbers >= 0) & (numbers < len(codes)) & (numbers == np.round(numbers))
    lookup = np.array(codes, dtype=object)
    out[ok] = lookup[numbers[ok].astype(np.int64)]
    return out


def as_bool(values: Any) -> tuple[BoolArray, BoolArray]:
    """(value, known) for a boolean signal given as bool, numbers (non-zero = true) or text."""
    array = np.asarray(values)
    if array.dtype == np.bool_:
        return array, np.ones(len(array), dtype=bool)
    if array.dtype.kind in "OUS":
        text = np.array([str(v).strip().lower() for v in array.tolist()], dtype=object)
        true = np.isin(text, ["true", "1", "1.0", "yes"])
        known = true | np.isin(text, ["false", "0", "0.0", "no"])
        return true, known
    numbers = array.astype(np.float64)
    known = np.isfinite(numbers)
    return known & (numbers != 0), known


def _series(signals: Mapping[str, SeriesLike], name: str) -> tuple[IntArray, Any] | None:
    s = signals.get(name)
    if s is None or len(s.t_ns) == 0:
        return None
    return np.asarray(s.t_ns, dtype=np.int64), np.asarray(s.values)


def _hold(t_ns: IntArray, grid: IntArray) -> tuple[IntArray, BoolArray]:
    """Index of the last sample at or before each grid time, and whether there is one."""
    idx = np.searchsorted(t_ns, grid, side="right") - 1
    return np.clip(idx, 0, None), idx >= 0


# --- per-sample state ---------------------------------------------------------------------------------------------


def _held_bool(signals: Mapping[str, SeriesLike], name: str, grid: IntArray) -> BoolArray | None:
    found = _series(signals, name)
    if found is None:
        return None
    t, v = found
    value, known = as_bool(v)
    idx, has = _hold(t, grid)
    return np.asarray(value[idx] & known[idx] & has, dtype=bool)


def _states(signals: Mapping[str, SeriesLike], grid: IntArray) -> tuple[ObjArray, ObjArray]:
    """Controller state and SAE level at each grid time."""
    states = np.full(len(grid), "unknown", dtype=object)
    levels = np.full(len(grid), "", dtype=object)
    found = _series(signals, LEVEL)
    if found is None:
        return states, levels
    idx, has = _hold(found[0], grid)
    levels[:] = np.where(has, decode_enum(LEVEL, found[1])[idx], "")
    level_n = np.array([int(x[4]) if x.startswith("SAE_") and x[4:5].isdigit() else -1 for x in levels.tolist()])
    disengaging = np.array([x.endswith("_DISENGAGING") for x in levels.tolist()], dtype=bool)
    demand = _held_bool(signals, DEMAND, grid)
    mrm = _held_bool(signals, MRM, grid)
    override = _held_bool(signals, OVERRIDE, grid)
    states[level_n >= 0] = "driver"
    states[level_n >= 2] = "system"
    states[(level_n >= 2) & disengaging] = "transition"
    if override is not None:
        states[override & (level_n >= 0)] = "driver"
    if demand is not None:
        states[demand & (level_n >= 2)] = "transition"
    if mrm is not None:
        states[mrm & (level_n >= 2)] = "mrm"
    return states, levels


def _grid(signals: Mapping[str, SeriesLike]) -> IntArray:
    stamps = [s[0] for s in (_series(signals, n) for n in (LEVEL, DEMAND, MRM, OVERRIDE)) if s is not None]
    if not stamps:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(stamps))


def _period_ns(grid: IntArray) -> float | None:
    if len(grid) < 2:
        return None
    return float(np.median(np.diff(grid)))


# --- intervals ----------------------------------------------------------------------------------------------------


def _boundary(after: int | None, by: int | None) -> dict[str, Any]:
    return {"after_ns": after, "by_ns": by, "source": "status"}


def _runs(keys: ObjArray) -> list[tuple[int, int]]:
    """(first, last) sample index of each run of equal keys."""
    if len(keys) == 0:
        return []
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change - 1, [len(keys) - 1]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _interval(grid: IntArray, first: int, last: int, gap_after: bool, gap_before: bool) -> dict[str, Any]:
    n = len(grid)
    return {
        "start": _boundary(None if first == 0 or gap_before else int(grid[first - 1]), int(grid[first])),
        "end": _boundary(int(grid[last]), None if last == n - 1 or gap_after else int(grid[last + 1])),
    }


def _state_intervals(grid: IntArray, states: ObjArray, levels: ObjArray, gaps: BoolArray) -> list[dict[str, Any]]:
    """Runs of (state, level); a gap in the stream after sample i makes an ``unknown`` interval of its own."""
    keys = np.array([f"{s}|{lv}" for s, lv in zip(states.tolist(), levels.tolist(), strict=True)], dtype=object)
    # a gap splits runs even when the state is the same on both sides
    segment = np.concatenate(([0], np.cumsum(gaps[:-1]))) if len(gaps) else np.zeros(0, dtype=np.int64)
    keyed = np.array([f"{k}#{g}" for k, g in zip(keys.tolist(), segment.tolist(), strict=True)], dtype=object)
    out: list[dict[str, Any]] = []
    for first, last in _runs(keyed):
        gap_before = first > 0 and bool(gaps[first - 1])
        item = {"state": str(states[first]), "level": str(levels[first]) or None}
        item.update(_interval(grid, first, last, bool(gaps[last]), gap_before))
        out.append(item)
        if gaps[last] and last + 1 < len(grid):
            out.append(
                {
                    "state": "unknown",
                    "level": None,
                    "start": _boundary(int(grid[last]), None),
                    "end": _boundary(None, int(grid[last + 1])),
                    "reason": "no status samples",
                }
            )
    return out


def bool_intervals(t_ns: IntArray, on: BoolArray) -> list[dict[str, Any]]:
    """Intervals where ``on`` holds, each boundary as the pair of samples around it."""
    out: list[dict[str, Any]] = []
    if len(on) == 0:
        return out
    padded = np.concatenate(([False], on, [False])).astype(np.int8)
    edges = np.diff(padded)
    for first, stop in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True):
        out.append(_interval(t_ns, first, stop - 1, False, False))
    return out


def _dssad(signals: Mapping[str, SeriesLike]) -> list[tuple[int, str]]:
    found = _series(signals, DSSAD)
    if found is None:
        return []
    names = decode_enum(DSSAD, found[1])
    return [(int(t), str(e)) for t, e in zip(found[0].tolist(), names.tolist(), strict=True) if e]


def _pin(boundary: dict[str, Any], events: list[tuple[int, str]], kinds: tuple[str, ...]) -> None:
    """Replace a sampled boundary by a DSSAD event of one of ``kinds`` that lies inside it."""
    lo = boundary["after_ns"] if boundary["after_ns"] is not None else -(2**62)
    hi = boundary["by_ns"] if boundary["by_ns"] is not None else 2**62
    for t, kind in events:
        if kind in kinds and lo <= t <= hi:
            boundary.update({"after_ns": t, "by_ns": t, "source": "dssad"})
            return


def bounds(boundary: dict[str, Any]) -> tuple[int | None, int | None]:
    return boundary["after_ns"], boundary["by_ns"]


# --- transition demands -------------------------------------------------------------------------------------------


def _value_at(signals: Mapping[str, SeriesLike], name: str, t: int) -> Any:
    found = _series(signals, name)
    if found is None:
        return None
    idx = int(np.searchsorted(found[0], t, side="right")) - 1
    return None if idx < 0 else found[1][idx]


def _any_in(signals: Mapping[str, SeriesLike], name: str, lo: int, hi: int, threshold: float | None) -> bool:
    found = _series(signals, name)
    if found is None:
        return False
    a, b = np.searchsorted(found[0], [lo, hi], side="left")
    values = found[1][a:b]
    if threshold is None:
        return bool(as_bool(values)[0].any())
    numbers = np.asarray(values, dtype=np.float64)
    return bool((np.abs(numbers[np.isfinite(numbers)]) > threshold).any())


def _response_channel(signals: Mapping[str, SeriesLike], after: int, by: int | None) -> tuple[str, str]:
    """The driver input that answered a demand, and where it was seen."""
    if by is not None:
        code = _value_at(signals, OVERRIDE_TYPE, by)
        if code is not None:
            text = str(decode_enum(OVERRIDE_TYPE, np.array([code]))[0])
            if text and text not in ("NONE", "UNKNOWN"):
                return text, OVERRIDE_TYPE
    hi = (by if by is not None else after) + 500_000_000
    lo = after - 500_000_000
    seen = [
        name
        for name, signal, threshold in (
            ("BRAKING", BRAKE_SWITCH, None),
            ("ACCELERATING", ACCELERATOR, ACCELERATOR_PCT),
            ("STEERING", STEERING_RATE, STEERING_RATE_DEG_S),
        )
        if _any_in(signals, signal, lo, hi, threshold)
    ]
    if len(seen) == 1:
        return seen[0], "driver controls"
    if seen:
        return "MULTIPLE", "driver controls"
    return "UNKNOWN", "no driver input signal"


def _demands(
    signals: Mapping[str, SeriesLike], grid: IntArray, states: ObjArray, events: list[tuple[int, str]]
) -> list[dict[str, Any]]:
    active = states == "transition"
    out: list[dict[str, Any]] = []
    for interval in bool_intervals(grid, active):
        start, end = interval["start"], interval["end"]
        first_sample = start["by_ns"]  # the demand's type and lead time are read where the status first shows it
        kind_code = _value_at(signals, DEMAND_TYPE, first_sample)
        kind = str(decode_enum(DEMAND_TYPE, np.array([kind_code]))[0]) if kind_code is not None else ""
        remaining = _value_at(signals, DEMAND_REMAINING, first_sample)
        _pin(start, events, ("TRANSITION_DEMAND_PLANNED", "TRANSITION_DEMAND_UNPLANNED"))
        next_i = int(np.searchsorted(grid, end["by_ns"])) if end["by_ns"] is not None else None
        after_state = str(states[next_i]) if next_i is not None else None
        outcome = {"driver": "taken-over", "mrm": "minimal-risk-manoeuvre", "system": "withdrawn"}.get(
            after_state or "", "unanswered" if after_state is None else "unknown"
        )
        item: dict[str, Any] = {
            "start": start,
            "end": end,
            "type": kind or "UNKNOWN",
            "time_remaining_s": _finite(remaining),
            "outcome": outcome,
            "response": None,
        }
        if outcome == "taken-over":
            # the override type is read at the first status sample that shows the driver in control
            status_after, status_by = end["after_ns"], end["by_ns"]
            _pin(end, events, ("SYSTEM_DEACTIVATED_BY_DRIVER_OVERRIDE", "SYSTEM_DEACTIVATED_BY_SWITCH"))
            channel, basis = _response_channel(signals, status_after, status_by)
            item["response"] = {
                "at": end,
                "latency_s": _span_s(start, end),
                "channel": channel,
                "channel_basis": basis,
            }
        out.append(item)
    return out


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, 3) if np.isfinite(number) else None


def _span_s(start: dict[str, Any], end: dict[str, Any]) -> list[float | None]:
    """[shortest, longest] time from ``start`` to ``end`` given their sample pairs (None: unbounded)."""
    s_after, s_by = bounds(start)
    e_after, e_by = bounds(end)
    shortest = None if e_after is None or s_by is None else max(0.0, (e_after - s_by) / 1e9)
    longest = None if e_by is None or s_after is None else (e_by - s_after) / 1e9
    return [None if shortest is None else round(shortest, 3), None if longest is None else round(longest, 3)]


# --- the whole timeline --------------------------------------------------------------------------------------------


def _signal_intervals(
    signals: Mapping[str, SeriesLike], name: str, pins: tuple[str, ...] = ()
) -> list[dict[str, Any]] | None:
    found = _series(signals, name)
    if found is None:
        return None
    value, known = as_bool(found[1])
    out = bool_intervals(found[0], value & known)
    events = _dssad(signals)
    for item in out:
        if pins:
            _pin(item["start"], events, pins)
    return out


def _capped(items: list[dict[str, Any]], what: str, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(items) <= MAX_LISTED:
        return items
    findings.append(_finding("timeline-truncated", "info", f"{len(items)} {what}; the first {MAX_LISTED} listed"))
    return items[:MAX_LISTED]


def build_timeline(signals: Mapping[str, SeriesLike]) -> Timeline:
    """The automation timeline of a recording from its status signals (any that are present)."""
    findings: list[dict[str, Any]] = []
    grid = _grid(signals)
    states, levels = _states(signals, grid)
    if LEVEL not in signals or len(signals[LEVEL].t_ns) == 0:
        findings.append(
            _finding(
                "no-automation-level",
                "warning",
                f"no {LEVEL} samples: who was in control cannot be established from the data",
            )
        )
    elif len(grid) and not (levels != "").any():
        findings.append(
            _finding("automation-level-unreadable", "warning", f"{LEVEL} holds no value this analysis knows")
        )
    for name in (DEMAND, MRM, OVERRIDE):
        if name not in signals:
            findings.append(_finding("missing-status-signal", "info", f"no {name} samples"))
    period = _period_ns(grid)
    gaps = np.zeros(len(grid), dtype=bool)
    if period is not None:
        limit = max(GAP_PERIODS * period, GAP_MIN_NS)
        gaps[:-1] = np.diff(grid) > limit
        if gaps.any():
            findings.append(
                _finding(
                    "status-gap",
                    "warning",
                    f"{int(gaps.sum())} gap(s) longer than {limit / 1e6:.0f} ms in the status signals: "
                    "the state there is unknown",
                )
            )
    events = _dssad(signals)
    intervals = _state_intervals(grid, states, levels, gaps) if len(grid) else []
    warnings = [
        {"kind": kind, **item}
        for kind, name in (("forward-collision-warning", FCW), ("emergency-braking", AEB))
        for item in (_signal_intervals(signals, name) or [])
    ]
    warnings.sort(key=lambda w: w["start"]["by_ns"])
    return Timeline(
        intervals=_capped(intervals, "control intervals", findings),
        transition_demands=_capped(_demands(signals, grid, states, events), "transition demands", findings),
        minimal_risk_manoeuvres=_signal_intervals(signals, MRM, ("MINIMAL_RISK_MANEUVER_STARTED",)) or [],
        driver_overrides=_overrides(signals),
        hands_on_wheel=_capped(_signal_intervals(signals, HANDS) or [], "hands-on intervals", findings),
        warnings=_capped(warnings, "warnings", findings),
        dssad_events=[{"t_ns": t, "event": e} for t, e in events[:MAX_LISTED]],
        status_period_ms=None if period is None else round(period / 1e6, 3),
        findings=findings,
        grid_ns=grid,
        states=states,
        levels=levels,
    )


def _overrides(signals: Mapping[str, SeriesLike]) -> list[dict[str, Any]]:
    items = _signal_intervals(signals, OVERRIDE) or []
    for item in items:
        code = _value_at(signals, OVERRIDE_TYPE, item["start"]["by_ns"])
        item["channel"] = str(decode_enum(OVERRIDE_TYPE, np.array([code]))[0]) if code is not None else "UNKNOWN"
    return items[:MAX_LISTED]


# --- the window before the crash ----------------------------------------------------------------------------------


def state_at(timeline: Timeline, t_ns: int) -> dict[str, Any]:
    """The state at ``t_ns`` as the samples around it show it: certain only when both neighbours agree."""
    grid = timeline.grid_ns
    i = int(np.searchsorted(grid, t_ns, side="right")) - 1
    before = None if i < 0 else (int(grid[i]), str(timeline.states[i]))
    after = None if i + 1 >= len(grid) else (int(grid[i + 1]), str(timeline.states[i + 1]))
    exact = before is not None and before[0] == t_ns
    if before is None:
        state = "unknown"
    elif exact or after is None or after[1] == before[1]:
        state = before[1]
    else:
        state = "changing"
    period = timeline.status_period_ms
    stale = before is not None and period is not None and (t_ns - before[0]) > GAP_PERIODS * period * 1e6
    return {
        "t_ns": t_ns,
        "state": "unknown" if stale else state,
        "level": (str(timeline.levels[i]) or None) if i >= 0 else None,
        "sample_before": None if before is None else {"t_ns": before[0], "state": before[1]},
        "sample_after": None if after is None else {"t_ns": after[0], "state": after[1]},
        "certain": bool(state != "changing" and not stale and before is not None and (exact or after is not None)),
    }


def control_window(timeline: Timeline, t0_ns: int, seconds: float = 10.0) -> dict[str, Any]:
    """Who was in control over [T0 − seconds, T0]: intervals clipped to the window and the state at both ends."""
    lo = t0_ns - round(seconds * 1e9)
    inside: list[dict[str, Any]] = []
    for item in timeline.intervals:
        start_by, end_before = item["start"]["by_ns"], item["end"]["by_ns"]
        start_after, end_last = item["start"]["after_ns"], item["end"]["after_ns"]
        begins = start_after if start_after is not None else start_by
        ends = end_before if end_before is not None else end_last
        if begins is not None and begins > t0_ns:
            continue
        if ends is not None and ends < lo:
            continue
        inside.append(item)
    return {
        "from_ns": lo,
        "to_ns": t0_ns,
        "seconds": seconds,
        "at_start": state_at(timeline, lo),
        "at_end": state_at(timeline, t0_ns),
        "intervals": inside,
    }
