"""VSS catalog, vendor naming, mapping files and apply_mapping; shared-marked checks against the real DBC and VSS."""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT, shared_path
from trustlane.errors import MalformedInput
from trustlane.ingest.categories import UNCLASSIFIED
from trustlane.ingest.mapping import (
    Mapping,
    apply_mapping,
    mapped_targets,
    parse_mapping,
    shipped_mapping,
    shipped_mapping_names,
)
from trustlane.ingest.model import Channel, RawRecording, Signal
from trustlane.ingest.units import convert, find_unit
from trustlane.ingest.vss import VssCatalog, default_catalog, parse_catalog_csv, vendor_path

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
HEADER = "path,type,datatype,unit,min,max,allowed,description\n"


def _ts(*ms: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.array([T0 + m * 10**6 for m in ms], dtype=np.int64)


def _channel(name: str, values: list[Any], unit: str | None = None, times: list[int] | None = None) -> Channel:
    times = times if times is not None else [10 * i for i in range(len(values))]
    array = np.array(values, dtype=object) if values and isinstance(values[0], str) else np.array(values)
    return Channel(name=name, unit=unit, timestamps_ns=_ts(*times), values=array)


def _recording(*channels: Channel) -> RawRecording:
    return RawRecording(source=Path("drive.log"), format="candump", channels=channels)


def _mapping(signals: str, *, identity: bool = False) -> Mapping:
    text = f"version: 1\nvendor: acme\nidentity: {'true' if identity else 'false'}\nsignals:\n{signals}"
    return parse_mapping(text, source="m.yaml")


def _by_path(signals: list[Signal]) -> dict[str, Signal]:
    return {s.path: s for s in signals}


# --- catalog -----------------------------------------------------------------------------------------------


def test_catalog_lookup_branches_units_and_overlay() -> None:
    catalog = default_catalog()
    speed = catalog.lookup("Vehicle.Speed")
    assert speed is not None
    assert (speed.type, speed.datatype, speed.unit, speed.overlay) == ("sensor", "float", "km/h", False)
    assert catalog.is_branch("Vehicle.ADAS")
    assert not catalog.is_branch("Vehicle.Speed")
    assert catalog.unit("Vehicle.Acceleration.Lateral") == "m/s^2"
    assert catalog.unit("Vehicle.Nope") is None
    assert catalog.lookup("Vehicle.Nope") is None
    level = catalog.lookup("Vehicle.ADAS.ActiveAutonomyLevel")
    assert level is not None
    assert "SAE_3" in level.allowed
    takeover = catalog.lookup("Vehicle.ADAS.TransitionDemand.IsActive")
    assert takeover is not None
    assert takeover.overlay
    assert takeover.datatype == "boolean"
    assert "Vehicle.Cabin.Camera.Frame" in catalog
    assert {n.path for n in catalog.children("Vehicle.ADAS.MinimalRiskManeuver")} == {
        "Vehicle.ADAS.MinimalRiskManeuver.IsActive"
    }


def test_require_suggests_close_paths() -> None:
    with pytest.raises(MalformedInput) as err:
        default_catalog().require("Vehicle.Sped", where="x.yaml:3")
    assert err.value.message.startswith("x.yaml:3: Vehicle.Sped is not in the VSS catalog")
    assert err.value.hint is not None
    assert "Vehicle.Speed" in err.value.hint


def test_vss_and_overlay_wanted_by_the_brief_use_vss_where_it_exists() -> None:
    catalog = default_catalog()
    for path in (
        "Vehicle.ADAS.ActiveAutonomyLevel",
        "Vehicle.Driver.IsHandsOnWheel",
        "Vehicle.Cabin.Seat.Row1.DriverSide.Airbag.IsDeployed",
        "Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted",
        "Vehicle.VehicleIdentification.VIN",
    ):
        node = catalog.lookup(path)
        assert node is not None
        assert not node.overlay, path
    overlay = {n.path for n in catalog if n.overlay}
    assert {
        "Vehicle.ADAS.TransitionDemand.IsActive",
        "Vehicle.ADAS.MinimalRiskManeuver.IsActive",
        "Vehicle.ADAS.DSSAD.Event",
        "Vehicle.ADAS.DriverOverride.IsActive",
        "Vehicle.Cabin.Camera.Frame",
        "Vehicle.Exterior.Camera.Frame",
        "Vehicle.Cabin.Microphone.Audio",
        "Vehicle.Safety.CrashPulse.Longitudinal",
    } <= overlay


def test_every_overlay_path_is_documented() -> None:
    doc = (ROOT / "docs" / "VSS-OVERLAY.md").read_text("utf-8")
    documented = set(re.findall(r"`(Vehicle\.[A-Za-z0-9_.]+)`", doc))
    missing = [n.path for n in default_catalog() if n.overlay and n.path not in documented]
    assert missing == []


def test_overlay_may_not_redefine_vss() -> None:
    vss = parse_catalog_csv(HEADER + "Vehicle,branch,,,,,,x\nVehicle.Speed,sensor,float,km/h,,,,x\n", source="v")
    overlay = parse_catalog_csv(HEADER + "Vehicle.Speed,sensor,float,m/s,,,,x\n", source="o", overlay=True)
    with pytest.raises(MalformedInput, match=r"overlay defines Vehicle\.Speed, which VSS already has"):
        VssCatalog([*vss, *overlay])


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("Vehicle,branch,,,,,,x\nVehicle.A.B,sensor,float,,,,,x\n", "parent Vehicle.A is missing"),
        ("Vehicle,branch,,,,,,x\nVehicle.A,sensor,float,,,,,x\nVehicle.A.B,sensor,float,,,,,x\n", "not a branch"),
        ("Vehicle,branch,,,,,,x\nVehicle.A,branch,,,,,,x\nVehicle.A,branch,,,,,,x\n", "defined twice"),
    ],
)
def test_catalog_structure_is_checked(body: str, error: str) -> None:
    with pytest.raises(MalformedInput, match=error):
        VssCatalog(parse_catalog_csv(HEADER + body, source="c.csv"))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("path,type\n", r"c.csv:1: header is"),
        ("# comment\n" + HEADER + "Vehicle,branch,,,,,,x\nVehicle.X,sensr,float,,,,,x\n", r"c.csv:4: .*type 'sensr'"),
        (HEADER + "Vehicle,branch,float,,,,,x\n", r"c.csv:2: Vehicle: a branch must not have a datatype"),
        (HEADER + "Vehicle.X,sensor,,,,,,x\n", r"c.csv:2: Vehicle.X: a sensor must have a datatype"),
        (HEADER + "Vehicle.X,sensor,float,,low,,,x\n", r"c.csv:2: min 'low' is not a number"),
        (HEADER + "Vehicle.X Y,sensor,float,,,,,x\n", r"c.csv:2: 'Vehicle.X Y' is not a dotted VSS path"),
        (HEADER + "Vehicle,branch,,,,,x\n", r"c.csv:2: 7 fields, expected 8"),
    ],
)
def test_catalog_csv_errors_name_the_line(text: str, error: str) -> None:
    with pytest.raises(MalformedInput, match=error):
        parse_catalog_csv(text, source="c.csv")


