"""Units of measure: names, aliases and conversion between a source's units and the VSS units.

Each unit belongs to a quantity and converts to that quantity's reference unit by ``ref = value * factor +
offset``; two units convert into each other when their quantities match. Canonical names are the VSS
spellings where VSS has the unit (``km/h``, ``m/s^2``, ``degrees``, ``Celsius``, ``percent``); aliases cover
what DBC, MDF and CSV files write (``kph``, ``m/s²``, ``deg``, ``°C``, ``%``).

Ambiguous spellings resolve one way, and a mapping overrides them where a file means the other:

* ``g`` is standard gravity (9.80665 m/s²), as in DBC deceleration signals; grams appear only inside
  compound units (``g/s``, ``g/km``);
* ``deg`` is an angle, although some DBC files write ``deg`` for temperatures: their mapping says
  ``from_unit: Celsius``.

Lookup is exact first, then case-insensitive where that is unambiguous.
"""

from __future__ import annotations

import difflib
import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trustlane.errors import MalformedInput

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Unit:
    """A unit: ``reference = value * factor + offset`` in the reference unit of ``quantity``."""

    name: str
    quantity: str
    factor: float = 1.0
    offset: float = 0.0

    def to_reference(self, values: FloatArray) -> FloatArray:
        return values * self.factor + self.offset if (self.factor, self.offset) != (1.0, 0.0) else values

    def from_reference(self, values: FloatArray) -> FloatArray:
        return (values - self.offset) / self.factor if (self.factor, self.offset) != (1.0, 0.0) else values


_DEG = math.pi / 180.0
_TABLE: tuple[tuple[Unit, tuple[str, ...]], ...] = (
    # speed (reference m/s)
    (Unit("km/h", "speed", 1 / 3.6), ("kph", "km/hr", "kmh", "kmph", "km/hour", "kilometers per hour")),
    (Unit("m/s", "speed"), ("mps", "m/sec", "meters per second", "metres per second")),
    (Unit("mph", "speed", 0.44704), ("mi/h", "miles per hour")),
    (Unit("knot", "speed", 1852 / 3600), ("kn", "knots")),
    # acceleration (m/s^2)
    (Unit("m/s^2", "acceleration"), ("m/s²", "m/s2", "m/s/s", "m/sec^2", "mps2")),
    (Unit("g", "acceleration", 9.80665), ("gn", "g0", "standard gravity")),
    # angle (rad); VSS writes latitude and longitude in degrees as well
    (Unit("degrees", "angle", _DEG), ("deg", "degree", "°", "degrees lat", "degrees lon", "arcdeg")),
    (Unit("rad", "angle"), ("radian", "radians")),
    # angular velocity (rad/s)
    (Unit("degrees/s", "angular velocity", _DEG), ("deg/s", "°/s", "degree/s", "deg/sec", "dps")),
    (Unit("rad/s", "angular velocity"), ("radian/s", "radians/s", "rad/sec")),
    (Unit("rpm", "angular velocity", 2 * math.pi / 60), ("1/min", "r/min", "rev/min", "min-1", "U/min")),
    # fraction (ratio 0..1)
    (Unit("percent", "fraction", 0.01), ("%", "pct", "per cent")),
    (Unit("ratio", "fraction"), ("fraction", "0..1")),
    # temperature (kelvin)
    (Unit("Celsius", "temperature", 1.0, 273.15), ("°C", "degC", "deg C", "degree Celsius", "℃", "C")),
    (Unit("K", "temperature"), ("kelvin",)),
    (Unit("Fahrenheit", "temperature", 5 / 9, 273.15 - 32 * 5 / 9), ("°F", "degF", "deg F", "℉", "F")),
    # pressure (Pa)
    (Unit("Pa", "pressure"), ("pascal",)),
    (Unit("hPa", "pressure", 100.0), ("mbar", "hectopascal")),
    (Unit("kPa", "pressure", 1e3), ("kilopascal",)),
    (Unit("bar", "pressure", 1e5), ()),
    (Unit("psi", "pressure", 6894.757293168361), ("lbf/in^2",)),
    (Unit("mmHg", "pressure", 133.322387415), ()),  # conventional mmHg; not torr (101325/760 Pa)
    # electrical
    (Unit("V", "voltage"), ("volt", "volts")),
    (Unit("mV", "voltage", 1e-3), ("millivolt",)),
    (Unit("A", "current"), ("amp", "ampere", "amps")),
    (Unit("mA", "current", 1e-3), ("milliampere",)),
    (Unit("Ah", "charge", 3600.0), ("A.h", "ampere hour")),
    (Unit("W", "power"), ("watt", "watts")),
    (Unit("kW", "power", 1e3), ("kilowatt",)),
    (Unit("Wh", "energy", 3600.0), ()),
    (Unit("kWh", "energy", 3.6e6), ("kilowatt hour",)),
    (Unit("J", "energy"), ("joule",)),
    # mechanics
    (Unit("N", "force"), ("newton",)),
    (Unit("kN", "force", 1e3), ()),
    (Unit("Nm", "torque"), ("N.m", "N*m", "N·m", "newton metre", "newton meter")),
    (Unit("kg", "mass"), ("kilogram",)),
    (Unit("g/s", "mass flow", 1e-3), ("gram per second",)),
    # length (m)
    (Unit("m", "length"), ("meter", "metre", "meters", "metres")),
    (Unit("km", "length", 1e3), ("kilometer", "kilometre", "kilometers", "kilometres")),
    (Unit("cm", "length", 1e-2), ("centimeter", "centimetre")),
    (Unit("mm", "length", 1e-3), ("millimeter", "millimetre")),
    (Unit("inch", "length", 0.0254), ("in", "inches", '"')),
    (Unit("mi", "length", 1609.344), ("mile", "miles")),
    # volume (m^3)
    (Unit("l", "volume", 1e-3), ("L", "liter", "litre", "liters", "litres")),
    (Unit("ml", "volume", 1e-6), ("mL", "milliliter", "millilitre")),
    (Unit("cm^3", "volume", 1e-6), ("cm³", "cc", "ccm")),
    # time (s)
    (Unit("s", "time"), ("sec", "second", "seconds")),
    (Unit("ms", "time", 1e-3), ("msec", "millisecond", "milliseconds")),
    (Unit("us", "time", 1e-6), ("µs", "μs", "microsecond", "microseconds")),
    (Unit("ns", "time", 1e-9), ("nanosecond", "nanoseconds")),
    (Unit("min", "time", 60.0), ("minute", "minutes")),
    (Unit("h", "time", 3600.0), ("hr", "hour", "hours")),
    # frequency (1/s)
    (Unit("Hz", "frequency"), ("hertz", "1/s")),
    (Unit("bpm", "frequency", 1 / 60), ("beats/min", "beats per minute")),
    (Unit("cpm", "frequency", 1 / 60), ("cycles/min", "cycles per minute")),
    # rates per distance and time
    (Unit("mm/h", "precipitation rate", 1e-3 / 3600), ()),
    (Unit("km/l", "fuel economy", 1e6), ("kilometers per liter",)),
    (Unit("l/100km", "fuel consumption", 1e-8), ("L/100km", "l/100 km")),
    (Unit("kWh/100km", "energy consumption", 36.0), ("kWh/100 km",)),
    (Unit("g/km", "emission rate", 1e-6), ()),
    # no conversion: flags and text
    (Unit("boolean", "boolean"), ("bool", "flag", "on/off")),
    (Unit("iso8601", "timestamp text"), ("ISO 8601", "iso 8601")),
)


