"""Mapping files: source signal names to VSS paths, with unit conversion and value transforms.

A mapping file (YAML) names the vendor namespace for signals it does not map and one entry per source
signal (or glob of signals)::

    version: 1
    vendor: hyundai                  # unmapped signals become Vendor.hyundai.<name>
    identity: false                  # true: a source name that is a catalog leaf maps to itself
    signals:
      WHL_SPD11.WHL_SPD_FL: Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed       # shorthand: the VSS path
      ESP12.YAW_RATE: {vss: Vehicle.AngularVelocity.Yaw, from_unit: deg/s}   # the DBC gives no unit
      CLU11.CF_Clu_Vanz:
        vss: Vehicle.Speed
        from_unit_by: {signal: CLU11.CF_Clu_SPEED_UNIT, units: {0: km/h, 1: mph}}
      SCC12.TakeOverReq: {vss: Vehicle.ADAS.TransitionDemand.IsActive, transform: "!= 0"}
      TCU12.CUR_GR: {vss: Vehicle.Powertrain.Transmission.CurrentGear, enum: {0: 0, 14: -1}, enum_other: drop}
      "GPS.*": {vss: "Vehicle.CurrentLocation.{1}"}                      # glob; {1} is the first *
      TCS13.DriverOverride:                                                # one source, two targets
        - {vss: Vehicle.ADAS.DriverOverride.IsActive, transform: "!= 0"}
        - {vss: Vehicle.ADAS.DriverOverride.Type, enum: {0: NONE, 1: ACCELERATING, 2: BRAKING}}

Entry keys: ``vss`` (target path), ``from_unit`` (the source unit, overriding the channel's), ``from_unit_by``
(the source unit chosen sample by sample by another channel's last value), ``scale`` and ``offset``
(``value * scale + offset``, applied first), ``transform`` (a comparison making a boolean: ``!= 0``,
``== 2``, ``> 0.5``...), ``enum`` (raw value to target value), ``enum_other`` (``error``, ``drop`` or
``keep`` for raw values the enum does not list; default ``error``) and ``note`` (free text).

Values end in the VSS unit of the target. Lookup order for a source name: an exact entry, then the identity
rule, then the first glob entry (file order). When several channels claim one target path the earlier entry
wins (then the earlier channel); a channel that wins no target is kept under the vendor namespace.
Samples a transform or a boolean target cannot decide (NaN) and enum values dropped by ``enum_other: drop``
are left out, with their timestamps.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trustlane.errors import MalformedInput
from trustlane.ingest.categories import UNCLASSIFIED, CategoryCatalog, default_categories
from trustlane.ingest.model import Channel, RawRecording, Signal, TimeArray
from trustlane.ingest.units import convert, parse_unit
from trustlane.ingest.vss import VssCatalog, VssNode, default_catalog, vendor_path
from trustlane.ingest.yamlsrc import LineDict, check_keys, load_yaml, require_map

MAPPING_VERSION = 1
ENUM_OTHER = ("error", "drop", "keep")

EnumKey = float | str
EnumValue = bool | int | float | str
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
AnyArray = npt.NDArray[np.generic]

_TOP_KEYS = frozenset({"version", "vendor", "description", "identity", "signals"})
_ENTRY_KEYS = frozenset(
    {"vss", "from_unit", "from_unit_by", "scale", "offset", "transform", "enum", "enum_other", "note"}
)
_SELECTOR_KEYS = frozenset({"signal", "units"})
_INT_TYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})
_NUMERIC_TYPES = _INT_TYPES | {"float", "double"}
_TRANSFORM = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
_OPS: dict[str, Callable[[FloatArray, float], BoolArray]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Comparison:
    """A boolean transform: ``value <op> operand``."""

    op: str
    operand: float

    def apply(self, values: FloatArray) -> BoolArray:
        return np.asarray(_OPS[self.op](values, self.operand), dtype=np.bool_)

    def __str__(self) -> str:
        return f"{self.op} {self.operand:g}"


@dataclass(frozen=True)
class UnitSelector:
    """The source unit picked per sample by the last value of another channel (e.g. a km/h-or-mph flag)."""

    signal: str
    units: tuple[tuple[EnumKey, str], ...]


@dataclass(frozen=True)
class Rule:
    """One target of one mapping entry. ``line`` is the entry's line in the mapping file (0: identity)."""

    key: str
    line: int
    vss: str
    from_unit: str | None = None
    from_unit_by: UnitSelector | None = None
    scale: float = 1.0
    offset: float = 0.0
    transform: Comparison | None = None
    enum: tuple[tuple[EnumKey, EnumValue], ...] = ()
    enum_other: str = "error"
    identity: bool = False

    @property
    def is_glob(self) -> bool:
        return "*" in self.key or "?" in self.key


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: entries in file order, each a source name or glob with one or more rules."""

    vendor: str
    entries: tuple[tuple[str, tuple[Rule, ...]], ...]
    identity: bool = False
    source: str = "<mapping>"
    description: str = ""
    _exact: dict[str, tuple[int, tuple[Rule, ...]]] = field(init=False, repr=False, compare=False)
    _globs: tuple[tuple[int, re.Pattern[str], tuple[Rule, ...]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact = {key: (i, rules) for i, (key, rules) in enumerate(self.entries) if not rules[0].is_glob}
        globs = tuple((i, _glob_regex(key), rules) for i, (key, rules) in enumerate(self.entries) if rules[0].is_glob)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_globs", globs)

    def resolve(self, source_name: str, catalog: VssCatalog) -> tuple[tuple[int, Rule, str], ...]:
        """``(priority, rule, target path)`` for each target of ``source_name``; empty when unmapped.

        Priority orders claims on one target path: exact entries by file order, then the identity rule,
        then globs by file order.
        """
        found = self._exact.get(source_name)
        if found is not None:
            return tuple((found[0], rule, rule.vss) for rule in found[1])
        if self.identity and catalog.is_leaf(source_name):
            rule = Rule(key=source_name, line=0, vss=source_name, identity=True)
            return ((len(self.entries), rule, source_name),)
        for index, regex, rules in self._globs:
            match = regex.fullmatch(source_name)
            if match:
                prio = len(self.entries) + 1 + index
                return tuple((prio, rule, _substitute(rule.vss, match)) for rule in rules)
        return ()


def parse_mapping(text: str, *, source: str, catalog: VssCatalog | None = None) -> Mapping:
    """Parse and check a mapping file against ``catalog`` (default: the shipped one).

    Every error names ``source`` and the line of the offending entry: unknown or branch VSS paths, unknown
    units, units of the wrong quantity, transforms on non-boolean targets, enum values the target does not
    allow, unknown keys and repeated source names.
    """
    catalog = catalog or default_catalog()
    doc = require_map(load_yaml(text, source=source), where=source, what="a mapping file")
    check_keys(doc, _TOP_KEYS, source=source, what="the mapping file")
    if doc.get("version") != MAPPING_VERSION:
        raise MalformedInput(
            f"{source}:{doc.line_of('version')}: version is {doc.get('version')!r}, expected {MAPPING_VERSION}",
            hint="start the file with 'version: 1'",
        )
    vendor = doc.get("vendor")
    if not isinstance(vendor, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", vendor):
        raise MalformedInput(
            f"{source}:{doc.line_of('vendor')}: vendor must be a name like hyundai (letters, digits, _)",
            hint="unmapped signals are kept as Vendor.<vendor>.<source name>",
        )
    identity = doc.get("identity", False)
    description = doc.get("description", "")
    if not isinstance(identity, bool) or not isinstance(description, str):
        raise MalformedInput(f"{source}: identity must be true or false and description text")
    signals = doc.get("signals", LineDict(doc.line))
    signals = require_map(signals, where=f"{source}:{doc.line_of('signals')}", what="signals")
    entries = []
    for key, value in signals.items():
        line = signals.line_of(key)
        if not isinstance(key, str) or not key:
            raise MalformedInput(f"{source}:{line}: a source name must be text, not {key!r}", hint="quote it")
        entries.append((key, _entry(key, value, line, source, catalog)))
    return Mapping(vendor=vendor, entries=tuple(entries), identity=identity, source=source, description=description)


def load_mapping(path: Path, catalog: VssCatalog | None = None) -> Mapping:
    """Read and check a mapping file."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MalformedInput(f"cannot read mapping file {path}: {err}") from None
    return parse_mapping(text, source=str(path), catalog=catalog)


