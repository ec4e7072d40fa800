"""Checks on the input before any analysis: time order, gaps, sample rate, saturation, units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import SignalError
from .kinematics import KMH

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

G = 9.80665
#: Below this rate a 20 ms window holds less than two samples: crash pulses cannot be timed.
MIN_RATE_HZ = 50.0
#: A step longer than this many nominal periods is a gap.
GAP_FACTOR = 2.5


def require_increasing(t_ns: IntArray, what: str) -> None:
    """Refuse duplicated or backward timestamps, naming the first one."""
    steps = np.diff(t_ns)
    bad = np.flatnonzero(steps <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        problem = "repeats" if steps[bad[0]] == 0 else "goes back before"
        raise SignalError(
            f"{what}: sample {i + 1} at {int(t_ns[i])} ns {problem} the previous one ({int(t_ns[i - 1])} ns)",
            hint="timestamps must strictly increase: sort the samples by time and drop duplicates",
        )


def nominal_period_ns(t_ns: IntArray) -> float:
    """The median step between samples."""
    return float(np.median(np.diff(t_ns))) if len(t_ns) > 1 else 0.0


def check_rate(t_ns: IntArray, what: str) -> float:
    """The sample rate in Hz; refuses rates too low to time a crash pulse."""
    if len(t_ns) < 20:
        raise SignalError(
            f"{what}: only {len(t_ns)} samples", hint="collision timing needs the acceleration around the crash"
        )
    rate = 1e9 / nominal_period_ns(t_ns)
    if rate < MIN_RATE_HZ:
        raise SignalError(
            f"{what}: sampled at {rate:.1f} Hz; timing a crash pulse needs at least {MIN_RATE_HZ:.0f} Hz",
            hint="use the airbag control unit's crash pulse or an accelerometer logged at 100 Hz or more",
        )
    return rate


def gap_edges(t_ns: IntArray) -> list[tuple[int, int]]:
    """Index ranges [start, stop) of the runs of samples without a gap between them."""
    period = nominal_period_ns(t_ns)
    breaks = np.flatnonzero(np.diff(t_ns) > GAP_FACTOR * period) + 1
    edges = [0, *breaks.tolist(), len(t_ns)]
    return [(edges[k], edges[k + 1]) for k in range(len(edges) - 1)]


@dataclass(frozen=True)
class ClippedRun:
    start: int
    stop: int  # exclusive
    level: float


def clipped_runs(values: FloatArray, min_level: float = 2 * G, min_length: int = 3) -> list[ClippedRun]:
    """Runs of samples stuck at the largest magnitude the signal reaches: a saturated sensor's flat top.

    Only levels above ``min_level`` count, so a quiet, quantised signal is not mistaken for a clipped one.
    """
    runs: list[ClippedRun] = []
    if not len(values):
        return runs
    for level in (float(np.max(values)), float(np.min(values))):
        if abs(level) < min_level:
            continue
        at = np.abs(values - level) <= 1e-9 * abs(level)
        starts = np.flatnonzero(at & ~np.concatenate(([False], at[:-1])))
        stops = np.flatnonzero(at & ~np.concatenate((at[1:], [False]))) + 1
        runs.extend(
            ClippedRun(int(a), int(b), level) for a, b in zip(starts, stops, strict=True) if b - a >= min_length
        )
    return runs


@dataclass(frozen=True)
class UnitEvidence:
    """What the data say about the unit of the longitudinal acceleration."""

    unit: str | None  # "m/s^2", "g", or None when undecided
    ratio: float | None  # fitted speed change per integrated acceleration unit (1 for m/s², 9.81 for g)
    basis: str


def unit_from_speed(
    t_ns: IntArray,
    longitudinal: FloatArray,
    speed_t_ns: IntArray,
    speed_kmh: FloatArray,
    exclude: list[tuple[int, int]],
) -> UnitEvidence:
    """Regress the vehicle speed's change over 1 s windows on the integrated acceleration over the same windows.

    A slope near 1 means m/s², near 9.81 means g. ``exclude`` are (start_ns, end_ns) spans to leave out
    (crash pulses, where wheel speeds are meaningless).
    """
    if len(speed_t_ns) < 20 or len(t_ns) < 20:
        return UnitEvidence(None, None, "too few speed samples to check the acceleration's unit")
    t0 = int(t_ns[0])
    ts = (t_ns - t0) / 1e9
    v = np.concatenate(([0.0], np.cumsum(0.5 * (longitudinal[1:] + longitudinal[:-1]) * np.diff(ts))))
    starts = np.arange(max(ts[0], (speed_t_ns[0] - t0) / 1e9), min(ts[-1], (speed_t_ns[-1] - t0) / 1e9) - 1.0, 1.0)
    keep = np.ones(len(starts), dtype=bool)
    for a, b in exclude:
        keep &= (starts + 1.0 < (a - t0) / 1e9 - 0.5) | (starts > (b - t0) / 1e9 + 1.0)
    starts = starts[keep]
    if len(starts) < 10:
        return UnitEvidence(None, None, "the recording is too short to check the acceleration's unit against speed")
    integrated = np.interp(starts + 1.0, ts, v) - np.interp(starts, ts, v)
    st = (speed_t_ns - t0) / 1e9
    measured = (np.interp(starts + 1.0, st, speed_kmh) - np.interp(starts, st, speed_kmh)) * KMH
    spread = float(np.std(integrated))
    if spread < 1e-6 or float(np.std(measured)) < 0.2:
        return UnitEvidence(None, None, "the speed hardly changes: the acceleration's unit cannot be checked")
    x = integrated - integrated.mean()
    slope = float(np.dot(x, measured - measured.mean()) / np.dot(x, x))
    if 0.7 <= slope <= 1.4:
        return UnitEvidence("m/s^2", slope, f"speed change / integrated acceleration = {slope:.2f} (m/s²)")
    if 0.7 * G <= slope <= 1.4 * G:
        return UnitEvidence("g", slope, f"speed change / integrated acceleration = {slope:.2f} (g)")
    return UnitEvidence(None, slope, f"speed change / integrated acceleration = {slope:.2f}: neither m/s² nor g")


def unit_from_gravity(vertical: FloatArray) -> UnitEvidence:
    """A vertical accelerometer at rest reads gravity: about 9.81 in m/s², about 1 in g."""
    if len(vertical) < 20:
        return UnitEvidence(None, None, "too few vertical samples")
    level = float(np.median(vertical))
    if abs(level - G) < 0.15 * G:
        return UnitEvidence("m/s^2", None, f"vertical acceleration reads {level:.2f} (gravity in m/s²)")
    if abs(level - 1.0) < 0.15:
        return UnitEvidence("g", None, f"vertical acceleration reads {level:.3f} (gravity in g)")
    return UnitEvidence(None, None, f"vertical acceleration reads {level:.2f}: gravity removed or another unit")
