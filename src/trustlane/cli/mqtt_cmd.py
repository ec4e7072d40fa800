"""`trustlane ingest mqtt`: live vehicle telemetry from an MQTT broker (registered on the ingest group)."""

from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.markup import escape

from trustlane.cli.common import HomeOption, JsonOption, emit_json, err, open_node
from trustlane.ingest.segments import DEFAULT_SEGMENT_NS


def ingest_mqtt(
    broker: Annotated[str, typer.Option("--broker", help="The broker: mqtt://HOST:PORT (or mqtts://).")],
    topic: Annotated[
        str, typer.Option("--topic", help="Topic filter; …/vehicles/<VIN>/telemetry names the vehicle.")
    ] = "vehicles/+/telemetry",
    home: HomeOption = None,
    mapping: Annotated[
        Path | None, typer.Option(help="YAML mapping of signal names to VSS paths (default: trustlane_generic).")
    ] = None,
    segment_seconds: Annotated[float, typer.Option(help="Window (segment) length.")] = DEFAULT_SEGMENT_NS / 1e9,
    lateness_seconds: Annotated[
        float, typer.Option(help="How long after its end a window still takes messages.")
    ] = 2.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    max_messages: Annotated[int | None, typer.Option(help="Stop after receiving this many messages.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Subscribe to vehicle telemetry and store it until interrupted (Ctrl-C / SIGTERM store open windows)."""
    from trustlane.cli.ingest_cmd import HolderServices  # here: ingest_cmd imports this module
    from trustlane.ingest.mqtt import MqttSettings, TelemetryIngest

    settings = MqttSettings(
        broker=broker,
        topic=topic,
        segment_ns=round(segment_seconds * 1e9),
        lateness_ns=round(lateness_seconds * 1e9),
        duration_s=duration,
        max_messages=max_messages,
        mapping=mapping,
    )
    with open_node(home) as node, ExitStack() as stack:
        services = HolderServices(node, stack)
        ingest = TelemetryIngest(
            node,
            services.catalog,
            services.registry,
            services.blobs,
            settings,
            on_ready=lambda text: err.print(escape(text), highlight=False, soft_wrap=True),
        )

        def on_signal(number: int, frame: FrameType | None) -> None:
            ingest.stop()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            summary = ingest.run()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    if json_out:
        emit_json(summary)
        return
    _print_summary(summary)


def _print_summary(s: dict[str, Any]) -> None:
    lag = s["persist_lag_ms"]
    print(
        f"received {s['received']}: accepted {s['accepted']} (late {s['late']}), duplicates {s['duplicates']}, "
        f"rejected {s['rejected']}, unknown vehicle {s['unknown_vehicle']}"
    )
    print(f"stored {s['datasets']} datasets, {s['segments']} segments in {s['seconds']:.1f} s")
    if lag is not None:
        print(f"persist lag p50 {lag['p50']} ms, p99 {lag['p99']} ms; peak RSS {s['peak_rss_mb']} MB")
    for key in ("windows_empty", "windows_failed", "windows_discarded"):
        if s[key]:
            print(f"{key.replace('_', ' ')}: {s[key]}")