def shipped_mapping_names() -> tuple[str, ...]:
    """Names of the mappings shipped in the package (``hyundai_2015_ccan``, ``trustlane_generic``...)."""
    folder = resources.files("trustlane.ingest") / "data" / "mappings"
    return tuple(sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")))


def shipped_mapping(name: str, catalog: VssCatalog | None = None) -> Mapping:
    """A mapping shipped in the package, by name."""
    if name not in shipped_mapping_names():
        raise MalformedInput(
            f"no shipped mapping named {name!r}", hint=f"shipped mappings: {', '.join(shipped_mapping_names())}"
        )
    text = (resources.files("trustlane.ingest") / "data" / "mappings" / f"{name}.yaml").read_text("utf-8")
    return parse_mapping(text, source=f"mappings/{name}.yaml", catalog=catalog)


# --- parsing one entry -------------------------------------------------------------------------------


def _entry(key: str, value: object, line: int, source: str, catalog: VssCatalog) -> tuple[Rule, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedInput(f"{source}:{line}: {key}: an empty list maps to nothing")
    rules = tuple(_rule(key, item, line, source) for item in items)
    stars = key.count("*") + key.count("?")
    for rule in rules:
        where = f"{source}:{line}: {key}"
        used = [int(n) for n in _PLACEHOLDER.findall(rule.vss)]
        if any(n < 1 or n > stars for n in used):
            raise MalformedInput(
                f"{where}: target {rule.vss} uses a placeholder the pattern does not have",
                hint="{1} is the text the first * or ? matched, {2} the second...",
            )
        if not used:
            check_rule(rule, catalog.require(rule.vss, where=where), where, catalog)
    targets = [r.vss for r in rules]
    if len(set(targets)) != len(targets):
        raise MalformedInput(f"{source}:{line}: {key} maps to the same VSS path twice")
    return rules


def _rule(key: str, item: object, line: int, source: str) -> Rule:
    where = f"{source}:{line}: {key}"
    if isinstance(item, str):
        return Rule(key=key, line=line, vss=item)
    body = require_map(item, where=where, what="a mapping entry")
    if "unit" in body:
        raise MalformedInput(
            f"{source}:{body.line_of('unit')}: {key}: 'unit' is ambiguous",
            hint="write from_unit: for the source's unit; values always end in the VSS unit of the target",
        )
    check_keys(body, _ENTRY_KEYS, source=source, what=f"the entry for {key}")
    vss = body.get("vss")
    if not isinstance(vss, str) or not vss:
        raise MalformedInput(f"{where}: vss: (the target path) is missing", hint="e.g. vss: Vehicle.Speed")
    from_unit = body.get("from_unit")
    if from_unit is not None and not isinstance(from_unit, str):
        raise MalformedInput(f"{where}: from_unit must be a unit name", hint="quote it if YAML reads it otherwise")
    enum_other = body.get("enum_other", "error")
    if enum_other not in ENUM_OTHER:
        raise MalformedInput(f"{where}: enum_other must be one of {', '.join(ENUM_OTHER)}, not {enum_other!r}")
    return Rule(
        key=key,
        line=line,
        vss=vss,
        from_unit=from_unit,
        from_unit_by=_selector(body.get("from_unit_by"), source, where) if "from_unit_by" in body else None,
        scale=_float(body.get("scale", 1.0), where, "scale"),
        offset=_float(body.get("offset", 0.0), where, "offset"),
        transform=_comparison(body["transform"], where) if "transform" in body else None,
        enum=_enum(body["enum"], where) if "enum" in body else (),
        enum_other=str(enum_other),
    )


def _float(value: object, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedInput(f"{where}: {name} must be a number, not {value!r}")
    return float(value)


def _comparison(text: object, where: str) -> Comparison:
    match = _TRANSFORM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise MalformedInput(
            f"{where}: transform {text!r} is not a comparison with a number",
            hint='write e.g. transform: "!= 0" (quoted), with ==, !=, >, >=, < or <=',
        )
    return Comparison(match.group(1), float(match.group(2)))


def _enum_key(value: object) -> EnumKey:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | np.integer | np.floating | np.bool_):
        return float(value)
    raise TypeError(f"enum keys are numbers or text, not {type(value).__name__}")


def _enum(value: object, where: str) -> tuple[tuple[EnumKey, EnumValue], ...]:
    if not isinstance(value, dict) or not value:
        raise MalformedInput(f"{where}: enum must be a non-empty mapping of source value to target value")
    pairs = []
    for raw, target in value.items():
        try:
            key = _enum_key(raw)
        except TypeError as err:
            raise MalformedInput(f"{where}: {err}") from None
        if not isinstance(target, bool | int | float | str):
            raise MalformedInput(f"{where}: enum value for {raw!r} must be a number, true/false or text")
        pairs.append((key, target))
    return tuple(pairs)


def _selector(value: object, source: str, where: str) -> UnitSelector:
    body = require_map(value, where=where, what="from_unit_by")
    check_keys(body, _SELECTOR_KEYS, source=source, what="from_unit_by")
    signal, units = body.get("signal"), body.get("units")
    if not isinstance(signal, str) or not signal or not isinstance(units, dict) or not units:
        raise MalformedInput(
            f"{where}: from_unit_by needs signal: (the selecting source name) and units: (its value to unit)",
            hint="e.g. from_unit_by: {signal: CLU11.CF_Clu_SPEED_UNIT, units: {0: km/h, 1: mph}}",
        )
    pairs = []
    for raw, unit in units.items():
        if not isinstance(unit, str):
            raise MalformedInput(f"{where}: from_unit_by unit for {raw!r} must be a unit name")
        try:
            pairs.append((_enum_key(raw), parse_unit(unit, where=where).name))
        except TypeError as err:
            raise MalformedInput(f"{where}: {err}") from None
    return UnitSelector(signal=signal, units=tuple(pairs))


def check_rule(rule: Rule, node: VssNode, where: str, catalog: VssCatalog) -> None:
    """Check that ``rule`` can produce values of the target ``node``'s type and unit."""
    if node.is_branch:
        children = ", ".join(n.path.rsplit(".", 1)[-1] for n in catalog.children(node.path)[:8])
        raise MalformedInput(f"{where}: {node.path} is a branch, not a signal", hint=f"its members: {children}")
    datatype = node.datatype or ""
    numeric, boolean, text = datatype in _NUMERIC_TYPES, datatype == "boolean", datatype == "string"
    units = [rule.from_unit] if rule.from_unit else []
    if rule.from_unit_by:
        units += [u for _, u in rule.from_unit_by.units]
    if rule.transform and not boolean:
        raise MalformedInput(f"{where}: transform makes a boolean, but {node.path} is {datatype}")
    if rule.enum and (rule.transform or units or (rule.scale, rule.offset) != (1.0, 0.0)):
        raise MalformedInput(
            f"{where}: enum maps raw values to target values directly",
            hint="drop transform, from_unit, from_unit_by, scale and offset from this entry",
        )
    if units and not node.unit:
        raise MalformedInput(f"{where}: {node.path} has no unit, so from_unit / from_unit_by make no sense")
    for unit in units:
        source_unit = parse_unit(unit, where=where)
        target_unit = parse_unit(node.unit or "", where=f"{where} (catalog unit of {node.path})")
        if source_unit.quantity != target_unit.quantity:
            raise MalformedInput(
                f"{where}: {unit!r} ({source_unit.quantity}) does not convert to {node.path}'s unit "
                f"{node.unit!r} ({target_unit.quantity})",
                hint="check the source unit and the target path",
            )
    if (rule.scale, rule.offset) != (1.0, 0.0) and not (numeric or (boolean and rule.transform)):
        raise MalformedInput(f"{where}: scale/offset apply to numbers; {node.path} is {datatype}")
    if rule.enum_other == "keep" and not numeric:
        raise MalformedInput(f"{where}: enum_other: keep passes raw numbers through, but {node.path} is {datatype}")
    for raw, target in rule.enum:
        _check_enum_value(raw, target, node, where, numeric=numeric, boolean=boolean, text=text)


def _check_enum_value(
    raw: EnumKey, target: EnumValue, node: VssNode, where: str, *, numeric: bool, boolean: bool, text: bool
) -> None:
    label = f"{where}: enum value {target!r} (for {raw!r})"
    if boolean and not isinstance(target, bool):
        raise MalformedInput(f"{label}: {node.path} is boolean", hint="use true or false")
    if numeric and (isinstance(target, bool) or not isinstance(target, int | float)):
        raise MalformedInput(f"{label}: {node.path} is {node.datatype}", hint="use a number")
    if numeric and (node.datatype or "") in _INT_TYPES and float(target) != int(target):
        raise MalformedInput(f"{label}: {node.path} is {node.datatype}, an integer type")
    if text and not isinstance(target, str):
        raise MalformedInput(
            f"{label}: {node.path} is text",
            hint="quote the value: YAML reads on/off/yes/no as true/false and digits as numbers",
        )
    if text and node.allowed and target not in node.allowed:
        raise MalformedInput(f"{label}: not allowed for {node.path}", hint=f"allowed: {', '.join(node.allowed)}")
    if not (boolean or numeric or text):
        raise MalformedInput(f"{label}: enum cannot produce {node.datatype} values for {node.path}")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        parts.append("(.*)" if char == "*" else "(.)" if char == "?" else re.escape(char))
    return re.compile("".join(parts))


def _substitute(target: str, match: re.Match[str]) -> str:
    return _PLACEHOLDER.sub(lambda m: match.group(int(m.group(1))), target)


# --- applying a mapping --------------------------------------------------------------------------------


def apply_mapping(
    recording: RawRecording,
    mapping: Mapping,
    catalog: VssCatalog | None = None,
    categories: CategoryCatalog | None = None,
) -> list[Signal]:
    """Rename, convert and classify every channel of ``recording``.

    Mapped channels become signals at their VSS (or overlay) path, in the catalog unit, classified by
    ``categories``. Unmapped channels, and channels whose every target another channel claimed first, are
    kept unchanged as ``Vendor.<vendor>.<name>`` with ``classified=False``. Output follows channel order.
    """
    catalog = catalog or default_catalog()
    categories = categories or default_categories()
    by_name: dict[str, Channel] = {}
    for channel in recording.channels:
        if channel.name in by_name:
            raise MalformedInput(
                f"{recording.source}: two channels are named {channel.name!r}",
                hint="the reader must give each channel a unique name (e.g. prefix the group or topic)",
            )
        by_name[channel.name] = channel

    claims = sorted(
        (
            (prio, index, n, rule, target)
            for index, channel in enumerate(recording.channels)
            for n, (prio, rule, target) in enumerate(mapping.resolve(channel.name, catalog))
        ),
        key=lambda claim: claim[:3],
    )
    winners: dict[int, list[tuple[Rule, str]]] = {}
    taken: set[str] = set()
    for _, index, _, rule, target in claims:
        if target not in taken:
            taken.add(target)
            winners.setdefault(index, []).append((rule, target))

    signals: list[Signal] = []
    vendor_names: dict[str, str] = {}
    for index, channel in enumerate(recording.channels):
        won = winners.get(index)
        if not won:
            signals.append(_vendor_signal(channel, mapping, vendor_names, categories))
            continue
        for rule, target in won:
            where = _where(mapping, rule, channel, target)
            node = catalog.require(target, where=where)
            if rule.is_glob:
                check_rule(rule, node, where, catalog)
            signals.append(_mapped_signal(channel, rule, node, by_name, categories, where))
    return signals


def _where(mapping: Mapping, rule: Rule, channel: Channel, target: str) -> str:
    if rule.identity:
        return f"{mapping.source}: identity rule: {channel.name}"
    return f"{mapping.source}:{rule.line}: {channel.name} -> {target}"


def _classified(path: str, categories: CategoryCatalog) -> tuple[tuple[str, ...], bool]:
    found = categories.classify(path)
    if not found or UNCLASSIFIED in found:
        return (found or (UNCLASSIFIED,)), False
    return found, True


def _vendor_signal(channel: Channel, mapping: Mapping, taken: dict[str, str], categories: CategoryCatalog) -> Signal:
    path = vendor_path(mapping.vendor, channel.name)
    if path in taken and taken[path] != channel.name:
        path = f"{path}__{hashlib.sha256(channel.name.encode('utf-8')).hexdigest()[:8]}"
    taken[path] = channel.name
    cats, _ = _classified(path, categories)
    return Signal(
        path=path,
        unit=channel.unit,
        timestamps_ns=channel.timestamps_ns,
        values=channel.values,
        source_name=channel.name,
        categories=cats,
        classified=False,
    )


def _mapped_signal(
    channel: Channel,
    rule: Rule,
    node: VssNode,
    channels: dict[str, Channel],
    categories: CategoryCatalog,
    where: str,
) -> Signal:
    timestamps, values = _values(channel, rule, node, channels, where)
    cats, classified = _classified(node.path, categories)
    return Signal(
        path=node.path,
        unit=node.unit,
        timestamps_ns=timestamps,
        values=values,
        source_name=channel.name,
        categories=cats,
        classified=classified,
    )


def _values(
    channel: Channel, rule: Rule, node: VssNode, channels: dict[str, Channel], where: str
) -> tuple[TimeArray, AnyArray]:
    timestamps, raw = channel.timestamps_ns, channel.values
    datatype = node.datatype or ""
    if rule.enum:
        return _apply_enum(timestamps, raw, rule, node, where)
    if datatype not in _NUMERIC_TYPES and datatype != "boolean":
        return timestamps, _text(raw, node, where)
    numbers = _numbers(raw, where)
    if (rule.scale, rule.offset) != (1.0, 0.0):
        numbers = numbers * rule.scale + rule.offset
    if rule.transform or datatype == "boolean":
        keep = ~np.isnan(numbers)
        timestamps, numbers = timestamps[keep], numbers[keep]
        if rule.transform:
            return timestamps, rule.transform.apply(numbers)
        if not np.isin(numbers, (0.0, 1.0)).all():
            bad = sorted({float(v) for v in numbers[~np.isin(numbers, (0.0, 1.0))]})[:5]
            raise MalformedInput(
                f"{where}: {node.path} is boolean but the source has values {bad}",
                hint='add transform: "!= 0" (or another comparison) or an enum to the entry',
            )
        return timestamps, numbers.astype(np.bool_)
    if node.unit:
        numbers = _to_unit(numbers, timestamps, channel, rule, node, channels, where)
    elif raw.dtype.kind in "iu" and (rule.scale, rule.offset) == (1.0, 0.0):
        return timestamps, raw
    return timestamps, numbers


def _numbers(raw: AnyArray, where: str) -> FloatArray:
    if raw.dtype.kind not in "biuf":
        raise MalformedInput(f"{where}: the source values are {raw.dtype} (text?), the target needs numbers")
    return raw.astype(np.float64, copy=False)  # sample arrays are never changed in place: no copy needed


def _text(raw: AnyArray, node: VssNode, where: str) -> AnyArray:
    if raw.dtype.kind not in "OUS":
        raise MalformedInput(
            f"{where}: {node.path} is {node.datatype} but the source has {raw.dtype} values",
            hint="map the values with enum: (source value -> allowed text)",
        )
    values = raw.astype(object)
    if node.allowed:
        bad = sorted({str(v) for v in values if v not in node.allowed})[:5]
        if bad:
            raise MalformedInput(
                f"{where}: values {bad} are not allowed for {node.path}",
                hint=f"allowed: {', '.join(node.allowed)}; map source values with enum:",
            )
    return values


def _to_unit(
    numbers: FloatArray,
    timestamps: TimeArray,
    channel: Channel,
    rule: Rule,
    node: VssNode,
    channels: dict[str, Channel],
    where: str,
) -> FloatArray:
    target = node.unit or ""
    if rule.from_unit_by is not None:
        selector = channels.get(rule.from_unit_by.signal)
        if selector is not None and len(selector):
            return _convert_selected(numbers, timestamps, selector, rule.from_unit_by, target, where)
        if rule.from_unit is None:
            raise MalformedInput(
                f"{where}: the unit selector {rule.from_unit_by.signal} is not in the recording",
                hint="add from_unit: as the unit to assume when the selector is missing",
            )
    unit = rule.from_unit or channel.unit or (target if rule.identity else None)
    if unit is None:
        raise MalformedInput(
            f"{where}: the channel has no unit and the mapping gives none",
            hint=f"add from_unit: (the unit the source writes {channel.name} in) to the entry",
        )
    if parse_unit(unit, where=f"{where} (channel unit)") == parse_unit(target):
        return numbers  # already in the target unit: nothing to convert (and no copy of the samples)
    try:
        return convert(numbers, unit, target)
    except MalformedInput as err:
        raise MalformedInput(f"{where}: {err.message}", hint=err.hint) from None


def _convert_selected(
    numbers: FloatArray,
    timestamps: TimeArray,
    selector: Channel,
    rule: UnitSelector,
    target: str,
    where: str,
) -> FloatArray:
    # the selector's last value at or before each sample; before its first sample, its first value
    index = np.clip(np.searchsorted(selector.timestamps_ns, timestamps, side="right") - 1, 0, len(selector) - 1)
    chosen = selector.values[index]
    out = np.empty_like(numbers)
    done = np.zeros(len(numbers), dtype=np.bool_)
    for key, unit in rule.units:
        mask = _equal(chosen, key)
        out[mask] = convert(numbers[mask], unit, target)
        done |= mask
    if not done.all():
        bad = sorted({str(v) for v in chosen[~done]})[:5]
        raise MalformedInput(
            f"{where}: the unit selector {rule.signal} has values {bad} that from_unit_by does not list",
            hint="add them to from_unit_by.units",
        )
    return out


def _equal(values: AnyArray, key: EnumKey) -> BoolArray:
    if isinstance(key, str):
        return np.asarray(values.astype(object) == key, dtype=np.bool_)
    if values.dtype.kind not in "biuf":
        return np.zeros(len(values), dtype=np.bool_)
    return np.asarray(values.astype(np.float64) == key, dtype=np.bool_)


def _apply_enum(
    timestamps: TimeArray, raw: AnyArray, rule: Rule, node: VssNode, where: str
) -> tuple[TimeArray, AnyArray]:
    datatype = node.datatype or ""
    dtype: type[np.generic] = (
        np.bool_
        if datatype == "boolean"
        else np.int64
        if datatype in _INT_TYPES
        else np.float64
        if datatype in _NUMERIC_TYPES
        else np.object_
    )
    out = np.empty(len(raw), dtype=dtype)
    known = np.zeros(len(raw), dtype=np.bool_)
    for key, target in rule.enum:
        mask = _equal(raw, key) & ~known
        out[mask] = target
        known |= mask
    if known.all():
        return timestamps, out
    if rule.enum_other == "drop":
        return timestamps[known], out[known]
    if rule.enum_other == "keep":
        out[~known] = _numbers(raw[~known], where).astype(dtype)
        return timestamps, out
    bad = sorted({str(v) for v in raw[~known]})[:5]
    raise MalformedInput(
        f"{where}: source values {bad} are not in the enum",
        hint="add them to enum:, or set enum_other: drop (leave those samples out) or keep (pass numbers through)",
    )


def mapped_targets(mapping: Mapping) -> Sequence[tuple[str, Rule]]:
    """Every ``(source name or glob, rule)`` of ``mapping``, in file order (for checks and documentation)."""
    return [(key, rule) for key, rules in mapping.entries for rule in rules]


__all__ = [
    "ENUM_OTHER",
    "MAPPING_VERSION",
    "Comparison",
    "Mapping",
    "Rule",
    "UnitSelector",
    "apply_mapping",
    "check_rule",
    "load_mapping",
    "mapped_targets",
    "parse_mapping",
    "shipped_mapping",
    "shipped_mapping_names",
]
