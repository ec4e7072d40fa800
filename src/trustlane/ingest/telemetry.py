"""Live telemetry messages: the JSON and the binary (``TLT1``) format, pure (no I/O). See docs/TELEMETRY.md.

A message carries one timestamp, a per-vehicle sequence number and up to :data:`MAX_SIGNALS` signal values
(number, boolean or text), each named by a VSS path (or any source name the mapping knows)::

    {"v": 1, "vehicle": "<VIN>", "seq": 17, "t_ns": "1767225600000000000",
     "signals": {"Vehicle.Speed": 12.3, "Vehicle.ADAS.ActiveAutonomyLevel": "SAE_2"}}

The topic ``[PREFIX/]vehicles/<VIN>/telemetry`` names the vehicle; the JSON form may name it too
(``vehicle``), and then both must agree. The binary form (network byte order) is::

    "TLT1" | seq u64 | t_ns i64 | count u16 | count × (key u16 [| n u8 | path] | type u8 | value)

``key`` 0 means the path follows inline (``n`` bytes of UTF-8); 1…65535 is an id in :data:`SIGNAL_TABLE`.
``type`` 1 = float64, 2 = boolean (one byte, 0 or 1), 3 = text (u16 length, UTF-8).

Everything that can be wrong with a message raises :class:`MalformedInput` naming the topic (as the caller
shows it: the subscriber puts the vehicle's pseudonym where the VIN was) and the sequence number.
"""

from __future__ import annotations

import json
import math
import operator
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import orjson

from trustlane.errors import MalformedInput
from trustlane.vehicles.vin import normalize_vin, validate_vin

FORMAT_VERSION = 1
MAGIC = b"TLT1"
MAX_MESSAGE_BYTES = 64 * 1024  # larger messages are rejected before parsing
MAX_SIGNALS = 1024
MAX_PATH_BYTES = 255
MAX_TEXT_BYTES = 1024
MAX_U64 = (1 << 64) - 1
MAX_I64 = (1 << 63) - 1

TYPE_FLOAT = 1
TYPE_BOOL = 2
TYPE_TEXT = 3
INLINE = 0  # signal key: the path follows inline

Value = float | bool | str

_HEADER = struct.Struct(">4sQqH")
_KEY = struct.Struct(">H")
_F64 = struct.Struct(">d")
_RECORD = struct.Struct(">QI")
_TOP_KEYS = frozenset({"v", "vehicle", "seq", "t_ns", "signals"})

