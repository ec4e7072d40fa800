"""The sandbox benchmark runs end to end on a short drive and reports consistent figures."""

from __future__ import annotations

from trustlane.bench.sandbox import sandbox_overhead


def test_benchmark_figures_are_consistent() -> None:
    phases: list[str] = []
    figures = sandbox_overhead(lambda phase, _: phases.append(phase), runs=2, seconds=5.0, allow_unisolated=True)
    assert figures["samples_per_series"] == 5000 and figures["series"] == 2
    assert 0 < figures["in_process_p50_ms"] < figures["sandboxed_p50_ms"]
    assert figures["startup_p50_ms"] <= figures["startup_p95_ms"]
    assert figures["gate_p50_ms"] > 0
    assert phases[-1] == "done"
