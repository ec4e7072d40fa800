"""Generate trustlane's VSS subset (``src/trustlane/ingest/data/vss.csv``) from the COVESA VSS catalog.

The catalog (``../shared/vss/vss.csv``, MPL-2.0) has 1,742 nodes; trustlane ships the ones its readers,
mappings and data categories use, with the columns it reads. The output is deterministic: the same source
gives the same bytes, so ``--check`` can tell whether the shipped file is current.

    python scripts/make_vss_subset.py                 # write the subset and the licence copy
    python scripts/make_vss_subset.py --check         # exit 1 when the shipped files are out of date
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import io
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "vss" / "vss.csv"
DATA = ROOT / "src" / "trustlane" / "ingest" / "data"

# Output columns, in order: the VSS column each one is read from.
COLUMNS = {
    "path": "Signal",
    "type": "Type",
    "datatype": "DataType",
    "unit": "Unit",
    "min": "Min",
    "max": "Max",
    "allowed": "Allowed",
    "description": "Desc",
}

# Whole subtrees (the node itself and everything under it).
SUBTREES = (
    "Vehicle.Speed",
    "Vehicle.IsMoving",
    "Vehicle.TraveledDistance",
    "Vehicle.TraveledDistanceSinceStart",
    "Vehicle.StartTime",
    "Vehicle.TripDuration",
    "Vehicle.LowVoltageSystemState",
    "Vehicle.Acceleration",
    "Vehicle.AngularVelocity",
    "Vehicle.Orientation",
    "Vehicle.CurrentLocation",
    "Vehicle.Chassis.SteeringWheel",
    "Vehicle.Chassis.Brake",
    "Vehicle.Chassis.Accelerator",
    "Vehicle.Chassis.ParkingBrake",
    "Vehicle.Chassis.Axle",
    "Vehicle.MotionManagement.Steering.SteeringWheel",
    "Vehicle.ADAS",
    "Vehicle.Safety",
    "Vehicle.Powertrain.Type",
    "Vehicle.Powertrain.TractionBattery",
    "Vehicle.Powertrain.Transmission",
    "Vehicle.Body",
    "Vehicle.Cabin.Door",
    "Vehicle.Cabin.Infotainment",
    "Vehicle.Cabin.HVAC",
    "Vehicle.Cabin.DriverPosition",
    "Vehicle.Driver",
    "Vehicle.Occupant",
    "Vehicle.VehicleIdentification",
    "Vehicle.Exterior",
)

# Single nodes (ancestors are added automatically).
NODES = (
    "Vehicle.Powertrain.CombustionEngine.IsRunning",
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Powertrain.CombustionEngine.Torque",
    "Vehicle.Powertrain.CombustionEngine.Power",
    "Vehicle.Powertrain.CombustionEngine.TPS",
    "Vehicle.Powertrain.CombustionEngine.MAP",
    "Vehicle.Powertrain.CombustionEngine.MAF",
    "Vehicle.Powertrain.CombustionEngine.EOP",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature",
)

# Seats: only what says who sits where, belted or not, and the airbags (not comfort settings).
SEAT_LEAVES = ("OccupancyStatus", "IsBelted")
SEAT_SUBTREES = ("Airbag",)


def _wanted(path: str) -> bool:
    if any(path == s or path.startswith(s + ".") for s in SUBTREES) or path in NODES:
        return True
    parts = path.split(".")
    # Vehicle.Cabin.Seat.RowN.Position.<leaf...>
    if len(parts) >= 6 and parts[:3] == ["Vehicle", "Cabin", "Seat"]:
        rest = parts[5:]
        return (len(rest) == 1 and rest[0] in SEAT_LEAVES) or rest[0] in SEAT_SUBTREES
    return False


def select(rows: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """The rows trustlane ships, in catalog order: wanted, non-deprecated nodes and all their ancestors."""
    rows = list(rows)
    by_path = {r["Signal"]: r for r in rows}
    keep: set[str] = set()
    for row in rows:
        path = row["Signal"]
        if row["Deprecated"].strip() or not _wanted(path):
            continue
        parts = path.split(".")
        keep.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    missing = sorted(p for p in keep if p not in by_path)
    if missing:
        raise SystemExit(f"the catalog lacks the ancestors {missing}")
    return [r for r in rows if r["Signal"] in keep]


def _version(rows: Sequence[dict[str, str]]) -> str:
    defaults = {
        r["Signal"].rsplit(".", 1)[-1]: r["Default"] for r in rows if r["Signal"].startswith("Vehicle.VersionVSS.")
    }
    version = ".".join(defaults.get(k, "?") for k in ("Major", "Minor", "Patch"))
    label = defaults.get("Label", "")
    return f"{version}-{label}" if label else version


def render(source_bytes: bytes) -> str:
    """The subset CSV text for the catalog given as bytes."""
    rows = list(csv.DictReader(io.StringIO(source_bytes.decode("utf-8"))))
    chosen = select(rows)
    out = io.StringIO()
    out.write(
        f"# trustlane VSS subset: {len(chosen)} of {len(rows)} nodes of COVESA VSS {_version(rows)}\n"
        f"# source vss.csv sha256 {hashlib.sha256(source_bytes).hexdigest()}\n"
        "# COVESA Vehicle Signal Specification, https://github.com/COVESA/vehicle_signal_specification\n"
        "# Licensed under the Mozilla Public License 2.0 (VSS-LICENSE beside this file); this file is a subset\n"
        "# with fewer columns. Generated by scripts/make_vss_subset.py: do not edit by hand.\n"
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in chosen:
        writer.writerow(_cell(name, row[src]) for name, src in COLUMNS.items())
    return out.getvalue()


def _cell(name: str, text: str) -> str:
    """One output cell; ``allowed`` goes from VSS's Python-list spelling to ``A|B|C``."""
    text = " ".join(text.split())
    if name == "allowed" and text:
        values = ast.literal_eval(text)
        if not isinstance(values, list) or not all(isinstance(v, str) and v and "|" not in v for v in values):
            raise SystemExit(f"unexpected Allowed value {text!r}")
        return "|".join(values)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="COVESA vss.csv (with LICENSE beside it)")
    parser.add_argument("--out", type=Path, default=DATA, help="folder for vss.csv and VSS-LICENSE")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when different")
    args = parser.parse_args(argv)

    source: Path = args.source
    out: Path = args.out
    wanted = {
        out / "vss.csv": render(source.read_bytes()).encode("utf-8"),
        out / "VSS-LICENSE": (source.parent / "LICENSE").read_bytes(),
    }
    if args.check:
        stale = [target for target, data in wanted.items() if not target.exists() or target.read_bytes() != data]
        for target in stale:
            print(f"out of date: {target}", file=sys.stderr)
        return 1 if stale else 0
    out.mkdir(parents=True, exist_ok=True)
    for target, data in wanted.items():
        target.write_bytes(data)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
