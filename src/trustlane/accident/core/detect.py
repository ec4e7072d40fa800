"""Find collisions in a recording and time them.

1. Check the input (time order, rate, gaps, saturation) — refuse what cannot be analysed, report the rest.
2. Candidates: samples where the 20 ms delta-V exceeds 0.8 km/h both as sensed and with the driving
   acceleration of the preceding 0.3 s removed; candidates closer than 100 ms form one event.
3. Per event: regulatory time zero, end, trigger and lock from the sensed acceleration (as an EDR computes
   them); collision delta-V and direction with the driving acceleration removed; the contact time from the
   onset fit (:mod:`.contact`; below 300 Hz :mod:`.contact_lowrate`); where the learned estimate disagrees
   (:mod:`.crosscheck`), the fit confined near it when the samples allow (a ``contact-refit`` finding), else
   the free fit with its σ widened.
4. Only collisions are reported: 8 km/h or more within 150 ms, or 5 km/h or more from a sustained pulse that
   the vehicle speed confirms. Potholes, curb strikes, door slams and braking stay findings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .contact import ContactFit, fit_contact, smooth_for_search
from .contact_lowrate import fit_contact_lowrate
from .crosscheck import PROFILE_CHI2_95, Crosschecked, crosscheck, learned_contact
from .errors import SignalError
from .events import CollisionEvent, ContactEstimate, Finding
from .kinematics import KMH, cumulative_velocity, velocity_at
from .quality import check_rate, clipped_runs, gap_edges, nominal_period_ns, require_increasing
from .regulatory import T0_DELTA_V, T0_WINDOW_S, TRIGGER_DELTA_V, TRIGGER_WINDOW_S, first_t0, trigger_and_lock
from .response import Response, estimate_response

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

BASELINE_FAR_S = 0.35
BASELINE_NEAR_S = 0.05
MERGE_S = 0.10
LOW_SEVERITY_DELTA_V = 5.0 * KMH
#: below this rate a rise spans too few samples to read the recorder's filter: use the smeared-onset fit
LOW_RATE_HZ = 300.0
MIN_SUSTAINED_S = 0.030
RESPONSE_WINDOW_S = 120.0


@dataclass(frozen=True)
class Detection:
    events: list[CollisionEvent]
    findings: list[Finding]
    sample_rate_hz: float


@dataclass
class _Context:
    """Everything about one gap-free stretch of samples."""

    t_ns0: int
    t: FloatArray
    ax: FloatArray
    ay: FloatArray
    usable: BoolArray
    dt: float
    vertical: FloatArray | None
    speed: tuple[FloatArray, FloatArray] | None  # (t in s on this stretch's origin, km/h)
    has_lateral: bool
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vx = cumulative_velocity(self.t, self.ax)
        self.vy = cumulative_velocity(self.t, self.ay)
        # the median spectrum of up to two minutes of samples ignores the few segments a crash occupies
        self.response: Response = estimate_response(self.ax[: int(RESPONSE_WINDOW_S / self.dt)], 1.0 / self.dt)

    def ns(self, seconds: float) -> int:
        return self.t_ns0 + round(seconds * 1e9)

    def index(self, seconds: float) -> int:
        return int(np.clip(np.searchsorted(self.t, seconds), 0, len(self.t) - 1))


def _as_float(values: npt.ArrayLike, what: str, n: int) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (n,):
        raise SignalError(f"{what}: {out.shape[0] if out.ndim else 0} values for {n} timestamps", hint="align it")
    return out


def detect_collisions(
    t_ns: npt.ArrayLike,
    longitudinal: npt.ArrayLike,
    lateral: npt.ArrayLike | None = None,
    *,
    vertical: npt.ArrayLike | None = None,
    speed_t_ns: npt.ArrayLike | None = None,
    speed_kmh: npt.ArrayLike | None = None,
) -> Detection:
    """Collisions in acceleration sampled at ``t_ns`` (int ns, UTC), m/s², x forward, y left.

    ``vertical`` (same times) and the vehicle speed (its own times, km/h) are optional corroboration.
    """
    times = np.asarray(t_ns, dtype=np.int64)
    n = len(times)
    ax = _as_float(longitudinal, "longitudinal acceleration", n)
    ay = _as_float(lateral, "lateral acceleration", n) if lateral is not None else np.zeros(n)
    az = _as_float(vertical, "vertical acceleration", n) if vertical is not None else None
    findings: list[Finding] = []
    finite = np.isfinite(ax) & np.isfinite(ay)
    if not finite.all():
        findings.append(
            Finding(
                "missing-samples",
                "warning",
                f"{int((~finite).sum())} acceleration samples are empty or not finite; left out",
            )
        )
        times, ax, ay = times[finite], ax[finite], ay[finite]
        az = az[finite] if az is not None else None
    require_increasing(times, "acceleration")
    rate = check_rate(times, "acceleration")
    if lateral is None:
        findings.append(
            Finding("no-lateral", "warning", "no lateral acceleration: side impacts are neither found nor timed")
        )
    usable = np.ones(len(times), dtype=bool)
    for axis, values in (("longitudinal", ax), ("lateral", ay)):
        for run in clipped_runs(values):
            usable[run.start : run.stop] = False
            findings.append(
                Finding(
                    "clipped",
                    "warning",
                    f"{axis} acceleration stuck at {run.level:.1f} m/s² for {run.stop - run.start} samples: "
                    "the sensor saturated; delta-V there is a lower bound",
                    int(times[run.start]),
                )
            )
    speed = _speed(speed_t_ns, speed_kmh)
    period = nominal_period_ns(times)
    events: list[CollisionEvent] = []
    stretches = gap_edges(times)
    for k, (start, stop) in enumerate(stretches):
        if k:
            gap_ms = (times[start] - times[start - 1]) / 1e6
            findings.append(
                Finding(
                    "gap",
                    "warning",
                    f"acceleration has a gap of {gap_ms:.1f} ms (nominal period {period / 1e6:.2f} ms): "
                    "a collision inside it cannot be timed",
                    int(times[start - 1]),
                )
            )
        if stop - start < 20:
            continue
        origin = int(times[start])
        ctx = _Context(
            t_ns0=origin,
            t=(times[start:stop] - origin) / 1e9,
            ax=ax[start:stop],
            ay=ay[start:stop],
            usable=usable[start:stop],
            dt=float(np.median(np.diff(times[start:stop]))) / 1e9,
            vertical=az[start:stop] if az is not None else None,
            speed=((speed[0] - origin) / 1e9, speed[1]) if speed is not None else None,
            has_lateral=lateral is not None,
        )
        events.extend(_analyse(ctx))
        findings.extend(ctx.findings)
    return Detection(events, findings, rate)


def _speed(t_ns: npt.ArrayLike | None, kmh: npt.ArrayLike | None) -> tuple[IntArray, FloatArray] | None:
    if t_ns is None or kmh is None:
        return None
    times = np.asarray(t_ns, dtype=np.int64)
    values = np.asarray(kmh, dtype=np.float64)
    ok = np.isfinite(values)
    if int(ok.sum()) < 2:
        return None
    return times[ok], values[ok]


def _clusters(ctx: _Context) -> list[tuple[int, int]]:
    """Runs of samples whose baseline-corrected 20 ms delta-V exceeds 0.8 km/h, merged when < 100 ms apart."""
    t = ctx.t
    hits = np.zeros(len(t), dtype=bool)
    for v in (ctx.vx, ctx.vy):
        base = (velocity_at(t, v, t - BASELINE_NEAR_S) - velocity_at(t, v, t - BASELINE_FAR_S)) / (
            BASELINE_FAR_S - BASELINE_NEAR_S
        )
        raw = velocity_at(t, v, t + T0_WINDOW_S) - v
        # both the sensed change and the change beyond the driving level must pass: after a pulse the trailing
        # baseline holds the pulse itself, and the sensed change alone would count hard braking
        hits |= np.minimum(np.abs(raw), np.abs(raw - base * T0_WINDOW_S)) > T0_DELTA_V
    idx = np.flatnonzero(hits)
    if not len(idx):
        return []
    splits = np.flatnonzero(np.diff(t[idx]) > MERGE_S) + 1
    groups = np.split(idx, splits)
    return [(int(g[0]), int(g[-1])) for g in groups]


def _analyse(ctx: _Context) -> list[CollisionEvent]:
    events: list[CollisionEvent] = []
    clusters = _clusters(ctx)
    previous_end = -math.inf
    for k, (c0, c1) in enumerate(clusters):
        next_start = ctx.t[clusters[k + 1][0]] if k + 1 < len(clusters) else math.inf
        event = _event(ctx, c0, c1, previous_end, next_start)
        previous_end = ctx.t[c1] + T0_WINDOW_S
        if event is not None:
            events.append(event)
    return events


def _baseline(ctx: _Context, c0: int) -> tuple[float, float]:
    """Mean driving acceleration over [−0.35 s, −0.05 s] before the first candidate sample."""
    t_start = ctx.t[c0]
    far = max(ctx.t[0], t_start - BASELINE_FAR_S)
    near = t_start - BASELINE_NEAR_S
    if near - far < 0.02:
        ctx.findings.append(
            Finding(
                "no-baseline",
                "warning",
                "an event starts at the beginning of the data: no driving baseline",
                ctx.ns(t_start),
            )
        )
        return 0.0, 0.0
    bx = float((np.interp(near, ctx.t, ctx.vx) - np.interp(far, ctx.t, ctx.vx)) / (near - far))
    by = float((np.interp(near, ctx.t, ctx.vy) - np.interp(far, ctx.t, ctx.vy)) / (near - far))
    return bx, by


def _event(ctx: _Context, c0: int, c1: int, previous_end: float, next_start: float) -> CollisionEvent | None:
    t = ctx.t
    bx, by = _baseline(ctx, c0)
    cx = ctx.vx - bx * t  # velocity with the driving acceleration removed
    cy = ctx.vy - by * t
    t_end = t[c1] + T0_WINDOW_S
    lo = ctx.index(max(t[c0] - 0.2, previous_end, t[0]))
    hi = ctx.index(min(t_end + 0.03, next_start)) + 1
    # severity: largest baseline-corrected resultant change within 150 ms
    starts = t[lo:hi]
    sev_x = np.interp(starts + TRIGGER_WINDOW_S, t, cx) - cx[lo:hi]
    sev_y = np.interp(starts + TRIGGER_WINDOW_S, t, cy) - cy[lo:hi]
    severity = float(np.max(np.hypot(sev_x, sev_y)))
    before = max(t[c0] - 0.02, t[lo])
    dx = float(np.interp(t_end, t, cx) - np.interp(before, t, cx))
    dy = float(np.interp(t_end, t, cy) - np.interp(before, t, cy))
    peak_i = int(np.argmax(np.hypot(sev_x, sev_y)))
    if math.hypot(dx, dy) < 0.3 * severity:  # rebounding pulse: take the direction of the strongest change
        dx, dy = float(sev_x[peak_i]), float(sev_y[peak_i])
    norm = math.hypot(dx, dy) or 1.0
    ux, uy = dx / norm, dy / norm
    pulse = (ctx.ax - bx) * ux + (ctx.ay - by) * uy
    when = ctx.ns(t[c0])
    sustained = _sustained(ctx, pulse, lo, hi)
    is_collision = severity >= TRIGGER_DELTA_V or (
        severity >= LOW_SEVERITY_DELTA_V
        and sustained >= MIN_SUSTAINED_S
        and _corroborated(ctx, pulse, lo, hi, dx, t_end, bx)
    )
    if not is_collision:
        ctx.findings.append(
            Finding(
                "non-collision-event",
                "info",
                f"pulse of {severity / KMH:.1f} km/h within 150 ms, {sustained * 1e3:.0f} ms sustained: "
                "below the collision thresholds (8 km/h; or 5 km/h sustained and confirmed by speed)",
                when,
            )
        )
        return None
    if 1.0 / ctx.dt < LOW_RATE_HZ:
        fit = fit_contact_lowrate(t, pulse, ctx.usable, lo, hi, ctx.dt)
    else:
        fit = fit_contact(t, pulse, ctx.usable, lo, hi, ctx.dt, ctx.response)
    if fit is None:
        ctx.findings.append(Finding("no-contact-fit", "warning", "the pulse onset could not be fitted", when))
        tc, sigma_s = t[c0], 2 * ctx.dt
        contact = ContactEstimate(ctx.ns(tc), sigma_s * 1e3, "none", 0.0, 0.0)
    else:
        learned = learned_contact(t, ctx.t_ns0, ctx.ax, ctx.ay, ctx.vertical, fit.tc)
        refit = None
        if 1.0 / ctx.dt >= LOW_RATE_HZ:

            def refit(window: tuple[float, float]) -> ContactFit | None:
                return fit_contact(t, pulse, ctx.usable, lo, hi, ctx.dt, ctx.response, window)

        checked = crosscheck(fit, learned, refit)
        if checked.refit_chi2 is not None:
            ctx.findings.append(_refit_finding(fit.tc, checked, ctx.ns(checked.fit.tc)))
        fit, tc = checked.fit, checked.fit.tc
        contact = ContactEstimate(
            ctx.ns(tc), checked.sigma * 1e3, fit.model, fit.rise * 1e3, fit.blur * 1e3, fit.weights
        )
    t0_i = first_t0(t, ctx.vx, ctx.vy, ctx.index(max(tc - 0.05, t[lo])), c1 + 1)
    basis = "sensed"
    if t0_i is None:
        t0_i, basis = c0, "baseline-corrected"
    t0 = t[t0_i]
    dvx = float(np.interp(t_end, t, cx) - np.interp(tc, t, cx))
    dvy = float(np.interp(t_end, t, cy) - np.interp(tc, t, cy))
    # sensed cumulative delta-V from T0, as an EDR records it, over at least 250 ms
    m_hi = ctx.index(min(max(t_end, t0 + 0.25), next_start)) + 1
    mx = ctx.vx[t0_i:m_hi] - ctx.vx[t0_i]
    my = ctx.vy[t0_i:m_hi] - ctx.vy[t0_i]
    mag = np.hypot(mx, my)
    at = int(np.argmax(mag))
    trigger, lock = trigger_and_lock(t, ctx.vx, ctx.vy, t0_i, ctx.index(t_end) + 1)
    pdof = math.degrees(math.atan2(dvy, dvx))
    return CollisionEvent(
        t0_ns=ctx.ns(t0),
        t0_basis=basis,
        end_ns=ctx.ns(t_end),
        contact=contact,
        delta_v_kmh=math.hypot(dvx, dvy) / KMH,
        delta_v_longitudinal_kmh=dvx / KMH,
        delta_v_lateral_kmh=dvy / KMH,
        max_delta_v_kmh=float(mag[at]) / KMH,
        max_delta_v_ns=ctx.ns(t[t0_i + at]),
        max_delta_v_longitudinal_kmh=float(mx[int(np.argmax(np.abs(mx)))]) / KMH,
        max_delta_v_lateral_kmh=float(my[int(np.argmax(np.abs(my)))]) / KMH,
        peak_acceleration_ms2=float(np.max(np.abs(pulse[lo:hi]))),
        direction=struck_side(pdof),
        pdof_deg=pdof,
        trigger=trigger,
        lock=lock,
        clipped=not bool(ctx.usable[lo:hi].all()),
    )


def _refit_finding(free_tc: float, checked: Crosschecked, when: int) -> Finding:
    """The report's record that the contact time comes from the onset fit confined near the learned estimate."""
    return Finding(
        "contact-refit",
        "info",
        f"contact from the onset fit confined near the learned estimate, {(checked.fit.tc - free_tc) * 1e3:+.2f} ms "
        f"from the free fit, which fits the samples no better than the noise allows (Δχ² {checked.refit_chi2:.2f} "
        f"≤ {PROFILE_CHI2_95}); σ covers both",
        when,
    )