@pytest.mark.parametrize(
    ("namespace", "name", "path"),
    [
        ("hyundai", "WHL_SPD11.WHL_SPD_FL", "Vendor.hyundai.WHL_SPD11.WHL_SPD_FL"),
        ("hyundai", "CLU11.CF_Clu_Vanz@can1", "Vendor.hyundai.CLU11.CF_Clu_Vanz_can1"),
        ("ros", "/imu/data/linear_acceleration.x", "Vendor.ros.imu.data.linear_acceleration.x"),
        ("csv", "engine temp (°C)", "Vendor.csv.engine_temp_C_"),
        ("csv", "2nd.value", "Vendor.csv._2nd.value"),
        ("my-oem", "a..b", "Vendor.my_oem.a.b"),
    ],
)
def test_vendor_path(namespace: str, name: str, path: str) -> None:
    assert vendor_path(namespace, name) == path


def test_vendor_path_needs_a_namespace_and_a_name() -> None:
    with pytest.raises(MalformedInput, match="namespace is empty"):
        vendor_path(" ", "x")
    with pytest.raises(MalformedInput, match="no characters"):
        vendor_path("acme", "./")


# --- mapping files ----------------------------------------------------------------------------------------


def test_shipped_mappings_parse() -> None:
    assert {"hyundai_2015_ccan", "trustlane_generic"} <= set(shipped_mapping_names())
    for name in shipped_mapping_names():
        mapping = shipped_mapping(name)
        assert mapping.vendor
    assert shipped_mapping("trustlane_generic").identity
    with pytest.raises(MalformedInput, match="no shipped mapping named 'nope'"):
        shipped_mapping("nope")


