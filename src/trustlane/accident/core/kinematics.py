"""Velocity from acceleration: cumulative integrals and the change of velocity over sliding windows."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

KMH = 1 / 3.6  # m/s per km/h


def cumulative_velocity(t: FloatArray, a: FloatArray) -> FloatArray:
    """Velocity change since the first sample (m/s), by the trapezoid rule; ``t`` in s, ``a`` in m/s²."""
    v = np.zeros(len(t))
    if len(t) > 1:
        v[1:] = np.cumsum(0.5 * (a[1:] + a[:-1]) * np.diff(t))
    return v


def velocity_at(t: FloatArray, v: FloatArray, when: FloatArray | float) -> FloatArray:
    """``v`` interpolated linearly at ``when`` (held constant outside the samples)."""
    return np.asarray(np.interp(when, t, v), dtype=np.float64)


def window_change(t: FloatArray, v: FloatArray, window_s: float) -> FloatArray:
    """For each sample time s: v(s + window) − v(s), the velocity change over the window that starts at s."""
    return velocity_at(t, v, t + window_s) - v


def trailing_mean(t: FloatArray, v: FloatArray, far_s: float, near_s: float) -> FloatArray:
    """For each sample time s: the mean acceleration over [s − far, s − near], from the integral ``v``."""
    return (velocity_at(t, v, t - near_s) - velocity_at(t, v, t - far_s)) / (far_s - near_s)
