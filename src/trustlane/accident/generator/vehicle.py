"""A vehicle model at 100 Hz: longitudinal dynamics with car following, lateral dynamics with lane keeping.

Longitudinal: a commanded acceleration (adaptive cruise / driver following the lead vehicle with the Intelligent
Driver Model, or a scripted command such as harsh braking, a takeover brake, a minimal risk manoeuvre) passes
through a first-order actuator lag, is limited by tyre grip (ABS engages near it) and drag; the road grade
adds gravity to the accelerometer. Collisions add their velocity change to the model two steps after the step
it happens in, so the model's response (friction, control) never shows in the interpolated trace before contact.
Lateral: a kinematic bicycle model on a road of slowly varying curvature, steered by a lane-keeping controller;
a side impact's lateral velocity decays under tyre friction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trustlane.accident.generator.impulses import CrashPulse, G

FloatArray = npt.NDArray[np.float64]
STEP_S = 0.01
WHEELBASE_M = 2.8
STEERING_RATIO = 15.0
#: a step's state shows in the trace at its step and is interpolated from the step before: two steps of delay
RESPONSE_STEPS = 2


@dataclass(frozen=True)
class Command:
    """A scripted longitudinal acceleration over [start, end) s, overriding the car-following controller."""

    start_s: float
    end_s: float
    accel_ms2: float
    source: str  # driver, aeb, mrm, post-crash


@dataclass(frozen=True)
class Lead:
    """The vehicle ahead: initial gap, and when and how hard it brakes (None: it keeps its speed)."""

    gap_m: float
    speed_ms: float
    brake_at_s: float | None = None
    brake_ms2: float = 0.0


@dataclass
class Drive:
    """What drives the simulation of one recording."""

    duration_s: float
    speed_ms: float
    set_speed_ms: float
    lead: Lead | None = None
    commands: list[Command] = field(default_factory=list)
    pulses: list[CrashPulse] = field(default_factory=list)
    grip: float = 1.0  # tyre-road friction coefficient
    stopped: bool = False  # parked: no driving at all


@dataclass(frozen=True)
class Trace:
    """100 Hz states; accelerations exclude the crash pulses (added at high rate by the sensor chain)."""

    t: FloatArray
    speed_ms: FloatArray
    accel_long: FloatArray  # what a longitudinal accelerometer senses from driving (incl. grade)
    accel_lat: FloatArray
    yaw_rate: FloatArray  # rad/s
    steering_deg: FloatArray  # steering wheel angle
    command: FloatArray  # commanded acceleration
    source: list[str]  # who commanded it, per step
    abs_active: FloatArray
    lead_gap_m: FloatArray  # nan without a lead vehicle
    lead_rel_ms: FloatArray


def simulate(drive: Drive, rng: np.random.Generator) -> Trace:
    n = round(drive.duration_s / STEP_S)
    t = np.arange(n, dtype=np.float64) * STEP_S
    v = np.zeros(n)
    a_act = np.zeros(n)
    cmd = np.zeros(n)
    lat = np.zeros(n)
    yaw = np.zeros(n)
    steer = np.zeros(n)
    abs_on = np.zeros(n)
    gap = np.full(n, np.nan)
    rel = np.full(n, np.nan)
    source = ["controller"] * n
    curvature = np.cumsum(rng.normal(0, 2e-6, n)) if not drive.stopped else np.zeros(n)
    curvature = np.clip(curvature, -2e-3, 2e-3)
    grade = 0.02 * np.sin(2 * np.pi * t / rng.uniform(60, 200) + rng.uniform(0, 6))
    pulse_dv = np.zeros((n, 2))
    for pulse in drive.pulses:  # each pulse's velocity change, spread over the steps it spans
        fine = np.arange(pulse.contact_s, pulse.end_s, 1e-4)
        ax, ay, _ = pulse.acceleration(fine)
        # the vehicle's response (tyre friction, controller) reaches the trace RESPONSE_STEPS later, so that the
        # sensor chain's interpolation of the 100 Hz trace never ramps it in before the instant of contact
        idx = np.clip((fine / STEP_S).astype(int) + RESPONSE_STEPS, 0, n - 1)
        np.add.at(pulse_dv[:, 0], idx, ax * 1e-4)
        np.add.at(pulse_dv[:, 1], idx, ay * 1e-4)
    speed = 0.0 if drive.stopped else drive.speed_ms
    lead_pos = drive.lead.gap_m if drive.lead else 0.0
    lead_v = drive.lead.speed_ms if drive.lead else 0.0
    pos = 0.0
    accel = 0.0
    v_lat = 0.0
    offset, heading = rng.normal(0, 0.2), 0.0
    for k in range(n):
        now = t[k]
        target, who = _command(drive, now, speed, lead_pos - pos, lead_v)
        cmd[k], source[k] = target, who
        limit = drive.grip * G
        if target < -0.85 * limit and speed > 1.0:
            abs_on[k] = 1.0
            target = -limit * (0.9 + 0.08 * np.sin(2 * np.pi * 7 * now))  # ABS modulating near the limit
        accel += (target - accel) * STEP_S / (0.15 if who != "controller" else 0.4)
        drag = 0.0004 * speed * speed + 0.1 if speed > 0 else 0.0
        a_long = accel - drag
        if speed <= 0.0 and a_long < 0:
            a_long, accel = 0.0, min(accel, 0.0)
        speed = max(0.0, speed + a_long * STEP_S + pulse_dv[k, 0])
        pos += speed * STEP_S
        if drive.lead:
            if drive.lead.brake_at_s is not None and now >= drive.lead.brake_at_s:
                lead_v = max(0.0, lead_v - drive.lead.brake_ms2 * STEP_S)
            lead_pos += lead_v * STEP_S
            gap[k], rel[k] = lead_pos - pos, lead_v - speed
        # lateral: lane keeping on a curved road; a side impact's lateral velocity decays with tyre grip
        v_lat += pulse_dv[k, 1]
        friction = -np.sign(v_lat) * min(abs(v_lat) / STEP_S, 0.7 * limit)
        v_lat += friction * STEP_S
        delta = 0.0
        if speed > 0.5:
            delta = WHEELBASE_M * curvature[k] - 0.05 * offset - 0.6 * heading + rng.normal(0, 2e-4)
        yaw[k] = speed / WHEELBASE_M * np.tan(delta)
        heading += (yaw[k] - speed * curvature[k]) * STEP_S
        offset += (speed * np.sin(heading) + v_lat) * STEP_S
        v[k] = speed
        a_act[k] = a_long + G * grade[k] if speed > 0 else G * grade[k]
        lat[k] = speed * yaw[k] + friction
        steer[k] = np.degrees(delta) * STEERING_RATIO
    return Trace(np.asarray(t, dtype=np.float64), v, a_act, lat, yaw, steer, cmd, source, abs_on, gap, rel)


def _command(drive: Drive, now: float, speed: float, gap: float, lead_v: float) -> tuple[float, str]:
    for command in drive.commands:
        if command.start_s <= now < command.end_s:
            return command.accel_ms2, command.source
    if drive.stopped:
        return 0.0, "controller"
    # Intelligent Driver Model towards the set speed, keeping a time gap to the lead vehicle
    free = 1.5 * (1 - (speed / max(drive.set_speed_ms, 0.1)) ** 4)
    if drive.lead is None or gap > 150:
        return float(np.clip(free, -3.0, 2.0)), "controller"
    desired = 2.0 + speed * 1.5 + speed * (speed - lead_v) / (2 * np.sqrt(1.5 * 2.0))
    return float(np.clip(free - 1.5 * (max(desired, 0.0) / max(gap, 0.5)) ** 2, -3.0, 2.0)), "controller"
