"""SAE J211-1 channel frequency class (CFC) filters: a 2-pole Butterworth low-pass run forward and backward.

Running it both ways makes it phaseless (no delay), as J211 requires for crash data. Coefficients follow the
J211 Appendix C formulation, where the design frequency is 2.0775 × CFC; the response is flat to the class
frequency and about -1.5 dB at F_H = 5/3 × CFC (CFC 60: 100 Hz), inside the J211 corridor (+0.5 / -4 dB).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import signal  # type: ignore[import-untyped]

from .errors import SignalError

FloatArray = npt.NDArray[np.float64]

#: Classes J211 names for vehicle and dummy channels.
CLASSES = (60, 180, 600, 1000)


def cfc_coefficients(cfc: float, sample_rate_hz: float) -> tuple[FloatArray, FloatArray]:
    """(b, a) of one pass of the CFC filter for ``scipy.signal.lfilter``."""
    design_hz = 2.0775 * cfc
    if design_hz >= sample_rate_hz / 2:
        raise SignalError(
            f"a CFC {cfc:g} filter needs a sample rate above {2 * design_hz:.0f} Hz, not {sample_rate_hz:.0f} Hz",
            hint="use a lower filter class for this sample rate",
        )
    wd = 2 * math.pi * design_hz
    wa = math.tan(wd / sample_rate_hz / 2)
    norm = 1 + math.sqrt(2) * wa + wa * wa
    a0 = wa * wa / norm
    b1 = -2 * (wa * wa - 1) / norm
    b2 = (-1 + math.sqrt(2) * wa - wa * wa) / norm
    return np.array([a0, 2 * a0, a0]), np.array([1.0, -b1, -b2])


def cfc_filter(values: FloatArray, sample_rate_hz: float, cfc: float) -> FloatArray:
    """``values`` (evenly sampled) filtered forward and backward with the CFC class ``cfc``."""
    b, a = cfc_coefficients(cfc, sample_rate_hz)
    if len(values) < 16:
        return np.asarray(values, dtype=np.float64).copy()
    pad = min(len(values) - 1, int(sample_rate_hz * 0.05) + 6)
    out: FloatArray = signal.filtfilt(b, a, values, padtype="even", padlen=pad)
    return out


def highest_class(sample_rate_hz: float) -> int | None:
    """The highest CFC class a signal at ``sample_rate_hz`` supports, or None below CFC 60's need (~250 Hz)."""
    fitting = [c for c in CLASSES if 2.0775 * c < sample_rate_hz / 2]
    return max(fitting) if fitting else None
