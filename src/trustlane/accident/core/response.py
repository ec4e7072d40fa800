"""The recorder's low-pass, read from the noise: which phaseless filter shaped the samples.

Crash recorders low-pass their acceleration before storing it: SAE J211 CFC filters (a 2-pole Butterworth run
forward and backward), anti-alias filters before down-sampling (often higher-order Butterworth, also phaseless
in post-processing). Sensor noise is white before that filter, so the noise spectrum between events shows the
filter's magnitude: |H(f)|² of a Butterworth of ``order`` poles run both ways is 1 / (1 + (f/fc)^(2·order)),
and the noise power follows its square. The cutoff and order are fitted to a robust (median) Welch spectrum; a
cutoff within 12 % of a J211 class's design frequency is snapped to that class.

The onset fit then applies the same filter to its models before comparing them with the data, so the smearing
is the recorder's own, not a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal  # type: ignore[import-untyped]

from .j211 import CLASSES

FloatArray = npt.NDArray[np.float64]

#: Crash sensors sample at 1 kHz or more inside the unit; slower records were filtered at that rate first.
INTERNAL_RATE_HZ = 1000.0
J211_DESIGN = 2.0775
SNAP = 0.12
ORDERS = (2, 4)


@dataclass(frozen=True)
class Response:
    """A phaseless Butterworth low-pass (``cutoff_hz`` None: no filter seen) applied at ``rate_hz``."""

    cutoff_hz: float | None
    order: int
    rate_hz: float  # the rate the filter ran at: the sample rate times ``upsample``
    upsample: int
    label: str

    def sos(self) -> FloatArray | None:
        if self.cutoff_hz is None:
            return None
        out: FloatArray = signal.butter(self.order, self.cutoff_hz, fs=self.rate_hz, output="sos")
        return out

    def correlation_length(self, sample_rate_hz: float) -> float:
        """Σ of the autocorrelation of white noise after this filter, in samples (1 for white noise)."""
        sos = self.sos()
        if sos is None:
            return 1.0
        n = int(40 * self.rate_hz / max(self.cutoff_hz or 1.0, 1.0)) + 64
        impulse = np.zeros(n)
        impulse[n // 2] = 1.0
        h = signal.sosfiltfilt(sos, impulse)[:: self.upsample]
        ac = np.correlate(h, h, mode="full")
        return float(max(np.sum(ac) / ac[len(h) - 1], 1.0))


def _power_shape(f: FloatArray, cutoff: float, order: int, rate: float) -> FloatArray:
    """Noise power gain at ``f`` of a prewarped Butterworth run forward and backward (|H|⁴ of one pass)."""
    warped = np.tan(np.pi * np.minimum(f, 0.499 * rate) / rate) / math.tan(math.pi * cutoff / rate)
    return np.asarray(1.0 / (1.0 + warped ** (2 * order)) ** 2, dtype=np.float64)


def _snap(cutoff: float, order: int) -> tuple[float, str]:
    if order == 2:
        for cfc in CLASSES:
            design = J211_DESIGN * cfc
            if abs(cutoff / design - 1) <= SNAP:
                return design, f"SAE J211 CFC {cfc}"
    return cutoff, f"Butterworth {order}-pole, {cutoff:.0f} Hz, phaseless"


def estimate_response(noise: FloatArray, sample_rate_hz: float) -> Response:
    """The low-pass that best explains the spectrum of ``noise`` (event-free or mostly event-free samples)."""
    upsample = max(1, round(INTERNAL_RATE_HZ / sample_rate_hz))
    rate = sample_rate_hz * upsample
    none = Response(None, 2, rate, upsample, "none")
    n = len(noise)
    if n < 256:
        return none
    nper = 256 if n >= 2048 else 128
    f, p = signal.welch(noise, fs=sample_rate_hz, nperseg=nper, detrend="linear", average="median")
    nyquist = sample_rate_hz / 2
    keep = (f >= max(0.08 * nyquist, 3.0)) & (f <= 0.96 * nyquist) & (p > 0)
    if int(keep.sum()) < 8:
        return none
    f, logp = f[keep], np.log(p[keep])

    def cost(shape: FloatArray) -> float:
        resid = logp - np.log(shape)
        return float(np.mean(np.abs(resid - np.median(resid))))

    best: tuple[float, float | None, int, int] = (cost(np.ones_like(f)), None, 2, upsample)
    # the filter ran either at the recorded rate or inside the unit before down-sampling
    for factor in sorted({1, upsample}):
        for order in ORDERS:
            for cutoff in np.geomspace(0.08 * nyquist, 0.98 * factor * nyquist, 90):
                c = cost(_power_shape(f, float(cutoff), order, factor * sample_rate_hz))
                if c < best[0] - 1e-9:
                    best = (c, float(cutoff), order, factor)
    _, cutoff_hz, order, upsample = best
    if cutoff_hz is None:
        return none
    rate = sample_rate_hz * upsample
    cutoff_hz, label = _snap(cutoff_hz, order)
    if cutoff_hz >= 0.98 * rate / 2:
        return none
    return Response(cutoff_hz, order, rate, upsample, label)
