"""Onset models of a crash pulse, seen through the recorder's filter.

Whatever its overall shape (half-sine, haversine, triangular, skewed, measured), a pulse is zero before contact
and its first part follows a power series in x = (t − tc)/s that starts with a free power p:
``x^p · (a₀ + a₁x + a₂x²)`` — p = 1 for pulses that start with a slope, p = 2 for smooth (haversine-like)
starts, anything between for crush that stiffens. Contact also excites the structure: a damped oscillation
``b·e^(−ζωτ)·sin(ωτ)``, τ = t − tc, is the ``ringing`` variant. Where the samples are fewer than the filter's
rate, ringing above their Nyquist frequency enters only as what the filter keeps of it: a pulse at tc.

The amplitudes enter linearly and are solved exactly for each (tc, p[, ω, ζ]) (variable projection). Each
model is rendered on a grid ``upsample`` times finer than the samples, passed through the recorder's own
phaseless filter (:mod:`.response`) and sampled, so it is compared with the data exactly as the data were made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, signal  # type: ignore[import-untyped]

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
    vibration_hz: float | None = None  # the recording's steady vibration, which goes on through the event
    # ringing faster than the samples resolve enters as its footprint after the low-pass: a pulse at contact
    fast_ringing: bool = False

    @property
    def onset_terms(self) -> int:
        """Onset columns whose amplitudes are kept ≥ 0: the power series, and the fast ringing's footprint."""
        return TERMS + int(self.fast_ringing)

    @property
    def background_terms(self) -> int:
        """Linear terms besides the onset: baseline level and drift, and the vibration's cosine and sine."""
        return 2 if self.vibration_hz is None else 4

    @property
    def grid(self) -> FloatArray:
        k = self.response.upsample
        step = (self.t[1] - self.t[0]) / k
        return np.asarray(self.t[0] + step * np.arange((len(self.t) - 1) * k + 1 + self.tail), dtype=np.float64)

    def _shapes(self, tcs: FloatArray, p: float, ringing: tuple[float, float] | None) -> FloatArray:
        """Unfiltered onset columns on the grid for each contact time in ``tcs``: (grid, len(tcs), columns)."""
        grid = self.grid[:, None]
        tc = tcs[None, :]
        tau = np.clip(grid - tc, 0.0, None)
        x = tau / self.scale
        on = grid > tc
        # x^p times the Bernstein polynomials of degree TERMS - 1 on [tc, end of window]: the same span as
        # x^p·(a₀ + a₁x + a₂x²), but with amplitudes ≥ 0 the factor stays positive over the whole window
        u = tau / np.maximum(float(self.t[-1]) - tc, 1e-9)
        degree = TERMS - 1
        lead = np.where(on, x**p, 0.0)
        cols = [lead * math.comb(degree, j) * u**j * (1.0 - u) ** (degree - j) for j in range(TERMS)]
        if self.fast_ringing:
            cols.append(self.footprint(tcs))
        if ringing is not None:
            omega = 2 * math.pi * ringing[0] / 1000.0  # Hz -> rad/ms
            cols.append(np.where(on, np.exp(-ringing[1] * omega * tau) * np.sin(omega * tau), 0.0))
        return np.stack(cols, axis=2)

    def footprint(self, tcs: FloatArray) -> FloatArray:
        """A unit-area pulse at each contact time, shared between the two grid points around it: (grid, len(tcs)).

        Damped ringing b·e^(−ζωτ)·sin(ωτ) from contact carries a net area b/ω in its first cycles; far above the
        filter's cutoff the recorder's low-pass keeps only that area, as if it were an impulse at contact.
        """
        grid = self.grid
        step = float(grid[1] - grid[0])
        place = np.clip((tcs - grid[0]) / step, 0.0, len(grid) - 1.0)
        below = np.floor(place).astype(np.int64)
        frac = place - below
        out = np.zeros((len(grid), len(tcs)))
        columns = np.arange(len(tcs))
        out[below, columns] = 1.0 - frac
        above = np.minimum(below + 1, len(grid) - 1)
        out[above, columns] += frac
        return out

    def _filtered(self, shapes: FloatArray) -> FloatArray:
        """``shapes`` (grid, ...) through the recorder's filter, sampled at ``t``."""
        sos = self.response.sos()
        if sos is not None:
            grid_len = shapes.shape[0]
            shapes = signal.sosfiltfilt(sos, shapes, axis=0, padtype="odd", padlen=min(grid_len - 1, 3 * self.tail))
        out: FloatArray = shapes[: (len(self.t) - 1) * self.response.upsample + 1 : self.response.upsample]
        return out

    def _with_baseline(self, sampled: FloatArray) -> FloatArray:
        drift = (self.t - self.t[-1]) / (self.t[-1] - self.t[0])
        cols = [np.ones(len(self.t)), drift]
        if self.vibration_hz is not None:
            # a steady sinusoid stays one after the recorder's linear filter: only its amplitude and phase change
            phase = 2 * math.pi * self.vibration_hz / 1000.0 * self.t
            cols += [np.cos(phase), np.sin(phase)]
        return np.column_stack((*cols, sampled))

    def basis(self, params: FloatArray, ringing: bool) -> FloatArray:
        """Columns: baseline level and drift, the onset terms, [ringing]; filtered and sampled at ``t``."""
        ring = (float(params[2]), float(params[3])) if ringing else None
        shapes = self._shapes(np.array([float(params[0])]), float(params[1]), ring)[:, 0, :]
        return self._with_baseline(self._filtered(shapes))

    def profile(self, tcs: FloatArray, p: float, ringing: tuple[float, float] | None) -> FloatArray:
        """Residual sum of squares for each contact time in ``tcs``, the other nonlinear parameters fixed."""
        shapes = self._shapes(tcs, p, ringing)
        sampled = self._filtered(shapes)
        background, onset = self.background_terms, self.onset_terms
        return np.array(
            [_rss(self._with_baseline(sampled[:, k, :]), self.y, background, onset) for k in range(len(tcs))]
        )

    def solve(self, params: FloatArray, ringing: bool) -> tuple[FloatArray, FloatArray]:
        """(residual, amplitudes) of the best combination for the nonlinear ``params`` (see :func:`_amplitudes`)."""
        basis = self.basis(params, ringing)
        coef = _amplitudes(basis, self.y, self.background_terms, self.onset_terms)
        return self.y - basis @ coef, coef


def _amplitudes(basis: FloatArray, y: FloatArray, background: int, onset: int = TERMS) -> FloatArray:
    """Least-squares amplitudes of ``basis`` columns (``background`` terms, ``onset`` terms, [ringing]) for ``y``.

    The onset's amplitudes are kept ≥ 0, so the fitted pulse is positive everywhere after tc: a pulse pushes
    back from the instant of contact on. Left free, terms of opposite sign cancel into a flat stretch after an
    early tc, and the fit starts the pulse milliseconds before the data leave the baseline. The background and
    the ringing may take either sign (each enters as a ± pair of columns).
    """
    norms = np.linalg.norm(basis, axis=0)
    norms[norms == 0] = 1.0
    scaled = basis / norms
    n = scaled.shape[1]
    free = [*range(background), *range(background + onset, n)]
    both, _ = optimize.nnls(np.column_stack((scaled, -scaled[:, free])), y, maxiter=50 * n)
    coef = both[:n].copy()
    coef[free] -= both[n:]
    out: FloatArray = coef / norms
    return out


def _rss(basis: FloatArray, y: FloatArray, background: int, onset: int) -> float:
    residual = y - basis @ _amplitudes(basis, y, background, onset)
    return float(residual @ residual)
