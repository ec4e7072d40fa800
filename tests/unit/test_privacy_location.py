"""Location privacy on a synthetic commuter: home and work stops, trips between them, GPS noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trustlane.errors import MalformedInput, UsageError
from trustlane.privacy import get
from trustlane.privacy.location import (
    NS_PER_S,
    Track,
    distance_m,
    find_stops,
    geohash,
    geohash_cell,
    infer_zones,
    planar_laplace_radii,
    snap_to_grid,
    trim,
)

HOME = (48.1372, 11.5756)  # Munich
WORK = (48.1770, 11.5560)
T0 = 1_700_000_000 * NS_PER_S


def _commuter(days: int = 3, seed: int = 7) -> Track:
    """1 Hz samples: a night at home, a 20-minute drive, a day at work, the drive back, for ``days`` days."""
    rng = np.random.default_rng(seed)
    t: list[np.ndarray] = []
    lat: list[np.ndarray] = []
    lon: list[np.ndarray] = []
    now = T0
    plan = []
    for _ in range(days):
        plan += [(HOME, HOME, 3600), (HOME, WORK, 1200), (WORK, WORK, 4 * 3600), (WORK, HOME, 1200)]
    for (a_lat, a_lon), (b_lat, b_lon), seconds in plan:
        f = np.linspace(0, 1, seconds)
        t.append(now + np.arange(seconds, dtype=np.int64) * NS_PER_S)
        jitter = rng.normal(0, 5 / 111_000, (2, seconds))  # ~5 m GPS noise
        lat.append(a_lat + (b_lat - a_lat) * f + jitter[0])
        lon.append(a_lon + (b_lon - a_lon) * f + jitter[1])
        now += seconds * NS_PER_S
    return Track.of(np.concatenate(t), np.concatenate(lat), np.concatenate(lon))


def test_stops_and_zones_find_home_and_work() -> None:
    track = _commuter()
    stops = find_stops(track, min_dwell_s=600, radius_m=100)
    assert len(stops) == 6
    zones = infer_zones(stops)
    assert len(zones) == 2
    assert zones[0].visits == 3 and zones[0].dwell_s > zones[1].dwell_s
    found = {(round(z.lat, 3), round(z.lon, 3)) for z in zones}
    assert found == {(round(WORK[0], 3), round(WORK[1], 3)), (round(HOME[0], 3), round(HOME[1], 3))}


@pytest.mark.parametrize("mode", ["drop", "coarsen"])
def test_privacy_zones_leave_nothing_precise_near_home(mode: str) -> None:
    track = _commuter()
    out = get("location.zones").operate(track, {"mode": mode, "zone_radius_m": 500})
    for place in (HOME, WORK):
        d = distance_m(out.lat, out.lon, *place)
        if mode == "drop":
            assert d.min() > 500
        else:
            near = d <= 500 + 2000
            # every coarsened sample sits on a 2 km cell centre, not on the place itself
            assert np.unique(np.round(out.lat[d < 300], 9)).size <= 4
            assert near.any()
    assert len(out) < len(track) if mode == "drop" else len(out) == len(track)


def test_trim_removes_first_and_last_distance() -> None:
    track = _commuter(days=1)
    trip = track.select((track.t_ns >= T0 + 3600 * NS_PER_S) & (track.t_ns < T0 + 4800 * NS_PER_S))
    out = trim(trip, start_m=500, end_m=800)
    assert distance_m(out.lat[:1], out.lon[:1], *HOME)[0] >= 480
    assert distance_m(out.lat[-1:], out.lon[-1:], *WORK)[0] >= 780
    assert 0 < len(out) < len(trip)
    by_time = trim(trip, start_s=120, end_s=60)
    assert (by_time.t_ns[0] - trip.t_ns[0]) / NS_PER_S >= 120
    assert len(trim(trip, start_m=1e9)) == 0


def test_grid_cells_are_about_the_requested_size() -> None:
    rng = np.random.default_rng(3)
    for lat0 in (0.0, 48.0, 70.0):
        lat = lat0 + rng.uniform(0, 0.1, 2000)
        lon = rng.uniform(10, 10.1, 2000)
        c_lat, c_lon = snap_to_grid(lat, lon, 1000.0)
        d = np.array([distance_m(c_lat[i : i + 1], c_lon[i : i + 1], lat[i], lon[i])[0] for i in range(2000)])
        assert d.max() <= 1000 / math.sqrt(2) * 1.02  # never further than half the cell diagonal


def test_geohash_known_value_and_cell() -> None:
    # Niemeyer's example: 57.64911, 10.40744 → u4pruydqqvj
    assert geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"
    a, b, c, d = geohash_cell("u4pruydqqvj")
    assert a <= 57.64911 <= b and c <= 10.40744 <= d
    out = get("location.coarsen").operate(_commuter(1), {"method": "geohash", "geohash_precision": 5})
    assert np.unique(out.lat).size <= 4


def test_planar_laplace_radius_distribution() -> None:
    eps = 0.01
    rng = np.random.default_rng(11)
    r = planar_laplace_radii(eps, rng.uniform(0, 1, 200_000))
    # The radius is Gamma(2, 1/ε): mean 2/ε, and P(r ≤ x) = 1 − (1 + εx)e^(−εx).
    assert r.mean() == pytest.approx(2 / eps, rel=0.01)
    x = 150.0
    assert (r <= x).mean() == pytest.approx(1 - (1 + eps * x) * math.exp(-eps * x), abs=0.005)


def test_geoind_moves_points_by_the_expected_distance() -> None:
    track = _commuter(1)
    out = get("location.geoind").operate(track, {"epsilon_per_m": 0.02, "seed": 1})
    moved = np.array(
        [
            distance_m(out.lat[i : i + 1], out.lon[i : i + 1], track.lat[i], track.lon[i])[0]
            for i in range(0, len(track), 50)
        ]
    )
    assert moved.mean() == pytest.approx(100, rel=0.1)
    assert np.array_equal(out.t_ns, track.t_ns)
    assert get("location.geoind").validate({}) == ["location.geoind: setting 'epsilon_per_m' is required"]
    with pytest.raises(UsageError):
        get("location.geoind").operate(track, {"epsilon_per_m": -1})


def test_hostile_tracks_are_refused_with_the_sample_named() -> None:
    with pytest.raises(MalformedInput, match=r"sample 1 has an invalid position \(nan"):
        Track.of([1, 2, 3], [48.0, math.nan, 48.0], [11.0, 11.0, 11.0])
    with pytest.raises(MalformedInput, match="sample 0"):
        Track.of([1], [91.0], [0.0])
    with pytest.raises(MalformedInput, match="backwards"):
        Track.of([2, 1], [0.0, 0.0], [0.0, 0.0])
    with pytest.raises(MalformedInput, match="one length"):
        Track.of([1, 2], [0.0], [0.0, 0.0])
    with pytest.raises(MalformedInput, match="integer"):
        Track.of([1.5], [0.0], [0.0])


def test_empty_track_passes_through_every_processor() -> None:
    empty = Track.of(np.array([], np.int64), [], [])
    for name, config in [
        ("location.zones", {}),
        ("location.trim", {}),
        ("location.coarsen", {}),
        ("location.geoind", {"epsilon_per_m": 0.01}),
    ]:
        assert len(get(name).operate(empty, config)) == 0
