"""The physical contact time checked against the learned estimate (:mod:`.learned`): σ widens where they disagree.

The onset fit (:mod:`.contact`) gives the contact time; the network, trained on other data and blind to the
fit's models, gives an independent one with its own σ. When the two differ by more than twice their combined σ,
one of them has read something the other has not (ringing or crush modulation taken for the onset, a shape no
model describes), and the physical estimate's σ grows to reach half-way to the learned one. The reported time
stays the physical one; without onnxruntime or the model, σ stays as calibrated.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from .errors import SignalError
from .learned import LearnedModel

FloatArray = npt.NDArray[np.float64]

#: the learned window needs the data 160 ms before and 352 ms after its centre at 1 kHz; a margin around it
WINDOW_BEFORE_S = 0.3
WINDOW_AFTER_S = 0.5
#: disagreement beyond this many combined σ counts as a conflict
CONFLICT_SIGMAS = 2.0


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
