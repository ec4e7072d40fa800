"""The accident-report algorithm: ``run(inputs, params) -> dict``, the content of an accident report.

This file is the ``algorithm.py`` of the sandboxed package that ``trustlane.accident.package`` builds: there it
sits beside a verbatim copy of ``accident/core`` named ``accident_core`` and imports only that, numpy and scipy
(trustlane is not importable in the sandbox). Inside trustlane (``trustlane accident report``) the same code runs
in-process against ``trustlane.accident.core``.

Everything it returns is an aggregate: figures, intervals, EDR-style window means and a downsampled filtered
pulse — never a run of raw samples (the output gate refuses 8 consecutive raw samples and arrays over 2000
numbers).

params: ``case_id``, ``vehicle`` (the vehicle's pseudonym), ``clock_source``, ``input_digests`` (the node's
description of the inputs), ``rule_sets`` (names; default all) — all optional.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from .core import detect as _detect
    from .core import errors as _errors
    from .core import j211 as _j211
    from .core import liability as _liability
    from .core import timeline as _timeline
except ImportError:  # inside the sandbox: algorithm.py beside accident_core/
    from accident_core import detect as _detect  # type: ignore[import-not-found,no-redef]
    from accident_core import errors as _errors  # type: ignore[no-redef]
    from accident_core import j211 as _j211  # type: ignore[no-redef]
    from accident_core import liability as _liability  # type: ignore[no-redef]
    from accident_core import timeline as _timeline  # type: ignore[no-redef]

FloatArray = npt.NDArray[np.float64]
FORMAT = "trustlane/accident-report/v1"
AXES = {
    "longitudinal": ("Vehicle.Safety.CrashPulse.Longitudinal", "Vehicle.Acceleration.Longitudinal"),
    "lateral": ("Vehicle.Safety.CrashPulse.Lateral", "Vehicle.Acceleration.Lateral"),
    "vertical": ("Vehicle.Safety.CrashPulse.Vertical", "Vehicle.Acceleration.Vertical"),
}
SPEED = "Vehicle.Speed"
#: Pre-crash history: (signal, unit, statistic, resolution). Window values that differ by less than the
#: resolution from the start of a segment are merged, so the history is a step function, not a sample list.
PRE_CRASH = (
    (SPEED, "km/h", "mean", 0.5),
    ("Vehicle.Chassis.Accelerator.PedalPosition", "percent", "mean", 1.0),
    ("Vehicle.Chassis.Brake.PedalPosition", "percent", "mean", 1.0),
    ("Vehicle.Chassis.SteeringWheel.Angle", "degrees", "mean", 1.0),
    ("Vehicle.Chassis.SteeringWheel.AngularSpeed", "degrees/s", "max", 5.0),
    ("Vehicle.AngularVelocity.Yaw", "degrees/s", "mean", 0.5),
)
PRE_CRASH_FLAGS = (
    "Vehicle.Chassis.Brake.IsPedalPressed",
    "Vehicle.ADAS.ABS.IsEngaged",
    "Vehicle.ADAS.ESC.IsEngaged",
    "Vehicle.ADAS.AEB.IsWarning",
    "Vehicle.ADAS.AEB.IsEngaged",
)
ACCELERATION_RESOLUTION = 0.2  # m/s², for the longitudinal acceleration history
FLAG_MERGE_S = 0.2  # on-periods closer than this are one period
MAX_FLAG_PERIODS = 50
PRE_CRASH_S = 20.0
PRE_CRASH_BIN_S = 0.5  # 2 Hz, as an EDR records pre-crash data
PULSE_POINTS = 300
PULSE_BEFORE_S = 0.05
PULSE_AFTER_S = 0.10
RESTRAINTS = {
    "driver_belted": "Vehicle.Cabin.Seat.Row1.DriverSide.IsBelted",
    "passenger_belted": "Vehicle.Cabin.Seat.Row1.PassengerSide.IsBelted",
    "driver_airbag": "Vehicle.Cabin.Seat.Row1.DriverSide.Airbag.IsDeployed",
    "passenger_airbag": "Vehicle.Cabin.Seat.Row1.PassengerSide.Airbag.IsDeployed",
}
KMH = 3.6


def _finding(code: str, severity: str, message: str) -> dict[str, Any]:
    return {"code": code, "severity": severity, "message": message}


def _pick(inputs: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    found = [(n, inputs[n]) for n in names if n in inputs and len(inputs[n].t_ns)]
    return max(found, key=lambda pair: len(pair[1].t_ns)) if found else None


def _floats(series: Any) -> FloatArray:
    return np.asarray(series.values, dtype=np.float64)


def _acceleration(inputs: Mapping[str, Any]) -> tuple[str, npt.NDArray[np.int64], FloatArray, FloatArray | None, Any]:
    lon = _pick(inputs, AXES["longitudinal"])
    if lon is None:
        raise _errors.SignalError(
            "no longitudinal acceleration among the inputs (looked for " + ", ".join(AXES["longitudinal"]) + ")",
            hint="grant the acceleration signal (m/s², VSS name) to the analysis",
        )
    name, series = lon
    t_ns = np.asarray(series.t_ns, dtype=np.int64)
    lat = _pick(inputs, AXES["lateral"])
    vert = _pick(inputs, AXES["vertical"])
    y = None if lat is None else np.interp(t_ns, np.asarray(lat[1].t_ns), _floats(lat[1]))
    z = None if vert is None else np.interp(t_ns, np.asarray(vert[1].t_ns), _floats(vert[1]))
    return name, t_ns, _floats(series), y, z


# --- aggregates ---------------------------------------------------------------------------------------------------


def _round(values: FloatArray, digits: int) -> list[float | None]:
    return [None if not math.isfinite(v) else round(v, digits) for v in values.tolist()]


def window_stat(t_ns: Any, values: Any, edges_ns: npt.NDArray[np.int64], stat: str) -> FloatArray:
    """Mean or max of each window [edges[i], edges[i+1]) (NaN for an empty window), vectorised."""
    t = np.asarray(t_ns, dtype=np.int64)
    v = np.asarray(values).astype(np.float64)
    keep = np.isfinite(v)
    t, v = t[keep], v[keep]
    idx = np.searchsorted(t, edges_ns, side="left")
    counts = np.diff(idx)
    out = np.full(len(counts), np.nan)
    full = counts > 0
    if not full.any():
        return out
    if stat == "max":
        # windows are contiguous, so each reduceat slice is exactly one non-empty window
        out[full] = np.maximum.reduceat(v[: idx[-1]], idx[:-1][full])
        return out
    sums = np.concatenate(([0.0], np.cumsum(v[idx[0] : idx[-1]])))
    local = idx - idx[0]
    out[full] = (sums[local[1:]] - sums[local[:-1]])[full] / counts[full]
    return out


def significant(value: float, digits: int = 6) -> float | None:
    """``value`` to ``digits`` significant digits: computed figures keep their precision (None if not finite)."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _sig(values: FloatArray, digits: int = 6) -> list[float | None]:
    return [significant(v, digits) for v in values.tolist()]