def test_hyundai_mapping_covers_the_brief() -> None:
    targets: dict[str, str] = {}
    for key, rule in mapped_targets(shipped_mapping("hyundai_2015_ccan")):
        targets.setdefault(rule.vss, key)  # the first entry for a path has priority
    for path, source in {
        "Vehicle.Speed": "CLU11.CF_Clu_Vanz",
        "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed": "WHL_SPD11.WHL_SPD_FL",
        "Vehicle.Acceleration.Longitudinal": "ESP12.LONG_ACCEL",
        "Vehicle.Acceleration.Lateral": "ESP12.LAT_ACCEL",
        "Vehicle.AngularVelocity.Yaw": "ESP12.YAW_RATE",
        "Vehicle.Chassis.SteeringWheel.Angle": "SAS11.SAS_Angle",
        "Vehicle.Chassis.SteeringWheel.AngularSpeed": "SAS11.SAS_Speed",
        "Vehicle.Chassis.Brake.MasterCylinderPressure": "ESP12.CYL_PRES",
        "Vehicle.Chassis.Accelerator.PedalPosition": "EMS12.PV_AV_CAN",
        "Vehicle.ADAS.CruiseControl.IsEnabled": "SCC11.MainMode_ACC",
        "Vehicle.ADAS.CruiseControl.SpeedSet": "SCC11.VSetDis",
        "Vehicle.ADAS.CruiseControl.IsActive": "SCC12.ACCMode",
        "Vehicle.ADAS.LeadVehicle.Distance": "SCC11.ACC_ObjDist",
        "Vehicle.ADAS.TransitionDemand.IsActive": "SCC12.TakeOverReq",
        "Vehicle.Body.Lights.DirectionIndicator.Left.IsSignaling": "CGW1.CF_Gway_TurnSigLh",
        "Vehicle.Powertrain.Transmission.CurrentGear": "TCU12.CUR_GR",
        "Vehicle.ADAS.LaneKeepingAssist.IsEngaged": "LKAS11.CF_Lkas_ActToi",
    }.items():
        assert targets.get(path) == source, path


VALID = """\
  CLU11.CF_Clu_Vanz: Vehicle.Speed
  ESP12.YAW_RATE: {vss: Vehicle.AngularVelocity.Yaw, from_unit: deg/s}
  SCC12.TakeOverReq: {vss: Vehicle.ADAS.TransitionDemand.IsActive, transform: "!= 0"}
  GEAR: {vss: Vehicle.Powertrain.Transmission.CurrentGear, enum: {0: 0, 14: -1}, enum_other: drop}
  LIGHT: {vss: Vehicle.Body.Lights.Brake.IsActive, enum: {0: INACTIVE, 1: ACTIVE}}
  "GPS.*": {vss: "Vehicle.CurrentLocation.{1}"}
  OVR:
    - {vss: Vehicle.ADAS.DriverOverride.IsActive, transform: "> 0"}
    - {vss: Vehicle.ADAS.DriverOverride.Type, enum: {0: NONE, 2: BRAKING}, enum_other: drop, note: "x, y"}
"""


def test_parse_a_valid_mapping() -> None:
    mapping = _mapping(VALID)
    assert mapping.vendor == "acme"
    assert [key for key, _ in mapping.entries] == [
        "CLU11.CF_Clu_Vanz",
        "ESP12.YAW_RATE",
        "SCC12.TakeOverReq",
        "GEAR",
        "LIGHT",
        "GPS.*",
        "OVR",
    ]
    overrides = dict(mapping.entries)["OVR"]
    assert [r.line for r in overrides] == [11, 11]
    assert str(overrides[0].transform) == "> 0"
    assert overrides[1].enum == ((0.0, "NONE"), (2.0, "BRAKING"))


