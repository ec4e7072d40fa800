"""Re-identification risk: trajectory uniqueness and k-anonymity."""

from __future__ import annotations

import numpy as np
import pytest

from trustlane.errors import MalformedInput
from trustlane.privacy import get
from trustlane.privacy.location import NS_PER_S, Track
from trustlane.privacy.risk import k_anonymity, uniqueness

T0 = 1_700_000_000 * NS_PER_S


def _fleet(n: int, same: bool, seed: int = 1) -> list[Track]:
    """Hourly positions over a day: each vehicle its own random places, or all the same place."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(24, dtype=np.int64) * 3600 * NS_PER_S
    tracks = []
    for _ in range(n):
        if same:
            lat, lon = np.full(24, 48.1), np.full(24, 11.5)
        else:
            lat, lon = 48 + rng.uniform(0, 0.5, 24), 11 + rng.uniform(0, 0.5, 24)
        tracks.append(Track.of(t, lat, lon))
    return tracks


def test_distinct_trajectories_are_unique_and_identical_ones_are_not() -> None:
    rng = np.random.default_rng(0)
    assert uniqueness(_fleet(200, False), k=4, cell_m=1000, rng=rng).fraction_unique == 1.0
    assert uniqueness(_fleet(200, True), k=4, cell_m=1000, rng=rng).fraction_unique == 0.0


def test_coarser_resolution_lowers_uniqueness() -> None:
    fleet = _fleet(300, False, seed=3)
    fine = uniqueness(fleet, k=2, cell_m=500, bin_s=3600, rng=np.random.default_rng(1))
    coarse = uniqueness(fleet, k=2, cell_m=50_000, bin_s=6 * 3600, rng=np.random.default_rng(1))
    assert coarse.fraction_unique < fine.fraction_unique
    assert fine.to_json()["evaluated"] == 300


def test_short_trajectories_are_not_evaluated() -> None:
    t = Track.of([T0], [48.0], [11.0])
    r = uniqueness([t, t], k=2)
    assert r.evaluated == 0 and r.fraction_unique == 0.0
    with pytest.raises(MalformedInput):
        uniqueness([t], k=0)


def test_k_anonymity_counts_small_classes() -> None:
    rows = [("80331", "1980s", "M")] * 5 + [("80333", "1970s", "F")] * 2 + [("80335", "1990s", "M")]
    r = k_anonymity(rows, k=3)
    assert (r.records, r.classes, r.min_class_size, r.records_below_k) == (8, 3, 1, 3)
    assert r.fraction_below_k == pytest.approx(3 / 8)
    assert k_anonymity(rows, k=1).to_json()["k_anonymous"] is True
    dicts = [{"zip": z, "age": a, "x": 1} for z, a, _ in rows]
    assert k_anonymity(dicts, 2, ["zip", "age"]).records_below_k == 1
    with pytest.raises(MalformedInput, match="lacks"):
        k_anonymity([{"zip": 1}], 2, ["zip", "age"])
    assert k_anonymity([], 2).min_class_size == 0


def test_risk_report_threshold() -> None:
    p = get("risk.report")
    risky = p.operate({"trajectories": _fleet(50, False)}, {"seed": 1})
    assert risky["passes"] is False and risky["uniqueness"]["fraction_unique"] == 1.0
    safe = p.operate({"trajectories": _fleet(50, True), "table": [("a",)] * 10}, {"seed": 1})
    assert safe["passes"] is True
    assert p.validate({"points": 0}) != []
