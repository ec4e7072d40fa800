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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares  # type: ignore[import-untyped]

from .j211 import cfc_filter
from .onset import OnsetModel
from .response import Response

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MS = 1e-3
#: Calibration of σ on development recordings (docs/ACCIDENT.md, "σ calibration"), per rate band and chosen
#: model family ("*": any other family of that band): (inflation of the statistical σ, share of the filter's
#: time constant, share of the sample period), combined in quadrature so that 96 % of development cases lie
#: within ±2σ.
CALIBRATION: dict[tuple[str, str], tuple[float, float, float]] = {
    ("high", "*"): (1.85, 0.25, 0.1),
    ("mid", "*"): (2.9, 0.25, 0.1),
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
SCAN_FREQUENCIES = 10
PROFILE_STEP_MS = 0.25
QUIET_RUN_S = 0.003
RING_CYCLES = 0.75  # the slowest ringing: this many cycles over the rise from the baseline to half the peak
REFINED = 3
VIBRATION_MIN_SAMPLES = 48
VIBRATION_MIN_HZ = 5.0
VIBRATION_LINE = 20.0  # a spectral line's power over the median level
END_LEVEL = 0.3  # the fit window ends where the pulse first reaches this fraction of its first peak


@dataclass(frozen=True)
class ContactFit:
    tc: float  # s, same origin as the input times
    sigma: float  # s
    model: str
    rise: float  # s
    blur: float  # s
    weights: dict[str, float] = field(default_factory=dict)
    rss: float = 0.0  # residual sum of squares of the chosen model
    # the residual's variance per sample, times the noise correlation length and the squared σ inflation of the
    # calibration (the models' shape error): how much a shift of contact may raise the residual unnoticed
    noise: float = 0.0
    parameters: int = 0  # free parameters of the chosen model, linear ones included
    # each model's residual sum of squares, chosen or not: a confined fit is compared with its own model's
    model_rss: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fit:
    name: str
    params: FloatArray  # tc (ms from the window origin), p[, ringing Hz, damping]
    sigma_tc: float  # ms
    aicc: float
    rss: float
    dof: int  # samples less parameters
    parameters: int
    profile: tuple[FloatArray, FloatArray] | None = None  # (tc grid, lowest cost at each tc)


def calibration(model: str, period_ms: float) -> tuple[float, float, float]:
    """The σ calibration factors (inflation, filter share, period share) for ``model`` at this sample period."""
    band = rate_band(1000.0 / period_ms)
    return CALIBRATION.get((band, model)) or CALIBRATION.get((band, "*"), UNCALIBRATED)


def calibrated_sigma(model: str, raw_ms: float, blur_ms: float, period_ms: float) -> float:
    """σ (ms) from the fit's raw σ (statistical, with the models' spread), the filter's time constant and the
    sample period.

    The raw σ misses what no model sees (shape error of the onset, the filter's own uncertainty, the sensor's
    timing), so it is inflated and given floors that were measured on development recordings.
    """
    inflation, filter_share, period_share = calibration(model, period_ms)
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
    k = len(best.x) + model.background_terms + model.onset_terms + int(ringing)
    rss = float(2 * best.cost)
    cov = np.linalg.pinv(best.jac.T @ best.jac) * (rss / max(n - k, 1))
    return _Fit(name, best.x, math.sqrt(max(float(cov[0, 0]), 0.0)), _aicc(rss, n, k), rss, max(n - k, 1), k)


def _local_minima(profile: FloatArray, keep: int) -> list[int]:
    """Indices of the ``keep`` lowest local minima of ``profile``."""
    n = len(profile)
    left = np.concatenate(([np.inf], profile[:-1]))
    right = np.concatenate((profile[1:], [np.inf]))
    minima = np.flatnonzero((profile <= left) & (profile <= right))
    if not len(minima):
        minima = np.array([int(np.argmin(profile))])
    return [int(i) for i in minima[np.argsort(profile[minima])][:keep] if 0 <= i < n]


def _profile_fit(
    model: OnsetModel,
    name: str,
    tcs: FloatArray,
    grid: Sequence[tuple[float, ...]],
    bounds: tuple[FloatArray, FloatArray],
    keep: int,
) -> _Fit | None:
    """Profile the cost along tc over a grid of the other nonlinear parameters, then refine the ``keep`` best
    basins with all parameters free. The onset's cost is rough along tc (a minimum every ringing period, and
    kinks where a term switches on), so a local search from one start alone lands in the wrong basin."""
    ringing = name == "ringing"
    costs = np.array(
        [model.profile(tcs, rest[0], (rest[1], rest[2]) if ringing else None) for rest in grid]
    )  # (grid point, tc)
    best_rest = np.argmin(costs, axis=0)
    profile = costs[best_rest, np.arange(len(tcs))]
    starts = [np.array([tcs[i], *grid[int(best_rest[i])]]) for i in _local_minima(profile, keep)]
    fit = _fit(model, name, starts, bounds)
    return replace(fit, profile=(tcs, profile)) if fit is not None else None


def profile_halfwidth(fit: _Fit, correlation: float) -> float:
    """Half the width (ms) of the contact times whose profile cost lies within one σ² of the best fit's
    (Δχ² ≤ 1), the noise variance from the fit's residual scaled by the noise correlation length. Unlike the
    curvature at the minimum it sees flat or double basins: a second onset that fits almost as well widens it."""
    if fit.profile is None:
        return 0.0
    tcs, costs = fit.profile
    variance = fit.rss / fit.dof * correlation
    inside = tcs[(costs - fit.rss) / max(variance, 1e-300) <= 1.0]
    if not len(inside):
        return 0.0
    step = float(tcs[1] - tcs[0]) if len(tcs) > 1 else 0.0
    lo = min(float(inside.min()), float(fit.params[0]))
    hi = max(float(inside.max()), float(fit.params[0]))
    return 0.5 * (hi - lo + step)


def steady_vibration(before: FloatArray, dt: float) -> float | None:
    """The frequency (Hz) of a steady vibration in the samples before the event (engine, road, body), or None.

    It goes on through the event; left out of the onset models, its swing just before contact passes for the
    onset itself. A spectral line counts when it stands well above the spectrum's median level.
    """
    n = len(before)
    if n < VIBRATION_MIN_SAMPLES:
        return None
    x = (before - np.polyval(np.polyfit(np.arange(n), before, 1), np.arange(n))) * np.hanning(n)
    power = np.abs(np.fft.rfft(x, n=4 * n)) ** 2
    hz = np.fft.rfftfreq(4 * n, d=dt)
    inside = (hz >= VIBRATION_MIN_HZ) & (hz <= 0.45 / dt)
    if not inside.any():
        return None
    k = int(np.argmax(np.where(inside, power, 0.0)))
    return float(hz[k]) if power[k] > VIBRATION_LINE * float(np.median(power[inside])) else None


def _departure(s: FloatArray, lo: int, base: int, peak: float, quiet_run: int) -> int:
    """Last sample of the baseline before the pulse: the end of the last run of ``quiet_run`` samples near the
    pre-event level before ``base``. Ringing at contact can lift and drop the signal before the main rise;
    the rise's own start (after the last sample under 10 % of the peak) would then miss the contact."""
    if base - lo < quiet_run + 2:
        return lo
    before = s[lo:base]
    level = float(np.median(before))
    noise = 1.4826 * float(np.median(np.abs(before - level)))
    quiet = np.abs(before - level) <= max(6.0 * noise, 0.01 * peak)
    full = np.flatnonzero(np.convolve(quiet.astype(np.float64), np.ones(quiet_run), mode="valid") >= quiet_run)
    return lo + int(full[-1]) + quiet_run - 1 if len(full) else lo


def fit_contact(
    t: FloatArray,
    p: FloatArray,
    usable: BoolArray,
    lo: int,
    hi: int,
    dt: float,
    response: Response,
    window: tuple[float, float] | None = None,
) -> ContactFit | None:
    """Fit the onset of pulse ``p`` (positive during the pulse, driving acceleration removed) within [lo, hi).

    ``response`` is the recorder's low-pass. ``usable`` marks samples that may be fitted (clipped ones may
    not). ``window`` (times as ``t``) confines contact to that span; the fitted samples stay the same, so the
    fit's residual can be compared with the unconfined one's. None when there is no rise to fit.
    """
    s = smooth_for_search(p, dt)
    if hi - lo < 8 or float(np.max(s[lo:hi])) <= 0:
        return None
    base, peak = _first_peak(s, lo, hi)
    _, t10 = crossing(t, s, base, 0.1 * peak)
    half_i, t50 = crossing(t, s, base, 0.5 * peak)
    end_i, _ = crossing(t, s, base, END_LEVEL * peak)
    end_i = max(end_i, base + 8)
    rise = max(t50 - t10, dt)
    blur = (1.0 / (2 * math.pi * response.cutoff_hz)) if response.cutoff_hz else 0.0
    departure = _departure(s, lo, base, peak, max(3, math.ceil(QUIET_RUN_S / dt)))
    t_dep = min(float(t[departure]), t10)
    # the filter spreads the onset ahead of contact by a few of its time constants
    spread = 3.0 / response.cutoff_hz if response.cutoff_hz else 2 * dt
    first = int(np.searchsorted(t, min(t10 - 2.0 * rise, t_dep) - spread - 0.005))
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
    model = OnsetModel(tl, y, response, scale, tail, steady_vibration(p[lo:departure], dt), response.upsample > 1)
    t_lo, t_hi = float(tl[0]), (t50 - origin) / MS
    # contact lies between shortly before the baseline ends (the filter runs ahead of it) and the 10 % level
    search_lo = max(t_lo, (t_dep - origin - max(2 * dt, 3 * blur)) / MS - PROFILE_MARGIN_MS)
    search_hi = min(t_hi, (t10 - origin) / MS)
    if window is not None:
        t_lo = max(t_lo, (window[0] - origin) / MS)
        t_hi = min(t_hi, (window[1] - origin) / MS)
        if t_hi - t_lo < PROFILE_STEP_MS:
            return None
        search_lo, search_hi = t_lo, t_hi
    tcs = np.arange(search_lo, max(search_hi, search_lo + PROFILE_STEP_MS), PROFILE_STEP_MS)
    power_bounds = (np.array([t_lo, P_MIN]), np.array([t_hi, P_MAX]))
    fits: list[_Fit] = []
    power = _profile_fit(model, "power", tcs, [(q,) for q in SCAN_POWERS], power_bounds, REFINED)
    if power is not None:
        fits.append(power)
    # ringing above the samples' own Nyquist frequency would alias onto slower wiggles whose free phase at
    # contact lets the fit start a sloped pulse early; the model keeps only its footprint (fast_ringing)
    nyquist = 500.0 / (dt / MS)
    # structural ringing is faster than the pulse: slower wiggles are the pulse's own shape
    f_min = min(max(30.0, RING_CYCLES / max(t50 - t_dep, dt)), 0.5 * nyquist)
    f_max = 0.95 * nyquist
    ring_bounds = (np.array([t_lo, P_MIN, f_min, 0.02]), np.array([t_hi, P_MAX, f_max, 0.3]))
    ring_grid = [(q, float(f), SCAN_DAMPING) for q in SCAN_POWERS for f in np.geomspace(f_min, f_max, SCAN_FREQUENCIES)]
    ring = _profile_fit(model, "ringing", tcs, ring_grid, ring_bounds, REFINED)
    if ring is not None:
        fits.append(ring)
    if not fits:
        return None
    best = min(fits, key=lambda f: f.aicc)
    likelihood = {f.name: math.exp(-0.5 * (f.aicc - best.aicc)) for f in fits}
    total = sum(likelihood.values())
    weights = {name: w / total for name, w in likelihood.items()}
    correlation = response.correlation_length(1.0 / dt)
    # the profile sees a second basin that fits almost as well, the curvature at the minimum does not
    statistical = max(math.sqrt(correlation) * best.sigma_tc, profile_halfwidth(best, correlation))
    spread_var = sum(weights[f.name] * (f.params[0] - best.params[0]) ** 2 for f in fits)
    raw = math.sqrt(statistical**2 + spread_var)
    tc = origin + best.params[0] * MS
    return ContactFit(
        tc=tc,
        sigma=calibrated_sigma(best.name, raw, blur / MS, dt / MS) * MS,
        model=best.name,
        rise=t50 - tc,
        blur=blur,
        weights=weights,
        rss=best.rss,
        noise=best.rss / best.dof * correlation * calibration(best.name, dt / MS)[0] ** 2,
        parameters=best.parameters,
        model_rss={f.name: f.rss for f in fits},
    )
