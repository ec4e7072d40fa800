"""Well-behaved: speed statistics and hard-braking events of one drive (aggregates only)."""

import numpy as np
from events import hard_braking_events


def run(inputs, params):
    speed = inputs["Vehicle.Speed"]
    kmh = np.asarray(speed.values, dtype=np.float64)
    seconds = (int(speed.t_ns[-1]) - int(speed.t_ns[0])) / 1e9 if len(speed) > 1 else 0.0
    edges = np.linspace(0.0, params.get("histogram_max_kmh", 200.0), params.get("bins", 10) + 1)
    counts, _ = np.histogram(kmh, bins=edges)
    return {
        "samples": len(speed),
        "duration_s": round(seconds, 3),
        "speed_kmh": {
            "max": round(float(kmh.max()), 2),
            "mean": round(float(kmh.mean()), 2),
            "p95": round(float(np.percentile(kmh, 95)), 2),
        },
        "histogram": {
            "edges_kmh": [float(e) for e in edges],
            "seconds": [round(c * seconds / len(kmh), 3) for c in counts.tolist()],
        },
        "hard_braking_events": hard_braking_events(speed.t_ns, kmh, params.get("threshold_mps2", -4.0)),
    }