@pytest.mark.parametrize(
    ("signals", "error"),
    [
        ("  A: Vehicle.Sped\n", r"m.yaml:5: A: Vehicle.Sped is not in the VSS catalog"),
        ("  A: Vehicle.ADAS\n", r"m.yaml:5: A: Vehicle.ADAS is a branch, not a signal"),
        ("  A: {vss: Vehicle.Speed, unit: km/h}\n", r"m.yaml:5: A: 'unit' is ambiguous"),
        ("  A: {vss: Vehicle.Speed, form_unit: km/h}\n", r"m.yaml:5: unknown key 'form_unit' in the entry for A"),
        ("  A: {vss: Vehicle.Speed, from_unit: kmph_}\n", r"m.yaml:5: A: unknown unit 'kmph_'"),
        ("  A: {vss: Vehicle.Speed, from_unit: Nm}\n", r"m.yaml:5: A: 'Nm' \(torque\) does not convert"),
        ("  A: {vss: Vehicle.Speed, transform: '!= 0'}\n", r"m.yaml:5: A: transform makes a boolean"),
        ("  A: {vss: Vehicle.IsMoving, transform: 'is 0'}\n", r"m.yaml:5: A: transform 'is 0' is not a comparison"),
        ("  A: {vss: Vehicle.IsMoving, transform: != 0}\n", r"m.yaml:5"),
        ("  A: {vss: Vehicle.Body.Lights.Brake.IsActive, enum: {0: DIM}}\n", r"enum value 'DIM' .*not allowed"),
        ("  A: {vss: Vehicle.Body.Lights.Brake.IsActive, enum: {0: off}}\n", r"enum value False .* is text"),
        ("  A: {vss: Vehicle.IsMoving, enum: {0: 1}}\n", r"enum value 1 .*is boolean"),
        ("  A: {vss: Vehicle.Powertrain.Transmission.CurrentGear, enum: {0: 1.5}}\n", r"an integer type"),
        ("  A: {vss: Vehicle.IsMoving, enum: {0: false}, scale: 2}\n", r"enum maps raw values"),
        ("  A: {vss: Vehicle.Powertrain.Transmission.CurrentGear, from_unit: km/h}\n", r"has no unit"),
        ("  A: {vss: Vehicle.Speed, scale: fast}\n", r"scale must be a number"),
        ("  A: {vss: Vehicle.Speed, enum_other: ignore}\n", r"enum_other must be one of"),
        ("  A: {vss: Vehicle.IsMoving, enum: {0: false}, enum_other: keep}\n", r"keep passes raw numbers"),
        ("  A: {from_unit: km/h}\n", r"m.yaml:5: A: vss: \(the target path\) is missing"),
        ("  A: Vehicle.Speed\n  A: Vehicle.IsMoving\n", r"m.yaml:6: key 'A' repeats the one on line 5"),
        ("  'A*': 'Vehicle.{2}'\n", r"placeholder the pattern does not have"),
        ("  A: [Vehicle.Speed, Vehicle.Speed]\n", r"maps to the same VSS path twice"),
        ("  A: []\n", r"an empty list maps to nothing"),
        ("  A: {vss: Vehicle.Speed, from_unit_by: {signal: U}}\n", r"from_unit_by needs signal"),
        ("  A: {vss: Vehicle.Speed, from_unit_by: {signal: U, units: {0: furlong}}}\n", r"unknown unit 'furlong'"),
        ("  1: Vehicle.Speed\n", r"m.yaml:5: a source name must be text"),
    ],
)
def test_mapping_errors_name_the_line(signals: str, error: str) -> None:
    with pytest.raises(MalformedInput, match=error):
        _mapping(signals)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("vendor: acme\nsignals: {}\n", r"version is None, expected 1"),
        ("version: 2\nvendor: acme\n", r"m.yaml:1: version is 2"),
        ("version: 1\nvendor: 'a b'\n", r"m.yaml:2: vendor must be a name"),
        ("version: 1\nvendor: acme\nsignal: {}\n", r"m.yaml:3: unknown key 'signal'"),
        ("version: 1\nvendor: acme\nsignals: [a]\n", r"signals must be a mapping"),
        ("version: 1\nvendor: acme\nsignals: {a: [}\n", r"m.yaml:3"),
        ("- 1\n", r"a mapping file must be a mapping"),
    ],
)
def test_mapping_file_errors(text: str, error: str) -> None:
    with pytest.raises(MalformedInput, match=error):
        parse_mapping(text, source="m.yaml")


# --- applying ---------------------------------------------------------------------------------------------