def segments(offsets: list[float], window_s: float, values: FloatArray, resolution: float) -> list[dict[str, Any]]:
    """Consecutive windows merged while they stay within ``resolution`` of the segment's first window."""
    out: list[dict[str, Any]] = []
    current: list[float] = []
    start = 0
    for i, v in enumerate([*values.tolist(), math.nan]):
        if current and (not math.isfinite(v) or abs(v - current[0]) >= resolution):
            out.append(
                {
                    "from_s": round(offsets[start], 3),
                    "to_s": round(offsets[i - 1] + window_s, 3),
                    "value": significant(float(np.mean(current)), 5),
                }
            )
            current = []
        if math.isfinite(v):
            if not current:
                start = i
            current.append(v)
    return out


def flag_periods(series: Any, t0_ns: int, lo_ns: int) -> list[dict[str, float]]:
    """Periods a flag was on in [lo, T0], in seconds from T0 (near ones merged)."""
    t = np.asarray(series.t_ns, dtype=np.int64)
    a, b = np.searchsorted(t, [lo_ns, t0_ns], side="left")
    t = t[a:b]
    on = _timeline.as_bool(np.asarray(series.values)[a:b])[0]
    periods: list[dict[str, float]] = []
    for item in _timeline.bool_intervals(t, on):
        start = (item["start"]["by_ns"] - t0_ns) / 1e9
        end = ((item["end"]["by_ns"] or t0_ns) - t0_ns) / 1e9
        if periods and start - periods[-1]["to_s"] < FLAG_MERGE_S:
            periods[-1]["to_s"] = round(end, 2)
        else:
            periods.append({"from_s": round(start, 2), "to_s": round(end, 2)})
    return periods[:MAX_FLAG_PERIODS]


