"""Physical contact time: fit onset models to the rise of the pulse, keep the best by AICc, report an honest σ.

The models (:mod:`.onset`) are filtered with the recorder's own low-pass (:mod:`.response`), so they describe
the samples as recorded. The raw σ combines the fit's standard error for tc, scaled for the correlation the
filter puts between neighbouring noise samples, and the Akaike-weighted spread of the models' contact times
(model uncertainty). :func:`calibrated_sigma` turns it into the reported σ with factors measured on development
recordings: an inflation for the models' shape error, a share of the filter's time constant for the filter's
own uncertainty, and a share of the sample period for what no model sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares  # type: ignore[import-untyped]

from .j211 import cfc_filter
from .onset import TERMS, OnsetModel
from .response import Response

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MS = 1e-3
#: Calibration of σ on development recordings (docs/ACCIDENT.md, "σ calibration"), per rate band and chosen
#: model family ("*": any other family of that band): (inflation of the raw σ, share of the filter's time
#: constant, share of the sample period), combined in quadrature so that ≥ 95 % of development cases lie within ±2σ.
CALIBRATION: dict[tuple[str, str], tuple[float, float, float]] = {
    ("high", "ringing"): (5.3, 0.25, 0.0),
    ("high", "*"): (5.3, 0.25, 0.0),
    ("mid", "power"): (2.2, 0.25, 0.0),
    ("mid", "ringing"): (2.75, 0.25, 0.0),
    ("mid", "*"): (2.7, 0.25, 0.0),
    ("low", "linear"): (2.55, 0.75, 0.2),
    ("low", "cubic"): (1.0, 0.75, 0.2),
    ("low", "*"): (2.1, 0.75, 0.2),
}
UNCALIBRATED = (1.0, 0.0, 0.0)


def rate_band(rate_hz: float) -> str:
    """The calibration band of a sample rate: high (≥ 750 Hz), mid (300–750 Hz), low (< 300 Hz)."""
    return "high" if rate_hz >= 750 else "mid" if rate_hz >= 300 else "low"


P_MIN, P_MAX = 0.8, 3.0
PROFILE_MARGIN_MS = 2.0
SCAN_POWERS = (1.0, 1.5, 2.0, 2.5)
SCAN_DAMPING = 0.1
REFINED = 3
END_LEVEL = 0.5  # the fit window ends where the pulse first reaches this fraction of its first peak


@dataclass(frozen=True)
class ContactFit:
    tc: float  # s, same origin as the input times
    sigma: float  # s
    model: str
    rise: float  # s
    blur: float  # s
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fit:
    name: str
    params: FloatArray  # tc (ms from the window origin), p[, ringing Hz, damping]
    sigma_tc: float  # ms
    aicc: float


def calibrated_sigma(model: str, raw_ms: float, blur_ms: float, period_ms: float) -> float:
    """σ (ms) from the fit's raw σ (standard error with model spread), the filter's time constant and the period.

    The raw σ misses what no model sees (shape error of the onset, the filter's own uncertainty, the sensor's
    timing), so it is inflated and given floors that were measured on development recordings.
    """
    band = rate_band(1000.0 / period_ms)
    factors = CALIBRATION.get((band, model)) or CALIBRATION.get((band, "*"), UNCALIBRATED)
    inflation, filter_share, period_share = factors
    return math.sqrt((inflation * raw_ms) ** 2 + (filter_share * blur_ms) ** 2 + (period_share * period_ms) ** 2)


def smooth_for_search(p: FloatArray, dt: float) -> FloatArray:
    """A CFC 60 copy of ``p`` where the rate allows it (only to find crossings and peaks, never to fit)."""
    return cfc_filter(p, 1.0 / dt, 60) if 1.0 / dt >= 300 else p


def crossing(t: FloatArray, s: FloatArray, start: int, level: float) -> tuple[int, float]:
    """First index at or after ``start`` with s >= level, and the interpolated crossing time."""
    above = np.flatnonzero(s[start:] >= level)
    i = start + int(above[0]) if len(above) else start
    if i == 0 or s[i - 1] >= level:
        return i, float(t[i])
    frac = (level - s[i - 1]) / (s[i] - s[i - 1])
    return i, float(t[i - 1] + frac * (t[i] - t[i - 1]))


def _first_peak(s: FloatArray, lo: int, hi: int) -> tuple[int, float]:
    """Start of the rise to the pulse's peak (after the last quiet sample), and the peak level."""
    top = lo + int(np.argmax(s[lo:hi]))
    peak = float(s[top])
    quiet = np.flatnonzero(s[lo:top] < 0.1 * peak)
    return (lo + int(quiet[-1]) if len(quiet) else lo), peak


