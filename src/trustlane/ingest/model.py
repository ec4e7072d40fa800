"""Records that flow through ingestion.

A reader turns a file into a :class:`RawRecording` of source-named :class:`Channel` s (timestamps in integer
nanoseconds since the Unix epoch, UTC). Mapping renames channels to VSS paths with unit conversion
(:class:`Signal`); classification attaches data categories; the segmenter cuts signals into time segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trustlane.errors import MalformedInput

TimeArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Channel:
    """One signal as the source names it.

    ``name`` is the source's own name: an MDF4 channel name, ``MESSAGE.SIGNAL`` for a DBC-decoded CAN
    signal, a CSV/Parquet column, or ``topic/field`` for MCAP. ``values`` holds numbers (float64, int64
    or bool) or, for text signals, Python strings (dtype object). ``timestamps_ns`` is strictly increasing.
    """

    name: str
    unit: str | None
    timestamps_ns: TimeArray
    values: npt.NDArray[np.generic]
    comment: str | None = None

    def __post_init__(self) -> None:
        if self.timestamps_ns.dtype != np.int64:
            raise MalformedInput(f"channel {self.name}: timestamps must be int64 nanoseconds")
        if len(self.timestamps_ns) != len(self.values):
            raise MalformedInput(
                f"channel {self.name}: {len(self.timestamps_ns)} timestamps but {len(self.values)} values"
            )

    def __len__(self) -> int:
        return len(self.timestamps_ns)


@dataclass(frozen=True)
class ConsentRecord:
    """A recorded consent (or other legal basis) that allows collecting a normally dropped category."""

    category: str  # a category id from the catalog, e.g. "cabin-audio"
    legal_basis: str  # e.g. "consent", "contract", "legal-obligation"
    granted_ns: int
    expires_ns: int | None = None
    reference: str | None = None  # where the signed consent is kept (no personal data)


@dataclass(frozen=True)
class RawRecording:
    """What a reader produced from one file."""

    source: Path
    format: str  # "mdf4" | "csv" | "parquet" | "candump" | "mcap" | "mqtt"
    channels: tuple[Channel, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    consents: tuple[ConsentRecord, ...] = ()

    @property
    def start_ns(self) -> int:
        return min((int(c.timestamps_ns[0]) for c in self.channels if len(c)), default=0)

    @property
    def end_ns(self) -> int:
        return max((int(c.timestamps_ns[-1]) for c in self.channels if len(c)), default=0)


@dataclass(frozen=True)
class Signal:
    """A channel renamed to its VSS path, converted to the VSS unit, and classified."""

    path: str  # VSS path, overlay path (Vehicle.ADAS.TransitionDemand...) or Vendor.<source>.<name>
    unit: str | None
    timestamps_ns: TimeArray
    values: npt.NDArray[np.generic]
    source_name: str
    categories: tuple[str, ...]
    classified: bool  # False for unmapped vendor signals: later rules treat them as not shareable
