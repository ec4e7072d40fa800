"""What the analysis reports: collision events and data-quality findings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """A data-quality or analysis remark; ``severity`` is ``info``, ``warning`` or ``error``."""

    code: str
    severity: str
    message: str
    t_ns: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.t_ns is not None:
            out["t_ns"] = self.t_ns
        return out


@dataclass(frozen=True)
class ContactEstimate:
    """Physical contact time from the pulse-onset fit, with its standard uncertainty."""

    t_ns: int
    sigma_ms: float
    model: str  # onset shape of the best fit (AIC)
    rise_ms: float  # contact to first peak of the fitted onset
    blur_ms: float  # low-pass smearing the fit found in the data (0 for unfiltered data)
    weights: dict[str, float] = field(default_factory=dict)  # Akaike weight per model


@dataclass(frozen=True)
class CollisionEvent:
    """One collision. Velocities in km/h, vehicle frame (x forward, y left)."""

    t0_ns: int  # regulatory time zero: start of the first 20 ms with > 0.8 km/h cumulative delta-V
    t0_basis: str  # "sensed" (as an EDR would) or "baseline-corrected" (driving acceleration removed first)
    end_ns: int  # end of event: the 20 ms delta-V falls to 0.8 km/h or less
    contact: ContactEstimate
    delta_v_kmh: float  # collision delta-V, resultant, driving acceleration removed, contact to end
    delta_v_longitudinal_kmh: float
    delta_v_lateral_kmh: float
    max_delta_v_kmh: float  # largest resultant cumulative delta-V from T0 (sensed), within the event
    max_delta_v_ns: int
    max_delta_v_longitudinal_kmh: float  # signed, largest magnitude
    max_delta_v_lateral_kmh: float
    peak_acceleration_ms2: float
    direction: str  # struck side: front, rear, left, right
    pdof_deg: float  # direction of the delta-V vector, degrees from forward, left positive
    trigger: bool  # >= 8 km/h within 150 ms (49 CFR 563, GB 39732)
    lock: bool  # >= 25 km/h longitudinal within 150 ms (GB 39732)
    clipped: bool  # the sensor saturated during the event: delta-V figures are lower bounds

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        contact = out.pop("contact")
        return {
            "t0_ns": self.t0_ns,
            "contact_ns": self.contact.t_ns,
            "contact_sigma_ms": round(self.contact.sigma_ms, 4),
            "delta_v_kmh": round(self.delta_v_kmh, 3),
            "max_delta_v_kmh": round(self.max_delta_v_kmh, 3),
            "direction": self.direction,
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in out.items() if k not in _HEAD},
            "contact_fit": {
                "model": contact["model"],
                "rise_ms": round(contact["rise_ms"], 3),
                "blur_ms": round(contact["blur_ms"], 3),
                "weights": {k: round(v, 4) for k, v in contact["weights"].items()},
            },
        }


_HEAD = frozenset(("t0_ns", "delta_v_kmh", "max_delta_v_kmh", "direction"))
