"""Benchmarks of the trusted-analysis loop: end-to-end analysis, offline report verification, and report
retrieval over the HTTP API under concurrent load — each beside the physical limit measured in the same run."""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trustlane.algorithms import builtin_path
from trustlane.analysis.contracts import Grant
from trustlane.analysis.holder import Holder
from trustlane.analysis.reports import report_bytes
from trustlane.analysis.service import AnalysisService, request_body, sign_request
from trustlane.analysis.verify import verify_report
from trustlane.ingest.pipeline import IngestOptions, Ingestor
from trustlane.ingest.readers.samples import write_parquet
from trustlane.node import Node
from trustlane.ops.subprocess_server import free_port, trustlane_server

VIN = "1M8GDM9AXKP042788"
S = 1_000_000_000
SIGNATURES_PER_REPORT = 6  # report, checkpoint, contract offer, acceptance, request, holder approval


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _recording(path: Path, minutes: float) -> Path:
    t = 1_700_000_000 * S + np.arange(0, int(minutes * 60 * S), 10_000_000, dtype=np.int64)
    speed = 70 + 25 * np.sin(np.arange(t.size) / 900.0)
    return write_parquet(
        path,
        {
            "Vehicle.Speed": (t, speed, "km/h"),
            "Vehicle.Acceleration.Longitudinal": (t, np.gradient(speed / 3.6, 0.01), "m/s^2"),
        },
    )


def _world(root: Path, minutes: float) -> tuple[Path, str]:
    """A node with one recording, the driving-summary algorithm and a contract for a local agency."""
    home = root / "holder"
    with Node.init(home, origin="bench.example/log") as node, Holder(node) as holder:
        holder.vehicles.register(VIN)
        ingestor = Ingestor(node.log, holder.catalog, holder.vehicles, holder.blobs)
        receipt = ingestor.ingest([_recording(root / "trip.parquet", minutes)], VIN, IngestOptions())[0]
        holder.parties.add("agency", "agency")
        holder.algorithms.register(builtin_path("driving-summary"), "driving-summary", "1")
        holder.algorithms.approve("driving-summary", "1", node.signer, "holder")
        contract = holder.contracts.grant(
            Grant("agency", [receipt["dataset"]], ["driving-summary@1"], "accident-liability")
        )
    return home, contract.id


def bench_analysis(
    minutes: float = 10.0,
    runs: int = 5,
    verifications: int = 50,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Time whole analyses (decide, decrypt, sandbox, gate, report) and offline verification of the report."""
    say = progress or (lambda _phase, _fraction: None)
    say("ingesting", 0.0)
    with tempfile.TemporaryDirectory(prefix="trustlane-bench-") as tmp:
        home, contract_id = _world(Path(tmp), minutes)
        durations, report = [], None
        with Node.open(home) as node, Holder(node) as holder:
            signer = holder.parties.signer("agency")
            service = AnalysisService(holder)
            for n in range(runs):
                say("analysing", 0.1 + 0.6 * n / runs)
                request = sign_request(signer, request_body(contract_id, "agency", None, {}))
                start = time.perf_counter()
                outcome = service.run(request)
                durations.append(time.perf_counter() - start)
                assert outcome.report is not None, outcome.reason
                report = outcome.report
            vkey = node.signer.verifier.vkey
        assert report is not None
        data = report_bytes(report)
        timings = []
        say("verifying", 0.8)
        for _ in range(verifications):
            start = time.perf_counter()
            verify_report(data, vkey)
            timings.append(time.perf_counter() - start)
    # the floor: the signature checks and hashing verification cannot avoid
    key = Ed25519PrivateKey.generate()
    public, message = key.public_key(), b"x" * 256
    sig = key.sign(message)
    start = time.perf_counter()
    for _ in range(2000):
        public.verify(sig, message)
    ed25519_s = (time.perf_counter() - start) / 2000
    start = time.perf_counter()
    for _ in range(20):
        hashlib.sha256(data).digest()
    sha_s = (time.perf_counter() - start) / 20
    floor_s = SIGNATURES_PER_REPORT * ed25519_s + 2 * sha_s
    p50 = statistics.median(timings)
    return {
        "recording_minutes": minutes,
        "inputs": len(report["inputs"]),
        "report_bytes": len(data),
        "analysis_p50_s": round(statistics.median(durations), 3),
        "analysis_max_s": round(max(durations), 3),
        "verify_p50_ms": round(p50 * 1000, 3),
        "verify_p95_ms": round(_pct(timings, 95) * 1000, 3),
        "verify_floor_ms": round(floor_s * 1000, 3),
        "verify_ratio_to_floor": round(floor_s / p50, 3),
        "ed25519_verify_us": round(ed25519_s * 1e6, 2),
    }


async def _load(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> tuple[int, list[float]]:
    import httpx

    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.get(url, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
                latencies.append(time.perf_counter() - start)
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, latencies


def bench_api(
    concurrency: int = 16, seconds: float = 5.0, progress: Callable[[str, float], None] | None = None
) -> dict[str, Any]:
    """Report retrieval over HTTP (API token and EdDSA JWT) against /health on the same server."""
    from trustlane.api.auth import make_jwt

    say = progress or (lambda _phase, _fraction: None)
    say("preparing", 0.0)
    with tempfile.TemporaryDirectory(prefix="trustlane-bench-") as tmp, ExitStack() as stack:
        home, contract_id = _world(Path(tmp), 1.0)
        with Node.open(home) as node, Holder(node) as holder:
            signer = holder.parties.signer("agency")
            outcome = AnalysisService(holder).run(sign_request(signer, request_body(contract_id, "agency", None, {})))
            assert outcome.report is not None, outcome.reason
            report_id = outcome.report["id"]
            token = holder.parties.issue_token("agency", "bench").token
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "TRUSTLANE_HOME"}
        serve = ["serve", "--home", str(home), "--port", str(port)]
        stack.enter_context(trustlane_server(serve, f"http://127.0.0.1:{port}/health", env))
        base = f"http://127.0.0.1:{port}"
        results: dict[str, Any] = {"concurrency": concurrency, "seconds": seconds}
        cases = {
            "health": (f"{base}/health", {}),
            "report_token": (f"{base}/v1/reports/{report_id}", {"Authorization": f"Bearer {token}"}),
            "report_jwt": (
                f"{base}/v1/reports/{report_id}",
                {"Authorization": f"Bearer {make_jwt(signer, 'bench.example/log', 600)}"},
            ),
        }
        for n, (name, (url, headers)) in enumerate(cases.items()):
            say(f"loading {name}", 0.1 + 0.3 * n)
            count, latencies = asyncio.run(_load(url, headers, concurrency, seconds))
            results[name] = {
                "requests_per_s": round(count / seconds, 1),
                "p50_ms": round(_pct(latencies, 50) * 1000, 2),
                "p99_ms": round(_pct(latencies, 99) * 1000, 2),
            }
        results["ratio_report_token_to_health"] = round(
            results["report_token"]["requests_per_s"] / results["health"]["requests_per_s"], 3
        )
        return results
