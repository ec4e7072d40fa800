"""Held-out figures for the shipped model: ``python -m trustlane.accident.training.evaluate [--recordings N]``.

Recordings come from data seeds never used in training or validation (:data:`.dataset.TEST_SEEDS`), every
scenario at 1000, 500 and 100 Hz. The windows are the ones the analysis would give the model: every event and
every ``non-collision-event`` finding of :func:`detect_collisions`, centred on the physics contact estimate
(events) or the first triggered sample (findings). A window is a collision when a true contact lies within
150 ms of its centre. Recordings without a collision also give the model their hardest moment, triggered or
not: the window at the largest 20 ms delta-V. For each true collision the detector found, the learned contact
time is compared with the truth and with the physics fit, once centred on the physics estimate and once on
time zero.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trustlane.accident.core import detect_collisions
from trustlane.accident.core.learned import LearnedAssessment, LearnedModel
from trustlane.accident.generator.chain import RATES
from trustlane.accident.generator.recording import generate
from trustlane.accident.generator.scenarios import SCENARIOS
from trustlane.accident.training.dataset import DURATION_S, TEST_SEEDS, accel_arrays, trigger_moments

MATCH_NS = 150_000_000


@dataclass
class Tally:
    windows: list[tuple[bool, float, str]] = field(default_factory=list)  # (is collision, p, scenario)
    directions: list[tuple[str, str]] = field(default_factory=list)  # (truth, learned)
    learned_error_ms: list[float] = field(default_factory=list)  # centred on the physics estimate
    learned_t0_error_ms: list[float] = field(default_factory=list)  # centred on time zero
    learned_sigma_ms: list[float] = field(default_factory=list)
    physics_error_ms: list[float] = field(default_factory=list)
    agree: list[bool] = field(default_factory=list)  # learned and physics within 2 combined sigmas
    hardest: list[tuple[float, str]] = field(default_factory=list)  # (p, scenario) at a non-collision's peak
    seconds: list[float] = field(default_factory=list)


def _timed(model: LearnedModel, tally: Tally, *args: Any, **kwargs: Any) -> LearnedAssessment:
    started = time.perf_counter()
    result = model.assess(*args, **kwargs)
    tally.seconds.append(time.perf_counter() - started)
    return result


def assess_recording(model: LearnedModel, name: str, seed: int, rate: int, tally: Tally) -> None:
    rec = generate(name, seed, DURATION_S, rate)
    t_ns, ax, ay, az = accel_arrays(rec)
    speed = next(c for c in rec.channels if c.name == "Vehicle.Speed")
    speed_t = rec.start_ns + np.round(speed.t_s * 1e9).astype(np.int64)
    found = detect_collisions(t_ns, ax, ay, vertical=az, speed_t_ns=speed_t, speed_kmh=speed.values)
    truth = rec.truth["collisions"]
    contacts = np.array([int(c["contact_ns"]) for c in truth], dtype=np.int64)

    def is_collision(centre: int) -> bool:
        return bool(len(contacts)) and bool(np.min(np.abs(contacts - centre)) <= MATCH_NS)

    for event in found.events:
        centre = event.contact.t_ns
        learned = _timed(model, tally, t_ns, ax, ay, contact_ns=centre, vertical=az)
        tally.windows.append((is_collision(centre), learned.crash_probability, name))
        if not is_collision(centre):
            continue
        k = int(np.argmin(np.abs(contacts - centre)))
        true_ns = int(contacts[k])
        tally.directions.append((truth[k]["direction"], learned.direction))
        tally.learned_error_ms.append((learned.contact_ns - true_ns) / 1e6)
        tally.learned_sigma_ms.append(learned.contact_sigma_ms)
        tally.physics_error_ms.append((centre - true_ns) / 1e6)
        combined = 2 * float(np.hypot(learned.contact_sigma_ms, event.contact.sigma_ms))
        tally.agree.append(abs(learned.contact_ns - centre) / 1e6 <= combined)
        from_t0 = _timed(model, tally, t_ns, ax, ay, contact_ns=event.t0_ns, vertical=az)
        tally.learned_t0_error_ms.append((from_t0.contact_ns - true_ns) / 1e6)
    for finding in found.findings:
        if finding.code != "non-collision-event" or finding.t_ns is None:
            continue
        learned = _timed(model, tally, t_ns, ax, ay, contact_ns=finding.t_ns, vertical=az)
        tally.windows.append((is_collision(finding.t_ns), learned.crash_probability, name))
    if not len(contacts):
        # the hardest moment of a recording without collision, triggered or not: largest 20 ms delta-V
        _, change = trigger_moments(t_ns, ax, ay)
        inner = (t_ns > t_ns[0] + 500_000_000) & (t_ns < t_ns[-1] - 500_000_000)
        peak = int(t_ns[int(np.argmax(np.where(inner, change, -1.0)))])
        learned = _timed(model, tally, t_ns, ax, ay, contact_ns=peak, vertical=az)
        tally.hardest.append((learned.crash_probability, name))


def _spread(values: list[float]) -> dict[str, float]:
    a = np.abs(np.asarray(values))
    if not len(a):
        return {}
    return {"median_ms": round(float(np.median(a)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3)}


def summarise(tally: Tally) -> dict[str, Any]:
    truth = np.array([w[0] for w in tally.windows], dtype=bool)
    flagged = np.array([w[1] >= 0.5 for w in tally.windows], dtype=bool)
    errors = np.abs(np.asarray(tally.learned_error_ms))
    sigma = np.asarray(tally.learned_sigma_ms)
    by_scenario: dict[str, list[int]] = {}
    for is_crash, p, name in tally.windows:
        if not is_crash:
            counts = by_scenario.setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += int(p >= 0.5)
    return {
        "windows": len(truth),
        "collision_windows": int(truth.sum()),
        "crash_accuracy": round(float(np.mean(truth == flagged)), 4) if len(truth) else None,
        "missed_collisions": int((truth & ~flagged).sum()),
        "false_positives": int((~truth & flagged).sum()),
        "non_collision_windows": int((~truth).sum()),
        "false_positives_by_scenario": {k: f"{v[1]}/{v[0]}" for k, v in sorted(by_scenario.items())},
        "non_collision_peak_windows": len(tally.hardest),
        "non_collision_peak_false_positives": {
            name: sum(p >= 0.5 for p, n in tally.hardest if n == name) for name in sorted({n for _, n in tally.hardest})
        },
        "direction_accuracy": round(float(np.mean([a == b for a, b in tally.directions])), 4)
        if tally.directions
        else None,
        "contact_learned": _spread(tally.learned_error_ms),
        "contact_learned_from_t0": _spread(tally.learned_t0_error_ms),
        "contact_physics": _spread(tally.physics_error_ms),
        "learned_within_2_sigma": round(float(np.mean(errors <= 2 * sigma)), 4) if len(errors) else None,
        "learned_sigma_median_ms": round(float(np.median(sigma)), 3) if len(sigma) else None,
        "learned_agrees_with_physics": round(float(np.mean(tally.agree)), 4) if tally.agree else None,
        "inference_ms_median": round(float(np.median(tally.seconds)) * 1e3, 3) if tally.seconds else None,
    }


def evaluate(model: LearnedModel, recordings: int, rates: tuple[int, ...] = RATES) -> dict[str, Any]:
    per_rate = {}
    for rate in rates:
        tally = Tally()
        for seed in TEST_SEEDS[:recordings]:
            for name in SCENARIOS:
                assess_recording(model, name, seed, rate, tally)
        per_rate[f"{rate} Hz"] = summarise(tally)
    return {"model": model.digest, "test_seeds": [TEST_SEEDS[0], TEST_SEEDS[recordings - 1]], "by_rate": per_rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trustlane.accident.training.evaluate", description=__doc__)
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--recordings", type=int, default=20, help="test recordings per scenario and rate")
    parser.add_argument("--rate", type=int, action="append", choices=RATES, help="only these rates")
    args = parser.parse_args(argv)
    if args.recordings < 1:
        parser.error("--recordings must be at least 1")
    model = LearnedModel.load(str(args.model) if args.model else None)
    print(json.dumps(evaluate(model, args.recordings, tuple(args.rate or RATES)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