def pre_crash(inputs: Mapping[str, Any], t0_ns: int) -> dict[str, Any]:
    """EDR-style history of the 20 s before T0: 0.5 s window statistics as step segments, and flag periods."""
    bins = round(PRE_CRASH_S / PRE_CRASH_BIN_S)
    edges = t0_ns - np.arange(bins, -1, -1, dtype=np.int64) * round(PRE_CRASH_BIN_S * 1e9)
    offsets = [round(-PRE_CRASH_S + i * PRE_CRASH_BIN_S, 3) for i in range(bins)]
    signals: dict[str, Any] = {}
    missing: list[str] = []
    for name, unit, stat, resolution in PRE_CRASH:
        series = inputs.get(name)
        if series is None or len(series.t_ns) == 0:
            missing.append(name)
            continue
        result = window_stat(series.t_ns, _floats(series), edges, stat)
        signals[name] = {
            "unit": unit,
            "statistic": stat,
            "resolution": resolution,
            "segments": segments(offsets, PRE_CRASH_BIN_S, result, resolution),
        }
    accel = _pick(inputs, AXES["longitudinal"])
    if accel is not None:
        result = window_stat(accel[1].t_ns, _floats(accel[1]), edges, "mean")
        signals["longitudinal_acceleration"] = {
            "unit": "m/s^2",
            "statistic": "mean",
            "resolution": ACCELERATION_RESOLUTION,
            "segments": segments(offsets, PRE_CRASH_BIN_S, result, ACCELERATION_RESOLUTION),
        }
    flags: dict[str, Any] = {}
    for name in PRE_CRASH_FLAGS:
        series = inputs.get(name)
        if series is None or len(series.t_ns) == 0:
            missing.append(name)
            continue
        flags[name] = flag_periods(series, t0_ns, int(edges[0]))
    return {"window_s": PRE_CRASH_BIN_S, "from_s": -PRE_CRASH_S, "signals": signals, "flags": flags, "missing": missing}


