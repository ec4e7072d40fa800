"""Driving summary: aggregate figures of a trip, never the series itself.

Inputs (any subset): Vehicle.Speed (km/h), Vehicle.Acceleration.Longitudinal and .Lateral (m/s²).
Params: ``harsh_brake_ms2`` (default 3.5, a common telematics threshold), ``overspeed_kmh`` (default 120).
"""

import numpy as np

SPEED = "Vehicle.Speed"
LONGITUDINAL = "Vehicle.Acceleration.Longitudinal"
LATERAL = "Vehicle.Acceleration.Lateral"


def _duration_s(t_ns):
    return float(t_ns[-1] - t_ns[0]) / 1e9 if len(t_ns) > 1 else 0.0


def _time_above(t_ns, mask):
    """Seconds during which ``mask`` holds, counting each sample for the interval to the next one."""
    if len(t_ns) < 2:
        return 0.0
    dt = np.diff(t_ns.astype(np.float64)) / 1e9
    return float(dt[mask[:-1]].sum())


def _events(t_ns, mask, min_gap_s=2.0):
    """Number of separate episodes where ``mask`` holds (episodes closer than ``min_gap_s`` merge)."""
    times = t_ns[mask]
    if times.size == 0:
        return 0
    gaps = np.diff(times.astype(np.float64)) / 1e9
    return int(1 + np.count_nonzero(gaps > min_gap_s))


def run(inputs, params):
    harsh = float(params.get("harsh_brake_ms2", 3.5))
    overspeed = float(params.get("overspeed_kmh", 120.0))
    out = {"signals": sorted(inputs)}
    if SPEED in inputs:
        s = inputs[SPEED]
        v = np.asarray(s.values, dtype=np.float64)
        t = np.asarray(s.t_ns)
        out["speed"] = {
            "samples": int(v.size),
            "duration_s": round(_duration_s(t), 3),
            "max_kmh": round(float(v.max()), 2) if v.size else None,
            "mean_kmh": round(float(v.mean()), 2) if v.size else None,
            "distance_km": round(float(np.trapezoid(v, t.astype(np.float64) / 1e9) / 3600.0), 4) if v.size > 1 else 0.0,
            "overspeed_s": round(_time_above(t, v > overspeed), 2),
        }
    if LONGITUDINAL in inputs:
        a = inputs[LONGITUDINAL]
        x = np.asarray(a.values, dtype=np.float64)
        t = np.asarray(a.t_ns)
        out["longitudinal"] = {
            "samples": int(x.size),
            "max_decel_ms2": round(float(-x.min()), 3) if x.size else None,
            "max_accel_ms2": round(float(x.max()), 3) if x.size else None,
            "harsh_braking_events": _events(t, x < -harsh),
        }
    if LATERAL in inputs:
        y = np.asarray(inputs[LATERAL].values, dtype=np.float64)
        out["lateral"] = {"samples": int(y.size), "max_abs_ms2": round(float(np.abs(y).max()), 3) if y.size else None}
    return out
