"""Vehicle identification numbers (VIN) → keyed pseudonyms or format-preserving ciphertexts.

* ``pseudonym``: HMAC-SHA256 under a per-recipient key. Output ``vp1-`` followed by 26 lowercase base32
  characters (the first 128 bits of the MAC, no padding). Deterministic per key, so a recipient can link
  records of one vehicle, but pseudonyms of two recipients cannot be joined; not reversible.
* ``ff3-1``: NIST SP 800-38G Rev. 1 FF3-1 (AES, 56-bit tweak) over the 33-character VIN alphabet
  (digits and A–Z without I, O, Q). The output is again 17 VIN characters; only the key holder can decrypt.
  With ``keep_wmi`` the first three characters (the manufacturer) stay in clear and only the 14 others are
  encrypted. The check digit (position 9) is encrypted like the rest, so outputs need not pass the ISO 3779
  check: a recipient cannot confuse them with real VINs that way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any, ClassVar

from ff3 import FF3Cipher  # type: ignore[import-untyped]

from trustlane.errors import MalformedInput, UsageError
from trustlane.privacy.base import REQUIRED, Processor, register

VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
VIN_PATTERN = re.compile(f"[{VIN_ALPHABET}]{{17}}")
PSEUDONYM_PREFIX = "vp1-"
_DOMAIN = b"trustlane/vin-pseudonym/v1\x00"
MIN_HMAC_KEY = 32
FF3_KEY_BYTES = (16, 24, 32)
FF3_TWEAK_BYTES = 7


def check_vin(vin: str) -> str:
    """The VIN in upper case, or MalformedInput when it is not 17 VIN characters."""
    norm = vin.strip().upper()
    if not VIN_PATTERN.fullmatch(norm):
        raise MalformedInput(
            f"{vin!r} is not a VIN", hint="a VIN has 17 characters from 0-9 and A-Z without I, O and Q"
        )
    return norm


def pseudonym(vin: str, key: bytes) -> str:
    """The keyed pseudonym of a VIN (see the module docstring for the format)."""
    if len(key) < MIN_HMAC_KEY:
        raise UsageError(f"the pseudonym key has {len(key)} bytes; at least {MIN_HMAC_KEY} are needed")
    mac = hmac.new(key, _DOMAIN + check_vin(vin).encode(), hashlib.sha256).digest()
    return PSEUDONYM_PREFIX + base64.b32encode(mac[:16]).decode().rstrip("=").lower()


def _ff3(key: bytes, tweak: bytes, alphabet: str) -> Any:
    if len(key) not in FF3_KEY_BYTES:
        raise UsageError(f"the FF3-1 key has {len(key)} bytes; it must be 16, 24 or 32 (AES-128/192/256)")
    if len(tweak) != FF3_TWEAK_BYTES:
        raise UsageError(f"the FF3-1 tweak has {len(tweak)} bytes; FF3-1 needs exactly 7 (56 bits)")
    return FF3Cipher.withCustomAlphabet(key.hex(), tweak.hex(), alphabet)


def ff3_1_encrypt(text: str, key: bytes, tweak: bytes, alphabet: str) -> str:
    """FF3-1 encryption of ``text`` over ``alphabet`` (the radix is its length)."""
    return str(_ff3(key, tweak, alphabet).encrypt(text))


def ff3_1_decrypt(text: str, key: bytes, tweak: bytes, alphabet: str) -> str:
    return str(_ff3(key, tweak, alphabet).decrypt(text))


def encrypt_vin(vin: str, key: bytes, tweak: bytes, keep_wmi: bool = False) -> str:
    norm = check_vin(vin)
    head, body = (norm[:3], norm[3:]) if keep_wmi else ("", norm)
    return head + ff3_1_encrypt(body, key, tweak, VIN_ALPHABET)


def decrypt_vin(token: str, key: bytes, tweak: bytes, keep_wmi: bool = False) -> str:
    norm = check_vin(token)
    head, body = (norm[:3], norm[3:]) if keep_wmi else ("", norm)
    return head + ff3_1_decrypt(body, key, tweak, VIN_ALPHABET)


@register
class VinPseudonymiser(Processor):
    """``operate(list of VINs, config) -> list of replacements``. The key is per recipient; ``key_id``
    names it in the manifest (the key itself never appears there)."""

    name = "identifiers.vin"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {
        "method": "hmac",
        "key": REQUIRED,
        "key_id": REQUIRED,
        "tweak": b"\x00" * FF3_TWEAK_BYTES,
        "keep_wmi": False,
    }
    secret: ClassVar[frozenset[str]] = frozenset({"key"})

    def check(self, config: dict[str, Any]) -> list[str]:
        problems = []
        key, method = config["key"], config["method"]
        if method not in ("hmac", "ff3-1"):
            problems.append(f"method must be 'hmac' or 'ff3-1', not {method!r}")
        if not isinstance(key, bytes):
            problems.append("key must be bytes")
        elif method == "hmac" and len(key) < MIN_HMAC_KEY:
            problems.append(f"an HMAC key needs at least {MIN_HMAC_KEY} bytes, got {len(key)}")
        elif method == "ff3-1" and len(key) not in FF3_KEY_BYTES:
            problems.append(f"an FF3-1 key has 16, 24 or 32 bytes, got {len(key)}")
        tweak = config["tweak"]
        if not isinstance(tweak, bytes) or len(tweak) != FF3_TWEAK_BYTES:
            problems.append("tweak must be 7 bytes (FF3-1's 56 bits)")
        if not isinstance(config["keep_wmi"], bool):
            problems.append("keep_wmi must be true or false")
        return problems

    def apply(self, data: Any, config: dict[str, Any]) -> list[str]:
        vins = [data] if isinstance(data, str) else list(data)
        if config["method"] == "hmac":
            return [pseudonym(v, config["key"]) for v in vins]
        cipher = _ff3(config["key"], config["tweak"], VIN_ALPHABET)
        out = []
        for v in vins:
            norm = check_vin(v)
            head, body = (norm[:3], norm[3:]) if config["keep_wmi"] else ("", norm)
            out.append(head + str(cipher.encrypt(body)))
        return out

    def parameters(self, config: Any) -> dict[str, Any]:
        record = super().parameters(config)
        record["settings"]["tweak"] = bytes(record["settings"]["tweak"]).hex()
        record["output"] = (
            f"{PSEUDONYM_PREFIX} + 26 base32 chars (HMAC-SHA256, 128 bits)"
            if self.settings(config)["method"] == "hmac"
            else "17 VIN characters (FF3-1, radix 33)"
        )
        return record
