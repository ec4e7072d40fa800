"""The output gate: size, schema, raw-data smuggling (exact, rounded, scaled, packed) and identifiers."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustlane.analysis.gate import MAX_NUMERIC_ARRAY, MIN_RUN, check_output
from trustlane.analysis.sandbox import InputSeries

OPEN: dict[str, Any] = {"type": "object"}
VIN_VALID = "1M8GDM9AXKP042788"  # the check-digit example of 49 CFR 565
NODE_VIN = "VF1RFB00X12345678"


def drive(n: int = 20_000, seed: int = 7) -> dict[str, InputSeries]:
    rng = np.random.default_rng(seed)
    t_ns = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 1_000_000 + rng.integers(0, 5000, n)
    speed = np.clip(50 + np.cumsum(rng.normal(0, 0.2, n)), 0, None)
    gear = np.repeat(np.arange(1, 6), n // 5).astype(np.int8)
    return {"Vehicle.Speed": InputSeries(t_ns, speed), "Vehicle.Powertrain.Gear": InputSeries(t_ns, gear)}


INPUTS = drive()
SPEED = INPUTS["Vehicle.Speed"].values
WINDOW = SPEED[1234 : 1234 + 24]


def check(output: Any, schema: dict[str, Any] = OPEN, **kwargs: Any) -> list[str]:
    return check_output(output, schema, INPUTS, max_bytes=kwargs.pop("max_bytes", 1 << 20), **kwargs)


def test_aggregates_pass() -> None:
    edges = [float(e) for e in np.linspace(0, 200, 21)]
    counts, _ = np.histogram(SPEED, bins=edges)
    output = {
        "speed_kmh": {
            "max": float(SPEED.max()),
            "mean": round(float(SPEED.mean()), 2),
            "p95": float(np.percentile(SPEED, 95)),
        },
        "histogram": {"edges": edges, "counts": counts.tolist(), "bins": list(range(20))},
        "events_s": [12.5, 77.25, 130.0, 131.5, 190.75, 250.0, 260.5, 301.25, 330.0],
        "vehicle": "veh-abcdefghijklmnopqrstuvwxyz",
        "note": "SAE J3016 level 2 active for 93.5 % of the drive",
    }
    assert check(output) == []


@pytest.mark.parametrize(
    ("output", "path", "how"),
    [
        ({"samples": [float(v) for v in WINDOW]}, "$.samples", "exact"),
        ({"a": {"b": [round(float(v), 1) for v in WINDOW]}}, "$.a.b", "rounded"),
        ({"s": [round(float(v), 3) for v in WINDOW]}, "$.s", "rounded"),
        ({"s": [float(v) / 3.6 for v in WINDOW]}, "$.s", "km/h to m/s"),
        ({"s": [float(v) * 1000 for v in WINDOW]}, "$.s", "1e3"),
        ({"s": [float(v) - float(SPEED[0]) for v in WINDOW]}, "$.s", "relative to the first sample"),
        ({"pts": [{"t": i, "v": float(v)} for i, v in enumerate(WINDOW)]}, "$.pts[*].v", "exact"),
        ({"rows": [[i, float(v)] for i, v in enumerate(WINDOW)]}, "$.rows[*][1]", "exact"),
        ({"blob": base64.b64encode(WINDOW.astype("<f4").tobytes()).decode()}, "$.blob", "<f4"),
        ({"blob": WINDOW.astype(">f8").tobytes().hex()}, "$.blob", ">f8"),
        ({"note": "speeds: " + "; ".join(f"{v:.2f}" for v in WINDOW)}, "$.note", "numbers in text"),
        ({"bytes": list(WINDOW.astype("<f8").tobytes())}, "$.bytes", "byte list"),
        ({"mixed": ["start", *[float(v) for v in WINDOW], "end"]}, "$.mixed", "exact"),
    ],
)
def test_raw_samples_are_caught_however_dressed(output: Any, path: str, how: str) -> None:
    problems = check(output)
    assert any(p.startswith(path + ":") and "Vehicle.Speed" in p and how in p for p in problems), problems


def test_runs_shorter_than_the_threshold_pass() -> None:
    assert check({"s": [float(v) for v in WINDOW[: MIN_RUN - 1]]}) == []


def test_timestamps_are_checked_too() -> None:
    jittered = INPUTS["Vehicle.Speed"].t_ns[500:520]
    problems = check({"t": [int(t) for t in jittered]})
    assert any("timestamps of input 'Vehicle.Speed'" in p for p in problems), problems


def test_even_progressions_carry_no_data() -> None:
    assert check({"index": list(range(100)), "edges": [i * 0.5 for i in range(60)]}) == []


def test_array_cap() -> None:
    problems = check({"a": [1.0] * (MAX_NUMERIC_ARRAY + 1)})
    assert problems == [f"$.a: an array of {MAX_NUMERIC_ARRAY + 1} numbers exceeds the cap of {MAX_NUMERIC_ARRAY}"]
    assert check({"a": [1.0] * MAX_NUMERIC_ARRAY}) == []


def test_numbers_packed_in_text_count_towards_the_cap() -> None:
    problems = check({"a": ",".join("1" for _ in range(MAX_NUMERIC_ARRAY + 5))})
    assert any(p.startswith("$.a: carries") for p in problems), problems


@pytest.mark.parametrize(
    ("output", "path", "what"),
    [
        ({"vehicle": VIN_VALID}, "$.vehicle", "valid check digit"),
        ({"vehicle": "WVWZZZ1JZ3W386752"}, "$.vehicle", "VIN-like"),
        ({"notes": ["seen: " + VIN_VALID.lower() + " at noon"]}, "$.notes[0]", "VIN-like"),
        ({"by_vehicle": {VIN_VALID: 3}}, "$.by_vehicle (a key)", "VIN-like"),
        ({"v": f"x{NODE_VIN}y"}, "$.v", "identifier of a vehicle in this analysis"),
        ({"v": " ".join(NODE_VIN.lower())}, "$.v", "identifier of a vehicle in this analysis"),
        ({"v": base64.b64encode(f"vin={NODE_VIN};".encode()).decode()}, "$.v", "(decoded) holds"),
        ({"plate": "AB-123-CD"}, "$.plate", "licence-plate"),
        ({"plate": "M-AB 1234"}, "$.plate", "German licence-plate"),
        ({"plate": "AB12 CDE"}, "$.plate", "British licence-plate"),
    ],
)
def test_identifiers_are_caught(output: Any, path: str, what: str) -> None:
    problems = check(output, identifiers=[NODE_VIN])
    assert any(p.startswith(path + ":") and what in p for p in problems), problems
    assert not any(NODE_VIN in p or VIN_VALID in p for p in problems)  # the gate never echoes an identifier


def test_schema_problems_name_the_field() -> None:
    schema = {
        "type": "object",
        "properties": {"speed": {"type": "object", "properties": {"max": {"type": "number", "maximum": 400}}}},
        "required": ["speed"],
        "additionalProperties": False,
    }
    assert check({"speed": {"max": 130.0}}, schema) == []
    problems = check({"speed": {"max": "fast"}, "extra": 1}, schema)
    assert '$.speed.max: does not match the output schema (type "number")' in problems
    assert any(p.startswith("$: does not match the output schema (additionalProperties") for p in problems)
    assert check({"speed": {"max": 999}}, schema) == ["$.speed.max: does not match the output schema (maximum 400)"]


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ({"a": float("nan")}, "$.a: nan is not a JSON number"),
        ({"a": [1, {"b": float("inf")}]}, "$.a[1].b: inf is not a JSON number"),
        ({"a": b"raw"}, "$.a: a bytes is not JSON"),
        ({1: "x"}, "$: has a key of type int; JSON keys are strings"),
        ({"odd key": {1, 2}}, '$["odd key"]: a set is not JSON'),
    ],
)
def test_non_json_is_refused(output: Any, problem: str) -> None:
    assert check(output) == [problem]


def test_size_limit() -> None:
    assert check({"text": "x" * 200}, max_bytes=100) == ["$: the output is 211 bytes, over the limit of 100 bytes"]
    assert check({"text": "é" * 44}, max_bytes=100) == []  # 88 bytes of UTF-8 + 11


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.integers(0, len(SPEED) - 40), length=st.integers(MIN_RUN, 40), decimals=st.integers(1, 6))
def test_any_rounded_window_is_caught(start: int, length: int, decimals: int) -> None:
    window = [round(float(v), decimals) for v in SPEED[start : start + length]]
    if len(set(window)) < 3 or max(abs(np.diff(window, n=2))) < 10.0**-decimals:
        return  # rounded flat or into an even ramp: no data left to leak
    assert any("Vehicle.Speed" in p for p in check({"w": window}))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_summaries_of_any_drive_pass(seed: int) -> None:
    values = drive(5000, seed)["Vehicle.Speed"].values
    quantiles = np.percentile(values, np.arange(0, 101, 10)).tolist()
    summary = {"quantiles": quantiles, "mean": float(values.mean()), "std": float(values.std())}
    assert check_output(summary, OPEN, drive(5000, seed), max_bytes=1 << 20) == []
