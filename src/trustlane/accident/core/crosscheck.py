"""The physical contact time checked against the learned estimate (:mod:`.learned`).

The onset fit (:mod:`.contact`) gives the contact time; the network, trained on other data and blind to the
fit's models, gives an independent one with its own σ. When the two differ by more than twice their combined σ,
one of them has read something the other has not (ringing or crush modulation taken for the onset, a shape no
model describes). The onset fit is then run again with contact confined to the learned estimate's
neighbourhood. If that confined fit lies inside the free fit's 95 % profile-likelihood region (its residual
larger by no more than the noise, with the models' calibrated shape error, allows for one parameter), the
samples cannot tell the two onsets apart and the independent estimate decides between them: the confined
physical fit is reported, with a σ whose ±2σ covers both candidates' ±2σ. Otherwise the free fit stays and its
σ grows to reach half-way to the learned estimate. The reported time is always a physical fit's, never the
learned one; without onnxruntime or the model, σ stays as calibrated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .contact import ContactFit
from .errors import SignalError
from .learned import LearnedModel

FloatArray = npt.NDArray[np.float64]

#: the learned window needs the data 160 ms before and 352 ms after its centre at 1 kHz; a margin around it
WINDOW_BEFORE_S = 0.3
WINDOW_AFTER_S = 0.5
#: disagreement beyond this many combined σ counts as a conflict
CONFLICT_SIGMAS = 2.0
#: the confined fit searches contact within this many of the learned σ around the learned estimate; no more
#: than CONFLICT_SIGMAS, so the window never reaches back to the free fit's contact time
REFIT_SIGMAS = 2.0
#: 95 % quantile of χ² with one degree of freedom: the profile-likelihood region of one parameter (tc)
PROFILE_CHI2_95 = 3.841


@dataclass(frozen=True)
class Crosschecked:
    """The contact fit to report, its σ (s), and the confined refit's Δχ² when that fit was taken."""

    fit: ContactFit
    sigma: float
    refit_chi2: float | None = None


@functools.cache
def _model() -> LearnedModel | None:
    try:
        return LearnedModel.load()
    except (ImportError, SignalError):
        return None


def learned_contact(
    t: FloatArray,
    t_ns0: int,
    longitudinal: FloatArray,
    lateral: FloatArray,
    vertical: FloatArray | None,
    tc: float,
) -> tuple[float, float] | None:
    """The network's (contact time, σ) in seconds on the time base ``t`` (s from ``t_ns0``), for the window
    around the physical estimate ``tc``; None when the network is not available or the window does not fit."""
    model = _model()
    if model is None:
        return None
    lo = int(np.searchsorted(t, tc - WINDOW_BEFORE_S))
    hi = int(np.searchsorted(t, tc + WINDOW_AFTER_S))
    if hi - lo < 8:
        return None
    t_ns = t_ns0 + np.round(t[lo:hi] * 1e9).astype(np.int64)
    try:
        result = model.assess(
            t_ns,
            longitudinal[lo:hi],
            lateral[lo:hi],
            contact_ns=t_ns0 + round(tc * 1e9),
            vertical=vertical[lo:hi] if vertical is not None else None,
        )
    except SignalError:
        return None
    return (result.contact_ns - t_ns0) / 1e9, result.contact_sigma_ms / 1e3


def crosschecked_sigma(tc: float, sigma: float, learned: tuple[float, float] | None) -> float:
    """``sigma`` widened to hypot(σ, d/2) when the learned estimate lies more than twice the combined σ away."""
    if learned is None:
        return sigma
    learned_tc, learned_sigma = learned
    distance = abs(tc - learned_tc)
    if distance > CONFLICT_SIGMAS * math.hypot(sigma, learned_sigma):
        return math.hypot(sigma, 0.5 * distance)
    return sigma


def conflicts(tc: float, sigma: float, learned: tuple[float, float]) -> bool:
    """Whether the learned estimate lies more than twice the combined σ from the physical one."""
    learned_tc, learned_sigma = learned
    return bool(abs(tc - learned_tc) > CONFLICT_SIGMAS * math.hypot(sigma, learned_sigma))


def refit_chi2(free: ContactFit, confined: ContactFit) -> float:
    """How much worse the confined fit is, in units of the noise: the residual increase over the free fit of
    the same model, over the free fit's noise variance. Confining contact takes no parameter away, so the
    test compares like with like; only where that model's free fit is unknown is the free fit's chosen model
    used, with the Akaike penalty for any extra parameters.

    The variance is the residual's, scaled for the correlation the filter puts between samples and by the
    square of the σ calibration's inflation: the calibration found the profile's own statistics short of the
    real spread of contact times by that factor (the models' shape error), and so is the residual here."""
    if free.noise <= 0:
        return math.inf
    same = free.model_rss.get(confined.model)
    if same is not None:
        return (confined.rss - same) / free.noise
    return (confined.rss - free.rss) / free.noise + 2.0 * (confined.parameters - free.parameters)


def covering_sigma(centre: float, *supports: tuple[float, float]) -> float:
    """The σ for which ``centre`` ± 2σ covers every support (lo, hi)."""
    return 0.5 * max(max(abs(lo - centre), abs(hi - centre)) for lo, hi in supports)


def crosscheck(
    fit: ContactFit,
    learned: tuple[float, float] | None,
    refit: Callable[[tuple[float, float]], ContactFit | None] | None,
) -> Crosschecked:
    """The contact fit and σ to report once the learned estimate is known (see the module's description).

    ``refit`` fits the onset again with contact confined to a window (times as ``fit.tc``); None where the
    rate's fit cannot be confined."""
    if learned is None or not conflicts(fit.tc, fit.sigma, learned):
        return Crosschecked(fit, fit.sigma)
    if refit is not None:
        learned_tc, learned_sigma = learned
        span = REFIT_SIGMAS * learned_sigma
        window = (learned_tc - span, learned_tc + span)
        confined = refit(window)
        if confined is not None:
            chi2 = refit_chi2(fit, confined)
            if chi2 <= PROFILE_CHI2_95:
                # the confined fit's support ends at its window: its own σ, pressed against an edge, may
                # reach far past it
                own = (
                    max(confined.tc - 2 * confined.sigma, window[0]),
                    min(confined.tc + 2 * confined.sigma, window[1]),
                )
                free = (fit.tc - 2 * fit.sigma, fit.tc + 2 * fit.sigma)
                return Crosschecked(confined, covering_sigma(confined.tc, own, free), chi2)
    return Crosschecked(fit, crosschecked_sigma(fit.tc, fit.sigma, learned))
