"""Unit table: conversions, aliases, errors, and coverage of every unit the shipped VSS catalog uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustlane.errors import MalformedInput
from trustlane.ingest.units import (
    _TABLE,
    canonical,
    compatible,
    convert,
    find_unit,
    known_spellings,
    parse_unit,
)
from trustlane.ingest.vss import default_catalog

CASES = [
    (36.0, "km/h", "m/s", 10.0),
    (60.0, "mph", "km/h", 96.56064),
    (1.0, "g", "m/s^2", 9.80665),
    (180.0, "degrees", "rad", math.pi),
    (math.pi, "rad/s", "degrees/s", 180.0),
    (60.0, "rpm", "degrees/s", 360.0),
    (50.0, "percent", "ratio", 0.5),
    (0.25, "ratio", "percent", 25.0),
    (100.0, "Celsius", "Fahrenheit", 212.0),
    (-40.0, "Celsius", "Fahrenheit", -40.0),
    (0.0, "Celsius", "K", 273.15),
    (32.0, "Fahrenheit", "Celsius", 0.0),
    (1.0, "bar", "kPa", 100.0),
    (1013.25, "hPa", "kPa", 101.325),
    (1.0, "psi", "kPa", 6.894757293168361),
    (2500.0, "Pa", "kPa", 2.5),
    (1.0, "mmHg", "kPa", 0.133322387415),
    (1500.0, "mV", "V", 1.5),
    (250.0, "mA", "A", 0.25),
    (2.0, "kW", "W", 2000.0),
    (1.0, "kWh", "Wh", 1000.0),
    (1.5, "km", "m", 1500.0),
    (25.4, "mm", "inch", 1.0),
    (1.0, "mi", "km", 1.609344),
    (1500.0, "ms", "s", 1.5),
    (2.0, "min", "s", 120.0),
    (1.0, "h", "min", 60.0),
    (1.0, "l", "cm^3", 1000.0),
    (120.0, "bpm", "Hz", 2.0),
    (1.0, "Ah", "Ah", 1.0),
]


@pytest.mark.parametrize(("value", "source", "target", "expected"), CASES)
def test_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert([value], source, target)[0] == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("kph", "km/h"),
        ("km/hr", "km/h"),
        ("kmh", "km/h"),
        ("m/s²", "m/s^2"),
        ("m/s2", "m/s^2"),
        ("deg", "degrees"),
        ("Deg", "degrees"),
        ("°", "degrees"),
        ("degree", "degrees"),
        ("deg/s", "degrees/s"),
        ("°C", "Celsius"),
        ("celsius", "Celsius"),
        ("%", "percent"),
        ("Bar", "bar"),
        ("MPH", "mph"),
        ("KW", "kW"),
        ("N·m", "Nm"),
        ("µs", "us"),
        ("  km/h ", "km/h"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert canonical(alias) == name


def test_every_spelling_resolves_to_its_own_unit() -> None:
    for unit, aliases in _TABLE:
        for spelling in (unit.name, *aliases):
            assert find_unit(spelling) == unit, spelling
    assert len(known_spellings()) == len(set(known_spellings()))


def test_values_come_back_as_a_new_float_array() -> None:
    source = np.array([1, 2, 3], dtype=np.int64)
    out = convert(source, "km/h", "kph")
    assert out.dtype == np.float64
    assert out.tolist() == [1.0, 2.0, 3.0]
    out[0] = 99.0
    assert source[0] == 1


def test_unknown_unit_names_it_and_close_matches() -> None:
    with pytest.raises(MalformedInput) as err:
        convert([1.0], "km/hh", "m/s")
    assert "'km/hh'" in err.value.message
    assert err.value.hint is not None
    assert "km/h" in err.value.hint
    with pytest.raises(MalformedInput, match="unknown unit 'km/h or MPH'"):
        parse_unit("km/h or MPH")


def test_incompatible_units_name_both_quantities() -> None:
    with pytest.raises(MalformedInput) as err:
        convert([1.0], "km/h", "Nm")
    assert "speed" in err.value.message
    assert "torque" in err.value.message
    assert not compatible("km/h", "Nm")
    assert compatible("kph", "mph")


def test_flags_and_text_have_no_magnitude() -> None:
    with pytest.raises(MalformedInput, match="no magnitude"):
        convert([1.0], "boolean", "flag")
    with pytest.raises(MalformedInput, match="no magnitude"):
        convert(["2026-01-01"], "iso8601", "iso8601")


def test_non_numeric_values_are_refused() -> None:
    with pytest.raises(MalformedInput, match="non-numeric"):
        convert(np.array(["fast"], dtype=object), "km/h", "m/s")


def test_nan_passes_through() -> None:
    out = convert([np.nan, 36.0], "km/h", "m/s")
    assert math.isnan(out[0])
    assert out[1] == pytest.approx(10.0)


def test_every_unit_of_the_shipped_catalog_is_known() -> None:
    units = {node.unit for node in default_catalog() if node.unit}
    assert units
    assert [u for u in sorted(units) if find_unit(u) is None] == []
    # the catalog's spellings are the canonical names, not aliases
    assert [u for u in sorted(units) if canonical(u) != u] == []


SAME_QUANTITY = [("km/h", "mph"), ("Celsius", "Fahrenheit"), ("degrees", "rad"), ("bar", "psi"), ("rpm", "deg/s")]


@pytest.mark.parametrize(("a", "b"), SAME_QUANTITY)
@given(value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_round_trip(a: str, b: str, value: float) -> None:
    back = convert(convert([value], a, b), b, a)[0]
    assert back == pytest.approx(value, rel=1e-9, abs=1e-9)
