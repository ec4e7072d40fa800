"""`trustlane sample generate`: realistic accident and non-accident recordings with ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trustlane.cli.common import JsonOption, emit_json
from trustlane.errors import UsageError

app = typer.Typer(help="Generated sample data for demos and tests.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Generated sample data."""


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write into (created if missing).")],
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", help="Scenario name (repeatable); default: all.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same files.")] = 1,
    duration: Annotated[float, typer.Option(help="Recording length in seconds (at least 20).")] = 60.0,
    rate: Annotated[int, typer.Option(help="Acceleration sample rate: 1000, 500 or 100 Hz.")] = 1000,
    format: Annotated[list[str] | None, typer.Option("--format", help="csv, mdf4, parquet (repeatable).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Write <scenario>.csv / .mf4 / .parquet and <scenario>.truth.json for each scenario."""
    from trustlane.accident.generator.chain import RATES
    from trustlane.accident.generator.recording import generate as make
    from trustlane.accident.generator.scenarios import SCENARIOS
    from trustlane.accident.generator.writer import FORMATS, write

    names = scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise UsageError(f"unknown scenario {unknown[0]!r}", hint=f"use one of: {', '.join(SCENARIOS)}")
    formats = tuple(format or ("csv", "mdf4"))
    if bad := [f for f in formats if f not in FORMATS]:
        raise UsageError(f"unknown format {bad[0]!r}", hint=f"use one of: {', '.join(FORMATS)}")
    if rate not in RATES:
        raise UsageError(f"--rate must be one of {', '.join(map(str, RATES))}, not {rate}", hint="e.g. --rate 1000")
    if not 20 <= duration <= 7200:
        raise UsageError(f"--duration must be 20 to 7200 s, not {duration:g}", hint="e.g. --duration 60")
    written = {}
    for name in names:
        written[name] = write(make(name, seed, duration, rate), out, formats)
    if json_out:
        emit_json({"out": str(out), "seed": seed, "files": written})
    else:
        for name, files in written.items():
            print(f"{name}: {', '.join(files.values())}, {name}.truth.json")
