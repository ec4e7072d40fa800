"""The learned cross-check: a compact temporal network over the acceleration around a proposed contact time.

For one triggered window it gives (1) the probability that the pulse is a collision rather than a road or body
event, (2) the struck side, (3) its own estimate of the contact time with a standard uncertainty, independent of
the onset fit in :mod:`.contact`. The network is trained on generator data (``trustlane.accident.training``) and
shipped as ONNX; inference needs numpy and onnxruntime only, so it runs inside the analysis sandbox.

Input window: the signals are resampled linearly to 1 kHz on a grid of :data:`WINDOW` samples that starts
:data:`CENTRE` ms before the proposal. :func:`window_features` is the one definition of the network's input; the
training code uses it too.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import SignalError

FloatArray = npt.NDArray[np.float64]

RATE_HZ = 1000
WINDOW = 512  # samples at RATE_HZ
CENTRE = 160  # index of the proposed contact time inside the window
BASELINE = 48  # leading samples whose median is the driving level removed from each axis
ACCEL_SCALE = 5.0  # m/s²: asinh compression keeps 0.5 m/s² and 60 g pulses in one numeric range
CHANNELS = ("longitudinal", "lateral", "velocity_longitudinal", "velocity_lateral", "vertical", "has_vertical", "rate")
DIRECTIONS = ("front", "rear", "left", "right")
MIN_RATE_HZ = 50.0
#: the data must reach this far around the proposal (ms): the pre-contact baseline and the pulse itself
NEEDED_BEFORE_MS = 100
NEEDED_AFTER_MS = 150
DEFAULT_MODEL = Path(__file__).with_name("model.onnx")


class ModelError(SignalError):
    """The model file is missing, unreadable or not the network this module feeds."""


@dataclass(frozen=True)
class LearnedAssessment:
    crash_probability: float
    direction: str  # most probable struck side: front, rear, left, right
    direction_probabilities: dict[str, float]
    contact_ns: int  # the network's contact time (ns, UTC)
    contact_sigma_ms: float  # its standard uncertainty

    def to_json(self) -> dict[str, Any]:
        return {
            "crash_probability": round(self.crash_probability, 4),
            "direction": self.direction,
            "direction_probabilities": {k: round(v, 4) for k, v in self.direction_probabilities.items()},
            "contact_ns": self.contact_ns,
            "contact_sigma_ms": round(self.contact_sigma_ms, 3),
        }


def _axis(values: npt.ArrayLike | None, what: str, n: int) -> FloatArray | None:
    if values is None:
        return None
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (n,):
        raise SignalError(f"{what}: {out.size} values for {n} timestamps", hint="pass one value per timestamp")
    return out


def window_features(
    t_ns: npt.ArrayLike,
    longitudinal: npt.ArrayLike,
    lateral: npt.ArrayLike,
    centre_ns: int,
    vertical: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float32]:
    """The network input, shape (len(CHANNELS), WINDOW), for the window around ``centre_ns``.

    Accelerations in m/s², vehicle frame (x forward, y left); non-finite samples are left out.
    """
    times = np.asarray(t_ns, dtype=np.int64)
    if times.ndim != 1:
        raise SignalError("timestamps must be a one-dimensional array", hint="pass integer ns, one per sample")
    n = len(times)
    ax = _axis(longitudinal, "longitudinal acceleration", n)
    ay = _axis(lateral, "lateral acceleration", n)
    az = _axis(vertical, "vertical acceleration", n)
    assert ax is not None and ay is not None
    ok = np.isfinite(ax) & np.isfinite(ay)
    if az is not None:
        ok &= np.isfinite(az)
    times, ax, ay = times[ok], ax[ok], ay[ok]
    az = az[ok] if az is not None else None
    if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
        at = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
        raise SignalError(
            f"timestamps are not strictly increasing at sample {at}", hint="sort the samples and drop duplicates"
        )
    # integer arithmetic relative to the centre keeps sub-microsecond precision for epoch timestamps
    lo = max(int(np.searchsorted(times, centre_ns - (CENTRE + 60) * 1_000_000)) - 1, 0)
    hi = min(int(np.searchsorted(times, centre_ns + (WINDOW - CENTRE + 60) * 1_000_000)) + 1, len(times))
    rel = (times[lo:hi] - centre_ns).astype(np.float64) / 1e6  # ms
    if len(rel) < 4 or rel[0] > -NEEDED_BEFORE_MS or rel[-1] < NEEDED_AFTER_MS:
        raise SignalError(
            f"the data do not cover {NEEDED_BEFORE_MS} ms before to {NEEDED_AFTER_MS} ms after the proposed "
            "contact time",
            hint="propose a contact time inside the recording, away from its ends and from gaps",
        )
    rate = 1e3 / float(np.median(np.diff(rel)))
    if rate < MIN_RATE_HZ:
        raise SignalError(
            f"acceleration sampled at {rate:.0f} Hz around the proposal; at least {MIN_RATE_HZ:.0f} Hz is needed",
            hint="use the crash recorder's acceleration (100 Hz or more)",
        )
    grid = np.arange(WINDOW, dtype=np.float64) - CENTRE
    out = np.zeros((len(CHANNELS), WINDOW), dtype=np.float64)
    for k, values in enumerate((ax, ay)):
        a = np.interp(grid, rel, values[lo:hi])
        a = a - float(np.median(a[:BASELINE]))
        out[k] = np.arcsinh(a / ACCEL_SCALE) / 3.0
        out[k + 2] = np.cumsum(a) / RATE_HZ / 3.0  # velocity change (m/s) since the window start
    if az is not None:
        a = np.interp(grid, rel, az[lo:hi])
        out[4] = np.arcsinh((a - float(np.median(a[:BASELINE]))) / ACCEL_SCALE) / 3.0
        out[5] = 1.0
    out[6] = min(max(math.log10(RATE_HZ / rate), 0.0), 1.5)
    return out.astype(np.float32)


class LearnedModel:
    """The shipped network, loaded once and applied to any number of windows."""

    def __init__(self, session: Any, digest: str) -> None:
        self._session = session
        self.digest = digest
        inputs = session.get_inputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if shape is None or list(shape[1:]) != [len(CHANNELS), WINDOW]:
            raise ModelError(
                f"the model expects input {shape}, not (batch, {len(CHANNELS)}, {WINDOW})",
                hint="use the model.onnx shipped with this version of trustlane",
            )
        self._input = inputs[0].name
        names = [o.name for o in session.get_outputs()]
        if names != ["crash_probability", "direction_probabilities", "contact_offset_ms", "contact_sigma_ms"]:
            raise ModelError(f"unexpected model outputs {names}", hint="use the model.onnx shipped with trustlane")

    @classmethod
    def load(cls, path: str | None = None) -> LearnedModel:
        """Load ``path`` (default: the model.onnx beside this module) into a single-threaded session."""
        import onnxruntime as ort  # type: ignore[import-untyped]

        where = Path(path) if path is not None else DEFAULT_MODEL
        try:
            blob = where.read_bytes()
        except OSError as err:
            raise ModelError(f"cannot read the model {where}: {err.strerror}", hint="check the path") from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(blob, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors for a damaged file
            raise ModelError(f"{where} is not a usable ONNX model: {err}", hint="restore the shipped model") from err
        return cls(session, "sha256:" + hashlib.sha256(blob).hexdigest())

    def assess(
        self,
        t_ns: npt.ArrayLike,
        longitudinal: npt.ArrayLike,
        lateral: npt.ArrayLike,
        *,
        contact_ns: int,
        vertical: npt.ArrayLike | None = None,
    ) -> LearnedAssessment:
        """Assess the window around ``contact_ns`` (a proposal: the physics estimate or time zero)."""
        features = window_features(t_ns, longitudinal, lateral, int(contact_ns), vertical)
        return self.assess_features(features[None], [int(contact_ns)])[0]

    def outputs(self, features: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """The network's raw outputs for a batch of windows, in the order of the model's output names."""
        result: list[npt.NDArray[np.float32]] = self._session.run(None, {self._input: features.astype(np.float32)})
        return result

    def assess_features(self, features: npt.NDArray[np.float32], centres_ns: list[int]) -> list[LearnedAssessment]:
        """Run the network on a batch of prepared windows (rows of :func:`window_features`)."""
        crash, directions, offset, sigma = self.outputs(features)
        out = []
        for k, centre in enumerate(centres_ns):
            probabilities = {name: float(p) for name, p in zip(DIRECTIONS, directions[k], strict=True)}
            out.append(
                LearnedAssessment(
                    crash_probability=float(crash[k]),
                    direction=max(probabilities, key=lambda name: probabilities[name]),
                    direction_probabilities=probabilities,
                    contact_ns=centre + round(float(offset[k]) * 1e6),
                    contact_sigma_ms=float(sigma[k]),
                )
            )
        return out


__all__ = ["CHANNELS", "DIRECTIONS", "LearnedAssessment", "LearnedModel", "ModelError", "window_features"]
