"""The collision timing core on arrays: filters, time zero, direction, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from trustlane.accident.core import SignalError, detect_collisions
from trustlane.accident.core.contact import ContactFit, fit_contact
from trustlane.accident.core.crosscheck import (
    PROFILE_CHI2_95,
    REFIT_SIGMAS,
    Crosschecked,
    crosscheck,
    crosschecked_sigma,
    refit_chi2,
)
from trustlane.accident.core.detect import Detection, struck_side
from trustlane.accident.core.events import CollisionEvent
from trustlane.accident.core.j211 import cfc_coefficients, cfc_filter
from trustlane.accident.core.kinematics import cumulative_velocity
from trustlane.accident.core.onset import TERMS, OnsetModel
from trustlane.accident.core.regulatory import first_t0
from trustlane.accident.core.response import estimate_response
from trustlane.accident.generator.recording import generate

T_BASE = 1_700_000_000_000_000_000


@pytest.mark.parametrize("cfc", [60, 180])
def test_cfc_filter_meets_the_j211_corridor(cfc: int) -> None:
    b, a = cfc_coefficients(cfc, 10_000)
    _, response = signal.freqz(b, a, worN=[1.0, cfc, 5 / 3 * cfc], fs=10_000)
    db = 20 * np.log10(np.abs(response) ** 2)  # forward and backward: the square of one pass
    assert db[0] == pytest.approx(0.0, abs=1e-4)
    assert -0.5 < db[1] <= 0.5  # flat up to the class frequency
    assert -4.0 < db[2] <= 0.5  # J211 corridor at F_H = 5/3 CFC


def test_cfc_filter_has_no_delay() -> None:
    t = np.arange(2000) / 1000
    x = np.exp(-(((t - 1.0) / 0.02) ** 2))
    y = cfc_filter(x, 1000, 60)
    assert int(np.argmax(y)) == 1000


def test_cfc_class_too_high_for_rate_is_refused() -> None:
    with pytest.raises(SignalError, match="sample rate"):
        cfc_coefficients(180, 500)


def _pulse_record(
    rate: int, contact: float, dv_kmh: float, angle_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(0, 4.0, 1 / rate)
    duration = 0.08
    u = (t - contact) / duration
    shape = np.where((u >= 0) & (u <= 1), np.sin(np.pi * np.clip(u, 0, 1)), 0.0)
    peak = dv_kmh / 3.6 / (2 * duration / np.pi)
    rng = np.random.default_rng(5)
    ax = peak * shape * np.cos(np.radians(angle_deg)) + rng.normal(0, 0.05, len(t))
    ay = peak * shape * np.sin(np.radians(angle_deg)) + rng.normal(0, 0.05, len(t))
    return (T_BASE + np.round(t * 1e9)).astype(np.int64), ax, ay


def test_time_zero_is_first_20ms_window_over_0_8_kmh() -> None:
    t_ns, ax, ay = _pulse_record(1000, 2.0, 30, 180)
    t = (t_ns - T_BASE) / 1e9
    i = first_t0(t, cumulative_velocity(t, ax), cumulative_velocity(t, ay), 0, len(t))
    assert i is not None
    window = cumulative_velocity(t, ax)
    assert abs(window[i + 20] - window[i]) * 3.6 > 0.8
    assert abs(window[i + 19] - window[i - 1]) * 3.6 <= 0.8


@pytest.mark.parametrize(("angle", "side"), [(180, "front"), (0, "rear"), (-90, "left"), (90, "right")])
def test_detects_collision_side_delta_v_and_contact(angle: float, side: str) -> None:
    t_ns, ax, ay = _pulse_record(1000, 2.0004, 20, angle)
    result = detect_collisions(t_ns, ax, ay)
    assert len(result.events) == 1
    event = result.events[0]
    assert event.direction == side
    assert event.delta_v_kmh == pytest.approx(20, rel=0.05)
    assert event.trigger and not event.lock
    error_ms = (event.contact.t_ns - (T_BASE + 2_000_400_000)) / 1e6
    assert abs(error_ms) < 3 * max(event.contact.sigma_ms, 0.5)


def test_small_pulse_is_not_a_collision() -> None:
    t_ns, ax, ay = _pulse_record(1000, 2.0, 3.5, 180)
    result = detect_collisions(t_ns, ax, ay)
    assert result.events == []
    assert [f.code for f in result.findings] == ["non-collision-event"]


def test_struck_side_sectors() -> None:
    assert [struck_side(a) for a in (170, -170, 10, -100, 100)] == ["front", "front", "rear", "left", "right"]


def test_duplicate_timestamps_are_refused() -> None:
    t_ns, ax, ay = _pulse_record(1000, 2.0, 25, 180)
    t_ns[100] = t_ns[99]
    with pytest.raises(SignalError, match="repeats"):
        detect_collisions(t_ns, ax, ay)


def test_rate_too_low_is_refused() -> None:
    t_ns, ax, ay = _pulse_record(1000, 2.0, 25, 180)
    with pytest.raises(SignalError, match="at least 50 Hz"):
        detect_collisions(t_ns[::50], ax[::50], ay[::50])


def test_gap_and_clipping_are_findings() -> None:
    t_ns, ax, ay = _pulse_record(1000, 2.0, 40, 180)
    ax = np.clip(ax, -120.0, None)
    keep = np.ones(len(t_ns), dtype=bool)
    keep[500:700] = False
    result = detect_collisions(t_ns[keep], ax[keep], ay[keep])
    codes = {f.code for f in result.findings}
    assert {"gap", "clipped"} <= codes
    assert result.events and result.events[0].clipped


@pytest.mark.parametrize(("cfc", "rate"), [(60, 1000), (180, 1000), (60, 500)])
def test_recorder_filter_class_is_read_from_the_noise(cfc: int, rate: int) -> None:
    noise = cfc_filter(np.random.default_rng(cfc).normal(0, 0.2, 20 * rate), rate, cfc)
    assert estimate_response(noise, rate).label == f"SAE J211 CFC {cfc}"


def test_unfiltered_noise_has_no_filter_and_anti_alias_cutoff_is_found() -> None:
    rng = np.random.default_rng(1)
    assert estimate_response(rng.normal(0, 0.2, 20_000), 1000).cutoff_hz is None
    sos = signal.butter(4, 27.0, fs=1000, output="sos")
    slow = signal.sosfiltfilt(sos, rng.normal(0, 0.2, 200_000))[::10]
    response = estimate_response(slow, 100)
    assert response.order == 4 and response.cutoff_hz == pytest.approx(27.0, rel=0.15)


def _unseen_pulse(kind: str, t: np.ndarray, contact: float) -> np.ndarray:
    """Pulse families the scenario generator does not produce."""
    tau = t - contact
    if kind == "two-half-sines":  # a soft structure, then a stiff one 15 ms later
        first = np.where((tau >= 0) & (tau <= 0.05), np.sin(np.pi * np.clip(tau / 0.05, 0, 1)), 0.0)
        second = np.where((tau >= 0.015) & (tau <= 0.085), np.sin(np.pi * np.clip((tau - 0.015) / 0.07, 0, 1)), 0.0)
        return 60.0 * first + 140.0 * second
    # Gaussian rise truncated at contact, then an exponential decay
    rise = np.exp(-0.5 * ((np.clip(tau, 0, 0.03) - 0.03) / 0.012) ** 2) - np.exp(-0.5 * (0.03 / 0.012) ** 2)
    return np.where(tau < 0, 0.0, np.where(tau <= 0.03, rise, rise.max() * np.exp(-(tau - 0.03) / 0.03)) * 180.0)


@pytest.mark.parametrize(("kind", "limit_ms"), [("two-half-sines", 1.0), ("gaussian-onset", 2.5)])
@pytest.mark.parametrize("cfc", [60, 180])
def test_contact_of_pulse_families_the_models_were_not_built_for(kind: str, limit_ms: float, cfc: int) -> None:
    # a Gaussian rise grows faster than any power of (t - tc): the fit starts it early (docs/ACCIDENT.md)
    fine = np.arange(0, 4.0, 1 / 20_000)
    contact = 2.00037
    rng = np.random.default_rng(cfc)
    recorded = cfc_filter(-_unseen_pulse(kind, fine, contact)[::20] + rng.normal(0, 0.15, 4000), 1000, cfc)
    t_ns = T_BASE + np.arange(4000, dtype=np.int64) * 1_000_000
    result = detect_collisions(t_ns, recorded, rng.normal(0, 0.15, 4000))
    assert len(result.events) == 1
    error_ms = (result.events[0].contact.t_ns - (T_BASE + round(contact * 1e9))) / 1e6
    assert abs(error_ms) < limit_ms
    assert abs(error_ms) <= 2 * result.events[0].contact.sigma_ms + 0.5


def _ringing_pulse(t: np.ndarray, contact: float, shape: str, ring_hz: float) -> np.ndarray:
    """A crash pulse whose impact also rings the structure from the instant of contact."""
    tau = t - contact
    u = np.clip(tau / 0.09, 0.0, 1.0)
    body = np.sin(np.pi * u) ** 2 if shape == "haversine" else np.sin(np.pi * u)
    ring = np.exp(-0.08 * 2 * np.pi * ring_hz * np.clip(tau, 0, None)) * np.sin(2 * np.pi * ring_hz * tau)
    return np.where(tau >= 0, 150.0 * (np.where(tau <= 0.09, body, 0.0) + 0.2 * ring), 0.0)


@pytest.mark.parametrize(("shape", "ring_hz", "cfc"), [("haversine", 90.0, 180), ("half-sine", 300.0, 60)])
def test_contact_is_where_the_ringing_starts_not_where_the_pulse_climbs(shape: str, ring_hz: float, cfc: int) -> None:
    # slow ringing lifts and drops the signal before the main rise; fast ringing leaves a small bump that a
    # smooth onset started milliseconds early would otherwise absorb
    fine = np.arange(0, 4.0, 1 / 20_000)
    contact = 2.00061
    rng = np.random.default_rng(int(ring_hz))
    recorded = cfc_filter(-_ringing_pulse(fine, contact, shape, ring_hz)[::20] + rng.normal(0, 0.15, 4000), 1000, cfc)
    t_ns = T_BASE + np.arange(4000, dtype=np.int64) * 1_000_000
    result = detect_collisions(t_ns, recorded, rng.normal(0, 0.15, 4000))
    assert len(result.events) == 1
    error_ms = (result.events[0].contact.t_ns - (T_BASE + round(contact * 1e9))) / 1e6
    assert abs(error_ms) < 1.0
    assert abs(error_ms) <= 2 * result.events[0].contact.sigma_ms


@pytest.mark.parametrize(("ring_hz", "contact"), [(330.0, 2.00061), (410.0, 2.00061), (410.0, 2.00143)])
def test_500hz_contact_with_ringing_faster_than_the_samples_resolve(ring_hz: float, contact: float) -> None:
    # filtered at 1 kHz, then every 2nd sample kept: the ringing lies above the samples' Nyquist frequency,
    # and its footprint after the CFC 60 filter (a pulse at contact) pins where the slope starts
    fine = np.arange(0, 4.0, 1 / 20_000)
    rng = np.random.default_rng(int(ring_hz))
    pulse = -_ringing_pulse(fine, contact, "half-sine", ring_hz)[::20]
    recorded = cfc_filter(pulse + rng.normal(0, 0.3, 4000), 1000, 60)
    t_ns = T_BASE + np.arange(0, 4000, 2, dtype=np.int64) * 1_000_000
    result = detect_collisions(t_ns, recorded[::2], rng.normal(0, 0.15, 2000))
    assert len(result.events) == 1
    estimate = result.events[0].contact
    error_ms = (estimate.t_ns - (T_BASE + round(contact * 1e9))) / 1e6
    assert abs(error_ms) < 1.0
    assert abs(error_ms) <= 2 * estimate.sigma_ms < 3.0  # honest and still sharp


def _detect_generated(scenario: str, seed: int, rate_hz: int) -> tuple[Detection, int, CollisionEvent]:
    """Detection on a 20 s generated recording: the result, the true contact (ns), the event nearest it."""
    rec = generate(scenario, seed, 20.0, rate_hz)
    channels = {c.name.rsplit(".", 1)[-1]: c for c in rec.channels if "Acceleration" in c.name}
    t_ns = rec.start_ns + np.round(channels["Longitudinal"].t_s * 1e9).astype(np.int64)
    result = detect_collisions(
        t_ns, channels["Longitudinal"].values, channels["Lateral"].values, vertical=channels["Vertical"].values
    )
    truth = rec.truth["collisions"][0]["contact_ns"]
    event = min(result.events, key=lambda e: abs(e.contact.t_ns - truth))
    return result, truth, event


def test_500hz_sloped_pulse_with_fast_ringing_is_not_started_early() -> None:
    # development seed 120 (front, triangular, CFC 60, ringing at 346 Hz): fitted as a sinusoid the
    # ringing aliased, and the onset started 5.6 ms early
    _, truth, event = _detect_generated("front", 120, 500)
    error_ms = (event.contact.t_ns - truth) / 1e6
    assert abs(error_ms) < 1.5
    assert abs(error_ms) <= 2 * event.contact.sigma_ms


def test_fast_ringing_footprint_is_a_unit_pulse_at_contact() -> None:
    t = np.arange(0.0, 40.0, 2.0)
    response = estimate_response(cfc_filter(np.random.default_rng(3).normal(0, 1, 20_000)[::2], 1000, 60), 500)
    model = OnsetModel(t, np.zeros(len(t)), response, 5.0, 8, None, True)
    assert model.onset_terms == TERMS + 1
    tcs = np.array([10.0, 13.3, 17.75])
    footprint = model.footprint(tcs)
    assert np.allclose(footprint.sum(axis=0), 1.0)
    assert np.allclose(model.grid @ footprint, tcs)  # the pulse's centre is the contact time


@pytest.mark.parametrize("contact", [2.0003, 2.0041, 2.0077])
def test_100hz_uses_the_smeared_onset_fit_and_finds_contact_between_samples(contact: float) -> None:
    t_ns, ax, ay = _pulse_record(100, contact, 25, 180)
    result = detect_collisions(t_ns, ax, ay)
    assert len(result.events) == 1
    estimate = result.events[0].contact
    assert estimate.model in {"linear", "quadratic", "cubic"}  # the low-rate engine's model families
    error_ms = (estimate.t_ns - (T_BASE + round(contact * 1e9))) / 1e6
    assert abs(error_ms) < 5.0  # half a sample period: the fit resolves time between the samples
    assert abs(error_ms) <= 2 * estimate.sigma_ms


def test_1khz_uses_the_recorder_filter_fit() -> None:
    t_ns, ax, ay = _pulse_record(1000, 2.0004, 25, 180)
    estimate = detect_collisions(t_ns, ax, ay).events[0].contact
    assert estimate.model in {"power", "ringing"}


def test_calibrated_sigma_inflates_and_floors_the_raw_sigma() -> None:
    from trustlane.accident.core.contact import CALIBRATION, calibrated_sigma

    periods = {"high": 1.0, "mid": 2.0, "low": 10.0}
    assert {band for band, _ in CALIBRATION} == set(periods)
    for (band, model), (inflation, filter_share, period_share) in CALIBRATION.items():
        period = periods[band]
        assert inflation >= 1.0
        assert calibrated_sigma(model, 0.3, 0.0, period) >= 0.3
        floor = np.hypot(filter_share * 1.5, period_share * period)
        assert calibrated_sigma(model, 0.0, 1.5, period) == pytest.approx(floor)
    # a model family without its own factors takes its band's general ones
    assert calibrated_sigma("unseen", 1.0, 1.0, 10.0) == calibrated_sigma("*", 1.0, 1.0, 10.0)
    assert calibrated_sigma("unseen", 1.0, 1.0, 10.0) != calibrated_sigma("unseen", 1.0, 1.0, 1.0)


def _contact_fit(tc: float, sigma: float, rss: float, noise: float = 1.0, parameters: int = 10) -> ContactFit:
    return ContactFit(tc, sigma, "ringing", 0.02, 0.001, {"ringing": 1.0}, rss, noise, parameters)


def test_crosscheck_leaves_an_agreeing_fit_alone() -> None:
    free = _contact_fit(2.0, 0.0005, 10.0)
    checked = crosscheck(free, (2.0004, 0.0008), lambda window: pytest.fail("no refit without a conflict"))
    assert checked == Crosschecked(free, 0.0005)


def test_crosscheck_reports_the_confined_physical_fit_when_the_data_cannot_tell_them_apart() -> None:
    free = _contact_fit(2.0, 0.001, 10.0)
    learned = (2.0065, 0.0008)
    windows: list[tuple[float, float]] = []

    def refit(window: tuple[float, float]) -> ContactFit:
        windows.append(window)
        return _contact_fit(2.006, 0.0004, 10.0 + 0.5 * PROFILE_CHI2_95)

    checked = crosscheck(free, learned, refit)
    assert windows == [pytest.approx((2.0065 - REFIT_SIGMAS * 0.0008, 2.0065 + REFIT_SIGMAS * 0.0008))]
    assert checked.fit.tc == 2.006  # the confined physical fit, never the learned estimate itself
    assert checked.refit_chi2 == pytest.approx(0.5 * PROFILE_CHI2_95)
    # ±2σ around the reported time reaches both candidates' ±2σ
    assert checked.fit.tc - 2 * checked.sigma == pytest.approx(2.0 - 2 * 0.001)
    assert checked.fit.tc + 2 * checked.sigma >= 2.006 + 2 * 0.0004


def test_crosscheck_keeps_the_free_fit_when_the_confined_one_fits_worse_than_the_noise_allows() -> None:
    free = _contact_fit(2.0, 0.001, 10.0)
    learned = (2.0065, 0.0008)
    checked = crosscheck(free, learned, lambda window: _contact_fit(2.006, 0.0004, 10.0 + 2 * PROFILE_CHI2_95))
    assert checked.fit is free
    assert checked.refit_chi2 is None
    assert checked.sigma == pytest.approx(crosschecked_sigma(2.0, 0.001, learned))
    # an extra parameter in the confined fit costs its Akaike penalty
    more = crosscheck(free, learned, lambda window: _contact_fit(2.006, 0.0004, 11.0, parameters=12))
    assert more.fit is free


def test_confined_fit_is_compared_with_the_free_fit_of_its_own_model() -> None:
    # the free fit chose the power model (fewer parameters); the ringing model, confined, is only a little worse
    # than the ringing model left free, and confining contact takes no parameter away: no Akaike penalty
    free = ContactFit(2.0, 0.001, "power", 0.02, 0.001, {"power": 0.9}, 10.0, 1.0, 10, {"power": 10.0, "ringing": 9.0})
    confined = ContactFit(2.006, 0.0004, "ringing", 0.02, 0.001, {"ringing": 1.0}, 10.5, 1.0, 13)
    assert refit_chi2(free, confined) == pytest.approx(1.5)
    assert crosscheck(free, (2.0065, 0.0008), lambda window: confined).fit is confined
    # without that model's free fit, the chosen one stands in and the extra parameters cost their penalty
    alone = ContactFit(2.0, 0.001, "power", 0.02, 0.001, {"power": 1.0}, 10.0, 1.0, 10)
    assert refit_chi2(alone, confined) == pytest.approx(0.5 + 2.0 * 3)
    assert crosscheck(alone, (2.0065, 0.0008), lambda window: confined).fit is alone


def test_crosscheck_only_widens_sigma_where_the_fit_cannot_be_confined() -> None:
    free = _contact_fit(2.0, 0.001, 10.0)
    learned = (2.0065, 0.0008)
    assert crosscheck(free, learned, None) == Crosschecked(free, crosschecked_sigma(2.0, 0.001, learned))
    assert crosscheck(free, learned, lambda window: None).fit is free


def test_confined_onset_fit_stays_in_its_window_and_fits_no_better() -> None:
    t_ns, ax, _ = _pulse_record(1000, 2.0004, 25, 180)
    t = (t_ns - T_BASE) / 1e9
    pulse = -ax
    usable = np.ones(len(t), dtype=bool)
    response = estimate_response(pulse, 1000.0)
    lo, hi = 1800, 2200
    free = fit_contact(t, pulse, usable, lo, hi, 0.001, response)
    confined = fit_contact(t, pulse, usable, lo, hi, 0.001, response, (1.9950, 1.9980))
    assert free is not None and confined is not None
    assert abs(free.tc - 2.0004) < 0.001
    assert 1.9950 <= confined.tc <= 1.9980
    assert confined.rss > free.rss
    assert refit_chi2(free, confined) > PROFILE_CHI2_95  # a contact 3 ms early is told apart from the true one
    assert fit_contact(t, pulse, usable, lo, hi, 0.001, response, (3.0, 3.1)) is None  # window outside the rise


def test_refit_in_the_learned_window_is_reported_as_a_finding() -> None:
    # development seed 81 (rear, CFC 60, ringing at 302 Hz): the free fit starts the pulse 6 ms early
    pytest.importorskip("onnxruntime")
    result, truth, event = _detect_generated("rear", 81, 1000)
    refits = [f for f in result.findings if f.code == "contact-refit" and f.t_ns == event.contact.t_ns]
    assert len(refits) == 1 and refits[0].severity == "info"
    error_ms = (event.contact.t_ns - truth) / 1e6
    assert abs(error_ms) < 2.0
    assert abs(error_ms) <= 2 * event.contact.sigma_ms
