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


@app.command()
def report(
    file: Annotated[Path, typer.Argument(help="Recording: CSV, Parquet or MDF4 with VSS-named signals.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.json, report.html and report.pdf.")],
    case_id: Annotated[str | None, typer.Option("--case-id", help="Case id (default: the file name).")] = None,
    vehicle: Annotated[str | None, typer.Option("--vehicle", help="The vehicle's pseudonym (never a VIN).")] = None,
    clock_source: Annotated[str | None, typer.Option("--clock-source", help="Clock source of the data.")] = None,
    rule_set: Annotated[
        list[str] | None, typer.Option("--rule-set", help="Liability rule set (repeat; default all).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Accident report (holder-side, no sandbox): collision timing, pre-crash history, who was in control,
    a non-binding liability indication; writes report.json, report.html and report.pdf."""
    from trustlane.accident.report.local import analyse_for_report, write_report

    output = analyse_for_report(file, case_id=case_id, vehicle=vehicle, clock_source=clock_source, rule_sets=rule_set)
    paths = write_report(output, out)
    if json_out:
        emit_json({"files": {k: str(v) for k, v in paths.items()}, "collision": output["collision"]})
        return
    indication = (output.get("liability") or {}).get("indication") or {}
    print(f"{file}: {len(output['events'])} collision(s); report written to {out}")
    if indication:
        verdict = (
            f"system side {indication['system_side']}, driver {indication['driver_side']}"
            if indication["determinable"]
            else "not determinable from the data"
        )
        print(f"  liability indication (non-binding): {verdict}")


@app.command("package")
def package(
    out: Annotated[Path, typer.Option("--out", help="A new folder for the algorithm package.")],
) -> None:
    """Write the accident analysis as a self-contained algorithm package, ready for `algorithm register`."""
    from trustlane.accident.package import build_algorithm_package
    from trustlane.analysis.package import tree_digest

    folder = build_algorithm_package(out)
    typer.echo(f"{folder}\t{tree_digest(folder)}")
