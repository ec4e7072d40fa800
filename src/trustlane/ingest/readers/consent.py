"""Consent records carried inside a recording, as a JSON list.

Each item is an object ``{"category": str, "legal_basis": str, "granted_ns": int, "expires_ns": int | null,
"reference": str | null}``; the last two may be left out. Unknown keys are refused so that a misspelt
field is not silently dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

from trustlane.errors import MalformedInput
from trustlane.ingest.model import ConsentRecord

CONSENT_KEY = "trustlane.consent"
_REQUIRED = ("category", "legal_basis", "granted_ns")
_KNOWN = frozenset((*_REQUIRED, "expires_ns", "reference"))
_HINT = (
    'write the consent records as a JSON list of {"category", "legal_basis", "granted_ns", '
    '"expires_ns"?, "reference"?} objects, times as integer nanoseconds since the Unix epoch'
)


def _int_field(item: dict[str, object], key: str, where: str) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedInput(f"{where}: {key} must be an integer (nanoseconds since the epoch)", hint=_HINT)
    return value


def _text_field(item: dict[str, object], key: str, where: str, *, required: bool) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedInput(f"{where}: {key} must be a non-empty string", hint=_HINT)
    return value


def _record(item: object, where: str) -> ConsentRecord:
    if not isinstance(item, dict):
        raise MalformedInput(f"{where}: expected an object, found {type(item).__name__}", hint=_HINT)
    unknown = sorted(set(item) - _KNOWN)
    if unknown:
        raise MalformedInput(f"{where}: unknown key(s) {', '.join(unknown)}", hint=_HINT)
    missing = [key for key in _REQUIRED if key not in item]
    if missing:
        raise MalformedInput(f"{where}: missing {', '.join(missing)}", hint=_HINT)
    granted = _int_field(item, "granted_ns", where)
    expires = _int_field(item, "expires_ns", where)
    if granted is None:
        raise MalformedInput(f"{where}: granted_ns must be an integer (nanoseconds since the epoch)", hint=_HINT)
    if expires is not None and expires <= granted:
        raise MalformedInput(f"{where}: expires_ns ({expires}) is not after granted_ns ({granted})", hint=_HINT)
    return ConsentRecord(
        category=str(_text_field(item, "category", where, required=True)),
        legal_basis=str(_text_field(item, "legal_basis", where, required=True)),
        granted_ns=granted,
        expires_ns=expires,
        reference=_text_field(item, "reference", where, required=False),
    )


def parse_consents(text: str | bytes, *, source: Path, carrier: str) -> tuple[ConsentRecord, ...]:
    """The consent records in ``text``; ``carrier`` says where in ``source`` they were found."""
    where = f"{source}: {carrier}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedInput(
            f"{where}: consent records are not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            hint=_HINT,
        ) from None
    except (RecursionError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedInput(f"{where}: consent records are not valid JSON ({exc})", hint=_HINT) from None
    if not isinstance(data, list):
        raise MalformedInput(f"{where}: consent records must be a JSON list, found {type(data).__name__}", hint=_HINT)
    return tuple(_record(item, f"{where}, item {n}") for n, item in enumerate(data, start=1))


def consents_to_json(consents: tuple[ConsentRecord, ...] | list[ConsentRecord]) -> str:
    """The JSON list form of ``consents`` (what writers put into a file)."""
    items: list[dict[str, object]] = []
    for record in consents:
        item: dict[str, object] = {
            "category": record.category,
            "legal_basis": record.legal_basis,
            "granted_ns": record.granted_ns,
        }
        if record.expires_ns is not None:
            item["expires_ns"] = record.expires_ns
        if record.reference is not None:
            item["reference"] = record.reference
        items.append(item)
    return json.dumps(items, separators=(",", ":"))