# Signal ids of the binary form, version 1. Append-only: an id, once shipped, names its path forever.
SIGNAL_TABLE: tuple[str, ...] = (
    "Vehicle.Speed",
    "Vehicle.IsMoving",
    "Vehicle.TraveledDistance",
    "Vehicle.TraveledDistanceSinceStart",
    "Vehicle.TripDuration",
    "Vehicle.Acceleration.Longitudinal",
    "Vehicle.Acceleration.Lateral",
    "Vehicle.Acceleration.Vertical",
    "Vehicle.AngularVelocity.Roll",
    "Vehicle.AngularVelocity.Pitch",
    "Vehicle.AngularVelocity.Yaw",
    "Vehicle.Orientation.Roll",
    "Vehicle.Orientation.Pitch",
    "Vehicle.Orientation.Yaw",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.CurrentLocation.Altitude",
    "Vehicle.CurrentLocation.Heading",
    "Vehicle.CurrentLocation.HorizontalAccuracy",
    "Vehicle.CurrentLocation.VerticalAccuracy",
    "Vehicle.CurrentLocation.GNSSReceiver.FixType",
    "Vehicle.Exterior.AirTemperature",
    "Vehicle.Exterior.Humidity",
    "Vehicle.Exterior.LightIntensity",
    "Vehicle.Exterior.AirPressure",
    "Vehicle.Exterior.WindSpeed",
    "Vehicle.Exterior.WindDirection",
    "Vehicle.Exterior.VisibilityDistance",
    "Vehicle.Exterior.PrecipitationIntensity",
    "Vehicle.LowVoltageSystemState",
    "Vehicle.Powertrain.Type",
    "Vehicle.Powertrain.CombustionEngine.IsRunning",
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Powertrain.CombustionEngine.MAP",
    "Vehicle.Powertrain.CombustionEngine.MAF",
    "Vehicle.Powertrain.CombustionEngine.TPS",
    "Vehicle.Powertrain.CombustionEngine.Power",
    "Vehicle.Powertrain.CombustionEngine.Torque",
    "Vehicle.Powertrain.Transmission.CurrentGear",
    "Vehicle.Powertrain.Transmission.SelectedGear",
    "Vehicle.Powertrain.Transmission.IsParkLockEngaged",
    "Vehicle.Powertrain.Transmission.Temperature",
    "Vehicle.Powertrain.Transmission.TravelledDistance",
    "Vehicle.Powertrain.TractionBattery.StateOfHealth",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.CurrentEnergy",
    "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
    "Vehicle.Powertrain.TractionBattery.CurrentCurrent",
    "Vehicle.Powertrain.TractionBattery.CurrentPower",
    "Vehicle.Powertrain.TractionBattery.Temperature.Average",
    "Vehicle.Powertrain.TractionBattery.Temperature.Min",
    "Vehicle.Powertrain.TractionBattery.Temperature.Max",
    "Vehicle.Powertrain.TractionBattery.CellVoltage.Min",
    "Vehicle.Powertrain.TractionBattery.CellVoltage.Max",
    "Vehicle.Powertrain.TractionBattery.Range",
    "Vehicle.Powertrain.TractionBattery.PowerLoss",
    "Vehicle.Powertrain.TractionBattery.AccumulatedChargedEnergy",
    "Vehicle.Powertrain.TractionBattery.AccumulatedConsumedEnergy",
    "Vehicle.Powertrain.TractionBattery.Charging.IsCharging",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeCurrent.DC",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeVoltage.DC",
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",
    "Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete",
    "Vehicle.Chassis.SteeringWheel.Angle",
    "Vehicle.Chassis.SteeringWheel.AngularSpeed",
    "Vehicle.Chassis.Accelerator.PedalPosition",
    "Vehicle.Chassis.Brake.PedalPosition",
    "Vehicle.Chassis.Brake.IsPedalPressed",
    "Vehicle.Chassis.Brake.MasterCylinderPressure",
    "Vehicle.Chassis.Brake.IsDriverEmergencyBrakingDetected",
    "Vehicle.Chassis.ParkingBrake.IsEngaged",
    "Vehicle.Chassis.Axle.Row1.SteeringAngle",
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed",
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed",
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Speed",
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed",
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure",
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure",
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure",
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure",
    "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.AirTemperature",
    "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.AirTemperature",
    "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.AirTemperature",
    "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.AirTemperature",
    "Vehicle.ADAS.ActiveAutonomyLevel",
    "Vehicle.ADAS.CruiseControl.IsActive",
    "Vehicle.ADAS.CruiseControl.SpeedSet",
    "Vehicle.ADAS.CruiseControl.AdaptiveDistanceSet",
    "Vehicle.ADAS.LaneDepartureDetection.IsWarning",
    "Vehicle.ADAS.LaneKeepingAssist.IsEngaged",
    "Vehicle.ADAS.ABS.IsEngaged",
    "Vehicle.ADAS.TCS.IsEngaged",
    "Vehicle.ADAS.ESC.IsEngaged",
    "Vehicle.ADAS.AEB.IsWarning",
    "Vehicle.ADAS.AEB.IsEngaged",
    "Vehicle.ADAS.EBA.IsEngaged",
    "Vehicle.ADAS.TransitionDemand.IsActive",
    "Vehicle.ADAS.TransitionDemand.Type",
    "Vehicle.ADAS.TransitionDemand.TimeRemaining",
    "Vehicle.ADAS.MinimalRiskManeuver.IsActive",
    "Vehicle.ADAS.DriverOverride.IsActive",
    "Vehicle.ADAS.DriverOverride.Type",
    "Vehicle.ADAS.LeadVehicle.IsDetected",
    "Vehicle.ADAS.LeadVehicle.Distance",
    "Vehicle.ADAS.LeadVehicle.RelativeSpeed",
    "Vehicle.ADAS.LeadVehicle.LateralOffset",
    "Vehicle.ADAS.ObstacleDetection.Front.Center.Distance",
    "Vehicle.ADAS.ObstacleDetection.Rear.Center.Distance",
    "Vehicle.Driver.IsHandsOnWheel",
    "Vehicle.Safety.CrashPulse.Longitudinal",
    "Vehicle.Safety.CrashPulse.Lateral",
    "Vehicle.Safety.CrashPulse.Vertical",
    "Vehicle.Safety.CrashPulse.DeltaVLongitudinal",
    "Vehicle.Safety.CrashPulse.DeltaVLateral",
    "Vehicle.Body.Lights.Beam.Low.IsOn",
    "Vehicle.Body.Lights.Beam.High.IsOn",
    "Vehicle.Body.Lights.DirectionIndicator.Left.IsSignaling",
    "Vehicle.Body.Lights.DirectionIndicator.Right.IsSignaling",
    "Vehicle.Body.Lights.Hazard.IsSignaling",
    "Vehicle.Body.Lights.Brake.IsActive",
    "Vehicle.Body.Horn.IsActive",
    "Vehicle.Body.Windshield.Front.Wiping.Mode",
    "Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted",
    "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
    "Vehicle.ADAS.DSSAD.Event",
)
SIGNAL_IDS: dict[str, int] = {path: number for number, path in enumerate(SIGNAL_TABLE, start=1)}


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One decoded message: signal ``names`` and their ``values`` (float, bool or str) in message order.

    ``vin`` is the vehicle the message itself names (JSON ``vehicle``), if any. ``types`` are the values'
    types when the decoder already knows them (every value a float), else empty: see :func:`value_types`."""

    seq: int
    t_ns: int
    names: tuple[str, ...]
    values: tuple[Value, ...]
    vin: str | None = None
    types: tuple[type, ...] = field(default=(), compare=False, repr=False)

    @property
    def signals(self) -> dict[str, Value]:
        return dict(zip(self.names, self.values, strict=True))


_FLOAT_TYPES: dict[int, tuple[type, ...]] = {}


def _all_floats(count: int) -> tuple[type, ...]:
    types = _FLOAT_TYPES.get(count)
    if types is None:
        types = _FLOAT_TYPES[count] = (float,) * count
    return types


def value_types(message: Telemetry) -> tuple[type, ...]:
    """The type of each value (float, bool or str), in message order."""
    return message.types or tuple(map(type, message.values))


# --- topics ---------------------------------------------------------------------------------------------


def telemetry_topic(vin: str, prefix: str = "") -> str:
    """``[prefix/]vehicles/<VIN>/telemetry``."""
    topic = f"vehicles/{normalize_vin(vin)}/telemetry"
    return f"{prefix.rstrip('/')}/{topic}" if prefix else topic


def vin_level(topic: str) -> int | None:
    """The index of the topic level that names the vehicle (``…/vehicles/<VIN>/telemetry``), or None."""
    levels = topic.split("/")
    if len(levels) >= 3 and levels[-1] == "telemetry" and levels[-3] == "vehicles" and levels[-2]:
        return len(levels) - 2
    return None


def vin_from_topic(topic: str) -> str | None:
    """The VIN text at the vehicle level of ``topic`` (not yet validated), or None when the topic has none."""
    level = vin_level(topic)
    return None if level is None else topic.split("/")[level]


def replace_vin(topic: str, text: str) -> str:
    """``topic`` with its vehicle level replaced by ``text`` (e.g. the pseudonym), for messages and names."""
    level = vin_level(topic)
    if level is None:
        return topic
    levels = topic.split("/")
    levels[level] = text
    return "/".join(levels)


def message_vin(topic_vin: str | None, message: Telemetry, where: str) -> str:
    """The vehicle of a message in normal form: the topic's and the message's VIN, which must agree."""
    named = [v for v in (topic_vin, message.vin) if v is not None]
    if not named:
        raise _bad(
            where,
            message.seq,
            "names no vehicle",
            hint="publish to vehicles/<VIN>/telemetry, or put the VIN in the message's vehicle field",
        )
    try:
        vins = [validate_vin(v) for v in named]
    except MalformedInput as err:
        raise _bad(where, message.seq, f"has an invalid VIN: {err.message}", hint=err.hint) from None
    if len(set(vins)) > 1:
        raise _bad(
            where,
            message.seq,
            "names another vehicle in its vehicle field than its topic does",
            hint="a vehicle publishes only to its own topic; drop the vehicle field or correct it",
        )
    return vins[0]


# --- decoding ---------------------------------------------------------------------------------------------


def _bad(where: str, seq: int | None, problem: str, *, hint: str | None = None) -> MalformedInput:
    label = f"seq {seq}" if seq is not None else "seq unknown"
    return MalformedInput(f"telemetry message on {where} ({label}): {problem}", hint=hint or _HINT)


_HINT = "see docs/TELEMETRY.md for the message formats"


def decode_message(payload: bytes, *, where: str) -> Telemetry:
    """Decode and check one message (JSON, or binary when it starts with ``TLT1``)."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise _bad(
            where,
            None,
            f"{len(payload)} bytes, more than the {MAX_MESSAGE_BYTES}-byte limit",
            hint="send fewer signals per message",
        )
    if payload[:4] == MAGIC:
        return _decode_binary(payload, where)
    return _decode_json(payload, where)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


