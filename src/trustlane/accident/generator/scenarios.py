"""The scenario catalog: collisions and the non-collision events that must not be mistaken for them.

Each builder draws its parameters from the seeded generator and returns the vehicle drive, the automation
plan, the impulses and the scenario's own facts for the ground truth.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trustlane.accident.generator.automation import AutomationPlan, Phase, TransitionDemand
from trustlane.accident.generator.impulses import CrashPulse, G, RoadImpulse, random_pulse, random_road_impulse
from trustlane.accident.generator.vehicle import Command, Drive

COLLISIONS = ("front", "rear", "side-left", "side-right", "multi-event", "low-speed", "l3-takeover", "l2-override")
NON_COLLISIONS = ("pothole", "curb-strike", "harsh-braking", "door-slam", "normal")
SCENARIOS = COLLISIONS + NON_COLLISIONS
#: Direction of the velocity change for each struck side (0 = pushed forward, 180 = slowed, +90 = pushed left).
PDOF = {"front": 180.0, "rear": 0.0, "left": -90.0, "right": 90.0}


@dataclass
class Setup:
    drive: Drive
    plan: AutomationPlan
    impulses: list[CrashPulse | RoadImpulse] = field(default_factory=list)
    sides: list[str] = field(default_factory=list)  # struck side per crash pulse
    aeb: tuple[float, float] | None = None  # warning, braking start
    lead_closing: tuple[float, float] | None = None  # (closing speed m/s, contact s) for a front collision
    belted: tuple[bool, bool] = (True, True)
    notes: dict[str, Any] = field(default_factory=dict)


def scenario_rng(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _pulse(rng: np.random.Generator, contact: float, dv_kmh: float, side: str, speed_ms: float) -> CrashPulse:
    if side == "front":
        dv_kmh = min(dv_kmh, max(speed_ms * 3.6, 3.0))
    return random_pulse(rng, contact, dv_kmh, PDOF[side] + float(rng.normal(0, 12)))


def _manual(duration: float) -> AutomationPlan:
    return AutomationPlan(phases=[Phase(0.0, duration, "SAE_0", "driver", "off")], hands_on=[(0.0, duration)])


def _l2(duration: float, engaged: float, until: float, rng: np.random.Generator) -> AutomationPlan:
    hands = [(0.0, engaged + 2), (engaged + 2 + float(rng.uniform(3, 8)), duration)]
    return AutomationPlan(
        phases=[
            Phase(0.0, engaged, "SAE_0", "driver", "off"),
            Phase(engaged, until, "SAE_2", "system", "active"),
            Phase(until, duration, "SAE_0", "driver", "off"),
        ],
        hands_on=hands,
        events=[(engaged, "SYSTEM_ACTIVATED")],
    )


def _base(rng: np.random.Generator, duration: float, kmh: tuple[float, float]) -> Drive:
    speed = float(rng.uniform(*kmh)) / 3.6
    return Drive(duration_s=duration, speed_ms=speed, set_speed_ms=speed, grip=float(rng.uniform(0.8, 1.05)))


def _front(rng: np.random.Generator, duration: float, contact: float, *, level: str = "auto") -> Setup:
    drive = _base(rng, duration, (40, 110))
    chosen = str(rng.choice(["SAE_0", "SAE_2"])) if level == "auto" else level
    plan = _manual(duration) if chosen == "SAE_0" else _l2(duration, float(rng.uniform(2, 6)), contact + 0.3, rng)
    warn = contact - float(rng.uniform(1.2, 2.2))
    brake = contact - float(rng.uniform(0.4, 1.0))
    drive.commands.append(Command(brake, contact, -float(rng.uniform(5, 9.5)), "aeb"))
    closing = max(drive.speed_ms * float(rng.uniform(0.3, 0.9)), 3.0)
    dv = float(np.clip(closing * 3.6 * rng.uniform(0.5, 0.9), 8.5, 55))
    setup = Setup(drive, plan, aeb=(warn, brake), lead_closing=(closing, contact))
    setup.impulses.append(_pulse(rng, contact, dv, "front", drive.speed_ms))
    setup.sides.append("front")
    plan.events += [(warn, "OTHER"), (brake, "EMERGENCY_MANEUVER_STARTED")] if chosen != "SAE_0" else []
    return setup


def _rear(rng: np.random.Generator, duration: float, contact: float) -> Setup:
    drive = _base(rng, duration, (30, 60))
    drive.commands.append(Command(contact - 8, contact - 0.5, -2.5, "driver"))
    drive.commands.append(Command(contact - 0.5, contact, -1.0, "driver"))
    setup = Setup(drive, _manual(duration))
    setup.impulses.append(_pulse(rng, contact, float(rng.uniform(8.5, 30)), "rear", 0.0))
    setup.sides.append("rear")
    return setup


def _side(rng: np.random.Generator, duration: float, contact: float, side: str) -> Setup:
    drive = _base(rng, duration, (20, 60))
    setup = Setup(drive, _manual(duration))
    setup.impulses.append(_pulse(rng, contact, float(rng.uniform(8.5, 35)), side, drive.speed_ms))
    setup.sides.append(side)
    return setup


def _multi(rng: np.random.Generator, duration: float, contact: float) -> Setup:
    setup = _front(rng, duration, contact)
    second = contact + float(rng.uniform(0.3, 1.5))
    side = str(rng.choice(["rear", "left", "right"]))
    setup.impulses.append(_pulse(rng, second, float(rng.uniform(8.5, 25)), side, setup.drive.speed_ms))
    setup.sides.append(side)
    return setup


def _low_speed(rng: np.random.Generator, duration: float, contact: float) -> Setup:
    drive = _base(rng, duration, (8, 20))
    side = str(rng.choice(["front", "rear"]))
    setup = Setup(drive, _manual(duration))
    setup.impulses.append(random_pulse(rng, contact, float(rng.uniform(3, 7.5)), PDOF[side] + float(rng.normal(0, 10))))
    setup.sides.append(side)
    return setup


def _l3(rng: np.random.Generator, duration: float, contact: float) -> Setup:
    drive = _base(rng, duration, (40, 60))
    engaged = float(rng.uniform(2, 5))
    demand_at = contact - float(rng.uniform(4, 14))
    kind = str(rng.choice(["PLANNED", "UNPLANNED"]))
    latency = float(rng.uniform(1.5, 12))
    response = demand_at + latency if demand_at + latency < contact - 0.2 else None
    channel = str(rng.choice(["STEERING", "BRAKING", "ACCELERATING"])) if response else "NONE"
    mrm_start = demand_at + 10.0
    phases = [Phase(0.0, engaged, "SAE_0", "driver", "off"), Phase(engaged, demand_at, "SAE_3", "system", "active")]
    plan = AutomationPlan(phases=phases, events=[(engaged, "SYSTEM_ACTIVATED")])
    plan.events.append((demand_at, f"TRANSITION_DEMAND_{kind}"))
    if response is not None and response < mrm_start:
        phases.append(Phase(demand_at, response, "SAE_3_DISENGAGING", "system", "transition-demand"))
        phases.append(Phase(response, duration, "SAE_0", "driver", "off"))
        plan.overrides.append((response, response + 1.5, channel))
        plan.events.append((response, "SYSTEM_DEACTIVATED_BY_DRIVER_OVERRIDE"))
        plan.hands_on = [(0.0, engaged + 1), (response - 0.3, duration)]
        if channel == "BRAKING":
            drive.commands.append(Command(response, contact, -float(rng.uniform(3, 7)), "driver"))
    else:
        end_demand = min(mrm_start, contact)
        phases.append(Phase(demand_at, end_demand, "SAE_3_DISENGAGING", "system", "transition-demand"))
        if mrm_start < contact:
            phases.append(Phase(mrm_start, duration, "SAE_3_DISENGAGING", "system", "minimal-risk-manoeuvre"))
            plan.mrm.append((mrm_start, duration))
            plan.events.append((mrm_start, "MINIMAL_RISK_MANEUVER_STARTED"))
            drive.commands.append(Command(mrm_start, contact, -float(rng.uniform(1.5, 3.0)), "mrm"))
        else:
            phases.append(Phase(contact, duration, "SAE_3_DISENGAGING", "system", "transition-demand"))
        plan.hands_on = [(0.0, engaged + 1)]
    plan.demands.append(TransitionDemand(demand_at, kind, 10.0, response, channel))
    side = "rear" if plan.mrm else "front"
    setup = Setup(drive, plan, notes={"takeover_response_s": response})
    setup.impulses.append(_pulse(rng, contact, float(rng.uniform(9, 30)), side, drive.speed_ms))
    setup.sides.append(side)
    if side == "front":
        setup.lead_closing = (max(drive.speed_ms * 0.5, 3.0), contact)
    return setup


def _l2_override(rng: np.random.Generator, duration: float, contact: float) -> Setup:
    setup = _front(rng, duration, contact, level="SAE_2")
    start = contact - float(rng.uniform(0.8, 2.5))
    channel = str(rng.choice(["STEERING", "BRAKING"]))
    plan = setup.plan
    plan.phases[1] = Phase(plan.phases[1].start_s, start, "SAE_2", "system", "active")
    plan.phases[2] = Phase(start, plan.phases[2].end_s, "SAE_0", "driver", "override")
    plan.overrides.append((start, contact, channel))
    plan.events.append((start, "SYSTEM_DEACTIVATED_BY_DRIVER_OVERRIDE"))
    plan.hands_on.append((start - 0.2, setup.drive.duration_s))
    if channel == "BRAKING":
        setup.drive.commands.insert(0, Command(start, contact, -float(rng.uniform(4, 8)), "driver"))
    return setup


def _road(rng: np.random.Generator, duration: float, at: float, kind: str) -> Setup:
    drive = _base(rng, duration, (30, 80))
    if kind == "door-slam":
        drive = Drive(duration_s=duration, speed_ms=0.0, set_speed_ms=0.0, stopped=True)
    setup = Setup(drive, _manual(duration), belted=(kind != "door-slam", False))
    setup.impulses.append(random_road_impulse(rng, kind, at, drive.speed_ms))
    return setup


def _harsh(rng: np.random.Generator, duration: float, at: float) -> Setup:
    drive = _base(rng, duration, (60, 110))
    decel = float(rng.uniform(0.9, 1.15)) * G
    drive.commands.append(Command(at, at + drive.speed_ms / decel + 1.0, -decel, "driver"))
    setup = Setup(drive, _manual(duration))
    setup.notes["decel_g"] = decel / G
    return setup


BUILDERS: dict[str, Callable[[np.random.Generator, float, float], Setup]] = {
    "front": _front,
    "rear": _rear,
    "side-left": lambda r, d, c: _side(r, d, c, "left"),
    "side-right": lambda r, d, c: _side(r, d, c, "right"),
    "multi-event": _multi,
    "low-speed": _low_speed,
    "l3-takeover": _l3,
    "l2-override": _l2_override,
    "pothole": lambda r, d, c: _road(r, d, c, "pothole"),
    "curb-strike": lambda r, d, c: _road(r, d, c, "curb-strike"),
    "door-slam": lambda r, d, c: _road(r, d, c, "door-slam"),
    "harsh-braking": _harsh,
    "normal": lambda r, d, c: Setup(_base(r, d, (50, 120)), _manual(d)),
}
