"""Vehicle identification numbers (ISO 3779) and their keyed pseudonyms.

A VIN is 17 characters from A-Z and 0-9 without I, O and Q. Position 9 is a check digit in North America
(49 CFR 565) and optional elsewhere, so it is verified only with ``strict=True``.

A VIN is personal data: it never enters the ledger, logs or reports. Those use its pseudonym
``veh-`` + base32(HMAC-SHA256(key, "trustlane/vin-pseudonym/v1\\n" || VIN)[:16]) in lower case without
padding (26 characters). The pseudonym is stable for one key (one node) and cannot be linked to the VIN,
or across nodes, without that key. Error messages name positions and characters, never the whole VIN.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from trustlane.errors import KeyMaterialError, MalformedInput

VIN_LENGTH = 17
CHECK_DIGIT_POSITION = 9  # 1-based
PSEUDONYM_PREFIX = "veh-"
PSEUDONYM_KEY_LABEL = "vin-pseudonym/v1"  # derive_key(master, PSEUDONYM_KEY_LABEL) is the pseudonym key

_DOMAIN = b"trustlane/vin-pseudonym/v1\n"
_ALLOWED = frozenset("ABCDEFGHJKLMNPRSTUVWXYZ0123456789")
_PSEUDONYM = re.compile(r"veh-[a-z2-7]{26}")
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_LOOKALIKES = {"I": "1", "O": "0", "Q": "0"}


def normalize_vin(text: str) -> str:
    """``text`` in upper case with all whitespace removed (no other checks)."""
    return "".join(text.split()).upper()


def check_digit(vin: str) -> str:
    """The North-American check digit (``0``-``9`` or ``X``) of a 17-character VIN in normal form."""
    total = sum(_VALUES[ch] * weight for ch, weight in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def validate_vin(text: str, *, strict: bool = False) -> str:
    """The VIN in normal form; MalformedInput naming what is wrong otherwise.

    With ``strict`` the check digit at position 9 must match (North-American VINs).
    """
    vin = normalize_vin(text)
    if len(vin) != VIN_LENGTH:
        raise MalformedInput(
            f"a VIN has {VIN_LENGTH} characters; the one given has {len(vin)}",
            hint="copy the VIN again from the registration document or the windscreen plate",
        )
    for position, ch in enumerate(vin, start=1):
        if ch in _LOOKALIKES:
            raise MalformedInput(
                f"VIN character {position} is {ch!r}; VINs never use I, O or Q",
                hint=f"it is probably {_LOOKALIKES[ch]!r} (ISO 3779 excludes letters that look like digits)",
            )
        if ch not in _ALLOWED:
            raise MalformedInput(
                f"VIN character {position} is {ch!r}; a VIN holds only the letters A-Z and the digits 0-9",
                hint="copy the VIN again without punctuation",
            )
    if strict:
        expected = check_digit(vin)
        found = vin[CHECK_DIGIT_POSITION - 1]
        if found != expected:
            raise MalformedInput(
                f"VIN check digit (character {CHECK_DIGIT_POSITION}) is {found!r} but the VIN gives {expected!r}",
                hint="a character was mistyped; VINs from outside North America may not carry a check digit "
                "(validate them without strict checking)",
            )
    return vin


def pseudonym(vin: str, key: bytes) -> str:
    """The keyed pseudonym of ``vin``: ``veh-`` and 26 base32 characters; the VIN is validated first."""
    if len(key) < 16:
        raise KeyMaterialError(
            f"a pseudonym key needs at least 16 bytes, got {len(key)}",
            hint="derive it from the node master key: derive_key(master, PSEUDONYM_KEY_LABEL)",
        )
    normal = validate_vin(vin)
    mac = hmac.new(key, _DOMAIN + normal.encode("ascii"), hashlib.sha256).digest()[:16]
    return PSEUDONYM_PREFIX + base64.b32encode(mac).decode("ascii").rstrip("=").lower()


def is_pseudonym(text: str) -> bool:
    return _PSEUDONYM.fullmatch(text) is not None


def check_pseudonym(text: str) -> str:
    """``text`` if it is a well-formed vehicle pseudonym; MalformedInput otherwise."""
    if not is_pseudonym(text):
        raise MalformedInput(
            f"{text[:60]!r} is not a vehicle pseudonym",
            hint="a pseudonym looks like 'veh-' and 26 characters a-z, 2-7 (see `trustlane vehicle list`)",
        )
    return text


__all__ = [
    "PSEUDONYM_KEY_LABEL",
    "VIN_LENGTH",
    "check_digit",
    "check_pseudonym",
    "is_pseudonym",
    "normalize_vin",
    "pseudonym",
    "validate_vin",
]
