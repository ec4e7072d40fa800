"""Event data recorder quantities: time zero, end of event, trigger and lock thresholds.

* Time zero (49 CFR 563.5, GB 39732-2020): the first point of the first 20 ms interval in which the cumulative
  delta-V exceeds 0.8 km/h, longitudinally or laterally.
* End of event: the moment the cumulative delta-V within 20 ms becomes 0.8 km/h or less.
* Trigger: a velocity change of at least 8 km/h within 150 ms, longitudinal or lateral.
* Lock (GB 39732-2020): a longitudinal velocity change of at least 25 km/h within 150 ms.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .kinematics import KMH, window_change

FloatArray = npt.NDArray[np.float64]

T0_WINDOW_S = 0.020
T0_DELTA_V = 0.8 * KMH
TRIGGER_WINDOW_S = 0.150
TRIGGER_DELTA_V = 8.0 * KMH
LOCK_DELTA_V = 25.0 * KMH


def above_t0_threshold(t: FloatArray, vx: FloatArray, vy: FloatArray) -> npt.NDArray[np.bool_]:
    """Per sample: does the 20 ms interval starting here hold more than 0.8 km/h of delta-V on either axis?"""
    return (np.abs(window_change(t, vx, T0_WINDOW_S)) > T0_DELTA_V) | (
        np.abs(window_change(t, vy, T0_WINDOW_S)) > T0_DELTA_V
    )


def first_t0(t: FloatArray, vx: FloatArray, vy: FloatArray, lo: int, hi: int) -> int | None:
    """Index of time zero within samples [lo, hi), or None when the threshold is never exceeded there."""
    hit = np.flatnonzero(above_t0_threshold(t[lo:hi], vx[lo:hi], vy[lo:hi]))
    return lo + int(hit[0]) if len(hit) else None


def largest_window_change(t: FloatArray, v: FloatArray, lo: int, hi: int, window_s: float) -> float:
    """Largest |v(s + window) − v(s)| for s over samples [lo, hi) (velocity read from the whole record)."""
    if hi <= lo:
        return 0.0
    ends = np.interp(t[lo:hi] + window_s, t, v)
    return float(np.max(np.abs(ends - v[lo:hi])))


def trigger_and_lock(t: FloatArray, vx: FloatArray, vy: FloatArray, lo: int, hi: int) -> tuple[bool, bool]:
    """Whether samples [lo, hi) reach the trigger and the lock thresholds."""
    dvx = largest_window_change(t, vx, lo, hi, TRIGGER_WINDOW_S)
    dvy = largest_window_change(t, vy, lo, hi, TRIGGER_WINDOW_S)
    return max(dvx, dvy) >= TRIGGER_DELTA_V, dvx >= LOCK_DELTA_V
