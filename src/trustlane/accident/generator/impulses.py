"""Short, sharp accelerations at a high internal rate: crash pulses and the road and body events that resemble them.

Every function takes times ``t`` (s) and returns (longitudinal, lateral, vertical) acceleration in m/s² that is
zero outside the event. Crash pulses start exactly at their contact time: the ground truth's contact time is
the instant the pulse starts (the first moment the structure pushes back), nothing later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Axes = tuple[FloatArray, FloatArray, FloatArray]
G = 9.80665
SHAPES = ("half-sine", "haversine", "triangular", "asymmetric", "skewed")


def _shape(name: str, u: FloatArray, peak_at: float, exponent: float) -> FloatArray:
    """Unit-peak pulse shape on u ∈ [0, 1] (0 outside)."""
    inside = (u >= 0) & (u <= 1)
    uc = np.clip(u, 0.0, 1.0)
    if name == "half-sine":
        y = np.sin(np.pi * uc)
    elif name == "haversine":
        y = np.sin(np.pi * uc) ** 2
    elif name == "triangular":
        y = np.where(uc < peak_at, uc / peak_at, (1 - uc) / (1 - peak_at))
    elif name == "asymmetric":
        y = np.where(
            uc < peak_at,
            np.sin(0.5 * np.pi * uc / peak_at),
            np.cos(0.5 * np.pi * (uc - peak_at) / (1 - peak_at)),
        )
    else:  # skewed: gamma-like rise with onset exponent, tapered to zero at the end
        r = uc / peak_at
        y = r**exponent * np.exp(exponent * (1 - r)) * np.cos(0.5 * np.pi * uc) ** 0.5
    return np.where(inside, y, 0.0)


@dataclass(frozen=True)
class CrashPulse:
    """One collision's acceleration pulse, with structural ringing and modulation of the crush."""

    contact_s: float
    duration_s: float
    shape: str
    delta_v_ms: float  # magnitude of the collision's velocity change
    pdof_deg: float  # direction of the velocity change: 180 = slowed (front impact), 0 = pushed forward
    peak_at: float = 0.5  # fraction of the duration at which the shape peaks
    exponent: float = 2.0  # onset exponent of the skewed shape
    modulation: tuple[tuple[float, float, float], ...] = ()  # (relative amplitude, Hz, phase)
    ringing: tuple[float, float, float] = (0.0, 200.0, 0.1)  # (relative amplitude, Hz, damping ratio)
    cross_axis: float = 0.0  # ringing leaking into the other horizontal axis (relative)
    vertical: float = 0.1  # vertical component (relative to peak), pitch of the body
    peak_ms2: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        u = np.linspace(0.0, 1.0, 4001)
        area = float(np.trapezoid(self._envelope(u), u)) * self.duration_s
        object.__setattr__(self, "peak_ms2", self.delta_v_ms / area)

    def _envelope(self, u: FloatArray) -> FloatArray:
        y = _shape(self.shape, u, self.peak_at, self.exponent)
        mod = np.ones_like(u)
        for amp, hz, phase in self.modulation:
            mod += amp * np.sin(2 * np.pi * hz * self.duration_s * u + phase)
        return y * np.clip(mod, 0.2, None)

    @property
    def end_s(self) -> float:
        amp, hz, zeta = self.ringing
        ring = 5.0 / (2 * np.pi * hz * zeta) if amp > 0 else 0.0
        return self.contact_s + max(self.duration_s, ring)

    def acceleration(self, t: FloatArray) -> Axes:
        u = (t - self.contact_s) / self.duration_s
        magnitude = self.peak_ms2 * self._envelope(u)
        amp, hz, zeta = self.ringing
        tau = np.clip(t - self.contact_s, 0.0, None)
        omega = 2 * np.pi * hz
        ring = np.where(t >= self.contact_s, np.exp(-zeta * omega * tau) * np.sin(omega * tau), 0.0)
        ring *= amp * self.peak_ms2
        theta = math.radians(self.pdof_deg)
        c, s = math.cos(theta), math.sin(theta)
        ax = (magnitude + ring) * c - self.cross_axis * ring * s
        ay = (magnitude + ring) * s + self.cross_axis * ring * c
        az = self.vertical * magnitude * np.sin(2 * np.pi * np.clip(u, 0, 1))
        return ax, ay, az


def _damped(t: FloatArray, start: float, amplitude: float, hz: float, zeta: float) -> FloatArray:
    tau = t - start
    omega = 2 * np.pi * hz
    return np.where(tau >= 0, amplitude * np.exp(-zeta * omega * np.clip(tau, 0, None)) * np.sin(omega * tau), 0.0)


def _rocking(t: FloatArray, start: float, amplitude: float, hz: float, zeta: float) -> FloatArray:
    """Acceleration whose velocity is a damped oscillation: the body rocks and comes back to rest (no net ΔV)."""
    tau = np.clip(t - start, 0, None)
    omega = 2 * np.pi * hz
    decay = np.exp(-zeta * omega * tau)
    shape = decay * (np.cos(omega * tau) - zeta * np.sin(omega * tau))
    return np.where(t >= start, amplitude * shape, 0.0)


def _half_sine(t: FloatArray, start: float, duration: float, amplitude: float) -> FloatArray:
    u = (t - start) / duration
    return np.where((u >= 0) & (u <= 1), amplitude * np.sin(np.pi * np.clip(u, 0, 1)), 0.0)