_JSON = json.JSONDecoder(parse_constant=_reject_constant)  # json.loads(..., parse_constant=) builds one per call
_BIG = float(1 << 63)  # orjson reads an integer beyond 64 bits as a float at least this large


class _Unsure(Exception):
    """The fast parser's reading of a message may differ from the reference parser's."""


def _decode_json(payload: bytes, where: str) -> Telemetry:
    """The standard library's parser defines which messages are accepted, and how a refusal reads. orjson
    parses several times faster and, whenever it parses at all, builds the same objects, except that it
    reads an integer beyond 64 bits as a float. So a message it cannot parse, one that fails a check, and one
    holding a number that large is read again by the reference parser: same acceptances, same refusals."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _decode_json_reference(payload, where)
    try:
        return _checked_doc(doc, where, fast_parser=True)
    except (MalformedInput, _Unsure):
        return _decode_json_reference(payload, where)


def _decode_json_reference(payload: bytes, where: str) -> Telemetry:
    try:
        doc = _JSON.decode(payload.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        problem = "is not UTF-8 JSON" if isinstance(err, UnicodeDecodeError) else f"is not valid JSON ({err})"
        raise _bad(where, None, problem) from None
    return _checked_doc(doc, where, fast_parser=False)


def _checked_doc(doc: object, where: str, *, fast_parser: bool) -> Telemetry:
    if not isinstance(doc, dict):
        raise _bad(where, None, "is not a JSON object")
    seq = _uint(doc.get("seq"), MAX_U64)
    if len(doc) > len(_TOP_KEYS) or not _TOP_KEYS.issuperset(doc):
        unknown = sorted(set(doc) - _TOP_KEYS)
        raise _bad(where, seq, f"has unknown field {unknown[0][:40]!r}")
    version = doc.get("v")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise _bad(where, seq, f"has version {version!r}; this node reads version {FORMAT_VERSION}")
    if seq is None:
        raise _bad(where, None, "needs seq, a whole number from 0 to 2^64-1 (a JSON number or decimal string)")
    t_ns = _uint(doc.get("t_ns"), MAX_I64)
    if t_ns is None:
        raise _bad(where, seq, "needs t_ns, nanoseconds since the Unix epoch (a JSON number or decimal string)")
    vin = doc.get("vehicle")
    if vin is not None and not isinstance(vin, str):
        raise _bad(where, seq, "vehicle must be the VIN as text")
    raw = doc.get("signals")
    if not isinstance(raw, dict):
        raise _bad(where, seq, "needs signals, an object of signal path to value")
    if not 0 < len(raw) <= MAX_SIGNALS:
        raise _bad(where, seq, f"has {len(raw)} signals; a message holds 1 to {MAX_SIGNALS}")
    names = tuple(raw)
    values = tuple(raw.values())
    kinds = set(map(type, values))
    if fast_parser and float in kinds and _maybe_wide_integer(values, kinds):
        raise _Unsure
    known = _NAME_RUNS.get(names)
    checked = _checked_values(names, values, kinds, where, seq, names_known=known is not None)
    if known is None:  # a new run of names (a vehicle sends the same few), now checked
        if len(_NAME_RUNS) > 10_000:
            _NAME_RUNS.clear()
        known = _NAME_RUNS[names] = names
    return Telemetry(seq, t_ns, known, checked, vin, _all_floats(len(names)) if kinds <= _NUMBERS else ())


def _maybe_wide_integer(values: tuple[object, ...], kinds: set[type]) -> bool:
    """Whether a float among ``values`` is so large that it may have been an integer beyond 64 bits."""
    floats = cast(Sequence[float], values if len(kinds) == 1 else [v for v in values if type(v) is float])
    if math.hypot(*floats) < _BIG / 2:  # no less than the largest magnitude, and one C call for all
        return False
    return max(floats) >= _BIG or min(floats) <= -_BIG


def _uint(value: object, limit: int) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit:
        return value
    return None


def _utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8; -1 when it cannot be encoded (lone surrogates)."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return -1


_SCALARS = frozenset({float, bool, str, int})
_NUMBERS = frozenset({float, int})
_SHORT = MAX_TEXT_BYTES // 4  # a text of at most this many characters has at most MAX_TEXT_BYTES bytes
_GOOD_NAMES: set[str] = set()  # names that passed _check_name (bounded: cleared when it grows large)
# runs of JSON signal names that passed, each kept as one tuple: the same object for every message of a run
# makes the window buffers' and sample checks' lookups by run cheap (bounded: cleared when it grows large)
_NAME_RUNS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _checked_values(
    names: tuple[str, ...], raw: tuple[object, ...], kinds: set[type], where: str, seq: int, *, names_known: bool
) -> tuple[Value, ...]:
    """The values, ints made floats, once every value is allowed, and every name unless ``names_known``
    (``kinds``: the values' types). Whole-message checks come first: the common message passes them without a
    Python loop per signal."""
    values = _fast_values(raw, kinds) if kinds <= _SCALARS else None
    if values is None:  # something is wrong (or unusual): check value by value, naming the signal
        values = tuple(_checked_value(name, value, where, seq) for name, value in zip(names, raw, strict=True))
    if not names_known and not _GOOD_NAMES.issuperset(names):
        for name in names:
            if name not in _GOOD_NAMES:
                _check_name(name, where, seq)
    return values


def _fast_values(raw: tuple[object, ...], kinds: set[type]) -> tuple[Value, ...] | None:
    """``raw`` (floats, bools, texts, ints) with ints as floats when every number is finite and every text
    short ASCII; None when a closer look is needed."""
    values = cast(tuple[Value, ...], raw)
    if int in kinds:
        try:
            values = tuple(float(v) if type(v) is int else v for v in values)
        except OverflowError:
            return None
    if float in kinds or int in kinds:
        numbers = values if kinds <= _NUMBERS else [v for v in values if type(v) is float]
        total = sum(cast(Sequence[float], numbers))
        if total - total != 0:  # an inf or nan; or finite numbers whose sum overflows
            return None
    if str in kinds and any(type(v) is str and (len(v) > _SHORT or not v.isascii()) for v in values):
        return None
    return values


def _checked_value(name: str, value: object, where: str, seq: int) -> Value:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if value - value != 0:  # inf - inf and nan - nan are nan
            raise _bad(where, seq, f"signal {name[:80]!r} is not a finite number")
        return value
    if isinstance(value, int):
        try:  # the same rule as the whole-message check: an integer is kept when it has a finite float
            return float(value)
        except OverflowError:
            raise _bad(where, seq, f"signal {name[:80]!r} is too large a number") from None
    if isinstance(value, str):
        if not 0 <= _utf8_size(value) <= MAX_TEXT_BYTES:
            raise _bad(where, seq, f"signal {name[:80]!r} is not UTF-8 text of at most {MAX_TEXT_BYTES} bytes")
        return value
    what = "null" if value is None else "an object or array" if isinstance(value, dict | list) else "no value"
    raise _bad(where, seq, f"signal {name[:80]!r} is {what}; values are numbers, true/false or text")


def _check_name(name: str, where: str, seq: int) -> None:
    if not name.isprintable() or not 0 < _utf8_size(name) <= MAX_PATH_BYTES:
        raise _bad(
            where,
            seq,
            f"has an empty, unprintable or over-long signal name {name[:80]!r}",
            hint=f"names are 1 to {MAX_PATH_BYTES} bytes of printable UTF-8",
        )
    if len(_GOOD_NAMES) > 100_000:
        _GOOD_NAMES.clear()
    _GOOD_NAMES.add(name)


_BY_ID = ("", *SIGNAL_TABLE)  # index = signal id


def _names_of(*ids: int) -> tuple[str, ...]:
    """The paths of two or more signal ids (all valid)."""
    return operator.itemgetter(*ids)(_BY_ID)  # type: ignore[no-any-return]


_FLOAT_RUNS: dict[int, struct.Struct] = {}
_FLOAT_NAMES: dict[tuple[int, ...], tuple[str, ...]] = {}  # signal ids -> names, for id runs that passed


def _decode_binary(payload: bytes, where: str) -> Telemetry:
    size = len(payload)
    if size < _HEADER.size:
        raise _bad(where, None, f"is a TLT1 message of {size} bytes, shorter than its header")
    _, seq, t_ns, count = _HEADER.unpack_from(payload)
    if t_ns < 0:
        raise _bad(where, seq, "has a negative t_ns")
    if not 0 < count <= MAX_SIGNALS:
        raise _bad(where, seq, f"has {count} signals; a message holds 1 to {MAX_SIGNALS}")
    if count > 1 and size == _HEADER.size + 11 * count:  # maybe all are table ids with float64s: one unpack
        fast = _float_run(payload, count)
        if fast is not None:
            return Telemetry(seq, t_ns, fast[0], fast[1], None, _all_floats(count))
    return _decode_binary_slow(payload, where, seq, t_ns, count)


def _float_run(payload: bytes, count: int) -> tuple[tuple[str, ...], tuple[float, ...]] | None:
    layout = _FLOAT_RUNS.get(count)
    if layout is None:
        layout = _FLOAT_RUNS[count] = struct.Struct(">" + "HBd" * count)
    fields = layout.unpack_from(payload, _HEADER.size)
    ids, numbers = fields[0::3], fields[2::3]
    if fields[1::3].count(TYPE_FLOAT) != count:
        return None
    names = _FLOAT_NAMES.get(ids)
    if names is None:  # a new run of ids (a vehicle sends the same few): check it once
        if min(ids) < 1 or max(ids) >= len(_BY_ID) or len(set(ids)) != count:
            return None
        if len(_FLOAT_NAMES) > 10_000:
            _FLOAT_NAMES.clear()
        names = _FLOAT_NAMES[ids] = _names_of(*ids)
    total = sum(numbers)
    if total - total != 0:
        return None
    return names, numbers


def _decode_binary_slow(payload: bytes, where: str, seq: int, t_ns: int, count: int) -> Telemetry:
    size = len(payload)
    names: list[str] = []
    values: list[Value] = []
    table = SIGNAL_TABLE
    unpack_f64 = _F64.unpack_from
    pos = _HEADER.size
    try:
        for _ in range(count):
            key = payload[pos] << 8 | payload[pos + 1]
            if key == INLINE:
                length = payload[pos + 2]
                end = pos + 3 + length
                if end > size:
                    raise IndexError
                name = payload[pos + 3 : end].decode("utf-8")
                if name not in _GOOD_NAMES:
                    _check_name(name, where, seq)
                pos = end
            elif key <= len(table):
                name = table[key - 1]
                pos += 2
            else:
                raise _bad(where, seq, f"uses signal id {key}; table version 1 has ids 1 to {len(table)}")
            kind = payload[pos]
            value: Value
            if kind == TYPE_FLOAT:
                (number,) = unpack_f64(payload, pos + 1)
                if number - number != 0:
                    raise _bad(where, seq, f"signal {name!r} is not a finite number")
                value = number
                pos += 9
            elif kind == TYPE_BOOL:
                flag = payload[pos + 1]
                if flag > 1:
                    raise _bad(where, seq, f"signal {name!r} has boolean byte {flag}, not 0 or 1")
                value = flag == 1
                pos += 2
            elif kind == TYPE_TEXT:
                length = payload[pos + 1] << 8 | payload[pos + 2]
                end = pos + 3 + length
                if length > MAX_TEXT_BYTES or end > size:
                    raise _bad(where, seq, f"signal {name!r} has a text of {length} bytes (limit {MAX_TEXT_BYTES})")
                value = payload[pos + 3 : end].decode("utf-8")
                pos = end
            else:
                raise _bad(where, seq, f"signal {name!r} has unknown type {kind}; types are 1, 2 and 3")
            names.append(name)
            values.append(value)
    except (IndexError, struct.error):
        raise _bad(where, seq, "ends inside a signal (truncated)") from None
    except UnicodeDecodeError:
        raise _bad(where, seq, "has a name or text that is not UTF-8") from None
    if pos != size:
        raise _bad(where, seq, f"has {size - pos} bytes after its {count} signals")
    if len(set(names)) != len(names):
        raise _bad(where, seq, "names a signal twice")
    return Telemetry(seq, t_ns, tuple(names), tuple(values))


# --- encoding ---------------------------------------------------------------------------------------------


def encode_json(seq: int, t_ns: int, signals: Mapping[str, Value], vin: str | None = None) -> bytes:
    """The JSON form (``t_ns`` as a decimal string, so JavaScript readers keep every digit)."""
    doc: dict[str, object] = {"v": FORMAT_VERSION}
    if vin is not None:
        doc["vehicle"] = normalize_vin(vin)
    doc.update({"seq": seq, "t_ns": str(t_ns), "signals": dict(signals)})
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode_binary(seq: int, t_ns: int, signals: Mapping[str, Value]) -> bytes:
    """The binary form: table ids for paths in :data:`SIGNAL_TABLE`, inline paths for the rest."""
    if not 0 <= seq <= MAX_U64 or not 0 <= t_ns <= MAX_I64 or len(signals) > MAX_SIGNALS:
        raise MalformedInput("seq, t_ns or the number of signals is out of range for a TLT1 message")
    parts = [_HEADER.pack(MAGIC, seq, t_ns, len(signals))]
    for name, value in signals.items():
        number = SIGNAL_IDS.get(name)
        if number is not None:
            parts.append(_KEY.pack(number))
        else:
            raw = name.encode("utf-8")
            if not raw or len(raw) > MAX_PATH_BYTES:
                raise MalformedInput(f"signal name {name[:80]!r} must be 1 to {MAX_PATH_BYTES} bytes of UTF-8")
            parts.append(_KEY.pack(INLINE) + bytes([len(raw)]) + raw)
        if isinstance(value, bool):
            parts.append(bytes([TYPE_BOOL, int(value)]))
        elif isinstance(value, int | float):
            parts.append(bytes([TYPE_FLOAT]) + _F64.pack(float(value)))
        else:
            text = value.encode("utf-8")
            if len(text) > MAX_TEXT_BYTES:
                raise MalformedInput(f"signal {name!r}: text longer than {MAX_TEXT_BYTES} bytes")
            parts.append(bytes([TYPE_TEXT]) + _KEY.pack(len(text)) + text)
    return b"".join(parts)


def telemetry_message(
    seq: int,
    signals: Mapping[str, Value],
    *,
    t_ns: int | None = None,
    vin: str | None = None,
    binary: bool = False,
) -> bytes:
    """One message, JSON (naming ``vin`` if given) or binary; ``t_ns`` defaults to now."""
    when = time.time_ns() if t_ns is None else t_ns
    return encode_binary(seq, when, signals) if binary else encode_json(seq, when, signals, vin)


# --- the canonical record -----------------------------------------------------------------------------------


def canonical_record(seq: int, payload: bytes) -> bytes:
    """``seq u64 | length u32 | payload``: a dataset's source hash is SHA-256 over these, in acceptance order."""
    return _RECORD.pack(seq, len(payload)) + payload


def split_records(data: bytes) -> list[tuple[int, bytes]]:
    """The ``(seq, payload)`` pairs of concatenated canonical records."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos + _RECORD.size <= len(data):
        seq, size = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        out.append((seq, data[pos : pos + size]))
        pos += size
    if pos != len(data):
        raise MalformedInput("a telemetry record is truncated", hint="the telemetry state file is damaged")
    return out


__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_MESSAGE_BYTES",
    "MAX_SIGNALS",
    "SIGNAL_IDS",
    "SIGNAL_TABLE",
    "Telemetry",
    "Value",
    "canonical_record",
    "decode_message",
    "encode_binary",
    "encode_json",
    "message_vin",
    "replace_vin",
    "split_records",
    "telemetry_message",
    "telemetry_topic",
    "value_types",
    "vin_from_topic",
    "vin_level",
]
