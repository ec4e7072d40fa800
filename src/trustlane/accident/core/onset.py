"""Onset models of a crash pulse, seen through the recorder's filter.

Whatever its overall shape (half-sine, haversine, triangular, skewed, measured), a pulse is zero before contact
and its first part follows a power series in x = (t − tc)/s that starts with a free power p:
``x^p · (a₀ + a₁x + a₂x²)`` — p = 1 for pulses that start with a slope, p = 2 for smooth (haversine-like)
starts, anything between for crush that stiffens. Contact also excites the structure: a damped oscillation
``b·e^(−ζωτ)·sin(ωτ)``, τ = t − tc, is the ``ringing`` variant.

The amplitudes enter linearly and are solved exactly for each (tc, p[, ω, ζ]) (variable projection). Each
model is rendered on a grid ``upsample`` times finer than the samples, passed through the recorder's own
phaseless filter (:mod:`.response`) and sampled, so it is compared with the data exactly as the data were made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal  # type: ignore[import-untyped]

from .response import Response

FloatArray = npt.NDArray[np.float64]

TERMS = 3  # power-series terms x^p, x^(p+1), x^(p+2)


@dataclass(frozen=True)
class OnsetModel:
    """Sampled, filtered onset models on a fit window; times in ms from a local origin."""

    t: FloatArray  # sample times of the window (ms)
    y: FloatArray  # the pulse at those samples
    response: Response
    scale: float  # ms: the rise's time scale, keeps the coefficients near 1
    tail: int  # grid points rendered past the window so the backward filter pass sees the pulse go on

    @property
    def grid(self) -> FloatArray:
        k = self.response.upsample
        step = (self.t[1] - self.t[0]) / k
        return np.asarray(self.t[0] + step * np.arange((len(self.t) - 1) * k + 1 + self.tail), dtype=np.float64)

    def basis(self, params: FloatArray, ringing: bool) -> FloatArray:
        """Columns: baseline level and drift, the power series, [ringing]; filtered and sampled at ``t``."""
        tc, p = float(params[0]), float(params[1])
        grid = self.grid
        tau = np.clip(grid - tc, 0.0, None)
        x = tau / self.scale
        on = grid > tc
        cols = [np.where(on, x ** (p + j), 0.0) for j in range(TERMS)]
        if ringing:
            omega = 2 * math.pi * float(params[2]) / 1000.0  # Hz -> rad/ms
            zeta = float(params[3])
            cols.append(np.where(on, np.exp(-zeta * omega * tau) * np.sin(omega * tau), 0.0))
        shapes = np.stack(cols, axis=1)
        sos = self.response.sos()
        if sos is not None:
            shapes = signal.sosfiltfilt(sos, shapes, axis=0, padtype="odd", padlen=min(len(grid) - 1, 3 * self.tail))
        sampled = shapes[: (len(self.t) - 1) * self.response.upsample + 1 : self.response.upsample]
        drift = (self.t - self.t[-1]) / (self.t[-1] - self.t[0])
        return np.column_stack((np.ones(len(self.t)), drift, sampled))

    def solve(self, params: FloatArray, ringing: bool) -> tuple[FloatArray, FloatArray]:
        """(residual, amplitudes) of the best linear combination for the nonlinear ``params``."""
        basis = self.basis(params, ringing)
        norms = np.linalg.norm(basis, axis=0)
        norms[norms == 0] = 1.0
        coef, *_ = np.linalg.lstsq(basis / norms, self.y, rcond=None)
        coef = coef / norms
        return self.y - basis @ coef, coef
