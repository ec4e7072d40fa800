"""Location privacy on tracks of (t_ns, lat, lon): privacy zones around inferred home/work stops, trip
start/end trimming, grid and geohash coarsening, and geo-indistinguishability (planar Laplace).

Distances use a local equirectangular projection (error under 0.1 % below 50 km), which is ample for zones
of a few hundred metres and noise of tens to thousands of metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import lambertw  # type: ignore[import-untyped]

from trustlane.errors import MalformedInput
from trustlane.privacy.base import REQUIRED, Processor, register

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Track:
    """Samples in time order: ``t_ns`` int64 (Unix ns, UTC), ``lat``/``lon`` float64 degrees (WGS 84)."""

    t_ns: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    @classmethod
    def of(cls, t_ns: Any, lat: Any, lon: Any) -> Track:
        """Validate and copy: equal lengths, finite coordinates in range, times not decreasing."""
        t = np.asarray(t_ns)
        la, lo = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        if t.ndim != 1 or la.shape != t.shape or lo.shape != t.shape:
            raise MalformedInput(f"a track needs three 1-D arrays of one length, got {t.shape}, {la.shape}, {lo.shape}")
        if t.size and not np.issubdtype(t.dtype, np.integer):
            raise MalformedInput(f"t_ns must be integer nanoseconds, got {t.dtype}", hint="convert times to int64 ns")
        bad = ~(np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90) & (np.abs(lo) <= 180))
        if bad.any():
            i = int(np.argmax(bad))
            raise MalformedInput(
                f"sample {i} has an invalid position ({la[i]}, {lo[i]}); {int(bad.sum())} such samples",
                hint="drop samples without a valid fix (NaN or out of range) before processing",
            )
        t64 = t.astype(np.int64)
        if t64.size > 1 and (np.diff(t64) < 0).any():
            raise MalformedInput("t_ns goes backwards", hint="sort the samples by time first")
        return cls(t64.copy(), la.copy(), lo.copy())

    def __len__(self) -> int:
        return int(self.t_ns.size)

    def select(self, keep: np.ndarray) -> Track:
        return Track(self.t_ns[keep], self.lat[keep], self.lon[keep])


def _as_track(data: Any) -> Track:
    if isinstance(data, Track):
        return data
    t, la, lo = data
    return Track.of(t, la, lo)


def offsets_m(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """East and north offsets in metres from (lat0, lon0)."""
    east = (lon - lon0) * M_PER_DEG_LAT * math.cos(math.radians(lat0))
    north = (lat - lat0) * M_PER_DEG_LAT
    return east, north


def distance_m(lat: np.ndarray, lon: np.ndarray, lat0: float, lon0: float) -> np.ndarray:
    east, north = offsets_m(lat, lon, lat0, lon0)
    return np.asarray(np.hypot(east, north))


def step_lengths_m(track: Track) -> np.ndarray:
    if len(track) < 2:
        return np.zeros(0)
    mid = np.radians((track.lat[1:] + track.lat[:-1]) / 2)
    east = np.diff(track.lon) * M_PER_DEG_LAT * np.cos(mid)
    north = np.diff(track.lat) * M_PER_DEG_LAT
    return np.asarray(np.hypot(east, north))


# ---- stops and privacy zones -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    lat: float
    lon: float
    start_ns: int
    end_ns: int

    @property
    def dwell_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S


@dataclass(frozen=True)
class Zone:
    lat: float
    lon: float
    radius_m: float
    dwell_s: float
    visits: int


def _first_outside(track: Track, i: int, radius_m: float) -> int:
    """Index of the first sample after ``i`` farther than ``radius_m`` from it (``len`` if none), looking
    through growing windows so a moving vehicle costs O(1) per sample, not O(n)."""
    n, window = len(track), 64
    start = i
    while start < n:
        end = min(n, start + window)
        d = distance_m(track.lat[start:end], track.lon[start:end], float(track.lat[i]), float(track.lon[i]))
        outside = np.nonzero(d > radius_m)[0]
        if outside.size:
            return start + int(outside[0])
        start, window = end, window * 2
    return n


def find_stops(track: Track, min_dwell_s: float = 600.0, radius_m: float = 100.0, max_gap_s: float = 0) -> list[Stop]:
    """Runs of samples staying within ``radius_m`` of the run's first sample for at least ``min_dwell_s``.

    A gap in the samples (engine off: no fixes while parked) counts as dwell: a parked car usually logs
    nothing. ``max_gap_s`` > 0 ends a run at a longer gap instead.
    """
    stops: list[Stop] = []
    n, i = len(track), 0
    while i < n:
        j = _first_outside(track, i, radius_m)
        if max_gap_s > 0:
            gaps = np.nonzero(np.diff(track.t_ns[i:j]) > max_gap_s * NS_PER_S)[0]
            if gaps.size:
                j = i + int(gaps[0]) + 1
        if (track.t_ns[j - 1] - track.t_ns[i]) / NS_PER_S >= min_dwell_s:
            stops.append(
                Stop(
                    float(track.lat[i:j].mean()),
                    float(track.lon[i:j].mean()),
                    int(track.t_ns[i]),
                    int(track.t_ns[j - 1]),
                )
            )
            i = j
        else:
            i += 1
    return _merge_adjacent(stops, radius_m, min_dwell_s)


def _merge_adjacent(stops: list[Stop], radius_m: float, max_gap_s: float) -> list[Stop]:
    """Join consecutive stops at one place: a run measured from its first sample can split when that sample
    was taken while still arriving, at the edge of the radius."""
    merged: list[Stop] = []
    for s in stops:
        last = merged[-1] if merged else None
        if (
            last is not None
            and (s.start_ns - last.end_ns) / NS_PER_S <= max_gap_s
            and float(distance_m(np.array([s.lat]), np.array([s.lon]), last.lat, last.lon)[0]) <= radius_m
        ):
            a, b = last.dwell_s, s.dwell_s
            w = a / (a + b) if a + b > 0 else 0.5
            merged[-1] = Stop(last.lat * w + s.lat * (1 - w), last.lon * w + s.lon * (1 - w), last.start_ns, s.end_ns)
        else:
            merged.append(s)
    return merged


def infer_zones(stops: list[Stop], merge_m: float = 250.0, zone_radius_m: float = 500.0, top: int = 2) -> list[Zone]:
    """Group stops closer than ``merge_m`` and return the ``top`` places by total dwell (home, work, ...)."""
    groups: list[list[Stop]] = []
    for s in stops:
        for g in groups:
            c_lat = sum(x.lat for x in g) / len(g)
            c_lon = sum(x.lon for x in g) / len(g)
            if float(distance_m(np.array([s.lat]), np.array([s.lon]), c_lat, c_lon)[0]) <= merge_m:
                g.append(s)
                break
        else:
            groups.append([s])
    zones = [
        Zone(
            sum(x.lat for x in g) / len(g),
            sum(x.lon for x in g) / len(g),
            zone_radius_m,
            sum(x.dwell_s for x in g),
            len(g),
        )
        for g in groups
    ]
    zones.sort(key=lambda z: z.dwell_s, reverse=True)
    return zones[:top]


def in_zones(track: Track, zones: list[Zone]) -> np.ndarray:
    inside = np.zeros(len(track), dtype=bool)
    for z in zones:
        inside |= distance_m(track.lat, track.lon, z.lat, z.lon) <= z.radius_m
    return inside


# ---- trimming and coarsening ------------------------------------------------------------------------------


def trim(track: Track, start_m: float = 0, end_m: float = 0, start_s: float = 0, end_s: float = 0) -> Track:
    """Drop a trip's samples until it has first gone ``start_m`` (straight line) from where it started *and*
    ``start_s`` have passed, and likewise before its end: where a trip starts or ends is usually where
    someone lives or works. Straight-line distance, not path length, so GPS jitter while parked does not
    count as driving away."""
    n = len(track)
    if n == 0:
        return track
    from_start = distance_m(track.lat, track.lon, float(track.lat[0]), float(track.lon[0]))
    to_end = distance_m(track.lat, track.lon, float(track.lat[-1]), float(track.lon[-1]))
    elapsed = (track.t_ns - track.t_ns[0]) / NS_PER_S
    remaining = (track.t_ns[-1] - track.t_ns) / NS_PER_S
    left_start = np.maximum.accumulate((from_start >= start_m) & (elapsed >= start_s))
    before_end = np.maximum.accumulate(((to_end >= end_m) & (remaining >= end_s))[::-1])[::-1]
    return track.select(left_start & before_end)


def snap_to_grid(lat: np.ndarray, lon: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres of square-ish cells of ``cell_m``: rows of fixed latitude height, columns whose width in degrees
    follows the row's latitude, so every cell is about ``cell_m`` × ``cell_m``."""
    dlat = cell_m / M_PER_DEG_LAT
    row = np.floor((lat + 90) / dlat)
    c_lat = np.minimum(-90 + (row + 0.5) * dlat, 90.0)
    dlon = cell_m / (M_PER_DEG_LAT * np.maximum(np.cos(np.radians(c_lat)), 1e-6))
    col = np.floor((lon + 180) / dlon)
    c_lon = -180 + (col + 0.5) * dlon
    return c_lat, np.clip(c_lon, -180.0, 180.0)


_GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lat: float, lon: float, precision: int) -> str:
    """The geohash (Niemeyer 2008) of a point: interleaved longitude/latitude bisections, 5 bits a character."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out: list[str] = []
    bits, value, even = 0, 0, True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            value = value * 2 + (lon >= mid)
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            value = value * 2 + (lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
        even = not even
        bits += 1
        if bits == 5:
            out.append(_GEOHASH[value])
            bits = value = 0
    return "".join(out)


def geohash_cell(code: str) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) of a geohash cell."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    even = True
    for ch in code:
        v = _GEOHASH.index(ch)
        for shift in range(4, -1, -1):
            bit = (v >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return lat_lo, lat_hi, lon_lo, lon_hi


def snap_to_geohash(lat: np.ndarray, lon: np.ndarray, precision: int) -> tuple[np.ndarray, np.ndarray]:
    out_lat, out_lon = np.empty_like(lat), np.empty_like(lon)
    cache: dict[str, tuple[float, float]] = {}
    for i, (la, lo) in enumerate(zip(lat.tolist(), lon.tolist(), strict=True)):
        code = geohash(la, lo, precision)
        if code not in cache:
            a, b, c, d = geohash_cell(code)
            cache[code] = ((a + b) / 2, (c + d) / 2)
        out_lat[i], out_lon[i] = cache[code]
    return out_lat, out_lon


# ---- geo-indistinguishability -----------------------------------------------------------------------------


def planar_laplace_radii(epsilon_per_m: float, p: np.ndarray) -> np.ndarray:
    """Inverse CDF of the planar Laplace radius (Andrés et al. 2013, eq. for C_ε⁻¹) at probabilities ``p``:
    r = -(W₋₁((p − 1)/e) + 1) / ε, with W₋₁ the lower branch of the Lambert W function."""
    w = lambertw((p - 1) / math.e, k=-1).real
    return np.asarray(-(w + 1) / epsilon_per_m)


def geo_indistinguishable(track: Track, epsilon_per_m: float, rng: np.random.Generator | None = None) -> Track:
    """Each position moved by independent planar Laplace noise: ε-geo-indistinguishable per sample (with
    ε in 1/m, a sample within r metres of another is at most e^(εr) times likelier to give the same output).
    Samples of one track compose: n samples of one place give n·ε for that place."""
    rng = rng or np.random.default_rng()
    n = len(track)
    theta = rng.uniform(0, 2 * math.pi, n)
    r = planar_laplace_radii(epsilon_per_m, rng.uniform(0, 1, n))
    east, north = r * np.cos(theta), r * np.sin(theta)
    lat = track.lat + north / M_PER_DEG_LAT
    lon = track.lon + east / (M_PER_DEG_LAT * np.maximum(np.cos(np.radians(track.lat)), 1e-6))
    lat = np.clip(lat, -90.0, 90.0)
    lon = (lon + 180.0) % 360.0 - 180.0
    return Track(track.t_ns.copy(), lat, lon)


# ---- processors --------------------------------------------------------------------------------------------


def _positive(config: dict[str, Any], *keys: str, allow_zero: bool = False) -> list[str]:
    problems = []
    for k in keys:
        v = config[k]
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or v < 0 or (v == 0 and not allow_zero):
            problems.append(f"{k} must be a {'non-negative' if allow_zero else 'positive'} number, not {v!r}")
    return problems


@register
class PrivacyZones(Processor):
    """Infer the most-visited stops (home, work) and drop or coarsen every sample within the zone radius."""

    name = "location.zones"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {
        "min_dwell_s": 600.0,
        "stop_radius_m": 100.0,
        "zone_radius_m": 500.0,
        "top": 2,
        "mode": "drop",
        "coarsen_cell_m": 2000.0,
    }

    def check(self, config: dict[str, Any]) -> list[str]:
        problems = _positive(config, "min_dwell_s", "stop_radius_m", "zone_radius_m", "coarsen_cell_m")
        if config["mode"] not in ("drop", "coarsen"):
            problems.append(f"mode must be 'drop' or 'coarsen', not {config['mode']!r}")
        if not isinstance(config["top"], int) or config["top"] < 1:
            problems.append("top must be a positive integer")
        return problems

    def apply(self, data: Any, config: dict[str, Any]) -> Track:
        track = _as_track(data)
        stops = find_stops(track, config["min_dwell_s"], config["stop_radius_m"])
        zones = infer_zones(stops, zone_radius_m=config["zone_radius_m"], top=config["top"])
        inside = in_zones(track, zones)
        if config["mode"] == "drop":
            return track.select(~inside)
        lat, lon = track.lat.copy(), track.lon.copy()
        lat[inside], lon[inside] = snap_to_grid(lat[inside], lon[inside], config["coarsen_cell_m"])
        return Track(track.t_ns.copy(), lat, lon)


@register
class TripTrimming(Processor):
    name = "location.trim"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {"start_m": 500.0, "end_m": 500.0, "start_s": 0.0, "end_s": 0.0}

    def check(self, config: dict[str, Any]) -> list[str]:
        return _positive(config, "start_m", "end_m", "start_s", "end_s", allow_zero=True)

    def apply(self, data: Any, config: dict[str, Any]) -> Track:
        return trim(_as_track(data), config["start_m"], config["end_m"], config["start_s"], config["end_s"])


@register
class Coarsening(Processor):
    """Snap every position to the centre of its grid cell (``cell_m``) or geohash cell (``geohash``)."""

    name = "location.coarsen"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {"method": "grid", "cell_m": 1000.0, "geohash_precision": 6}

    def check(self, config: dict[str, Any]) -> list[str]:
        problems = _positive(config, "cell_m")
        if config["method"] not in ("grid", "geohash"):
            problems.append(f"method must be 'grid' or 'geohash', not {config['method']!r}")
        p = config["geohash_precision"]
        if not isinstance(p, int) or not 1 <= p <= 12:
            problems.append(f"geohash_precision must be an integer from 1 to 12, not {p!r}")
        return problems

    def apply(self, data: Any, config: dict[str, Any]) -> Track:
        track = _as_track(data)
        if config["method"] == "grid":
            lat, lon = snap_to_grid(track.lat, track.lon, config["cell_m"])
        else:
            lat, lon = snap_to_geohash(track.lat, track.lon, config["geohash_precision"])
        return Track(track.t_ns.copy(), lat, lon)


@register
class GeoIndistinguishability(Processor):
    """Planar Laplace noise with ``epsilon_per_m`` (e.g. 0.01/m: mean displacement 2/ε = 200 m)."""

    name = "location.geoind"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {"epsilon_per_m": REQUIRED, "seed": None}

    def check(self, config: dict[str, Any]) -> list[str]:
        problems = _positive(config, "epsilon_per_m")
        if config["seed"] is not None and not isinstance(config["seed"], int):
            problems.append("seed must be an integer or absent")
        return problems

    def apply(self, data: Any, config: dict[str, Any]) -> Track:
        rng = np.random.default_rng(config["seed"])
        return geo_indistinguishable(_as_track(data), float(config["epsilon_per_m"]), rng)
