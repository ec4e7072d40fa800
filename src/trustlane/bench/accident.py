"""Accuracy of collision timing on held-out generated recordings, and the time to analyse a 30-minute recording.

Held-out means seeds from ``first_seed`` on (development used seeds below 10,000). For each rate, ``n``
recordings cycle through the scenario catalog; each is analysed from its arrays with the same core the CLI
uses. Contact-time errors are against the generator's true contact time (the instant the pulse starts).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trustlane.accident.core import detect_collisions
from trustlane.accident.generator.recording import Recording, generate
from trustlane.accident.generator.scenarios import COLLISIONS, NON_COLLISIONS

Progress = Callable[[str, float], None]
MATCH_NS = 100_000_000


def _noop(_: str, __: float) -> None:
    return None


def _arrays(rec: Recording) -> dict[str, Any]:
    ch = {c.name: c for c in rec.channels}
    lon = ch["Vehicle.Acceleration.Longitudinal"]
    t_ns = rec.start_ns + np.round(lon.t_s * 1e9).astype(np.int64)
    speed = ch["Vehicle.Speed"]
    return {
        "t_ns": t_ns,
        "longitudinal": lon.values,
        "lateral": ch["Vehicle.Acceleration.Lateral"].values,
        "vertical": ch["Vehicle.Acceleration.Vertical"].values,
        "speed_t_ns": rec.start_ns + np.round(speed.t_s * 1e9).astype(np.int64),
        "speed_kmh": speed.values,
    }


def _rate_figures(rate: int, n: int, first_seed: int, duration: float, progress: Progress) -> dict[str, Any]:
    errors: list[float] = []
    z: list[float] = []
    missed_8: list[str] = []
    false_positives: list[str] = []
    found = total_8 = 0
    names = [*COLLISIONS, *NON_COLLISIONS]
    for i in range(n):
        name = names[i % len(names)]
        seed = first_seed + i
        rec = generate(name, seed, duration, rate)
        a = _arrays(rec)
        d = detect_collisions(a.pop("t_ns"), a.pop("longitudinal"), a.pop("lateral"), **a)
        truth = rec.truth["collisions"]
        if not truth and d.events:
            false_positives.append(f"{name}/{seed}")
        for c in truth:
            near = [e for e in d.events if abs(e.contact.t_ns - c["contact_ns"]) < MATCH_NS]
            big = c["delta_v_kmh"] >= 8.0
            total_8 += big
            if not near:
                if big:
                    missed_8.append(f"{name}/{seed}")
                continue
            found += big
            e = min(near, key=lambda e: abs(e.contact.t_ns - c["contact_ns"]))
            err = (e.contact.t_ns - c["contact_ns"]) / 1e6
            errors.append(err)
            z.append(abs(err) / max(e.contact.sigma_ms, 1e-9))
        progress(f"{rate} Hz", (i + 1) / n)
    abs_err = np.abs(np.array(errors)) if errors else np.array([np.nan])
    return {
        "rate_hz": rate,
        "recordings": n,
        "collisions_timed": len(errors),
        "contact_error_median_ms": round(float(np.median(abs_err)), 3),
        "contact_error_p95_ms": round(float(np.percentile(abs_err, 95)), 3),
        "within_2_sigma": round(float(np.mean(np.array(z) <= 2)) if z else float("nan"), 3),
        "found_of_8kmh": f"{found}/{total_8}",
        "missed_8kmh": missed_8,
        "false_positives": false_positives,
    }


def long_recording_seconds(minutes: float = 30.0) -> dict[str, float]:
    """Write a front-collision recording of ``minutes`` (1 kHz accel, 100 Hz CAN, 10 Hz ADAS) as CSV and time
    ``analyse_file`` on it (read + detect), beside the time of the detection alone."""
    from trustlane.accident.analyse import analyse_file
    from trustlane.accident.generator.writer import write_csv

    rec = generate("front", 424242, minutes * 60, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.csv"
        write_csv(rec, path)
        size = path.stat().st_size
        begin = time.perf_counter()
        result = analyse_file(path)
        total = time.perf_counter() - begin
    a = _arrays(rec)
    begin = time.perf_counter()
    detect_collisions(a.pop("t_ns"), a.pop("longitudinal"), a.pop("lateral"), **a)
    core = time.perf_counter() - begin
    return {
        "long_minutes": minutes,
        "long_csv_mb": round(size / 1e6, 1),
        "long_read_and_detect_s": round(total, 2),
        "long_detect_only_s": round(core, 2),
        "long_events": float(len(result["events"])),
    }


def accuracy(
    n: int = 39,
    first_seed: int = 10_000,
    duration: float = 40.0,
    rates: tuple[int, ...] = (1000, 500, 100),
    long_minutes: float = 30.0,
    progress: Progress = _noop,
) -> dict[str, Any]:
    """Figures per rate, and the 30-minute timing; the keys are flat for `trustlane bench` tables."""
    out: dict[str, Any] = {}
    for rate in rates:
        for key, value in _rate_figures(rate, n, first_seed, duration, progress).items():
            out[f"{rate}hz_{key}"] = value
    if long_minutes > 0:
        progress("30-minute recording", 0.0)
        out.update(long_recording_seconds(long_minutes))
    return out
