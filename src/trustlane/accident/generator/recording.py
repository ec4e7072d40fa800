"""One generated recording: multi-rate VSS signals and the ground truth that produced them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trustlane.accident.core.detect import struck_side
from trustlane.accident.core.kinematics import KMH
from trustlane.accident.generator.automation import status_at
from trustlane.accident.generator.chain import random_chain, sense
from trustlane.accident.generator.impulses import CrashPulse, RoadImpulse, net_delta_v
from trustlane.accident.generator.scenarios import BUILDERS, COLLISIONS, Setup, scenario_rng
from trustlane.accident.generator.vehicle import Command, Trace, simulate

FloatArray = npt.NDArray[np.float64]
#: 2025-06-01T08:00:00Z: the generator's time base; each seed shifts it by whole minutes.
EPOCH_NS = 1_748_764_800_000_000_000
CLOCK_SOURCE = "GNSS-disciplined vehicle clock (simulated), offset to UTC 0 ns"


@dataclass
class Channel:
    name: str
    unit: str | None
    t_s: FloatArray
    values: npt.NDArray[Any]


@dataclass
class Recording:
    name: str
    start_ns: int
    channels: list[Channel]
    truth: dict[str, Any]


def generate(name: str, seed: int, duration_s: float = 60.0, rate_hz: int = 1000) -> Recording:
    if name not in BUILDERS:
        raise ValueError(f"unknown scenario {name!r}")
    if duration_s < 20:
        raise ValueError("duration must be at least 20 s")
    rng = scenario_rng(name, seed)
    event_s = float(rng.uniform(0.6, 0.8)) * duration_s
    setup = BUILDERS[name](rng, duration_s, event_s)
    pulses = [i for i in setup.impulses if isinstance(i, CrashPulse)]
    if pulses:
        stop = max(p.end_s for p in pulses) + 0.3
        setup.drive.commands.append(Command(stop, duration_s, -5.0, "post-crash"))
    setup.drive.pulses = pulses
    trace = simulate(setup.drive, rng)
    chain = random_chain(rng, rate_hz)
    start_ns = EPOCH_NS + seed * 60_000_000_000

    def driving(t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        ax = np.interp(t, trace.t, trace.accel_long)
        ay = np.interp(t, trace.t, trace.accel_lat)
        road = 0.3 * np.sin(2 * np.pi * 1.3 * t) * (trace.speed_ms.mean() > 0)
        return ax, ay, 9.80665 + road

    t_acc, (ax, ay, az) = sense(chain, int(duration_s * 1000), driving, setup.impulses, rng)
    channels = [
        Channel("Vehicle.Acceleration.Longitudinal", "m/s^2", t_acc, np.round(ax, 3)),
        Channel("Vehicle.Acceleration.Lateral", "m/s^2", t_acc, np.round(ay, 3)),
        Channel("Vehicle.Acceleration.Vertical", "m/s^2", t_acc, np.round(az, 3)),
    ]
    channels += _can(trace, setup, pulses, rng)
    channels += _adas(trace, setup, duration_s)

    def to_ns(s: float) -> int:
        return start_ns + round(s * 1e9)

    truth = {
        "scenario": name,
        "seed": seed,
        "is_collision": name in COLLISIONS,
        "duration_s": duration_s,
        "time_base": {"start_ns": start_ns, "clock_source": CLOCK_SOURCE},
        "contact_time_definition": "the instant the crash pulse starts (first non-zero acceleration of the pulse)",
        "acceleration_chain": chain.describe(),
        "collisions": [_pulse_truth(p, side, to_ns) for p, side in zip(pulses, setup.sides, strict=True)],
        "non_collision_events": [_road_truth(i, to_ns) for i in setup.impulses if isinstance(i, RoadImpulse)]
        + ([{"kind": "harsh-braking", **setup.notes}] if name == "harsh-braking" else []),
        "automation": setup.plan.truth(to_ns),
        "aeb": {"warning_ns": to_ns(setup.aeb[0]), "braking_ns": to_ns(setup.aeb[1])} if setup.aeb else None,
        "occupants": {"driver_belted": setup.belted[0], "passenger_belted": setup.belted[1]},
        "vehicle": {"initial_speed_kmh": round(setup.drive.speed_ms * 3.6, 2), "grip": round(setup.drive.grip, 3)},
        "notes": {k: v for k, v in setup.notes.items() if k != "decel_g"},
    }
    return Recording(name, start_ns, channels, truth)


def _pulse_truth(p: CrashPulse, side: str, to_ns: Any) -> dict[str, Any]:
    dvx, dvy = net_delta_v(p)
    pdof = math.degrees(math.atan2(dvy, dvx))
    return {
        "contact_ns": to_ns(p.contact_s),
        "end_ns": to_ns(p.contact_s + p.duration_s),
        "shape": p.shape,
        "duration_ms": round(p.duration_s * 1e3, 3),
        "peak_ms2": round(p.peak_ms2, 2),
        "delta_v_kmh": round(math.hypot(dvx, dvy) / KMH, 3),
        "delta_v_longitudinal_kmh": round(dvx / KMH, 3),
        "delta_v_lateral_kmh": round(dvy / KMH, 3),
        "pdof_deg": round(pdof, 2),
        "direction": struck_side(pdof),
        "intended_side": side,
        "ringing": {"relative": p.ringing[0], "hz": p.ringing[1], "damping": p.ringing[2]},
    }


def _road_truth(i: RoadImpulse, to_ns: Any) -> dict[str, Any]:
    dvx, dvy = net_delta_v(i)
    return {"kind": i.kind, "t_ns": to_ns(i.start_s), "net_delta_v_kmh": round(math.hypot(dvx, dvy) / KMH, 3)}


def _can(trace: Trace, setup: Setup, pulses: list[CrashPulse], rng: np.random.Generator) -> list[Channel]:
    t = trace.t
    driver = np.array(
        [
            s == "driver" or (s == "controller" and setup.plan.phase_at(x).controller == "driver")
            for s, x in zip(trace.source, t, strict=True)
        ]
    )
    brake_cmd = np.clip(-trace.command, 0, None)
    pedal_brake = np.where(driver, np.clip(brake_cmd / 9.0 * 100, 0, 100), 0.0)
    pedal_acc = np.where(driver, np.clip(trace.command / 2.0 * 40, 0, 100), 0.0)
    pressure = np.clip(brake_cmd, 0, None) * 1000.0  # about 10 MPa at 1 g
    speed = np.clip(trace.speed_ms * 3.6 + rng.normal(0, 0.05, len(t)), 0, None)
    aeb_warn = np.zeros(len(t), dtype=bool)
    aeb_brake = np.zeros(len(t), dtype=bool)
    if setup.aeb:
        aeb_warn = t >= setup.aeb[0]
        aeb_brake = t >= setup.aeb[1]
        end = pulses[0].contact_s + 0.5 if pulses else t[-1]
        aeb_warn &= t < end
        aeb_brake &= t < end
    airbag = np.zeros(len(t), dtype=bool)
    for p in pulses:
        if (
            p.delta_v_ms * 3.6 >= 20
            and abs(math.cos(math.radians(p.pdof_deg))) > 0.7
            and math.cos(math.radians(p.pdof_deg)) < 0
        ):
            airbag |= t >= p.contact_s + 0.02
    steer = np.round(trace.steering_deg)
    return [
        Channel("Vehicle.Speed", "km/h", t, np.round(speed, 2)),
        Channel("Vehicle.AngularVelocity.Yaw", "degrees/s", t, np.round(np.degrees(trace.yaw_rate), 3)),
        Channel("Vehicle.Chassis.SteeringWheel.Angle", "degrees", t, steer),
        Channel(
            "Vehicle.Chassis.SteeringWheel.AngularSpeed",
            "degrees/s",
            t,
            np.round(np.abs(np.gradient(trace.steering_deg, t)), 2),
        ),
        Channel("Vehicle.Chassis.Accelerator.PedalPosition", "percent", t, np.round(pedal_acc)),
        Channel("Vehicle.Chassis.Brake.PedalPosition", "percent", t, np.round(pedal_brake)),
        Channel("Vehicle.Chassis.Brake.IsPedalPressed", None, t, pedal_brake > 2),
        Channel("Vehicle.Chassis.Brake.MasterCylinderPressure", "kPa", t, np.round(pressure)),
        Channel("Vehicle.ADAS.ABS.IsEngaged", None, t, trace.abs_active > 0),
        Channel("Vehicle.ADAS.ESC.IsEngaged", None, t, np.abs(trace.accel_lat) > 6.0),
        Channel("Vehicle.ADAS.AEB.IsWarning", None, t, aeb_warn),
        Channel("Vehicle.ADAS.AEB.IsEngaged", None, t, aeb_brake),
        Channel("Vehicle.Cabin.Seat.Row1.DriverSide.Airbag.IsDeployed", None, t, airbag),
        Channel("Vehicle.Cabin.Seat.Row1.PassengerSide.Airbag.IsDeployed", None, t, airbag & setup.belted[1]),
    ]


def _adas(trace: Trace, setup: Setup, duration: float) -> list[Channel]:
    t = np.arange(0, duration, 0.1)
    rows = [status_at(setup.plan, float(x)) for x in t]
    out = []
    for name in rows[0]:
        values = np.array([r[name] for r in rows], dtype=object if isinstance(rows[0][name], str) else None)
        out.append(Channel(name, "s" if name.endswith("TimeRemaining") else None, t, values))
    detected = np.ones(len(t), dtype=bool) if setup.lead_closing else np.zeros(len(t), dtype=bool)
    distance = np.full(len(t), 0.0)
    relative = np.full(len(t), 0.0)
    if setup.lead_closing:
        closing, contact = setup.lead_closing
        distance = np.clip(closing * (contact - t), 0, None) + 2.0 * np.clip(contact - t - 5, 0, None)
        relative = np.where(t < contact, -closing, 0.0)
        detected &= t < contact + 0.1
    out += [
        Channel("Vehicle.ADAS.AEB.IsEnabled", None, t, np.full(len(t), setup.aeb is not None)),
        Channel("Vehicle.ADAS.LeadVehicle.IsDetected", None, t, detected),
        Channel("Vehicle.ADAS.LeadVehicle.Distance", "m", t, np.round(distance, 2)),
        Channel("Vehicle.ADAS.LeadVehicle.RelativeSpeed", "m/s", t, np.round(relative, 2)),
        Channel("Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted", None, t, np.full(len(t), setup.belted[0])),
        Channel("Vehicle.Cabin.Seat.Row1.PassengerSide.IsBelted", None, t, np.full(len(t), setup.belted[1])),
    ]
    events = sorted(setup.plan.events)
    for p in setup.drive.pulses:
        events.append((p.contact_s + 0.005, "EDR_TRIGGERED" if p.delta_v_ms * 3.6 >= 8 else "COLLISION_DETECTED"))
    events.sort()
    if events:
        ev_t = np.array([e[0] for e in events])
        ev_t = ev_t + np.arange(len(ev_t)) * 1e-6  # distinct times for events at one instant
        out.append(Channel("Vehicle.ADAS.DSSAD.Event", None, ev_t, np.array([e[1] for e in events], dtype=object)))
    return out
