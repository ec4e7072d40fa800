"""Sandbox benchmark: what isolation costs per analysis, beside the same algorithm run in-process.

* start-up: a trivial algorithm on a tiny input, end to end (staging, bwrap, Python + numpy start, result);
* a realistic analysis (speed statistics, a histogram and hard-braking events over two 1 kHz series of 30 min)
  in the sandbox and in-process, and the difference (staging the inputs, start-up, reading them back);
* the output gate on that analysis' output.

Each figure is the p50 and p95 of ``runs`` repetitions, in milliseconds.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trustlane.analysis.gate import check_output
from trustlane.analysis.package import load_package
from trustlane.analysis.sandbox import InputSeries, run_algorithm, sandbox_problem

Progress = Callable[[str, float], None]

_SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
_TRIVIAL = "def run(inputs, params):\n    return {'series': len(inputs)}\n"
_REALISTIC = """
import numpy as np


def run(inputs, params):
    speed = inputs["Vehicle.Speed"]
    accel = inputs["Vehicle.Acceleration.Longitudinal"].values
    kmh = np.asarray(speed.values, dtype=np.float64)
    counts, edges = np.histogram(kmh, bins=20, range=(0.0, 200.0))
    braking = accel < params["threshold_mps2"]
    events = int(np.count_nonzero(braking[1:] & ~braking[:-1]))
    return {
        "samples": len(speed),
        "speed_kmh": {"max": float(kmh.max()), "mean": float(kmh.mean()), "p95": float(np.percentile(kmh, 95))},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "hard_braking_events": events,
        "min_accel_mps2": float(accel.min()),
    }
"""


def _noop(_: str, __: float) -> None:
    return None


def _percentiles(samples: list[float], prefix: str) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {f"{prefix}_p50_ms": statistics.median(ordered) * 1000, f"{prefix}_p95_ms": p95 * 1000}


def synthetic_drive(seconds: float, rate_hz: int, seed: int = 11) -> dict[str, InputSeries]:
    """Speed (km/h) and longitudinal acceleration (m/s²) of a plausible drive, sampled at ``rate_hz``."""
    n = int(seconds * rate_hz)
    rng = np.random.default_rng(seed)
    t_ns = 1_700_000_000_000_000_000 + (np.arange(n, dtype=np.int64) * 1_000_000_000) // rate_hz
    accel = np.convolve(rng.normal(0, 1.5, n), np.ones(200) / 200, mode="same")
    speed = np.clip(50 + np.cumsum(accel) * 3.6 / rate_hz, 0, 180)
    return {"Vehicle.Speed": InputSeries(t_ns, speed), "Vehicle.Acceleration.Longitudinal": InputSeries(t_ns, accel)}


def _write_package(folder: Path, code: str) -> Path:
    folder.mkdir(mode=0o755)
    (folder / "algorithm.py").write_text(code)
    (folder / "schema.json").write_text(json.dumps(_SCHEMA))
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def _in_process(folder: Path) -> Callable[[Any, Any], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("bench_algorithm", folder / "algorithm.py")
    if spec is None or spec.loader is None:
        raise ImportError(folder)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[[Any, Any], dict[str, Any]] = module.run
    return function


def sandbox_overhead(
    progress: Progress = _noop,
    runs: int = 10,
    seconds: float = 1800.0,
    rate_hz: int = 1000,
    allow_unisolated: bool = False,
) -> dict[str, Any]:
    """Sandbox start-up and per-analysis overhead versus in-process, p50/p95 in milliseconds."""
    problem = sandbox_problem()
    params = {"threshold_mps2": -4.0}
    drive = synthetic_drive(seconds, rate_hz)
    tiny = {"x": InputSeries(np.arange(10, dtype=np.int64), np.zeros(10))}
    startup: list[float] = []
    sandboxed: list[float] = []
    local: list[float] = []
    gate: list[float] = []
    with tempfile.TemporaryDirectory(prefix="trustlane-bench-sandbox-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)
        trivial = load_package(_write_package(root / "trivial", _TRIVIAL))
        realistic = load_package(_write_package(root / "realistic", _REALISTIC))
        in_process = _in_process(realistic.root)
        for i in range(runs):
            progress("start-up", i / (3 * runs))
            started = time.perf_counter()
            result = run_algorithm(trivial, tiny, {}, allow_unisolated=allow_unisolated)
            startup.append(time.perf_counter() - started)
            if result.status != "ok":
                raise RuntimeError(f"the trivial algorithm failed in the sandbox: {result.reason}")
        output: dict[str, Any] = {}
        for i in range(runs):
            progress("analysis in the sandbox", (runs + i) / (3 * runs))
            started = time.perf_counter()
            result = run_algorithm(realistic, drive, params, allow_unisolated=allow_unisolated)
            sandboxed.append(time.perf_counter() - started)
            if result.status != "ok" or result.output is None:
                raise RuntimeError(f"the benchmark algorithm failed in the sandbox: {result.reason}")
            output = result.output
            started = time.perf_counter()
            problems = check_output(output, realistic.schema, drive, max_bytes=1 << 20)
            gate.append(time.perf_counter() - started)
            if problems:
                raise RuntimeError(f"the gate refused the benchmark output: {problems}")
        for i in range(runs):
            progress("analysis in-process", (2 * runs + i) / (3 * runs))
            started = time.perf_counter()
            local_output = in_process(drive, params)
            local.append(time.perf_counter() - started)
        if json.loads(json.dumps(local_output)) != output:
            raise RuntimeError("the sandboxed and in-process outputs differ")
    progress("done", 1.0)
    figures: dict[str, Any] = {
        "isolated": problem is None,
        "runs": runs,
        "samples_per_series": len(drive["Vehicle.Speed"]),
        "series": len(drive),
        "python": sys.version.split()[0],
    }
    figures |= _percentiles(startup, "startup")
    figures |= _percentiles(sandboxed, "sandboxed")
    figures |= _percentiles(local, "in_process")
    overhead = [inside - here for inside, here in zip(sorted(sandboxed), sorted(local), strict=True)]
    figures |= _percentiles(overhead, "overhead")
    figures |= _percentiles(gate, "gate")
    return figures
