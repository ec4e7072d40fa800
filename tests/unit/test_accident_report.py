"""Report content pieces, the output schema, rendering and the algorithm package."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from trustlane.accident import algorithm_entry as entry
from trustlane.accident.generator.recording import generate
from trustlane.accident.generator.writer import write_csv
from trustlane.accident.package import build_algorithm_package
from trustlane.accident.report.inputs import recording_inputs
from trustlane.accident.report.render import render_accident_html, render_accident_pdf
from trustlane.accident.report.schema import OUTPUT_SCHEMA
from trustlane.analysis.package import load_package


@functools.cache
def report_of(name: str, seed: int, folder: str) -> dict[str, Any]:
    path = Path(folder) / f"{name}-{seed}.csv"
    write_csv(generate(name, seed, duration_s=30.0), path)
    inputs, _, _ = recording_inputs(path)
    return entry.run(inputs, {"case_id": "case-1", "vehicle": "veh-1a2b", "clock_source": "GNSS"})


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("acc"))


def test_window_statistics_equal_a_plain_loop() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(rng.choice(np.arange(10_000, dtype=np.int64), 700, replace=False))
    v = rng.normal(size=700)
    v[::50] = np.nan
    edges = np.arange(0, 10_001, 400, dtype=np.int64)
    edges[5] = edges[4]  # an empty window
    for stat, fn in (("mean", np.mean), ("max", np.max)):
        got = entry.window_stat(t, v, edges, stat)
        for i in range(len(edges) - 1):
            inside = v[(t >= edges[i]) & (t < edges[i + 1])]
            inside = inside[np.isfinite(inside)]
            expected = fn(inside) if len(inside) else np.nan
            assert got[i] == pytest.approx(expected, nan_ok=True)


@pytest.mark.slow
def test_front_crash_report_content(folder: str) -> None:
    report = report_of("front", 4, folder)
    jsonschema.validate(report, OUTPUT_SCHEMA)
    assert report["collision"] and report["case_id"] == "case-1" and report["vehicle"] == "veh-1a2b"
    history = report["pre_crash"]
    speed = history["signals"]["Vehicle.Speed"]["segments"]
    assert speed and speed[-1]["to_s"] == 0.0 and all(s["value"] > 0 for s in speed)
    assert len(speed) <= 40  # at most one segment per 0.5 s window: a step function, not the samples
    assert set(history["flags"]) >= {"Vehicle.ADAS.AEB.IsWarning", "Vehicle.ADAS.AEB.IsEngaged"}
    assert history["flags"]["Vehicle.ADAS.AEB.IsWarning"][0]["from_s"] < 0  # the FCW came before the crash
    pulse = report["pulse"]
    assert len(pulse["t_ms"]) <= 300 and "CFC 60" in pulse["filter"]
    assert min(pulse["delta_v_longitudinal_kmh"]) < -5  # a front crash slows the vehicle
    assert report["restraints"]["driver_belted"] is True
    assert report["pre_crash_control"]["at_end"]["state"] in ("system", "driver")
    assert report["liability"]["indication"]["determinable"]
    assert report["digests"]["core"].startswith("sha256:")


@pytest.mark.slow
def test_no_collision_gives_timeline_but_no_indication(folder: str) -> None:
    report = report_of("harsh-braking", 1, folder)
    jsonschema.validate(report, OUTPUT_SCHEMA)
    assert not report["collision"] and report["liability"] is None and report["pulse"] is None
    assert "no-collision" in {f["code"] for f in report["findings"]}
    assert report["automation"]["intervals"]


@pytest.mark.slow
def test_html_is_self_contained_and_pdf_has_pages(folder: str, tmp_path: Path) -> None:
    report = report_of("l3-takeover", 0, folder)
    html = render_accident_html(report)
    assert html.count("data:image/png;base64,") == 3
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "non-binding" in html.lower()
    pdf = tmp_path / "r.pdf"
    render_accident_pdf(report, pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") + data.count(b"/Type /Page>") >= 4


def test_package_is_complete_and_its_digest_stable(tmp_path: Path) -> None:
    first = load_package(build_algorithm_package(tmp_path / "a"))
    second = load_package(build_algorithm_package(tmp_path / "b"))
    assert first.digest == second.digest
    paths = {f.path for f in first.files}
    assert {"algorithm.py", "schema.json", "accident_core/timeline.py", "accident_core/rules/unece.json"} <= paths
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in paths)
    assert json.loads((first.root / "schema.json").read_text()) == OUTPUT_SCHEMA
    with pytest.raises(Exception, match="not an empty folder"):
        build_algorithm_package(tmp_path / "a")


def test_segments_merge_windows_within_the_resolution() -> None:
    values = np.array([10.0, 10.2, 10.4, 11.0, np.nan, 11.1, 20.0])
    got = entry.segments([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], 0.5, values, 0.5)
    assert [(g["from_s"], g["to_s"]) for g in got] == [(0.0, 1.5), (1.5, 2.0), (2.5, 3.0), (3.0, 3.5)]
    assert got[0]["value"] == pytest.approx(10.2)
