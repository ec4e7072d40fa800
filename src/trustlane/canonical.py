"""RFC 8785 (JCS) canonical JSON: the only byte form in which trustlane hashes or signs JSON."""

from __future__ import annotations

from typing import Any

import rfc8785

from trustlane.errors import MalformedInput


def canonical_json(value: Any) -> bytes:
    """Canonical UTF-8 bytes of a JSON value; rejects what JSON cannot carry exactly (NaN, big ints)."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedInput(
            f"value cannot be written as RFC 8785 canonical JSON: {exc}",
            hint="use only objects with string keys, arrays, strings, booleans, null, finite numbers "
            "and integers within ±2^53",
        ) from exc
