"""VIN pseudonyms (HMAC-SHA256) and FF3-1 format-preserving encryption."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustlane.errors import MalformedInput, UsageError
from trustlane.privacy import get
from trustlane.privacy.identifiers import (
    VIN_ALPHABET,
    check_vin,
    decrypt_vin,
    encrypt_vin,
    ff3_1_decrypt,
    ff3_1_encrypt,
    pseudonym,
)

VIN = "1HGCM82633A004352"
KEY = bytes(range(32))

# NIST ACVP FF3-1 vectors (56-bit tweaks), as the ff3 package's own tests list them.
ACVP_FF3_1 = [
    ("0123456789", "2DE79D232DF5585D68CE47882AE256D6", "CBD09280979564", "3992520240", "8901801106"),
    (
        "0123456789",
        "01C63017111438F7FC8E24EB16C71AB5",
        "C4E822DCD09F27",
        "60761757463116869318437658042297305934914824457484538562",
        "35637144092473838892796702739628394376915177448290847293",
    ),
    ("abcdefghijklmnopqrstuvwxyz", "718385E6542534604419E83CE387A437", "B6F35084FA90E1", "wfmwlrorcd", "ywowehycyd"),
    (
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/",
        "AEE87D0D485B3AFD12BD1E0B9D03D50D",
        "5F9140601D224B",
        "ixvuuIHr0e",
        "GR90R1q838",
    ),
]


@pytest.mark.parametrize(("alphabet", "key", "tweak", "plain", "cipher"), ACVP_FF3_1)
def test_ff3_1_nist_vectors(alphabet: str, key: str, tweak: str, plain: str, cipher: str) -> None:
    k, t = bytes.fromhex(key), bytes.fromhex(tweak)
    assert ff3_1_encrypt(plain, k, t, alphabet) == cipher
    assert ff3_1_decrypt(cipher, k, t, alphabet) == plain


vins = st.text(alphabet=VIN_ALPHABET, min_size=17, max_size=17)


@settings(max_examples=50, deadline=None)
@given(vin=vins, keep=st.booleans())
def test_ff3_1_vin_round_trip(vin: str, keep: bool) -> None:
    key, tweak = bytes(range(16)), bytes.fromhex("00112233445566")
    token = encrypt_vin(vin, key, tweak, keep_wmi=keep)
    assert re.fullmatch(f"[{VIN_ALPHABET}]{{17}}", token)
    assert decrypt_vin(token, key, tweak, keep_wmi=keep) == vin
    if keep:
        assert token[:3] == vin[:3]


def test_ff3_1_needs_the_key() -> None:
    tweak = bytes(7)
    token = encrypt_vin(VIN, bytes(16), tweak)
    assert token != VIN
    assert decrypt_vin(token, bytes([1]) + bytes(15), tweak) != VIN
    with pytest.raises(UsageError, match="56 bits"):
        encrypt_vin(VIN, bytes(16), bytes(8))
    with pytest.raises(UsageError, match="16, 24 or 32"):
        encrypt_vin(VIN, bytes(10), tweak)


def test_pseudonym_format_and_per_recipient_keys() -> None:
    p = pseudonym(VIN, KEY)
    assert re.fullmatch(r"vp1-[a-z2-7]{26}", p)
    assert pseudonym(VIN.lower(), KEY) == p  # normalised
    assert pseudonym(VIN, bytes(32)) != p  # another recipient's key
    assert pseudonym("1HGCM82633A004353", KEY) != p
    with pytest.raises(UsageError, match="at least 32"):
        pseudonym(VIN, b"short")


@pytest.mark.parametrize(
    "bad", ["", "1HGCM82633A00435", "1HGCM82633A0043521", "IHGCM82633A004352", "1HGCM8263-A004352"]
)
def test_not_a_vin(bad: str) -> None:
    with pytest.raises(MalformedInput, match="not a VIN"):
        check_vin(bad)


def test_processor_hides_the_key_in_its_record() -> None:
    p = get("identifiers.vin")
    config = {"method": "hmac", "key": KEY, "key_id": "insurer-2025"}
    assert p.operate([VIN, VIN], config) == [pseudonym(VIN, KEY)] * 2
    record = p.parameters(config)
    assert "key" not in record["settings"] and record["settings"]["key_id"] == "insurer-2025"
    assert "key_id" in " ".join(p.validate({"key": KEY}))
    ff3 = {"method": "ff3-1", "key": bytes(16), "key_id": "k", "keep_wmi": True}
    assert p.operate(VIN, ff3) == [encrypt_vin(VIN, bytes(16), bytes(7), keep_wmi=True)]
    assert p.validate({"method": "ff3-1", "key": bytes(20), "key_id": "k"}) != []