def test_apply_converts_transforms_and_classifies() -> None:
    recording = _recording(
        _channel("CLU11.CF_Clu_Vanz", [36.0, 72.0], unit="kph"),
        _channel("ESP12.YAW_RATE", [180.0, -90.0]),
        _channel("SCC12.TakeOverReq", [0, 1]),
        _channel("GEAR", [0, 14, 3, 2]),
        _channel("LIGHT", [0, 1]),
        _channel("GPS.Latitude", [48.137154, 48.1372], unit="deg"),
        _channel("OVR", [0, 2, 1]),
        _channel("SCC12.CR_VSM_Alive", [1, 2]),
    )
    signals = apply_mapping(recording, _mapping(VALID))
    by = _by_path(signals)
    assert [s.source_name for s in signals] == [
        "CLU11.CF_Clu_Vanz",
        "ESP12.YAW_RATE",
        "SCC12.TakeOverReq",
        "GEAR",
        "LIGHT",
        "GPS.Latitude",
        "OVR",
        "OVR",
        "SCC12.CR_VSM_Alive",
    ]
    speed = by["Vehicle.Speed"]
    assert speed.unit == "km/h"
    assert speed.values.tolist() == [36.0, 72.0]
    assert speed.categories == ("vehicle-operation",)
    assert speed.classified
    yaw = by["Vehicle.AngularVelocity.Yaw"]
    assert (yaw.unit, yaw.values.tolist()) == ("degrees/s", [180.0, -90.0])
    takeover = by["Vehicle.ADAS.TransitionDemand.IsActive"]
    assert takeover.values.dtype == np.bool_
    assert takeover.values.tolist() == [False, True]
    assert takeover.categories == ("adas-state",)
    gear = by["Vehicle.Powertrain.Transmission.CurrentGear"]
    assert gear.values.tolist() == [0, -1]  # 3 and 2 are not listed: dropped with their timestamps
    assert gear.timestamps_ns.tolist() == _ts(0, 10).tolist()
    assert gear.values.dtype == np.int64
    assert by["Vehicle.Body.Lights.Brake.IsActive"].values.tolist() == ["INACTIVE", "ACTIVE"]
    lat = by["Vehicle.CurrentLocation.Latitude"]
    assert (lat.unit, lat.categories) == ("degrees", ("location",))
    assert by["Vehicle.ADAS.DriverOverride.IsActive"].values.tolist() == [False, True, True]
    assert by["Vehicle.ADAS.DriverOverride.Type"].values.tolist() == ["NONE", "BRAKING"]
    vendor = by["Vendor.acme.SCC12.CR_VSM_Alive"]
    assert vendor.categories == (UNCLASSIFIED,)
    assert not vendor.classified
    assert vendor.values.tolist() == [1, 2]


def test_scale_offset_then_unit() -> None:
    mapping = _mapping("  T: {vss: Vehicle.Exterior.AirTemperature, from_unit: Fahrenheit, scale: 2, offset: 10}\n")
    [signal] = apply_mapping(_recording(_channel("T", [11.0, 101.0], unit="deg")), mapping)
    assert signal.values == pytest.approx([0.0, 100.0])  # 2*11+10 = 32 °F = 0 °C; 212 °F = 100 °C
    assert signal.unit == "Celsius"


def test_channel_unit_is_used_and_must_be_known() -> None:
    mapping = _mapping("  S: Vehicle.Speed\n")
    [signal] = apply_mapping(_recording(_channel("S", [10.0], unit="m/s")), mapping)
    assert signal.values.tolist() == pytest.approx([36.0])
    with pytest.raises(MalformedInput, match=r"m.yaml:5: S -> Vehicle.Speed.*unknown unit 'km/h or MPH'"):
        apply_mapping(_recording(_channel("S", [10.0], unit="km/h or MPH")), mapping)
    with pytest.raises(MalformedInput, match=r"m.yaml:5: S -> Vehicle.Speed: the channel has no unit") as err:
        apply_mapping(_recording(_channel("S", [10.0])), mapping)
    assert err.value.hint is not None
    assert "from_unit" in err.value.hint
    with pytest.raises(MalformedInput, match=r"cannot convert 'Nm' \(torque\) to 'km/h'"):
        apply_mapping(_recording(_channel("S", [10.0], unit="Nm")), mapping)


def test_unit_selector_picks_the_unit_per_sample() -> None:
    mapping = _mapping(
        "  V:\n    vss: Vehicle.Speed\n    from_unit_by: {signal: U, units: {0: km/h, 1: mph}}\n    from_unit: km/h\n"
    )
    speed = _channel("V", [100.0, 100.0, 100.0, 100.0], unit="km/h or MPH", times=[0, 10, 20, 30])
    unit = _channel("U", [1, 0, 1], times=[5, 15, 25])
    signals = _by_path(apply_mapping(_recording(speed, unit), mapping))
    # before the selector's first sample its first value holds; afterwards its last value at or before
    assert signals["Vehicle.Speed"].values.tolist() == pytest.approx([160.9344, 160.9344, 100.0, 160.9344])
    # without the selector the fallback from_unit applies
    [alone] = apply_mapping(_recording(speed), mapping)
    assert alone.values.tolist() == [100.0] * 4
    strict = _mapping("  V: {vss: Vehicle.Speed, from_unit_by: {signal: U, units: {0: km/h}}}\n")
    with pytest.raises(MalformedInput, match="the unit selector U is not in the recording"):
        apply_mapping(_recording(speed), strict)
    with pytest.raises(MalformedInput, match=r"selector U has values \['1'\]"):
        apply_mapping(_recording(speed, _channel("U", [0, 1])), strict)


