"""The report's figures, drawn with matplotlib's Agg backend (no display): pulse, pre-crash signals, automation.

Each function takes the report content (the dict ``run`` returns) and returns a Figure, or None when the content
has nothing to draw. Times are relative to T0.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure
from matplotlib.patches import Patch

STATE_COLOURS = {
    "system": "#1f77b4",
    "transition": "#ff7f0e",
    "mrm": "#d62728",
    "driver": "#2ca02c",
    "unknown": "#bbbbbb",
}
PRE_CRASH_PANELS = (
    ("Speed (km/h)", ("Vehicle.Speed",)),
    ("Pedals (%)", ("Vehicle.Chassis.Accelerator.PedalPosition", "Vehicle.Chassis.Brake.PedalPosition")),
    ("Steering (deg, deg/s)", ("Vehicle.Chassis.SteeringWheel.Angle", "Vehicle.Chassis.SteeringWheel.AngularSpeed")),
)


def _numbers(values: list[Any]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def pulse_figure(report: dict[str, Any]) -> Figure | None:
    pulse = report.get("pulse")
    if not pulse:
        return None
    fig = Figure(figsize=(8, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    t = _numbers(pulse["t_ms"])
    ax.plot(t, _numbers(pulse["longitudinal_ms2"]), label="longitudinal", color="#1f77b4")
    ax.plot(t, _numbers(pulse["lateral_ms2"]), label="lateral", color="#ff7f0e")
    ax.axvline(0.0, color="black", linestyle="--", label="T0")
    contact, sigma = float(pulse["contact_ms"]), float(pulse["contact_sigma_ms"])
    ax.axvline(contact, color="#d62728", label=f"contact ± 2σ ({sigma:.2f} ms)")
    ax.axvspan(contact - 2 * sigma, contact + 2 * sigma, color="#d62728", alpha=0.15)
    ax.set_xlabel("time from T0 (ms)")
    ax.set_ylabel("acceleration (m/s²)")
    ax.set_title(f"Crash pulse ({pulse['filter']})", fontsize=9)
    twin = ax.twinx()
    twin.plot(t, _numbers(pulse["delta_v_longitudinal_kmh"]), color="#1f77b4", alpha=0.4, linestyle=":")
    twin.plot(t, _numbers(pulse["delta_v_lateral_kmh"]), color="#ff7f0e", alpha=0.4, linestyle=":")
    twin.set_ylabel("cumulative ΔV (km/h, dotted)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def pre_crash_figure(report: dict[str, Any]) -> Figure | None:
    history = report.get("pre_crash")
    if not history or not (history["signals"] or history["flags"]):
        return None
    signals, flags = history["signals"], history["flags"]
    panels = [(title, [n for n in names if n in signals]) for title, names in PRE_CRASH_PANELS]
    panels = [p for p in panels if p[1]]
    rows = len(panels) + (1 if flags else 0)
    fig = Figure(figsize=(8, 1.9 * rows + 0.6))
    lo = float(history["from_s"])
    for row, (title, names) in enumerate(panels, start=1):
        ax = fig.add_subplot(rows, 1, row)
        for name in names:
            xs: list[float] = []
            ys: list[float] = []
            for seg in signals[name]["segments"]:
                xs += [seg["from_s"], seg["to_s"], float("nan")]
                ys += [seg["value"], seg["value"], float("nan")]
            ax.plot(xs, ys, label=name.split(".", 1)[1])
        ax.set_ylabel(title, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left")
        ax.set_xlim(lo, 0)
    if flags:
        ax = fig.add_subplot(rows, 1, rows)
        names = list(flags)
        for i, name in enumerate(names):
            bars = [(p["from_s"], max(p["to_s"] - p["from_s"], 0.02)) for p in flags[name]]
            ax.broken_barh(bars, (i + 0.1, 0.8), color="#d62728")
        ax.set_yticks([i + 0.5 for i in range(len(names))], [n.split(".", 1)[1] for n in names], fontsize=6)
        ax.set_xlim(lo, 0)
        ax.set_ylim(0, len(names))
        ax.grid(alpha=0.3, axis="x")
    fig.axes[-1].set_xlabel(f"time before T0 (s); {history['window_s']} s window statistics")
    fig.suptitle("Pre-crash history (EDR-style summaries)", fontsize=10)
    fig.tight_layout()
    return fig


def _seconds(t_ns: int | None, t0_ns: int) -> float | None:
    return None if t_ns is None else (t_ns - t0_ns) / 1e9


def automation_figure(report: dict[str, Any]) -> Figure | None:
    intervals = report["automation"]["intervals"]
    if not intervals:
        return None
    t0 = report["t0_ns"] if report["t0_ns"] is not None else intervals[-1]["end"]["after_ns"]
    lo, hi = -20.0, 2.0
    fig = Figure(figsize=(8, 1.9))
    ax = fig.add_subplot(1, 1, 1)
    for item in intervals:
        start = _seconds(item["start"]["by_ns"] or item["start"]["after_ns"], t0)
        end = _seconds(item["end"]["by_ns"] or item["end"]["after_ns"], t0)
        start = lo if start is None else max(start, lo)
        end = hi if end is None else min(end, hi)
        if end <= start:
            continue
        ax.broken_barh([(start, end - start)], (0, 1), color=STATE_COLOURS[item["state"]])
        # the stretch between the two samples around a change: the change happened somewhere in it
        after, by = _seconds(item["start"]["after_ns"], t0), _seconds(item["start"]["by_ns"], t0)
        if after is not None and by is not None and by > after and lo <= by <= hi:
            ax.broken_barh([(after, by - after)], (0, 1), facecolor="white", hatch="////", edgecolor="black")
    for demand in report["automation"]["transition_demands"]:
        at = _seconds(demand["start"]["by_ns"], t0)
        if at is not None and lo <= at <= hi:
            ax.annotate("takeover request", (at, 1.0), xytext=(at, 1.35), fontsize=7, arrowprops={"arrowstyle": "->"})
    ax.axvline(0.0, color="black", linestyle="--")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1.6)
    ax.set_yticks([])
    ax.set_xlabel("time from T0 (s)")
    handles = [Patch(color=c, label=s) for s, c in STATE_COLOURS.items()]
    ax.legend(handles=handles, ncol=5, fontsize=7, loc="upper left", frameon=False)
    ax.set_title("Who was in control (hatched: change between two status samples)", fontsize=9)
    fig.tight_layout()
    return fig


def all_figures(report: dict[str, Any]) -> list[tuple[str, Figure]]:
    from trustlane.accident.report.schema import restore_ns

    report = restore_ns(report)
    made = [
        ("Crash pulse", pulse_figure(report)),
        ("Pre-crash signals", pre_crash_figure(report)),
        ("Automation timeline", automation_figure(report)),
    ]
    return [(title, fig) for title, fig in made if fig is not None]
