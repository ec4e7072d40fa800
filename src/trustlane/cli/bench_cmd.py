"""`trustlane bench ...`: measured figures for docs/BENCHMARKS.md, each beside a limit measured in the same run."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trustlane.cli.common import JsonOption, emit_json, err

app = typer.Typer(
    help="Benchmarks that print figures beside the physical limit measured in the same run.", no_args_is_help=True
)

DatabaseOption = Annotated[
    str, typer.Option("--database", help='"sqlite" (temp file) or a PostgreSQL DSN (a temp schema is used).')
]


def _run(label: str, fn: Any, json_out: bool, **kwargs: Any) -> dict[str, Any]:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task(label, total=1.0)

        def progress(phase: str, fraction: float) -> None:
            bar.update(task, description=f"{label}: {phase}", completed=min(fraction, 1.0))

        result: dict[str, Any] = fn(progress=progress, **kwargs)
    if json_out:
        emit_json(result)
    else:
        table = Table(title=label, show_header=False)
        for key, value in result.items():
            table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
        err.print(table)
    return result


@app.command("ledger-append")
def ledger_append(
    database: DatabaseOption = "sqlite",
    entries: Annotated[int, typer.Option(help="Entries to append.")] = 200_000,
    batch: Annotated[int, typer.Option(help="Entries per durable commit.")] = 256,
    json_out: JsonOption = False,
) -> None:
    """Durable batched append throughput vs. the database's bulk insert rate and SHA-256 speed."""
    from trustlane.bench.ledger import append_throughput

    _run("ledger append", append_throughput, json_out, database=database, entries=entries, batch=batch)


@app.command("ledger-latency")
def ledger_latency(
    database: DatabaseOption = "sqlite",
    seconds: Annotated[float, typer.Option(help="How long the producer runs.")] = 20.0,
    rate: Annotated[int, typer.Option(help="Entries per second from the producer.")] = 500,
    interval_ms: Annotated[int, typer.Option(help="Checkpoint interval.")] = 1000,
    json_out: JsonOption = False,
) -> None:
    """Time from append to inclusion in a published checkpoint (p50, p99)."""
    from trustlane.bench.ledger import checkpoint_latency

    _run(
        "append -> checkpoint latency",
        checkpoint_latency,
        json_out,
        database=database,
        seconds=seconds,
        rate=rate,
        interval_ms=interval_ms,
    )


@app.command("ledger-proofs")
def ledger_proofs(
    database: DatabaseOption = "sqlite",
    leaves: Annotated[int, typer.Option(help="Tree size to build.")] = 10_000_000,
    samples: Annotated[int, typer.Option(help="Proofs of each kind to time.")] = 1000,
    json_out: JsonOption = False,
) -> None:
    """Inclusion and consistency proof generation and verification at a large tree size."""
    from trustlane.bench.ledger import proof_speed

    _run("ledger proofs", proof_speed, json_out, database=database, leaves=leaves, samples=samples)


@app.command("ingest-mdf4")
def ingest_mdf4(
    size_mb: Annotated[int, typer.Option(help="Size of the generated MDF4 recording.")] = 1024,
    json_out: JsonOption = False,
) -> None:
    """End-to-end MDF4 ingest (MB/s) beside the raw asammdf read rate and SHA-256 rate of the same file."""
    from trustlane.bench.ingest import ingest_mdf4 as run_ingest

    _run("MDF4 ingest", run_ingest, json_out, size_mb=size_mb)