def test_boolean_targets_and_nan() -> None:
    mapping = _mapping("  M: Vehicle.IsMoving\n  N: {vss: Vehicle.ADAS.ABS.IsEngaged, transform: '!= 0'}\n")
    recording = _recording(_channel("M", [1, 0, 1]), _channel("N", [np.nan, 1.0, 0.0]))
    by = _by_path(apply_mapping(recording, mapping))
    assert by["Vehicle.IsMoving"].values.tolist() == [True, False, True]
    # NaN decides nothing: the sample is left out rather than read as "!= 0"
    assert by["Vehicle.ADAS.ABS.IsEngaged"].values.tolist() == [True, False]
    assert by["Vehicle.ADAS.ABS.IsEngaged"].timestamps_ns.tolist() == _ts(10, 20).tolist()
    with pytest.raises(MalformedInput, match=r"Vehicle.IsMoving is boolean but the source has values \[2.0\]"):
        apply_mapping(_recording(_channel("M", [1, 2])), mapping)


def test_enum_other_error_and_keep() -> None:
    strict = _mapping("  L: {vss: Vehicle.Body.Lights.Brake.IsActive, enum: {0: INACTIVE}}\n")
    with pytest.raises(MalformedInput, match=r"source values \['3'\] are not in the enum"):
        apply_mapping(_recording(_channel("L", [0, 3])), strict)
    keep = _mapping("  G: {vss: Vehicle.Powertrain.Transmission.CurrentGear, enum: {14: -1}, enum_other: keep}\n")
    [gear] = apply_mapping(_recording(_channel("G", [14, 3])), keep)
    assert gear.values.tolist() == [-1, 3]


def test_text_targets_check_allowed_values() -> None:
    mapping = _mapping("  L: Vehicle.ADAS.ActiveAutonomyLevel\n  F: Vehicle.Cabin.Camera.Frame\n")
    by = _by_path(apply_mapping(_recording(_channel("L", ["SAE_2", "SAE_3"]), _channel("F", ["sha256:ab"])), mapping))
    assert by["Vehicle.ADAS.ActiveAutonomyLevel"].values.tolist() == ["SAE_2", "SAE_3"]
    assert by["Vehicle.Cabin.Camera.Frame"].categories == ("cabin-imagery",)
    with pytest.raises(MalformedInput, match=r"values \['L2'\] are not allowed"):
        apply_mapping(_recording(_channel("L", ["L2"])), mapping)
    with pytest.raises(MalformedInput, match="is string but the source has int64 values"):
        apply_mapping(_recording(_channel("L", [2])), mapping)
    with pytest.raises(MalformedInput, match="the target needs numbers"):
        apply_mapping(_recording(_channel("X", ["fast"])), _mapping("  X: Vehicle.IsMoving\n"))


def test_identity_rule_and_precedence() -> None:
    mapping = _mapping("  speed_ms: {vss: Vehicle.Speed, from_unit: m/s}\n  'gps_*': Vehicle.Speed\n", identity=True)
    recording = _recording(
        _channel("Vehicle.Speed", [50.0], unit="km/h"),
        _channel("speed_ms", [10.0]),
        _channel("gps_speed", [1.0], unit="km/h"),
        _channel("Vehicle.Acceleration.Longitudinal", [1.0]),  # no unit: taken as the VSS unit
        _channel("Vehicle.Exterior.AirTemperature", [212.0], unit="°F"),
        _channel("Vehicle.ADAS", [1]),  # a branch is not a signal: vendor
    )
    signals = apply_mapping(recording, mapping)
    by_source = {s.source_name: s for s in signals}
    # the explicit entry wins Vehicle.Speed over the identity rule and the glob; the losers stay vendor signals
    assert by_source["speed_ms"].path == "Vehicle.Speed"
    assert by_source["speed_ms"].values.tolist() == pytest.approx([36.0])
    assert by_source["Vehicle.Speed"].path == "Vendor.acme.Vehicle.Speed"
    assert not by_source["Vehicle.Speed"].classified
    assert by_source["gps_speed"].path == "Vendor.acme.gps_speed"
    assert by_source["Vehicle.Acceleration.Longitudinal"].values.tolist() == [1.0]
    assert by_source["Vehicle.Exterior.AirTemperature"].values.tolist() == pytest.approx([100.0])
    assert by_source["Vehicle.ADAS"].path == "Vendor.acme.Vehicle.ADAS"