def pulse_summary(t_ns: npt.NDArray[np.int64], ax: FloatArray, ay: FloatArray, event: Any) -> dict[str, Any]:
    """The CFC 60 pulse around one event, downsampled to at most 300 points, with its cumulative delta-V."""
    t0, end = int(event.t0_ns), int(event.end_ns)
    margin = 500_000_000  # filter on a wider stretch so the edges do not distort the window
    a, b = np.searchsorted(t_ns, [t0 - margin, end + margin])
    t, x, y = t_ns[a:b], ax[a:b], ay[a:b]
    rate = 1e9 / float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    cfc = _j211.highest_class(rate)
    if cfc is not None and len(t) > 32:
        x, y = _j211.cfc_filter(x, rate, 60), _j211.cfc_filter(y, rate, 60)
        filtering = "SAE J211 CFC 60 (phaseless)"
    else:  # too slow for CFC 60: a centred 3-sample mean, so no raw sample is reproduced
        kernel = np.ones(3) / 3
        x, y = np.convolve(x, kernel, mode="same"), np.convolve(y, kernel, mode="same")
        filtering = f"centred 3-sample mean (CFC 60 needs about 250 Hz; the data has {rate:.0f} Hz)"
    lo, hi = np.searchsorted(t, [t0 - round(PULSE_BEFORE_S * 1e9), end + round(PULSE_AFTER_S * 1e9)])
    t, x, y = t[lo:hi], x[lo:hi], y[lo:hi]
    seconds = (t - t0) / 1e9
    dvx = np.concatenate(([0.0], np.cumsum(0.5 * (x[1:] + x[:-1]) * np.diff(seconds)))) * KMH
    dvy = np.concatenate(([0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(seconds)))) * KMH
    step = max(1, math.ceil(len(t) / PULSE_POINTS))
    pick = slice(0, len(t), step)
    return {
        "filter": filtering,
        "sample_rate_hz": round(rate, 3),
        "every_nth_sample": step,
        "t_ms": _round(seconds[pick] * 1e3, 3),
        "longitudinal_ms2": _sig(x[pick]),
        "lateral_ms2": _sig(y[pick]),
        "delta_v_longitudinal_kmh": _sig(dvx[pick]),
        "delta_v_lateral_kmh": _sig(dvy[pick]),
        "contact_ms": round((event.contact.t_ns - t0) / 1e6, 3),
        "contact_sigma_ms": round(event.contact.sigma_ms, 3),
    }


def restraints(inputs: Mapping[str, Any], t0_ns: int) -> dict[str, Any]:
    """Belts at T0 (last sample before it) and airbag deployment in the 2 s after it."""
    out: dict[str, Any] = {}
    for key, name in RESTRAINTS.items():
        series = inputs.get(name)
        if series is None or len(series.t_ns) == 0:
            out[key] = None
            continue
        t = np.asarray(series.t_ns, dtype=np.int64)
        on, known = _timeline.as_bool(series.values)
        if key.endswith("belted"):
            i = int(np.searchsorted(t, t0_ns, side="right")) - 1
            out[key] = bool(on[i]) if i >= 0 and known[i] else None
            continue
        a, b = np.searchsorted(t, [t0_ns - 500_000_000, t0_ns + 2_000_000_000])
        fired = np.flatnonzero(on[a:b])
        out[key] = {
            "deployed": bool(len(fired)),
            "first_seen_ms_after_t0": round((int(t[a + fired[0]]) - t0_ns) / 1e6, 1) if len(fired) else None,
        }
    return out


# --- the learned model cross-check --------------------------------------------------------------------------------


def _learned_module() -> Any:
    return importlib.import_module(_timeline.__name__.rsplit(".", 1)[0] + ".learned")


def learned_check(t_ns: Any, ax: FloatArray, ay: FloatArray, event: Any, findings: list[dict[str, Any]]) -> Any:
    """The learned model's view of the event and whether it agrees with the physics fit (None: no model)."""
    try:
        model = _learned_module().LearnedModel.load()
    except Exception as exc:  # a missing or broken model must not sink the report
        findings.append(_finding("learned-model-unavailable", "info", f"learned model unavailable ({exc})"))
        return None
    contact = int(event.contact.t_ns)
    a, b = np.searchsorted(t_ns, [contact - 1_000_000_000, contact + 1_000_000_000])
    try:
        got = model.assess(t_ns[a:b], ax[a:b], ay[a:b], contact_ns=contact)
    except Exception as exc:
        findings.append(_finding("learned-model-failed", "warning", f"the learned model failed: {exc}"))
        return {"model_digest": str(model.digest), "available": False}
    diff_ms = (int(got.contact_ns) - contact) / 1e6
    combined = math.hypot(float(got.contact_sigma_ms), float(event.contact.sigma_ms))
    return {
        "available": True,
        "model_digest": str(model.digest),
        "crash_probability": round(float(got.crash_probability), 4),
        "direction": str(got.direction),
        "direction_probabilities": {str(k): round(float(v), 4) for k, v in got.direction_probabilities.items()},
        "direction_agrees": str(got.direction) == event.direction,
        "contact_ns": int(got.contact_ns),
        "contact_sigma_ms": round(float(got.contact_sigma_ms), 3),
        "contact_difference_ms": round(diff_ms, 3),
        "contact_consistent": abs(diff_ms) <= 2 * combined,
    }


