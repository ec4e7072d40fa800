"""Onset models of a crash pulse: how acceleration departs from the driving level at contact.

Whatever its overall shape (half-sine, haversine, triangular, skewed, measured), a pulse starts at contact and
its first milliseconds follow the start of its Taylor expansion. The fit uses three such models, each zero
before the contact time tc and, with x = (t − tc)/s for a fixed scale s:

* ``linear`` — A·x (pulses that start with a slope: triangular, half-sine, most crush fronts);
* ``quadratic`` — A·(x + c₂x²), c₂ ≥ 0 (pulses that start gently, like a haversine);
* ``cubic`` — A·(x + c₂x² + c₃x³).

Data that were low-pass filtered (SAE J211 CFC, anti-alias filters before down-sampling) look smeared: each
model is convolved with a Gaussian of free width ``blur``, which stands for any phaseless low-pass.
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


class OnsetModel:
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
