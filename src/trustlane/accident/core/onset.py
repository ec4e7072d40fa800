"""Onset models of a crash pulse: how acceleration rises from contact to its first peak.

A pulse of any shape starts at contact and rises to a first peak; the rise is what fixes the contact time, so the
fit looks only at the rise. Shapes cover the classic idealisations and a free power law:

* ``linear`` — triangular pulses, x;
* ``sine`` — the rise of a half-sine, sin(πx/2);
* ``cosine`` — the rise of a haversine, (1 − cos πx)/2;
* ``power`` — x^p with a free exponent p, for whatever else (stiff fronts, soft bumpers).

x = (t − tc)/τ runs from 0 at contact to 1 at the first peak; the model holds its peak value afterwards. Data
that were low-pass filtered (SAE J211 CFC, anti-alias filters before down-sampling) look smeared: the model
is convolved with a Gaussian of free width ``blur`` that stands for any phaseless low-pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.ndimage import gaussian_filter1d  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]
Shape = Callable[[FloatArray, FloatArray], FloatArray]


def _linear(x: FloatArray, _: FloatArray) -> FloatArray:
    return x


def _sine(x: FloatArray, _: FloatArray) -> FloatArray:
    return np.sin(0.5 * np.pi * x)


def _cosine(x: FloatArray, _: FloatArray) -> FloatArray:
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _power(x: FloatArray, extra: FloatArray) -> FloatArray:
    return np.asarray(np.power(x, extra[0]), dtype=np.float64)


def _poly2(x: FloatArray, extra: FloatArray) -> FloatArray:
    return x + extra[0] * x * x


def _poly3(x: FloatArray, extra: FloatArray) -> FloatArray:
    return x + extra[0] * x * x + extra[1] * x * x * x


#: name -> (shape, number of extra parameters, their bounds)
SHAPES: dict[str, tuple[Shape, int, tuple[tuple[float, float], ...]]] = {
    "linear": (_linear, 0, ()),
    "sine": (_sine, 0, ()),
    "cosine": (_cosine, 0, ()),
    "power": (_power, 1, ((0.5, 4.0),)),
}

#: Taylor expansions of the pulse at contact (amplitude scales the linear term; extras are relative terms).
POLYNOMIALS: dict[str, tuple[Shape, int, tuple[tuple[float, float], ...]]] = {
    "linear": (_linear, 0, ()),
    "quadratic": (_poly2, 1, ((0.0, 50.0),)),
    "cubic": (_poly3, 2, ((0.0, 50.0), (-50.0, 50.0))),
}


class OnsetModel:
    """Evaluates one onset shape at the sample times ``t`` on a fine grid ``step`` (s)."""

    def __init__(
        self, shape: str, t: FloatArray, step: float, max_blur: float, *, taylor_scale: float | None = None
    ) -> None:
        self.name = shape
        self.taylor = taylor_scale is not None
        self.scale = taylor_scale or 1.0
        taylor = self.taylor
        self.shape, self.extra, self.extra_bounds = (POLYNOMIALS if taylor else SHAPES)[shape]
        self.t = t
        self.step = step
        margin = 4 * max_blur + 2 * step
        self.grid = np.arange(t[0] - margin, t[-1] + margin + step, step)

    def __call__(self, params: FloatArray) -> FloatArray:
        """Parameters: tc, tau, amplitude, baseline, blur, then the shape's extras (Taylor: tau is fixed)."""
        tc, tau, amplitude, baseline, blur = params[:5]
        if self.taylor:
            tau = self.scale
        x = np.clip((self.grid - tc) / tau, 0.0, None if self.taylor else 1.0)
        rise = self.shape(x, params[5:])
        if blur > 0.25 * self.step:
            rise = gaussian_filter1d(rise, blur / self.step, mode="nearest", truncate=4.0)
        return np.asarray(baseline + amplitude * np.interp(self.t, self.grid, rise), dtype=np.float64)
