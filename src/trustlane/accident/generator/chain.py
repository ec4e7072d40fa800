"""The accelerometer chain of an airbag control unit, from true acceleration to recorded samples.

true acceleration (20 kHz around impulses) → sensor front end (causal 2-pole low-pass, the only delay in the
chain) → 1 kHz sampling → scale error, bias, white noise → ADC range and quantisation → SAE J211 CFC 60 or 180
(phaseless) → for 500 Hz: every 2nd sample of the CFC 60 signal; for 100 Hz: a phaseless 4th-order
Butterworth anti-alias filter, then every 10th sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal  # type: ignore[import-untyped]

from trustlane.accident.core.j211 import cfc_filter
from trustlane.accident.generator.impulses import CrashPulse, G, RoadImpulse

FloatArray = npt.NDArray[np.float64]
Axes = tuple[FloatArray, FloatArray, FloatArray]
BASE_HZ = 1000
FINE_HZ = 20_000
RATES = (1000, 500, 100)


@dataclass(frozen=True)
class SensorChain:
    rate_hz: int
    cfc: int
    front_end_hz: float
    noise_ms2: float
    bias_ms2: tuple[float, float, float]
    scale: tuple[float, float, float]
    range_ms2: float
    lsb_ms2: float
    anti_alias_hz: float  # only for 100 Hz output
    vibration: tuple[float, float]  # engine/road vibration: amplitude (m/s²), Hz

    def describe(self) -> dict[str, object]:
        return {
            "rate_hz": self.rate_hz,
            "filter": f"SAE J211 CFC {self.cfc}",
            "front_end_hz": round(self.front_end_hz, 1),
            "noise_ms2": round(self.noise_ms2, 4),
            "bias_ms2": [round(b, 4) for b in self.bias_ms2],
            "scale": [round(s, 5) for s in self.scale],
            "range_ms2": round(self.range_ms2, 2),
            "lsb_ms2": round(self.lsb_ms2, 5),
            "anti_alias_hz": round(self.anti_alias_hz, 1) if self.rate_hz == 100 else None,
        }


def random_chain(rng: np.random.Generator, rate_hz: int) -> SensorChain:
    if rate_hz not in RATES:
        raise ValueError(f"acceleration rate must be one of {RATES}")
    range_g = float(rng.choice([50.0, 100.0, 150.0]))
    bits = int(rng.choice([12, 14, 16]))
    return SensorChain(
        rate_hz=rate_hz,
        cfc=int(rng.choice([60, 180])) if rate_hz == 1000 else 60,
        front_end_hz=float(rng.uniform(800, 2000)),
        noise_ms2=float(rng.uniform(0.05, 0.4)),
        bias_ms2=tuple(float(b) for b in rng.normal(0, 0.15, 3)),  # type: ignore[arg-type]
        scale=tuple(float(s) for s in rng.normal(1.0, 0.01, 3)),  # type: ignore[arg-type]
        range_ms2=range_g * G,
        lsb_ms2=2 * range_g * G / 2**bits,
        anti_alias_hz=float(rng.uniform(20, 35)),
        vibration=(float(rng.uniform(0.02, 0.2)), float(rng.uniform(25, 60))),
    )


def _impulse_contribution(n: int, impulses: Sequence[CrashPulse | RoadImpulse], front_end_hz: float) -> Axes:
    """Impulses rendered at 20 kHz, through the sensor front end, sampled on the 1 kHz grid."""
    out = (np.zeros(n), np.zeros(n), np.zeros(n))
    b, a = signal.butter(2, front_end_hz, fs=FINE_HZ)
    ratio = FINE_HZ // BASE_HZ
    for impulse in impulses:
        start = impulse.contact_s if isinstance(impulse, CrashPulse) else impulse.start_s
        first = max(0, int(np.floor(start * BASE_HZ)) - 2)
        last = min(n, int(np.ceil(impulse.end_s * BASE_HZ)) + 50)
        if last <= first:
            continue
        fine_t = (first * ratio + np.arange((last - first) * ratio)) / FINE_HZ
        for axis, values in zip(out, impulse.acceleration(fine_t), strict=True):
            axis[first:last] += signal.lfilter(b, a, values)[::ratio]
    return out


def sense(
    chain: SensorChain,
    n_base: int,
    driving: Callable[[FloatArray], Axes],
    impulses: Sequence[CrashPulse | RoadImpulse],
    rng: np.random.Generator,
) -> tuple[FloatArray, Axes]:
    """(times in s, recorded longitudinal, lateral, vertical) at the chain's rate, over ``n_base`` ms."""
    t = np.arange(n_base) / BASE_HZ
    drive = driving(t)
    hits = _impulse_contribution(n_base, impulses, chain.front_end_hz)
    amp, hz = chain.vibration
    recorded = []
    for k in range(3):
        phase = rng.uniform(0, 2 * np.pi)
        vibration = amp * np.sin(2 * np.pi * hz * t + phase) * (1 + 0.3 * np.sin(0.3 * t + phase))
        x = chain.scale[k] * (drive[k] + hits[k]) + chain.bias_ms2[k] + vibration
        x = x + rng.normal(0.0, chain.noise_ms2, n_base)
        x = np.clip(x, -chain.range_ms2, chain.range_ms2)
        x = np.round(x / chain.lsb_ms2) * chain.lsb_ms2
        x = cfc_filter(x, BASE_HZ, chain.cfc)
        recorded.append(x)
    if chain.rate_hz == 500:
        return t[::2], (recorded[0][::2], recorded[1][::2], recorded[2][::2])
    if chain.rate_hz == 100:
        sos = signal.butter(4, chain.anti_alias_hz, fs=BASE_HZ, output="sos")
        low = [signal.sosfiltfilt(sos, x)[::10] for x in recorded]
        return t[::10], (low[0], low[1], low[2])
    return t, (recorded[0], recorded[1], recorded[2])
