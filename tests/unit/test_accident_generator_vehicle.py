"""The vehicle model must not let a collision act before it happens.

The 100 Hz trace is interpolated to the accelerometer's rate, so any response to a crash that the trace holds
at the step in which contact falls would be ramped in up to 20 ms before contact. The sensed driving
acceleration before contact must be the same with and without the crash.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trustlane.accident.generator.impulses import CrashPulse
from trustlane.accident.generator.scenarios import BUILDERS, COLLISIONS, scenario_rng
from trustlane.accident.generator.vehicle import simulate

DURATION_S = 20.0


@pytest.mark.parametrize("name", COLLISIONS)
@pytest.mark.parametrize("seed", [3, 11])
def test_no_crash_acceleration_before_contact(name: str, seed: int) -> None:
    rng = scenario_rng(name, seed)
    event_s = float(rng.uniform(0.6, 0.8)) * DURATION_S
    setup = BUILDERS[name](rng, DURATION_S, event_s)
    pulses = [p for p in setup.impulses if isinstance(p, CrashPulse)]
    assert pulses, "a collision scenario has crash pulses"
    crashed = dataclasses.replace(setup.drive, pulses=pulses)
    calm = dataclasses.replace(setup.drive, pulses=[])
    with_crash = simulate(crashed, np.random.default_rng(seed))
    without = simulate(calm, np.random.default_rng(seed))
    contact = min(p.contact_s for p in pulses)
    t = np.arange(0.0, contact, 1e-3)  # the sensor's 1 kHz grid, up to (not including) contact
    for field in ("accel_long", "accel_lat"):
        sensed = np.interp(t, with_crash.t, getattr(with_crash, field))
        driving = np.interp(t, without.t, getattr(without, field))
        np.testing.assert_array_equal(sensed, driving, err_msg=f"{field} carries the crash before contact")
    # and the crash does act afterwards (the comparison above can see a difference)
    after = with_crash.t > contact + 0.05
    assert np.any(with_crash.speed_ms[after] != without.speed_ms[after])