def struck_side(pdof_deg: float) -> str:
    """The side struck, from the direction of the velocity change (a front impact slows the vehicle: 180°)."""
    if abs(pdof_deg) >= 135:
        return "front"
    if abs(pdof_deg) <= 45:
        return "rear"
    return "left" if pdof_deg < 0 else "right"


def _sustained(ctx: _Context, pulse: FloatArray, lo: int, hi: int) -> float:
    """How long (s) the smoothed pulse stays above a quarter of its peak."""
    s = smooth_for_search(pulse[lo:hi], ctx.dt)
    peak = float(np.max(s)) if len(s) else 0.0
    if peak <= 0:
        return 0.0
    return float(np.count_nonzero(s >= 0.25 * peak)) * ctx.dt


def _corroborated(ctx: _Context, pulse: FloatArray, lo: int, hi: int, dx: float, t_end: float, bx: float) -> bool:
    """A low-severity pulse counts when it is not a road input (vertical dominates) and the speed agrees."""
    if ctx.vertical is not None:
        vertical = ctx.vertical[lo:hi] - float(np.median(ctx.vertical[lo:hi]))
        if float(np.max(np.abs(vertical))) > float(np.max(np.abs(pulse[lo:hi]))):
            return False
    if ctx.speed is None:
        return True
    st, kmh = ctx.speed
    if st[0] > ctx.t[lo] - 0.3 or st[-1] < t_end + 0.5:
        return True
    before, after = ctx.t[lo] - 0.3, t_end + 0.5
    change = float(np.interp(after, st, kmh) - np.interp(before, st, kmh)) * KMH - bx * (after - before)
    return bool(abs(change - dx) <= 0.5 * abs(dx) + 1.0 * KMH)