# --- the report ---------------------------------------------------------------------------------------------------


def _core_digest() -> str:
    """SHA-256 over the analysis core's files (names and bytes), as it ran."""
    folder = Path(_timeline.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\n" + path.read_bytes())
    return "sha256:" + digest.hexdigest()


def _event_json(event: Any) -> dict[str, Any]:
    out: dict[str, Any] = event.to_json()
    return out


def run(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The accident report content for the granted ``inputs`` (signal name -> series with t_ns and values)."""
    findings: list[dict[str, Any]] = []
    name, t_ns, ax, ay, az = _acceleration(inputs)
    speed = inputs.get(SPEED)
    detection = _detect.detect_collisions(
        t_ns,
        ax,
        ay,
        vertical=az,
        speed_t_ns=None if speed is None else np.asarray(speed.t_ns),
        speed_kmh=None if speed is None else _floats(speed),
    )
    findings += [f.to_json() for f in detection.findings]
    timeline = _timeline.build_timeline(inputs)
    findings += timeline.findings
    clock = params.get("clock_source")
    if not clock:
        findings.append(_finding("clock-source-unstated", "warning", "the clock source of the data was not stated"))
    events = detection.events
    first = events[0] if events else None
    lateral = ay if ay is not None else np.zeros(len(ax))
    report: dict[str, Any] = {
        "format": FORMAT,
        "case_id": str(params.get("case_id", "")) or None,
        "vehicle": str(params.get("vehicle", "")) or None,
        "clock_source": str(clock) if clock else None,
        "acceleration_signal": name,
        "sample_rate_hz": round(detection.sample_rate_hz, 3),
        "collision": first is not None,
        "t0_ns": None if first is None else int(first.t0_ns),
        "contact_ns": None if first is None else int(first.contact.t_ns),
        "contact_sigma_ms": None if first is None else round(first.contact.sigma_ms, 4),
        "events": [_event_json(e) for e in events],
        "pre_crash": None,
        "pulse": None,
        "restraints": None,
        "automation": timeline.to_json(),
        "pre_crash_control": None,
        "liability": None,
        "learned": None,
    }
    if first is None:
        findings.append(_finding("no-collision", "info", "no collision found: no pre-crash history or liability"))
    else:
        t0 = int(first.t0_ns)
        report["pre_crash"] = pre_crash(inputs, t0)
        report["pulse"] = pulse_summary(t_ns, ax, lateral, first)
        report["restraints"] = restraints(inputs, t0)
        report["pre_crash_control"] = _timeline.control_window(timeline, t0, 10.0)
        report["liability"] = _liability.liability_indication(inputs, timeline, t0, params.get("rule_sets"))
        report["learned"] = learned_check(t_ns, ax, lateral, first, findings)
        for missing in report["pre_crash"]["missing"]:
            findings.append(_finding("pre-crash-signal-missing", "info", f"no {missing} samples for the history"))
    report["findings"] = findings
    report["digests"] = {
        "inputs": params.get("input_digests"),
        "core": _core_digest(),
        "rules": [s["sha256"] for s in (report["liability"] or {}).get("rule_sets", [])],
        "model": (report["learned"] or {}).get("model_digest"),
    }
    safe: dict[str, Any] = json_safe(report)
    return safe


JSON_SAFE_INT = 2**53


def json_safe(value: Any) -> Any:
    """``value`` with integers beyond ±2^53 (nanosecond times) as decimal strings: a signed report is RFC 8785
    canonical JSON, which carries numbers as IEEE doubles and would round them. Readers use ``restore_ns``."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > JSON_SAFE_INT:
        return str(value)
    return value
