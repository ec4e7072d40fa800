"""Contact time at low sample rates (below ~300 Hz): onset models smeared by a Gaussian of free width.

At 100 Hz the few samples of a rise cannot pin down the recorder's filter, so instead of rendering the
recorder's own low-pass (:mod:`.contact`) each model is convolved with a Gaussian of free width ``blur``, which
stands for any phaseless low-pass. With x = (t − tc)/s for a fixed scale s, each model is zero before tc:

* ``linear`` — A·x (pulses that start with a slope: triangular, half-sine, most crush fronts);
* ``quadratic`` — A·(x + c₂x²), c₂ ≥ 0 (pulses that start gently, like a haversine);
* ``cubic`` — A·(x + c₂x² + c₃x³).

The best model by AICc gives tc; the raw σ is the fit's standard error, inflated for correlated residuals,
combined with the Akaike-weighted spread of the models' contact times. :mod:`.contact` calibrates it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d  # type: ignore[import-untyped]
from scipy.optimize import least_squares  # type: ignore[import-untyped]

from .contact import ContactFit, calibrated_sigma, crossing, smooth_for_search

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Shape = Callable[[FloatArray, FloatArray], FloatArray]

MS = 1e-3
_Bounds = tuple[list[float], list[float]]


@dataclass(frozen=True)
class _Fit:
    name: str
    params: FloatArray  # tc, amplitude, baseline, blur (times in ms), extras
    sigma_tc: float  # ms
    aicc: float


def _linear(x: FloatArray, _: FloatArray) -> FloatArray:
    return x


def _quadratic(x: FloatArray, extra: FloatArray) -> FloatArray:
    return np.asarray(x + extra[0] * x * x, dtype=np.float64)


def _cubic(x: FloatArray, extra: FloatArray) -> FloatArray:
    return np.asarray(x + extra[0] * x * x + extra[1] * x * x * x, dtype=np.float64)


#: name -> (shape, number of extra coefficients, their bounds)
MODELS: dict[str, tuple[Shape, int, tuple[tuple[float, float], ...]]] = {
    "linear": (_linear, 0, ()),
    "quadratic": (_quadratic, 1, ((0.0, 50.0),)),
    "cubic": (_cubic, 2, ((0.0, 50.0), (-50.0, 50.0))),
}


class SmearedOnset:
    """Evaluates one onset model at the sample times ``t`` (ms) via a fine grid of ``step`` ms."""

    def __init__(self, name: str, t: FloatArray, step: float, max_blur: float, scale: float) -> None:
        self.name = name
        self.shape, self.extra, self.extra_bounds = MODELS[name]
        self.t = t
        self.step = step
        self.scale = scale
        margin = 4 * max_blur + 2 * step
        self.grid = np.arange(t[0] - margin, t[-1] + margin + step, step)

    def __call__(self, params: FloatArray) -> FloatArray:
        """Parameters: tc, amplitude, baseline, blur (ms), then the extra coefficients."""
        tc, amplitude, baseline, blur = params[:4]
        x = np.clip((self.grid - tc) / self.scale, 0.0, None)
        rise = self.shape(x, params[4:])
        if blur > 0.25 * self.step:
            rise = gaussian_filter1d(rise, blur / self.step, mode="nearest", truncate=4.0)
        return np.asarray(baseline + amplitude * np.interp(self.t, self.grid, rise), dtype=np.float64)


def _rise_window(t: FloatArray, s: FloatArray, lo: int, hi: int, dt: float) -> tuple[int, int, float, float, float]:
    """(first, last) indices of the fit window and the 10 %, 50 % crossing times and first-peak level."""
    peak = float(np.max(s[lo:hi]))
    # start the crossing search after the last quiet sample before the global peak (skip earlier wiggles)
    top = lo + int(np.argmax(s[lo:hi]))
    quiet = np.flatnonzero(s[lo:top] < 0.1 * peak)
    base = lo + int(quiet[-1]) if len(quiet) else lo
    half_i, t50 = crossing(t, s, base, 0.5 * peak)
    _, t10 = crossing(t, s, base, 0.1 * peak)
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
    model = SmearedOnset(name, tl, step, bounds[1][3], float(tl[-1] - guess[0]))
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


def fit_contact_lowrate(
    t: FloatArray, p: FloatArray, usable: BoolArray, lo: int, hi: int, dt: float
) -> ContactFit | None:
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
    likelihood = {f.name: math.exp(-0.5 * (f.aicc - best.aicc)) for f in fits}
    total = sum(likelihood.values())
    weights = {name: w / total for name, w in likelihood.items()}
    spread = sum(weights[f.name] * (f.params[0] - best.params[0]) ** 2 for f in fits)
    raw = math.sqrt(best.sigma_tc**2 + spread)
    return ContactFit(
        tc=origin + best.params[0] * MS,
        sigma=calibrated_sigma(best.name, raw, float(best.params[3]), dt / MS) * MS,
        model=best.name,
        rise=(t[last] - origin) / MS * MS - best.params[0] * MS,
        blur=best.params[3] * MS,
        weights=weights,
    )