@dataclass(frozen=True)
class RoadImpulse:
    """A non-collision event: ``kind`` is pothole, curb-strike or door-slam; ``params`` hold its magnitudes."""

    kind: str
    start_s: float
    params: dict[str, float]

    @property
    def end_s(self) -> float:
        return self.start_s + self.params.get("span_s", 0.4)

    def acceleration(self, t: FloatArray) -> Axes:
        p = self.params
        zero = np.zeros_like(t)
        if self.kind == "pothole":
            ax, az = zero.copy(), zero.copy()
            for k, scale in ((0, 1.0), (1, p["rear_scale"])):
                hit = self.start_s + k * p["axle_gap_s"]
                ax += -_half_sine(t, hit, p["duration_s"], scale * p["peak_ms2"])
                ax += _damped(t, hit + p["duration_s"], 0.5 * scale * p["peak_ms2"], p["bounce_hz"], 0.25)
                az += -_half_sine(t, hit, 0.5 * p["duration_s"], scale * p["vertical_ms2"])
                az += _damped(t, hit + 0.5 * p["duration_s"], scale * p["vertical_ms2"], p["bounce_hz"], 0.2)
            ay = 0.15 * _damped(t, self.start_s, p["peak_ms2"], p["bounce_hz"] * 1.3, 0.3)
            return ax, ay, az
        if self.kind == "curb-strike":
            ay = p["side"] * _half_sine(t, self.start_s, p["duration_s"], p["peak_ms2"])
            ay += p["side"] * _damped(t, self.start_s + p["duration_s"], -0.4 * p["peak_ms2"], p["bounce_hz"], 0.3)
            ax = -0.3 * _half_sine(t, self.start_s, p["duration_s"], p["peak_ms2"])
            az = _damped(t, self.start_s, p["vertical_ms2"], p["bounce_hz"], 0.2)
            return ax, ay, az
        # door slam: the body rocks on its springs and rings, with no net change of velocity
        ay = _rocking(t, self.start_s, p["peak_ms2"], p["ring_hz"], p["zeta"])
        ay += _rocking(t, self.start_s, 0.05 * p["peak_ms2"], p["rock_hz"], 0.15)
        ax = 0.2 * _rocking(t, self.start_s, p["peak_ms2"], p["ring_hz"] * 1.2, p["zeta"])
        az = 0.3 * _rocking(t, self.start_s, p["peak_ms2"], p["ring_hz"] * 0.8, p["zeta"])
        return ax, ay, az


def random_pulse(rng: np.random.Generator, contact_s: float, delta_v_kmh: float, pdof_deg: float) -> CrashPulse:
    """A crash pulse of random shape, duration (40–150 ms), ringing and crush modulation."""
    shape = str(rng.choice(SHAPES))
    # harder hits are shorter: stiff structures engaged; low speed bumps are long
    duration = float(np.clip(rng.normal(0.11 - 0.0012 * delta_v_kmh, 0.022), 0.04, 0.15))
    peak_at = float(rng.uniform(0.2, 0.7)) if shape in ("triangular", "asymmetric", "skewed") else 0.5
    modulation = tuple(
        (float(rng.uniform(0.03, 0.2)), float(rng.uniform(1.5, 5.0)) / duration, float(rng.uniform(0, 2 * np.pi)))
        for _ in range(int(rng.integers(0, 3)))
    )
    ringing = (float(rng.uniform(0.03, 0.25)), float(rng.uniform(80, 450)), float(rng.uniform(0.04, 0.2)))
    return CrashPulse(
        contact_s=contact_s,
        duration_s=duration,
        shape=shape,
        delta_v_ms=delta_v_kmh / 3.6,
        pdof_deg=pdof_deg,
        peak_at=peak_at,
        exponent=float(rng.uniform(1.2, 2.5)),
        modulation=modulation,
        ringing=ringing,
        cross_axis=float(rng.uniform(0.0, 0.3)),
        vertical=float(rng.uniform(0.05, 0.25)),
    )


def random_road_impulse(rng: np.random.Generator, kind: str, start_s: float, speed_ms: float) -> RoadImpulse:
    """A pothole, curb strike or door slam of realistic, random magnitude."""
    if kind == "pothole":
        params = {
            "duration_s": float(rng.uniform(0.008, 0.02)),
            "peak_ms2": float(rng.uniform(1.5, 4.0)) * G,
            "vertical_ms2": float(rng.uniform(2.0, 5.0)) * G,
            "bounce_hz": float(rng.uniform(9, 16)),
            "rear_scale": float(rng.uniform(0.5, 0.9)),
            "axle_gap_s": 2.8 / max(speed_ms, 2.0),
        }
        params["span_s"] = params["axle_gap_s"] + 0.5
    elif kind == "curb-strike":
        params = {
            "duration_s": float(rng.uniform(0.01, 0.025)),
            "peak_ms2": float(rng.uniform(2.0, 5.0)) * G,
            "vertical_ms2": float(rng.uniform(1.5, 4.0)) * G,
            "bounce_hz": float(rng.uniform(8, 14)),
            "side": float(rng.choice([-1.0, 1.0])),
            "span_s": 0.5,
        }
    elif kind == "door-slam":
        params = {
            "peak_ms2": float(rng.uniform(0.8, 3.0)) * G,
            "ring_hz": float(rng.uniform(15, 45)),
            "rock_hz": float(rng.uniform(1.5, 3.0)),
            "zeta": float(rng.uniform(0.08, 0.2)),
            "span_s": 2.5,
        }
    else:
        raise ValueError(f"unknown road impulse {kind!r}")
    return RoadImpulse(kind, start_s, params)


def net_delta_v(impulse: CrashPulse | RoadImpulse, rate_hz: float = 20_000.0) -> tuple[float, float]:
    """(longitudinal, lateral) velocity change (m/s) the event leaves behind."""
    t = np.arange(impulse.contact_s if isinstance(impulse, CrashPulse) else impulse.start_s, impulse.end_s, 1 / rate_hz)
    ax, ay, _ = impulse.acceleration(t)
    return float(np.trapezoid(ax, t)), float(np.trapezoid(ay, t))
