"""Summary statistics of the vehicle speed: what an agency may learn without seeing the series."""

import numpy as np


def run(inputs, params):
    speed = inputs["Vehicle.Speed"]
    values = np.asarray(speed.values, dtype=float)
    threshold = float(params.get("threshold_kmh", 50.0))
    above = values > threshold
    return {
        "samples": int(values.size),
        "max_kmh": round(float(values.max()), 3),
        "mean_kmh": round(float(values.mean()), 3),
        "seconds_above_threshold": round(float(above.sum()) / 100.0, 2),
        "first_ns": str(int(speed.t_ns[0])),
        "last_ns": str(int(speed.t_ns[-1])),
    }
