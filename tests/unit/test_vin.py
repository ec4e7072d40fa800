"""VIN validation (ISO 3779, North-American check digit) and keyed pseudonyms."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustlane.errors import KeyMaterialError, MalformedInput
from trustlane.vehicles.vin import (
    check_digit,
    check_pseudonym,
    is_pseudonym,
    normalize_vin,
    pseudonym,
    validate_vin,
)

KEY = bytes(range(32))
ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"

# VINs whose check digit (position 9) is correct, from published examples
VALID = ["1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352", "JH4KA7561PC008269"]


@pytest.mark.parametrize("vin", VALID)
def test_valid_vins_pass_strict(vin: str) -> None:
    assert validate_vin(vin, strict=True) == vin
    assert check_digit(vin) == vin[8]


def test_check_digit_ten_is_x() -> None:
    assert check_digit("1M8GDM9AXKP042788") == "X"


def test_normalises_case_and_whitespace() -> None:
    assert normalize_vin(" 1m8gdm9a xkp 042788\n") == "1M8GDM9AXKP042788"
    assert validate_vin("1m8gdm9axkp042788 ", strict=True) == "1M8GDM9AXKP042788"


def test_european_vin_without_check_digit_passes_unless_strict() -> None:
    vin = "WVWZZZ1JZXW000001"  # position 9 is a filler 'Z' outside North America
    assert validate_vin(vin) == vin
    with pytest.raises(MalformedInput, match="check digit") as info:
        validate_vin(vin, strict=True)
    assert "North America" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1M8GDM9AXKP04278", "has 16"),
        ("1M8GDM9AXKP0427888", "has 18"),
        ("", "has 0"),
        ("1M8GDM9AXKP04278I", "character 17 is 'I'"),
        ("OM8GDM9AXKP042788", "character 1 is 'O'"),
        ("1M8GDM9AXKQ042788", "character 11 is 'Q'"),
        ("1M8GDM9AXKP04278-", "character 17 is '-'"),
        ("1M8GDM9AXKP04278Ä", "character 17"),
    ],
)
def test_invalid_vins_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(MalformedInput, match=re.escape(needle)) as info:
        validate_vin(text)
    assert info.value.hint
    if len(normalize_vin(text)) >= 10:
        assert normalize_vin(text) not in info.value.message  # the VIN itself is never echoed


def test_lookalike_hint_suggests_the_digit() -> None:
    with pytest.raises(MalformedInput) as info:
        validate_vin("1M8GDM9AXKP04278O")
    assert "'0'" in (info.value.hint or "")


def test_mistyped_north_american_vin_fails_strict() -> None:
    with pytest.raises(MalformedInput, match="check digit"):
        validate_vin("1M8GDM9AXKP042789", strict=True)
    assert validate_vin("1M8GDM9AXKP042789") == "1M8GDM9AXKP042789"


@given(st.text(alphabet=ALPHABET, min_size=16, max_size=16))
def test_any_vin_with_its_check_digit_passes_strict(body: str) -> None:
    vin = body[:8] + "0" + body[8:]
    vin = vin[:8] + check_digit(vin) + vin[9:]
    assert validate_vin(vin, strict=True) == vin


# --- pseudonyms ---------------------------------------------------------------------------------------


def test_pseudonym_format() -> None:
    p = pseudonym(VALID[0], KEY)
    assert re.fullmatch(r"veh-[a-z2-7]{26}", p)
    assert is_pseudonym(p)
    assert check_pseudonym(p) == p


def test_pseudonym_is_stable_and_normalised() -> None:
    assert pseudonym("1M8GDM9AXKP042788", KEY) == pseudonym(" 1m8gdm9axkp042788 ", KEY)
    assert pseudonym("1M8GDM9AXKP042788", bytes(KEY)) == pseudonym("1M8GDM9AXKP042788", KEY)


def test_pseudonym_depends_on_key_and_vin() -> None:
    assert pseudonym(VALID[0], KEY) != pseudonym(VALID[0], bytes(32))
    assert len({pseudonym(v, KEY) for v in VALID}) == len(VALID)


def test_pseudonym_does_not_contain_the_vin() -> None:
    for vin in VALID:
        assert vin.lower() not in pseudonym(vin, KEY)


def test_pseudonym_needs_a_real_key_and_a_valid_vin() -> None:
    with pytest.raises(KeyMaterialError):
        pseudonym(VALID[0], b"short")
    with pytest.raises(MalformedInput):
        pseudonym("not a vin", KEY)


@pytest.mark.parametrize(
    "text", ["veh-", "VEH-AAAAAAAAAAAAAAAAAAAAAAAAAA", "veh-aaaaaaaaaaaaaaaaaaaaaaaaa1", "1M8GDM9AXKP042788"]
)
def test_not_pseudonyms(text: str) -> None:
    assert not is_pseudonym(text)
    with pytest.raises(MalformedInput):
        check_pseudonym(text)