@functools.cache
def _index() -> tuple[dict[str, Unit], dict[str, Unit | None]]:
    exact: dict[str, Unit] = {}
    for unit, aliases in _TABLE:
        for name in (unit.name, *aliases):
            if name in exact:
                raise AssertionError(f"unit spelling {name!r} is defined twice")
            exact[name] = unit
    folded: dict[str, Unit | None] = {}
    for name, unit in exact.items():
        key = name.casefold()
        seen = folded.get(key, unit)
        folded[key] = unit if seen is unit else None  # None: two units share this spelling up to case
    return exact, folded


def find_unit(text: str) -> Unit | None:
    """The unit spelled ``text`` (exact, then case-insensitive when unambiguous), or ``None``."""
    exact, folded = _index()
    name = " ".join(text.split())
    return exact.get(name) or folded.get(name.casefold())


def parse_unit(text: str, *, where: str = "") -> Unit:
    """The unit spelled ``text``; :class:`MalformedInput` naming close spellings when there is none."""
    unit = find_unit(text)
    if unit is None:
        close = difflib.get_close_matches(text, known_spellings(), n=4, cutoff=0.6)
        prefix = f"{where}: " if where else ""
        raise MalformedInput(
            f"{prefix}unknown unit {text!r}",
            hint=(f"did you mean {', '.join(repr(c) for c in close)}? " if close else "")
            + "state the source unit in the mapping (from_unit:) with a name trustlane knows",
        )
    return unit


def known_spellings() -> tuple[str, ...]:
    """Every unit name and alias, sorted."""
    return tuple(sorted(_index()[0]))


def canonical(text: str) -> str:
    """The canonical name of a unit spelling (``kph`` → ``km/h``)."""
    return parse_unit(text).name


def compatible(a: str, b: str) -> bool:
    """Whether values in unit ``a`` convert to unit ``b`` (both must be known)."""
    return parse_unit(a).quantity == parse_unit(b).quantity


def convert(values: npt.ArrayLike, from_unit: str, to_unit: str) -> FloatArray:
    """``values`` in ``from_unit`` converted to ``to_unit``, as float64.

    Raises :class:`MalformedInput` for an unknown unit (with close spellings), for units of different
    quantities, and for values that are not numbers. ``boolean`` and ``iso8601`` only "convert" to
    themselves and are not accepted here: they carry no magnitude.
    """
    source, target = parse_unit(from_unit), parse_unit(to_unit)
    if source.quantity != target.quantity:
        raise MalformedInput(
            f"cannot convert {from_unit!r} ({source.quantity}) to {to_unit!r} ({target.quantity})",
            hint="the source unit is wrong for this signal, or the signal is mapped to the wrong VSS path",
        )
    if source.quantity in ("boolean", "timestamp text"):
        raise MalformedInput(f"{source.quantity} values have no magnitude to convert ({from_unit!r} to {to_unit!r})")
    try:
        numbers = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise MalformedInput(f"cannot convert non-numeric values from {from_unit!r} to {to_unit!r}") from None
    if source == target:
        return numbers.copy()
    result: FloatArray = target.from_reference(source.to_reference(numbers))
    return result


__all__ = ["Unit", "canonical", "compatible", "convert", "find_unit", "known_spellings", "parse_unit"]