@app.command("mqtt-ingest")
def mqtt_ingest(
    broker: Annotated[
        str, typer.Option(help='The MQTT broker, or "private": a throwaway mosquitto without queue limits.')
    ] = "mqtt://127.0.0.1:1883",
    messages: Annotated[int, typer.Option(help="Messages to publish (and, first, for the raw loopback).")] = 100_000,
    rate: Annotated[int, typer.Option(help="Target publish rate, messages/s.")] = 10_000,
    signals: Annotated[int, typer.Option(help="Numeric signals per message.")] = 50,
    vehicles: Annotated[int, typer.Option(help="Registered vehicles the messages are spread over.")] = 100,
    encoding: Annotated[str, typer.Option(help="json or binary (TLT1).")] = "json",
    segment_seconds: Annotated[float, typer.Option(help="Window length of the ingest.")] = 10.0,
    json_out: JsonOption = False,
) -> None:
    """Live MQTT ingest: accepted messages/s, persist lag p50/p99 and peak RSS vs. raw broker loopback."""
    from trustlane.bench.mqtt import ingest_throughput

    _run(
        "mqtt ingest",
        ingest_throughput,
        json_out,
        broker=broker,
        messages=messages,
        rate=rate,
        signals=signals,
        vehicles=vehicles,
        encoding=encoding,
        segment_seconds=segment_seconds,
    )


@app.command("compliance-decision")
def compliance_decision(
    samples: Annotated[int, typer.Option(help="Timed decisions per request kind.")] = 20_000,
    json_out: JsonOption = False,
) -> None:
    """Median and p99 in-process compliance decision time beside a bare Python call."""
    from trustlane.bench.compliance import decision_time

    _run("compliance decision", decision_time, json_out, samples=samples)


@app.command("analysis")
def analysis(
    minutes: Annotated[float, typer.Option(help="Length of the recording analysed (100 Hz, two signals).")] = 10.0,
    runs: Annotated[int, typer.Option(help="Analyses to time.")] = 5,
    verifications: Annotated[int, typer.Option(help="Offline verifications to time.")] = 50,
    json_out: JsonOption = False,
) -> None:
    """Whole analyses (decide, decrypt, sandbox, gate, sign) and offline report verification vs. Ed25519 cost."""
    from trustlane.bench.analysis import bench_analysis

    _run("analysis", bench_analysis, json_out, minutes=minutes, runs=runs, verifications=verifications)


@app.command("api-reports")
def api_reports(
    concurrency: Annotated[int, typer.Option(help="Concurrent clients.")] = 16,
    seconds: Annotated[float, typer.Option(help="Seconds per case.")] = 5.0,
    json_out: JsonOption = False,
) -> None:
    """Report retrieval over HTTP on loopback (token and JWT) beside /health on the same server."""
    from trustlane.bench.analysis import bench_api

    _run("api reports", bench_api, json_out, concurrency=concurrency, seconds=seconds)


@app.command("sandbox")
def sandbox(
    runs: Annotated[int, typer.Option(help="Timed runs of each kind.")] = 10,
    seconds: Annotated[float, typer.Option(help="Length of the analysed series.")] = 1800.0,
    rate_hz: Annotated[int, typer.Option(help="Sample rate of the two analysed series.")] = 1000,
    allow_unisolated: Annotated[bool, typer.Option(help="Measure the plain-subprocess fallback instead.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Sandbox start-up and per-analysis overhead vs. the same algorithm in-process; output gate time."""
    from trustlane.bench.sandbox import sandbox_overhead

    _run(
        "sandbox",
        sandbox_overhead,
        json_out,
        runs=runs,
        seconds=seconds,
        rate_hz=rate_hz,
        allow_unisolated=allow_unisolated,
    )


@app.command("accident")
def accident(
    n: Annotated[int, typer.Option(help="Held-out recordings per sample rate.")] = 39,
    json_out: JsonOption = False,
) -> None:
    """Collision timing accuracy on held-out generated data, and a 30-minute recording's analysis time."""
    from trustlane.bench.accident import accuracy

    _run("accident", accuracy, json_out, n=n)


@app.command("privacy")
def privacy_cmd(
    images: Annotated[
        str | None, typer.Option(help="Annotated image folder (default ../shared/vectors/images).")
    ] = None,
    rounds: Annotated[int, typer.Option(help="Throughput rounds over the 1280x720 frames.")] = 1,
    upscale_pass: Annotated[bool, typer.Option(help="Also measure face recall with a 2x upscale.")] = True,
    json_out: JsonOption = False,
) -> None:
    """Privacy processing: detection recall, image throughput, location and DP figures."""
    from trustlane.bench.privacy import privacy

    _run("privacy", privacy, json_out, images=images, rounds=rounds, upscale_pass=upscale_pass)
