"""Physical contact time: fit onset models to the rise of the pulse, keep the best by AICc, report an honest σ.

σ combines (1) the fit's own standard error, inflated for correlated residuals (ringing, filtered noise make
neighbouring residuals alike, so the samples carry less information than their count suggests), and (2) the
spread of the contact times of the other models, weighted by their Akaike weights (model uncertainty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares  # type: ignore[import-untyped]

from .j211 import cfc_filter
from .onset import MODELS, OnsetModel

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MS = 1e-3
_Bounds = tuple[list[float], list[float]]


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
    params: FloatArray  # tc, amplitude, baseline, blur (times in ms), extras
    sigma_tc: float  # ms
    aicc: float


def smooth_for_search(p: FloatArray, dt: float) -> FloatArray:
    """A CFC 60 copy of ``p`` where the rate allows it (only to find crossings and peaks, never to fit)."""
    return cfc_filter(p, 1.0 / dt, 60) if 1.0 / dt >= 300 else p


def _crossing(t: FloatArray, s: FloatArray, start: int, level: float) -> tuple[int, float]:
    """First index at or after ``start`` with s >= level, and the interpolated crossing time."""
    above = np.flatnonzero(s[start:] >= level)
    i = start + int(above[0]) if len(above) else start
    if i == 0 or s[i - 1] >= level:
        return i, float(t[i])
    frac = (level - s[i - 1]) / (s[i] - s[i - 1])
    return i, float(t[i - 1] + frac * (t[i] - t[i - 1]))


def _rise_window(t: FloatArray, s: FloatArray, lo: int, hi: int, dt: float) -> tuple[int, int, float, float, float]:
    """(first, last) indices of the fit window and the 10 %, 50 % crossing times and first-peak level."""
    peak = float(np.max(s[lo:hi]))
    # start the crossing search after the last quiet sample before the global peak (skip earlier wiggles)
    top = lo + int(np.argmax(s[lo:hi]))
    quiet = np.flatnonzero(s[lo:top] < 0.1 * peak)
    base = lo + int(quiet[-1]) if len(quiet) else lo
    half_i, t50 = _crossing(t, s, base, 0.5 * peak)
    _, t10 = _crossing(t, s, base, 0.1 * peak)
    last = half_i
    while last + 1 < hi and (s[last + 1] >= s[last] or s[last] < 0.6 * peak):
        last += 1
    last = min(hi - 1, last + 1)
    span = max(t[last] - t10, 2 * dt)
    first = int(np.searchsorted(t, t10 - 1.5 * span - 0.01))
    first = max(lo, min(first, half_i - 8))
    return first, last, t10, t50, float(s[last])


def _aicc(rss: float, n: int, k: int) -> float:
    rss = max(rss, 1e-300)
    return n * math.log(rss / n) + 2 * k + (2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else 1e9)


def _fit_one(name: str, tl: FloatArray, y: FloatArray, guess: FloatArray, bounds: _Bounds, step: float) -> _Fit | None:
    model = OnsetModel(name, tl, step, bounds[1][3], float(tl[-1] - guess[0]))
    lo = np.array(bounds[0] + [b[0] for b in model.extra_bounds])
    hi = np.array(bounds[1] + [b[1] for b in model.extra_bounds])
    best = None
    for shift in (0.0, -0.5, 0.5):
        x0 = np.concatenate((guess, [0.5] * model.extra))
        x0[0] += shift * 0.3 * (tl[-1] - guess[0])
        x0 = np.clip(x0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        try:
            res = least_squares(lambda x: model(x) - y, x0, bounds=(lo, hi), x_scale="jac", max_nfev=300)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if best is None or res.cost < best.cost:
            best = res
    if best is None:
        return None
    n, k = len(y), len(best.x)
    rss = float(2 * best.cost)
    residual = best.fun
    cov = np.linalg.pinv(best.jac.T @ best.jac) * (rss / max(n - k, 1))
    denom = float(np.dot(residual, residual))
    rho = float(np.dot(residual[1:], residual[:-1]) / denom) if denom > 0 else 0.0
    rho = min(max(rho, 0.0), 0.95)
    sigma = math.sqrt(max(float(cov[0, 0]), 0.0) * (1 + rho) / (1 - rho))
    return _Fit(name, best.x, sigma, _aicc(rss, n, k))


def fit_contact(t: FloatArray, p: FloatArray, usable: BoolArray, lo: int, hi: int, dt: float) -> ContactFit | None:
    """Fit the onset of pulse ``p`` (positive during the pulse, driving acceleration removed) within [lo, hi).

    The window runs from well before the rise to the pulse's first crossing of half its peak. ``usable`` marks
    samples that may be fitted (clipped ones may not). None when there is no rise to fit.
    """
    s = smooth_for_search(p, dt)
    if hi - lo < 5 or float(np.max(s[lo:hi])) <= 0:
        return None
    first, last, t10, t50, peak = _rise_window(t, s, lo, hi, dt)
    last = min(last, int(np.searchsorted(t, t50)) + 1)
    keep = usable[first : last + 1]
    if int(keep.sum()) < 6:
        return None
    origin = t50
    tl = (t[first : last + 1][keep] - origin) / MS
    y = p[first : last + 1][keep]
    tc0 = (t10 - origin) / MS - 0.25 * (t50 - t10) / MS
    max_blur = max(4.0, 1.5 * dt / MS)
    step = min(dt / MS / 8, 0.25)
    amp = max(peak, 1e-3)
    guess = np.array([tc0, 0.5 * amp, 0.0, min(dt / MS, 0.5 * max_blur)])
    lower = [float(tl[0]) - 1.0, 0.01 * amp, -0.3 * amp, 0.0]
    upper = [0.0, 3 * amp, 0.3 * amp, max_blur]
    fits = [f for name in MODELS if (f := _fit_one(name, tl, y, guess, (lower, upper), step)) is not None]
    if not fits:
        return None
    best = min(fits, key=lambda f: f.aicc)
    raw = {f.name: math.exp(-0.5 * (f.aicc - best.aicc)) for f in fits}
    total = sum(raw.values())
    weights = {name: w / total for name, w in raw.items()}
    spread = sum(weights[f.name] * (f.params[0] - best.params[0]) ** 2 for f in fits)
    sigma = math.sqrt(best.sigma_tc**2 + spread + (0.05 * dt / MS) ** 2)
    return ContactFit(
        tc=origin + best.params[0] * MS,
        sigma=sigma * MS,
        model=best.name,
        rise=(t[last] - origin) / MS * MS - best.params[0] * MS,
        blur=best.params[3] * MS,
        weights=weights,
    )
