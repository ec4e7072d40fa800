"""`trustlane accident detect`: collisions in recordings, timed to the millisecond."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trustlane.cli.common import JsonOption, emit_json

app = typer.Typer(
    help="Accident analysis: collision time zero, contact time, delta-V, direction.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Accident analysis."""


@app.command()
def detect(
    files: Annotated[list[Path], typer.Argument(help="Recordings: CSV, Parquet or MDF4 with VSS-named signals.")],
    json_out: JsonOption = False,
) -> None:
    """Find collisions: one JSON object per file with its events (an empty list when there is none)."""
    from trustlane.accident.analyse import analyse_file

    for path in files:
        result = analyse_file(path)
        if json_out:
            emit_json(result)
            continue
        print(f"{path}: {len(result['events'])} collision(s) at {result['sample_rate_hz']:g} Hz")
        for e in result["events"]:
            print(
                f"  contact {e['contact_ns']} ns ± {e['contact_sigma_ms']:.2f} ms, T0 {e['t0_ns']} ns, "
                f"{e['direction']}, delta-V {e['delta_v_kmh']:.1f} km/h (max {e['max_delta_v_kmh']:.1f}), "
                f"trigger {e['trigger']}, lock {e['lock']}"
            )
        for f in result["findings"]:
            print(f"  {f['severity']}: {f['code']}: {f['message']}")
