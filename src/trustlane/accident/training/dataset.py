"""Training data from the scenario generator: short snippets of acceleration around labelled moments.

Each generated recording yields snippets (1.5 s of acceleration at the recording's own rate) anchored at
* every collision's true contact time (label crash, struck side, contact offset 0),
* every road or body event (pothole, curb strike, door slam) at its start,
* every trigger-like moment away from a collision (the 20 ms delta-V passes 0.8 km/h: braking, bumps),
* one quiet moment of ordinary driving.
Windows are cut from the snippets at training time with a fresh proposal offset each epoch, so the network
sees the proposal (physics estimate or time zero) land anywhere from 40 ms before to 80 ms after contact.
Snippets are cached under the system temp folder, keyed by what produced them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trustlane.accident.core.learned import CENTRE, CHANNELS, DIRECTIONS, WINDOW, window_features
from trustlane.accident.generator.chain import RATES
from trustlane.accident.generator.recording import Recording, generate
from trustlane.accident.generator.scenarios import SCENARIOS

FloatArray = npt.NDArray[np.float64]
SNIPPET_BEFORE_NS = 600_000_000
SNIPPET_AFTER_NS = 900_000_000
#: proposal minus true contact (ms): the physics fit lands near 0, time zero up to tens of ms late
OFFSET_RANGE_MS = (-40.0, 80.0)
DURATION_S = 20.0
T0_DELTA_V_MS = 0.8 / 3.6
ACCEL = ("Vehicle.Acceleration.Longitudinal", "Vehicle.Acceleration.Lateral", "Vehicle.Acceleration.Vertical")
#: data seeds: training, validation (early stopping, sigma calibration) and held-out test never overlap
TRAIN_SEEDS = range(1, 10_001)
VALIDATION_SEEDS = range(50_001, 60_001)
TEST_SEEDS = range(90_001, 100_001)


@dataclass
class Snippets:
    """Concatenated snippets; snippet ``k`` is ``offsets[k]:offsets[k + 1]`` of the sample arrays."""

    t_ns: npt.NDArray[np.int64]  # relative to the snippet's anchor
    ax: npt.NDArray[np.float32]
    ay: npt.NDArray[np.float32]
    az: npt.NDArray[np.float32]
    offsets: npt.NDArray[np.int64]
    crash: npt.NDArray[np.int64]  # 1 collision, 0 not
    direction: npt.NDArray[np.int64]  # index in DIRECTIONS, -1 for non-collisions
    rate_hz: npt.NDArray[np.int64]
    kind: list[str]  # scenario/anchor, for reporting

    def __len__(self) -> int:
        return len(self.crash)


def recording_plan(seeds: Iterable[int]) -> list[tuple[str, int, int]]:
    """(scenario, data seed, acceleration rate) for every scenario at every seed; rates rotate over seeds."""
    return [(name, seed, RATES[(seed + k) % len(RATES)]) for seed in seeds for k, name in enumerate(SCENARIOS)]


def accel_arrays(rec: Recording) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray]:
    by_name = {c.name: c for c in rec.channels}
    x, y, z = (by_name[n] for n in ACCEL)
    t_ns = rec.start_ns + np.round(x.t_s * 1e9).astype(np.int64)
    return t_ns, x.values.astype(np.float64), y.values.astype(np.float64), z.values.astype(np.float64)


def trigger_moments(t_ns: npt.NDArray[np.int64], ax: FloatArray, ay: FloatArray) -> tuple[list[int], FloatArray]:
    """First sample of each run where the 20 ms delta-V exceeds 0.8 km/h (runs < 100 ms apart merged), and the
    largest 20 ms delta-V (m/s, either axis) per sample."""
    t = (t_ns - t_ns[0]) / 1e9
    change = np.zeros(len(t))
    for a in (ax, ay):
        v = np.concatenate(([0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) * np.diff(t))))
        change = np.maximum(change, np.abs(np.interp(t + 0.02, t, v) - v))
    idx = np.flatnonzero(change > T0_DELTA_V_MS)
    if not len(idx):
        return [], change
    starts = idx[np.concatenate(([True], np.diff(t[idx]) > 0.1))]
    return [int(t_ns[i]) for i in starts], change


def _anchors(
    rec: Recording, t_ns: npt.NDArray[np.int64], ax: FloatArray, ay: FloatArray
) -> list[tuple[int, int, int, str]]:
    """(anchor ns, crash, direction index, kind) for one recording."""
    truth = rec.truth
    contacts = [(int(c["contact_ns"]), int(c["end_ns"])) for c in truth["collisions"]]
    out = [
        (c, 1, DIRECTIONS.index(d["direction"]), f"{rec.name}/contact")
        for (c, _), d in zip(contacts, truth["collisions"], strict=True)
    ]
    for event in truth["non_collision_events"]:
        if "t_ns" in event:
            out.append((int(event["t_ns"]), 0, -1, f"{rec.name}/{event['kind']}"))

    def clear(when: int, before_s: float, after_s: float) -> bool:
        return all(when < c - before_s * 1e9 or when > end + after_s * 1e9 for c, end in contacts)

    moments, change = trigger_moments(t_ns, ax, ay)
    for when in moments:
        if clear(when, 0.3, 0.6) and all(abs(when - a[0]) > 50_000_000 for a in out):
            out.append((when, 0, -1, f"{rec.name}/trigger"))
    # the moment nearest to a trigger (braking onset, a bump): the hardest ordinary window of the recording
    quiet = np.array([clear(int(x), 1.0, 0.6) for x in t_ns[:: max(1, len(t_ns) // 2000)]])
    step = max(1, len(t_ns) // 2000)
    if quiet.any():
        k = int(np.argmax(np.where(quiet, change[::step], -1.0))) * step
        if all(abs(int(t_ns[k]) - a[0]) > 50_000_000 for a in out):
            out.append((int(t_ns[k]), 0, -1, f"{rec.name}/peak"))
    rng = np.random.default_rng([truth["seed"], len(rec.name)])
    for _ in range(20):
        when = int(t_ns[0] + rng.uniform(2.0, DURATION_S - 2.0) * 1e9)
        if clear(when, 1.0, 1.0):
            out.append((when, 0, -1, f"{rec.name}/driving"))
            break
    lo, hi = int(t_ns[0]) + SNIPPET_BEFORE_NS, int(t_ns[-1]) - SNIPPET_AFTER_NS
    return [a for a in out if lo <= a[0] <= hi]


def snippets_of(
    name: str, seed: int, rate_hz: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray, int, int, int, str]]:
    rec = generate(name, seed, DURATION_S, rate_hz)
    t_ns, ax, ay, az = accel_arrays(rec)
    out = []
    for anchor, crash, direction, kind in _anchors(rec, t_ns, ax, ay):
        lo = int(np.searchsorted(t_ns, anchor - SNIPPET_BEFORE_NS))
        hi = int(np.searchsorted(t_ns, anchor + SNIPPET_AFTER_NS))
        out.append((t_ns[lo:hi] - anchor, ax[lo:hi], ay[lo:hi], az[lo:hi], crash, direction, rate_hz, kind))
    return out


def _build(plan: list[tuple[str, int, int]], workers: int) -> Snippets:
    parts: list[list[tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray, int, int, int, str]]]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(snippets_of, *zip(*plan, strict=True), chunksize=8))
    else:
        parts = [snippets_of(*p) for p in plan]
    flat = [s for part in parts for s in part]
    lengths = np.array([len(s[0]) for s in flat], dtype=np.int64)
    return Snippets(
        t_ns=np.concatenate([s[0] for s in flat]),
        ax=np.concatenate([s[1] for s in flat]).astype(np.float32),
        ay=np.concatenate([s[2] for s in flat]).astype(np.float32),
        az=np.concatenate([s[3] for s in flat]).astype(np.float32),
        offsets=np.concatenate(([0], np.cumsum(lengths))).astype(np.int64),
        crash=np.array([s[4] for s in flat], dtype=np.int64),
        direction=np.array([s[5] for s in flat], dtype=np.int64),
        rate_hz=np.array([s[6] for s in flat], dtype=np.int64),
        kind=[s[7] for s in flat],
    )


def load_snippets(seeds: Iterable[int], *, cache: Path | None = None, workers: int = 1) -> Snippets:
    """Snippets for every scenario at ``seeds``, from the cache when the same plan was built before."""
    plan = recording_plan(seeds)
    key = hashlib.sha256(json.dumps([plan, OFFSET_RANGE_MS, DURATION_S, SNIPPET_BEFORE_NS, SNIPPET_AFTER_NS]).encode())
    folder = cache if cache is not None else Path(tempfile.gettempdir()) / "trustlane-learned-cache"
    path = folder / f"snippets-{key.hexdigest()[:16]}.npz"
    if path.exists():
        with np.load(path) as data:
            fields = {k: data[k] for k in data.files}
        return Snippets(kind=[str(k) for k in fields.pop("kind")], **fields)
    built = _build(plan, workers)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    with tmp.open("wb") as handle:
        np.savez(handle, **{k: v for k, v in vars(built).items() if k != "kind"}, kind=np.array(built.kind))
    tmp.replace(path)
    return built


def windows(
    data: Snippets, index: npt.NDArray[np.int64], rng: np.random.Generator, *, augment: bool
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Inputs for snippets ``index`` with random proposal offsets: (features, contact offset ms, direction).

    The contact offset is where the true contact lies relative to the window's proposal (CENTRE). With
    ``augment``, half the windows are mirrored left/right and a third lose the vertical axis.
    """
    features = np.empty((len(index), len(CHANNELS), WINDOW), dtype=np.float32)
    offsets = rng.uniform(*OFFSET_RANGE_MS, len(index))
    mirror = rng.random(len(index)) < 0.5 if augment else np.zeros(len(index), dtype=bool)
    drop_vertical = rng.random(len(index)) < 0.33 if augment else np.zeros(len(index), dtype=bool)
    for row, k in enumerate(index):
        lo, hi = data.offsets[k], data.offsets[k + 1]
        ay = -data.ay[lo:hi] if mirror[row] else data.ay[lo:hi]
        az = None if drop_vertical[row] else data.az[lo:hi]
        features[row] = window_features(data.t_ns[lo:hi], data.ax[lo:hi], ay, round(offsets[row] * 1e6), az)
    swap = np.array([0, 1, 3, 2, -1])  # a mirrored vehicle is struck on the other side; -1 (no collision) stays
    direction = data.direction[index]
    return features, -offsets, np.where(mirror, swap[direction], direction)


__all__ = ["CENTRE", "Snippets", "load_snippets", "recording_plan", "windows"]