def test_first_channel_wins_within_one_glob_and_glob_targets_are_checked() -> None:
    mapping = _mapping("  'WS_*': {vss: 'Vehicle.Chassis.Axle.Row1.Wheel.{1}.Speed', from_unit: km/h}\n")
    signals = apply_mapping(_recording(_channel("WS_Left", [1.0]), _channel("WS_Right", [2.0])), mapping)
    assert [s.path for s in signals] == [
        "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed",
        "Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed",
    ]
    with pytest.raises(MalformedInput, match=r"m.yaml:5: WS_Middle -> .*Wheel.Middle.Speed is not in the VSS"):
        apply_mapping(_recording(_channel("WS_Middle", [1.0])), mapping)


def test_vendor_names_stay_unique() -> None:
    signals = apply_mapping(_recording(_channel("a b", [1]), _channel("a_b", [2])), _mapping("  X: Vehicle.Speed\n"))
    assert signals[0].path == "Vendor.acme.a_b"
    assert signals[1].path.startswith("Vendor.acme.a_b__")
    assert len({s.path for s in signals}) == 2


def test_duplicate_channel_names_are_refused() -> None:
    with pytest.raises(MalformedInput, match="two channels are named 'X'"):
        apply_mapping(_recording(_channel("X", [1]), _channel("X", [2])), _mapping("  X: Vehicle.IsMoving\n"))


def test_generic_mapping_is_identity() -> None:
    recording = _recording(
        _channel("Vehicle.Speed", [10.0], unit="m/s"),
        _channel("Vehicle.CurrentLocation.Latitude", [48.1]),
        _channel("Vehicle.ADAS.TransitionDemand.IsActive", [0, 1]),
        _channel("engine_rpm", [800.0], unit="rpm"),
    )
    by = _by_path(apply_mapping(recording, shipped_mapping("trustlane_generic")))
    assert by["Vehicle.Speed"].values.tolist() == pytest.approx([36.0])
    assert by["Vehicle.CurrentLocation.Latitude"].categories == ("location",)
    assert by["Vehicle.ADAS.TransitionDemand.IsActive"].values.tolist() == [False, True]
    assert not by["Vendor.trustlane.engine_rpm"].classified


# --- against the real DBC and the VSS catalog in ../shared ----------------------------------------------------

# DBC units the mapping overrides on purpose, with the reason: {signal: (DBC unit, from_unit)}
DELIBERATE_UNIT_OVERRIDES = {
    "DATC11.CR_Datc_OutTempC": ("deg", "Celsius"),  # the Hyundai DBC writes "deg" for degrees Celsius
}


def _hyundai_dbc() -> Any:
    import cantools

    db = cantools.database.load_file(str(shared_path("vectors", "dbc", "hyundai_2015_ccan.dbc")))
    assert isinstance(db, cantools.database.can.Database)
    return db


@pytest.mark.shared
def test_hyundai_mapping_matches_the_dbc() -> None:
    db = _hyundai_dbc()
    mapping = shipped_mapping("hyundai_2015_ccan")
    catalog = default_catalog()

    def dbc_signal(name: str) -> Any:
        message, _, signal = name.partition(".")
        return db.get_message_by_name(message).get_signal_by_name(signal)

    for key, rule in mapped_targets(mapping):
        assert not rule.is_glob, key
        signal = dbc_signal(key)  # KeyError: the DBC has no such message or signal
        node = catalog.require(rule.vss)
        raw_min, raw_max = float(signal.minimum), float(signal.maximum)
        dbc_unit = find_unit(signal.unit) if signal.unit else None
        if rule.from_unit_by is not None:
            dbc_signal(rule.from_unit_by.signal)
            assert signal.unit == "km/h or MPH", key
            for value, _unit in rule.from_unit_by.units:
                assert isinstance(value, float)
                assert float(dbc_signal(rule.from_unit_by.signal).minimum) <= value
                assert value <= float(dbc_signal(rule.from_unit_by.signal).maximum)
        elif node.unit and rule.from_unit is None:
            assert dbc_unit is not None, f"{key}: the DBC unit {signal.unit!r} is unknown; set from_unit"
            assert convert([1.0], signal.unit, node.unit).shape == (1,)
        elif rule.from_unit is not None and dbc_unit is not None:
            chosen = find_unit(rule.from_unit)
            assert chosen is not None
            if chosen != dbc_unit:
                assert DELIBERATE_UNIT_OVERRIDES.get(key) == (signal.unit, rule.from_unit), key
        for value, _target in rule.enum:
            assert isinstance(value, float)
            assert raw_min <= value <= raw_max, f"{key}: enum key {value} outside the DBC range"
        if rule.transform is not None:
            assert raw_min <= rule.transform.operand <= raw_max, key