def _aicc(rss: float, n: int, k: int) -> float:
    rss = max(rss, 1e-300)
    return n * math.log(rss / n) + 2 * k + (2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else 1e9)


def _fit(model: OnsetModel, name: str, starts: list[FloatArray], bounds: tuple[FloatArray, FloatArray]) -> _Fit | None:
    ringing = name == "ringing"
    best = None
    for x0 in starts:
        x0 = np.clip(x0, bounds[0] + 1e-6, bounds[1] - 1e-6)
        try:
            res = least_squares(lambda x: model.solve(x, ringing)[0], x0, bounds=bounds, x_scale="jac", max_nfev=200)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if best is None or res.cost < best.cost:
            best = res
    if best is None:
        return None
    n = len(model.y)
    k = len(best.x) + 2 + TERMS + int(ringing)
    rss = float(2 * best.cost)
    cov = np.linalg.pinv(best.jac.T @ best.jac) * (rss / max(n - k, 1))
    return _Fit(name, best.x, math.sqrt(max(float(cov[0, 0]), 0.0)), _aicc(rss, n, k))


def _ringing_frequency(model: OnsetModel, power: _Fit, f_min: float, f_max: float) -> float:
    """The strongest oscillation left after the power-law fit, from contact on (Hz)."""
    residual, _ = model.solve(power.params, False)
    after = residual[model.t > power.params[0]]
    if len(after) < 8:
        return math.sqrt(f_min * f_max)
    spectrum = np.abs(np.fft.rfft((after - after.mean()) * np.hanning(len(after)), n=512))
    hz = np.fft.rfftfreq(512, d=float(model.t[1] - model.t[0]) / 1000.0)
    inside = (hz >= f_min) & (hz <= f_max)
    return float(hz[inside][np.argmax(spectrum[inside])]) if inside.any() else math.sqrt(f_min * f_max)


def _fit_ringing(
    model: OnsetModel, power: _Fit, bounds: tuple[FloatArray, FloatArray], span: tuple[float, float], step: float
) -> _Fit | None:
    """Onset with ringing. Its cost has a minimum every ringing period along tc (phase ambiguity), so tc is
    profiled on a grid first, then the best two grid points are refined with all parameters free."""
    f0 = _ringing_frequency(model, power, float(bounds[0][2]), float(bounds[1][2]))
    lo_tc = max(float(bounds[0][0]), min(span[0], float(power.params[0])) - PROFILE_MARGIN_MS)
    hi_tc = min(float(bounds[1][0]), span[1] + PROFILE_MARGIN_MS)
    step = min(step, 1000.0 / f0 / 6)
    profile: list[tuple[float, FloatArray]] = []
    for tc in np.arange(lo_tc, hi_tc, step):
        for p in SCAN_POWERS:
            x = np.array([tc, p, f0, SCAN_DAMPING])
            residual, _ = model.solve(x, True)
            profile.append((float(residual @ residual), x))
    if not profile:
        return None
    costs = np.array([c for c, _ in profile])
    minima = [
        i
        for i in range(len(costs))
        if costs[i] <= costs[max(i - 1, 0)] and costs[i] <= costs[min(i + 1, len(costs) - 1)]
    ]
    minima = sorted(minima, key=lambda i: costs[i])[:2]
    return _fit(model, "ringing", [profile[i][1] for i in minima], bounds)


