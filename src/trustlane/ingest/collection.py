"""What ingest keeps: default non-collection, location precision, unclassified vendor signals.

Rules, in order, for each classified signal:

1. a category the catalog does not know: the signal is dropped (fail closed);
2. a category with ``collect_by_default: false`` (cabin imagery and audio, biometrics, driver monitoring):
   dropped unless a consent record for that category, with an accepted legal basis, is valid over the whole
   recording (granted at or before its first sample, not expired before its last);
3. ``location`` (precise coordinates) without such a consent: numeric coordinates in degrees are rounded to
   ``CollectionPolicy.location_decimals`` places and the signal becomes ``location-coarse``; anything else
   in the category (a charge point id, coordinates in another unit) is dropped, as it cannot be coarsened;
4. unclassified (``Vendor.*``) signals are kept, marked not shareable.

Every drop and adjustment carries a reason and the category's citations, ready for a receipt or a ledger
event (:meth:`Drop.as_record`, :meth:`Adjustment.as_record`).

Default precision: 3 decimal places, a grid of 0.001° (about 111 m north-south, 111 m × cos(latitude)
east-west: 79 m at 45°). That still tells which road, junction or neighbourhood an event happened in,
which accident context, weather look-ups and fleet statistics need, but no longer the house entrance or
parking space that 4 or more places (11 m or finer) reveal. Precise positions, e.g. for crash
reconstruction, need a consent (or other accepted basis) for ``location``. Rounding minimises data; it does
not anonymise: a rounded trajectory can still single out a person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from trustlane.errors import UsageError
from trustlane.ingest.categories import UNCLASSIFIED, Category, CategoryCatalog, default_categories
from trustlane.ingest.model import ConsentRecord, Signal

LOCATION = "location"
LOCATION_COARSE = "location-coarse"
DEFAULT_LOCATION_DECIMALS = 3
DEFAULT_LEGAL_BASES = frozenset({"consent", "legal-obligation"})
FAIL_CLOSED = "trustlane DESIGN.md principle 6 (fail closed, explain always)"
_METRES_PER_DEGREE = 111_320.0  # along a meridian, and along the equator

_Covered = Callable[[str], tuple[bool, str]]


@dataclass(frozen=True)
class CollectionPolicy:
    """Configuration of the collection rules.

    ``accepted_legal_bases``: the ``ConsentRecord.legal_basis`` values that unlock a category not collected by
    default. The default accepts ``consent`` and ``legal-obligation`` only, as sensitive personal information
    needs separate consent (CN-ADSP) and special-category data explicit consent or a legal basis (GDPR
    Art. 9); widen it deliberately (e.g. ``vital-interests``) for a deployment that has assessed it.
    """

    location_decimals: int = DEFAULT_LOCATION_DECIMALS
    accepted_legal_bases: frozenset[str] = DEFAULT_LEGAL_BASES
    categories: CategoryCatalog = field(default_factory=default_categories)

    def __post_init__(self) -> None:
        decimals = self.location_decimals
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 8:
            raise UsageError(
                f"location_decimals must be a whole number from 0 to 8, not {decimals!r}",
                hint="3 decimal places keep about 111 m; 2 about 1.1 km; see docs for the trade-off",
            )


@dataclass(frozen=True)
class Drop:
    """A signal ingest did not keep, and why."""

    path: str
    source_name: str
    category: str
    reason: str
    citation: str

    def as_record(self) -> dict[str, str]:
        return {
            "action": "drop",
            "path": self.path,
            "source_name": self.source_name,
            "category": self.category,
            "reason": self.reason,
            "citation": self.citation,
        }


@dataclass(frozen=True)
class Adjustment:
    """A signal ingest kept in changed form or with a restriction (``kind``), and why."""

    path: str
    source_name: str
    category: str
    kind: str  # "location-precision" | "not-shareable"
    reason: str
    citation: str

    def as_record(self) -> dict[str, str]:
        return {
            "action": "adjust",
            "kind": self.kind,
            "path": self.path,
            "source_name": self.source_name,
            "category": self.category,
            "reason": self.reason,
            "citation": self.citation,
        }


@dataclass(frozen=True)
class CollectionResult:
    kept: list[Signal]
    dropped: list[Drop]
    adjusted: list[Adjustment]

    @property
    def not_shareable(self) -> list[str]:
        """Paths of kept signals that must never leave the holder (unclassified vendor signals)."""
        return [a.path for a in self.adjusted if a.kind == "not-shareable"]


def time_range(signals: Iterable[Signal]) -> tuple[int, int] | None:
    """First and last sample time over ``signals``; ``None`` when there is no sample."""
    spans = [(int(s.timestamps_ns[0]), int(s.timestamps_ns[-1])) for s in signals if len(s.timestamps_ns)]
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans)


def consent_problem(consent: ConsentRecord, span: tuple[int, int] | None, accepted: frozenset[str]) -> str | None:
    """Why ``consent`` does not cover ``span`` (``None``: it does). An empty recording needs any valid one."""
    if consent.legal_basis not in accepted:
        return f"legal basis {consent.legal_basis!r} is not accepted (accepted: {', '.join(sorted(accepted))})"
    start, end = span if span else (consent.granted_ns, consent.granted_ns)
    if consent.granted_ns > start:
        return f"granted at {_iso(consent.granted_ns)}, after the recording starts"
    if consent.expires_ns is not None and consent.expires_ns < end:
        return f"expired at {_iso(consent.expires_ns)}, before the recording ends"
    return None


def apply_collection_rules(
    signals: Sequence[Signal],
    consents: Iterable[ConsentRecord],
    policy: CollectionPolicy | None = None,
    *,
    span: tuple[int, int] | None = None,
) -> CollectionResult:
    """Apply the collection rules to one recording's ``signals``.

    ``span`` is the recording's time range (default: first to last sample over ``signals``); a consent must
    be valid over all of it.
    """
    policy = policy or CollectionPolicy()
    span = span if span is not None else time_range(signals)
    by_category: dict[str, list[ConsentRecord]] = {}
    for consent in consents:
        by_category.setdefault(consent.category, []).append(consent)

    def covered(category: str) -> tuple[bool, str]:
        found = by_category.get(category, [])
        problems = [consent_problem(c, span, policy.accepted_legal_bases) for c in found]
        if any(p is None for p in problems):
            return True, ""
        if not found:
            return False, f"no consent record for {category}"
        notes = "; ".join(
            f"consent {c.reference or '(no reference)'}: {p}" for c, p in zip(found, problems, strict=True)
        )
        return False, f"no consent record for {category} covers {_span_text(span)} ({notes})"

    kept: list[Signal] = []
    dropped: list[Drop] = []
    adjusted: list[Adjustment] = []
    for signal in signals:
        outcome = _decide(signal, policy, covered)
        if isinstance(outcome, Drop):
            dropped.append(outcome)
            continue
        signal, changes = outcome
        kept.append(signal)
        adjusted.extend(changes)
    return CollectionResult(kept=kept, dropped=dropped, adjusted=adjusted)


def _decide(signal: Signal, policy: CollectionPolicy, covered: _Covered) -> Drop | tuple[Signal, list[Adjustment]]:
    catalog = policy.categories
    unknown = [c for c in signal.categories if catalog.get(c) is None]
    if unknown or not signal.categories:
        return _drop(
            signal, unknown[0] if unknown else UNCLASSIFIED, "the signal has no known data category", FAIL_CLOSED
        )
    for cid in signal.categories:
        category = catalog.category(cid)
        if category.collect_by_default:
            continue
        ok, why = covered(cid)
        if not ok:
            reason = f"{category.title} ({cid}) is not collected by default: {why}"
            return _drop(signal, cid, reason, category.citation_text())

    changes: list[Adjustment] = []
    if LOCATION in signal.categories and not covered(LOCATION)[0]:
        coarse = _coarsen(signal, policy.location_decimals, catalog.category(LOCATION))
        if isinstance(coarse, Drop):
            return coarse
        signal, change = coarse
        changes.append(change)
    if not signal.classified:
        unclassified = catalog.get(UNCLASSIFIED)
        changes.append(
            Adjustment(
                path=signal.path,
                source_name=signal.source_name,
                category=UNCLASSIFIED,
                kind="not-shareable",
                reason="no mapping names this source signal: kept for analysis by the holder, never shared",
                citation=unclassified.citation_text() if unclassified else FAIL_CLOSED,
            )
        )
    return signal, changes


def _coarsen(signal: Signal, decimals: int, category: Category) -> Drop | tuple[Signal, Adjustment]:
    citation = category.citation_text()
    if signal.unit != "degrees" or signal.values.dtype.kind not in "iuf":
        reason = (
            f"precise location ({signal.unit or 'no unit'}, {signal.values.dtype}) cannot be rounded to "
            f"{decimals} decimal places of a degree, and no consent record for {LOCATION} covers the recording"
        )
        return _drop(signal, LOCATION, reason, citation)
    rounded = np.round(signal.values.astype(np.float64), decimals)
    cats = tuple(dict.fromkeys(LOCATION_COARSE if c == LOCATION else c for c in signal.categories))
    metres = _METRES_PER_DEGREE * 10.0**-decimals
    reason = (
        f"no consent record for {LOCATION} covers the recording: coordinates rounded to {decimals} decimal places "
        f"(a {10.0**-decimals:g}° grid, about {metres:.3g} m north-south)"
    )
    adjustment = Adjustment(signal.path, signal.source_name, LOCATION, "location-precision", reason, citation)
    return replace(signal, values=rounded, categories=cats), adjustment


def _drop(signal: Signal, category: str, reason: str, citation: str) -> Drop:
    return Drop(path=signal.path, source_name=signal.source_name, category=category, reason=reason, citation=citation)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _span_text(span: tuple[int, int] | None) -> str:
    return f"{_iso(span[0])} to {_iso(span[1])}" if span else "the (empty) recording"


__all__ = [
    "DEFAULT_LEGAL_BASES",
    "DEFAULT_LOCATION_DECIMALS",
    "Adjustment",
    "CollectionPolicy",
    "CollectionResult",
    "Drop",
    "apply_collection_rules",
    "consent_problem",
    "time_range",
]