@pytest.mark.shared
def test_hyundai_frames_decode_and_map() -> None:
    db = _hyundai_dbc()
    frames: dict[str, dict[str, float]] = {
        "WHL_SPD11": {"WHL_SPD_FL": 50.0, "WHL_SPD_FR": 50.5, "WHL_SPD_RL": 49.0, "WHL_SPD_RR": 49.5},
        "CLU11": {"CF_Clu_Vanz": 62.0, "CF_Clu_SPEED_UNIT": 1},
        "SCC12": {"TakeOverReq": 1, "ACCMode": 1, "AEB_CmdAct": 0, "CF_VSM_Warn": 2},
        "ESP12": {"LONG_ACCEL": -3.5, "LAT_ACCEL": 0.5, "CYL_PRES": 40.0, "YAW_RATE": 2.0},
        "TCU12": {"CUR_GR": 14},
    }
    channels = []
    for message_name, values in frames.items():
        message = db.get_message_by_name(message_name)
        payload = message.encode({s.name: values.get(s.name, 0) for s in message.signals}, strict=False)
        decoded = message.decode(payload, decode_choices=False)
        for signal in message.signals:
            channels.append(
                Channel(
                    name=f"{message_name}.{signal.name}",
                    unit=signal.unit,
                    timestamps_ns=_ts(0),
                    values=np.array([decoded[signal.name]]),
                )
            )
    by = _by_path(apply_mapping(_recording(*channels), shipped_mapping("hyundai_2015_ccan")))
    assert by["Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed"].values.tolist() == pytest.approx([50.5])
    assert by["Vehicle.Speed"].values.tolist() == pytest.approx([62.0 * 1.609344])  # the cluster shows mph
    assert by["Vehicle.Cabin.Infotainment.HMI.SpeedUnit"].values.tolist() == ["MILES_PER_HOUR"]
    assert by["Vehicle.ADAS.TransitionDemand.IsActive"].values.tolist() == [True]
    assert by["Vehicle.ADAS.AEB.IsWarning"].values.tolist() == [True]
    assert by["Vehicle.Acceleration.Longitudinal"].values.tolist() == pytest.approx([-3.5])
    assert by["Vehicle.Chassis.Brake.MasterCylinderPressure"].values.tolist() == pytest.approx([4000.0])
    assert by["Vehicle.AngularVelocity.Yaw"].values.tolist() == pytest.approx([2.0], abs=0.01)
    assert by["Vehicle.Powertrain.Transmission.CurrentGear"].values.tolist() == [-1]
    assert by["Vendor.hyundai.WHL_SPD11.WHL_SPD_Checksum_LSB"].categories == (UNCLASSIFIED,)


def _subset_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_vss_subset", ROOT / "scripts" / "make_vss_subset.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared
def test_vss_subset_is_current_and_faithful(capsys: pytest.CaptureFixture[str]) -> None:
    source = shared_path("vss", "vss.csv")
    script = _subset_script()
    data = ROOT / "src" / "trustlane" / "ingest" / "data"
    assert script.main(["--source", str(source), "--out", str(data), "--check"]) == 0, capsys.readouterr().err
    assert (data / "VSS-LICENSE").read_bytes() == (source.parent / "LICENSE").read_bytes()

    full = {row["Signal"]: row for row in csv.DictReader(io.StringIO(source.read_text("utf-8")))}
    shipped = [n for n in default_catalog() if not n.overlay]
    for node in shipped:
        row = full[node.path]
        assert not row["Deprecated"], node.path
        assert (node.type, node.datatype or "", node.unit or "") == (row["Type"], row["DataType"], row["Unit"])
        assert node.min == (float(row["Min"]) if row["Min"] else None)
        assert node.max == (float(row["Max"]) if row["Max"] else None)
        assert node.description == " ".join(row["Desc"].split())
        assert ("|".join(node.allowed) != "") == bool(row["Allowed"])
    overlay = [n.path for n in default_catalog() if n.overlay]
    assert [p for p in overlay if p in full] == []  # the overlay only has what VSS lacks
