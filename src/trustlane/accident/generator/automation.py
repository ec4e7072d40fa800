"""Who is in control, second by second: the automation timeline and the ADAS / DSSAD status it produces.

A plan is a list of :class:`Phase` s (system or driver in control, at an SAE level) plus transition demands,
driver overrides and minimal risk manoeuvres. From it come the 10 Hz status signals and the sparse DSSAD events,
and the same facts, as intervals, in the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Phase:
    start_s: float
    end_s: float
    level: str  # SAE_0, SAE_2, SAE_3, SAE_3_DISENGAGING ...
    controller: str  # system or driver
    state: str  # off, active, transition-demand, minimal-risk-manoeuvre, override


@dataclass(frozen=True)
class TransitionDemand:
    start_s: float
    kind: str  # PLANNED or UNPLANNED
    lead_time_s: float
    response_s: float | None  # when the driver took over, None if never
    channel: str  # STEERING, BRAKING, ACCELERATING, or NONE


@dataclass
class AutomationPlan:
    phases: list[Phase]
    demands: list[TransitionDemand] = field(default_factory=list)
    mrm: list[tuple[float, float]] = field(default_factory=list)
    overrides: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, channel
    hands_on: list[tuple[float, float]] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)  # DSSAD events

    def phase_at(self, t: float) -> Phase:
        for phase in self.phases:
            if phase.start_s <= t < phase.end_s:
                return phase
        return self.phases[-1]

    def truth(self, to_ns: Any) -> dict[str, Any]:
        return {
            "intervals": [
                {
                    "start_ns": to_ns(p.start_s),
                    "end_ns": to_ns(p.end_s),
                    "level": p.level,
                    "controller": p.controller,
                    "state": p.state,
                }
                for p in self.phases
            ],
            "transition_demands": [
                {
                    "t_ns": to_ns(d.start_s),
                    "type": d.kind,
                    "lead_time_s": d.lead_time_s,
                    "response_ns": to_ns(d.response_s) if d.response_s is not None else None,
                    "response_latency_s": round(d.response_s - d.start_s, 3) if d.response_s is not None else None,
                    "channel": d.channel,
                }
                for d in self.demands
            ],
            "minimal_risk_manoeuvres": [{"start_ns": to_ns(a), "end_ns": to_ns(b)} for a, b in self.mrm],
            "driver_overrides": [
                {"start_ns": to_ns(a), "end_ns": to_ns(b), "channel": c} for a, b, c in self.overrides
            ],
            "hands_on_wheel": [{"start_ns": to_ns(a), "end_ns": to_ns(b)} for a, b in self.hands_on],
            "dssad_events": [{"t_ns": to_ns(t), "event": e} for t, e in self.events],
        }


def _inside(spans: list[tuple[float, float]], t: float) -> bool:
    return any(a <= t < b for a, b in spans)


def status_at(plan: AutomationPlan, t: float) -> dict[str, Any]:
    """The 10 Hz ADAS / driver status at time ``t``."""
    phase = plan.phase_at(t)
    demand = next((d for d in plan.demands if d.start_s <= t < (d.response_s or 1e12)), None)
    demand_active = demand is not None and phase.state in ("transition-demand", "minimal-risk-manoeuvre")
    override = next((c for a, b, c in plan.overrides if a <= t < b), None)
    system = phase.controller == "system"
    return {
        "Vehicle.ADAS.ActiveAutonomyLevel": phase.level,
        "Vehicle.ADAS.CruiseControl.IsActive": system,
        "Vehicle.ADAS.LaneKeepingAssist.IsEnabled": phase.level != "SAE_0",
        "Vehicle.ADAS.LaneKeepingAssist.IsEngaged": system,
        "Vehicle.ADAS.TransitionDemand.IsActive": demand_active,
        "Vehicle.ADAS.TransitionDemand.Type": demand.kind if demand_active and demand else "UNKNOWN",
        "Vehicle.ADAS.TransitionDemand.TimeRemaining": (
            max(0.0, round(demand.start_s + demand.lead_time_s - t, 1)) if demand_active and demand else 0.0
        ),
        "Vehicle.ADAS.MinimalRiskManeuver.IsActive": _inside(plan.mrm, t),
        "Vehicle.ADAS.DriverOverride.IsActive": override is not None,
        "Vehicle.ADAS.DriverOverride.Type": override or "NONE",
        "Vehicle.Driver.IsHandsOnWheel": _inside(plan.hands_on, t),
    }
