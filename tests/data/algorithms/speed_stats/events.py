"""Counting hard-braking events from a speed trace."""

import numpy as np


def hard_braking_events(t_ns, kmh, threshold_mps2):
    """Number of separate stretches where the deceleration (over 100 ms windows) exceeds the threshold."""
    if len(kmh) < 2:
        return 0
    seconds = (np.asarray(t_ns, dtype=np.int64) - int(t_ns[0])) / 1e9
    step = max(1, round(0.1 / max(float(np.median(np.diff(seconds))), 1e-9)))
    mps = kmh[::step] / 3.6
    accel = np.diff(mps) / np.diff(seconds[::step])
    braking = accel < threshold_mps2
    return int(np.count_nonzero(braking[1:] & ~braking[:-1]) + int(braking[0]))