def fit_contact(
    t: FloatArray, p: FloatArray, usable: BoolArray, lo: int, hi: int, dt: float, response: Response
) -> ContactFit | None:
    """Fit the onset of pulse ``p`` (positive during the pulse, driving acceleration removed) within [lo, hi).

    ``response`` is the recorder's low-pass. ``usable`` marks samples that may be fitted (clipped ones may
    not). None when there is no rise to fit.
    """
    s = smooth_for_search(p, dt)
    if hi - lo < 8 or float(np.max(s[lo:hi])) <= 0:
        return None
    base, peak = _first_peak(s, lo, hi)
    _, t10 = crossing(t, s, base, 0.1 * peak)
    half_i, t50 = crossing(t, s, base, 0.5 * peak)
    end_i, _ = crossing(t, s, base, END_LEVEL * peak)
    end_i = max(end_i, half_i + 1)
    rise = max(t50 - t10, dt)
    # the filter spreads the onset ahead of contact by a few of its time constants
    spread = 3.0 / response.cutoff_hz if response.cutoff_hz else 2 * dt
    first = int(np.searchsorted(t, t10 - 2.0 * rise - spread - 0.005))
    first = max(lo, min(first, half_i - 8))
    last = min(hi - 1, end_i)
    if not usable[first : last + 1].all():
        good = usable[first : last + 1]
        if int(good.sum()) < 8:
            return None
        last = first + int(np.argmin(good)) - 1  # fit up to the first clipped sample
        if last - first < 8:
            return None
    origin = t[first]
    tl = (t[first : last + 1] - origin) / MS
    tl = tl[0] + (dt / MS) * np.arange(len(tl))  # the filter works on the nominal grid
    y = p[first : last + 1]
    tail = math.ceil(spread / dt * response.upsample) + 2 * response.upsample
    scale = max(rise / MS, dt / MS)
    model = OnsetModel(tl, y, response, scale, tail)
    tc0 = (t10 - origin) / MS - 0.5 * rise / MS
    t_lo, t_hi = float(tl[0]), (t50 - origin) / MS
    power_bounds = (np.array([t_lo, P_MIN]), np.array([t_hi, P_MAX]))
    fits: list[_Fit] = []
    power = _fit(model, "power", [np.array([tc0, 1.0]), np.array([tc0 - 0.5 * rise / MS, 2.0])], power_bounds)
    if power is not None:
        fits.append(power)
        nyquist = 500.0 * response.upsample / (dt / MS)
        # structural ringing is faster than the pulse: slower wiggles are the pulse's own shape
        f_min = min(max(30.0, 1.5 / rise), 0.5 * nyquist)
        ring_bounds = (np.array([t_lo, P_MIN, f_min, 0.02]), np.array([t_hi, P_MAX, 0.95 * nyquist, 0.3]))
        t10_ms = (t10 - origin) / MS
        span = (t10_ms - rise / MS, t10_ms)
        ring = _fit_ringing(model, power, ring_bounds, span, 0.5 * (dt / MS) / response.upsample)
        if ring is not None:
            fits.append(ring)
    if not fits:
        return None
    best = min(fits, key=lambda f: f.aicc)
    likelihood = {f.name: math.exp(-0.5 * (f.aicc - best.aicc)) for f in fits}
    total = sum(likelihood.values())
    weights = {name: w / total for name, w in likelihood.items()}
    spread_var = sum(weights[f.name] * (f.params[0] - best.params[0]) ** 2 for f in fits)
    inflation = response.correlation_length(1.0 / dt)
    raw = math.sqrt(inflation * best.sigma_tc**2 + spread_var)
    blur = (1.0 / (2 * math.pi * response.cutoff_hz)) if response.cutoff_hz else 0.0
    tc = origin + best.params[0] * MS
    return ContactFit(
        tc=tc,
        sigma=calibrated_sigma(best.name, raw, blur / MS, dt / MS) * MS,
        model=best.name,
        rise=t50 - tc,
        blur=blur,
        weights=weights,
    )
