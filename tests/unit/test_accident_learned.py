"""The shipped learned model, run through onnxruntime on generator recordings from held-out seeds."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trustlane.accident.core.errors import SignalError
from trustlane.accident.core.learned import (
    CENTRE,
    CHANNELS,
    DEFAULT_MODEL,
    WINDOW,
    LearnedModel,
    ModelError,
    window_features,
)
from trustlane.accident.generator.recording import generate

SEED = 99_001  # inside the test range: never used in training or validation


@pytest.fixture(scope="module")
def model() -> LearnedModel:
    return LearnedModel.load()


def _accel(name: str, seed: int = SEED, rate: int = 1000) -> tuple[Any, ...]:
    rec = generate(name, seed, 20.0, rate)
    by_name = {c.name: c for c in rec.channels}
    x = by_name["Vehicle.Acceleration.Longitudinal"]
    t_ns = rec.start_ns + np.round(x.t_s * 1e9).astype(np.int64)
    ay = by_name["Vehicle.Acceleration.Lateral"].values
    az = by_name["Vehicle.Acceleration.Vertical"].values
    return t_ns, x.values, ay, az, rec.truth


def test_digest_names_the_shipped_bytes_and_the_model_is_small(model: LearnedModel) -> None:
    blob = DEFAULT_MODEL.read_bytes()
    assert model.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert len(blob) < 500_000


@pytest.mark.parametrize("rate", [1000, 500, 100])
@pytest.mark.parametrize("scenario", ["front", "rear", "side-left", "side-right"])
def test_collisions_are_recognised_sided_and_timed(model: LearnedModel, scenario: str, rate: int) -> None:
    t_ns, ax, ay, _, truth = _accel(scenario, rate=rate)
    (collision,) = truth["collisions"]
    contact = int(collision["contact_ns"])
    result = model.assess(t_ns, ax, ay, contact_ns=contact + 12_000_000)  # a proposal 12 ms late
    assert result.crash_probability > 0.5
    assert result.direction == collision["direction"]
    assert abs(sum(result.direction_probabilities.values()) - 1) < 1e-4
    error_ms = abs(result.contact_ns - contact) / 1e6
    assert error_ms <= {1000: 4.0, 500: 6.0, 100: 15.0}[rate]
    assert 0 < result.contact_sigma_ms < 30


@pytest.mark.parametrize("scenario", ["pothole", "curb-strike", "door-slam"])
def test_road_and_body_events_are_not_collisions(model: LearnedModel, scenario: str) -> None:
    t_ns, ax, ay, az, truth = _accel(scenario)
    (event,) = truth["non_collision_events"]
    for shift_ms in (-20, 0, 30):
        result = model.assess(t_ns, ax, ay, contact_ns=int(event["t_ns"]) + shift_ms * 1_000_000, vertical=az)
        assert result.crash_probability < 0.5, (scenario, shift_ms)


def test_contact_estimate_does_not_follow_the_proposal(model: LearnedModel) -> None:
    t_ns, ax, ay, _, truth = _accel("front", seed=SEED + 1)
    contact = int(truth["collisions"][0]["contact_ns"])
    found = [model.assess(t_ns, ax, ay, contact_ns=contact + s * 1_000_000).contact_ns for s in (-30, 0, 25, 60)]
    assert (max(found) - min(found)) / 1e6 < 4.0


def test_empty_rows_and_the_time_base_do_not_change_the_answer(model: LearnedModel) -> None:
    t_ns, ax, ay, _, truth = _accel("side-left", seed=SEED + 2)
    contact = int(truth["collisions"][0]["contact_ns"])
    plain = model.assess(t_ns, ax, ay, contact_ns=contact)
    sparse_x = ax.astype(np.float64).copy()
    sparse_x[::7] = np.nan  # rows of a sparse CSV where another signal had a sample
    shifted = 3_600_000_000_000
    gappy = model.assess(t_ns + shifted, sparse_x, ay, contact_ns=contact + shifted)
    assert gappy.direction == plain.direction
    assert abs(gappy.contact_ns - shifted - plain.contact_ns) / 1e6 < 2.0
    same = model.assess(t_ns + shifted, ax, ay, contact_ns=contact + shifted)
    assert same.contact_ns - shifted == plain.contact_ns


def test_features_remove_the_driving_level_and_state_the_rate() -> None:
    for rate in (1000, 100):
        t_ns = np.arange(0, 2_000_000_000, 1_000_000_000 // rate, dtype=np.int64)
        f = window_features(t_ns, np.full(len(t_ns), -3.0), np.full(len(t_ns), 1.0), 1_000_000_000)
        assert f.shape == (len(CHANNELS), WINDOW)
        assert np.allclose(f[:4], 0.0, atol=1e-6)
        assert not f[4:6].any()  # no vertical axis given
        assert f[6, 0] == pytest.approx(np.log10(1000 / rate))
    step = np.where(np.arange(len(t_ns)) * 10 >= 1000, 10.0, 0.0)  # a step at the proposal, 100 Hz
    f = window_features(t_ns, step, np.zeros(len(t_ns)), 1_000_000_000)
    assert f[0, CENTRE - 20] == 0 and f[0, CENTRE + 20] > 0.4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("short-lateral", "lateral acceleration: 9 values"),
        ("backwards", "not strictly increasing at sample 5"),
        ("outside", "do not cover"),
        ("slow", "at least 50 Hz"),
    ],
)
def test_bad_input_is_refused_with_a_reason(model: LearnedModel, change: str, message: str) -> None:
    t_ns = np.arange(0, 10_000_000_000, 1_000_000, dtype=np.int64)
    ax = np.zeros(len(t_ns))
    ay = np.zeros(len(t_ns))
    centre = 5_000_000_000
    if change == "short-lateral":
        ay = ay[:9]
    elif change == "backwards":
        t_ns = t_ns.copy()
        t_ns[5] = t_ns[3]
    elif change == "outside":
        centre = 9_950_000_000
    else:
        t_ns = t_ns[::50]
        ax, ay = ax[::50], ay[::50]
    with pytest.raises(SignalError, match=message) as caught:
        model.assess(t_ns, ax, ay, contact_ns=centre)
    assert caught.value.hint


def test_missing_or_damaged_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read the model"):
        LearnedModel.load(str(tmp_path / "absent.onnx"))
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(DEFAULT_MODEL.read_bytes()[:5000])
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        LearnedModel.load(str(damaged))


def test_training_windows_carry_consistent_labels(tmp_path: Path) -> None:
    from trustlane.accident.training.dataset import OFFSET_RANGE_MS, load_snippets, windows

    data = load_snippets([7], cache=tmp_path)
    kinds = [k.split("/")[1] for k in data.kind]
    assert {"contact", "driving"} <= set(kinds)
    for kind, crash, direction in zip(kinds, data.crash, data.direction, strict=True):
        assert (kind == "contact") == bool(crash) == (direction >= 0)
    again = load_snippets([7], cache=tmp_path)  # from the cache: same arrays
    assert np.array_equal(again.ax, data.ax) and again.kind == data.kind
    index = np.flatnonzero(data.crash)
    features, offsets, direction = windows(data, index, np.random.default_rng(3), augment=True)
    assert features.shape == (len(index), len(CHANNELS), WINDOW)
    assert np.all((-offsets >= OFFSET_RANGE_MS[0]) & (-offsets <= OFFSET_RANGE_MS[1]))
    swapped = {0: 0, 1: 1, 2: 3, 3: 2}
    for k, got in zip(index, direction, strict=True):
        assert got in (data.direction[k], swapped[int(data.direction[k])])
    # the pulse starts where the window says the contact is: acceleration changes only after it
    _, plain_offsets, _ = windows(data, index, np.random.default_rng(4), augment=False)
    plain, _, _ = windows(data, index, np.random.default_rng(4), augment=False)
    for row, offset in enumerate(plain_offsets):
        contact = CENTRE + round(offset)
        before = np.abs(plain[row, :2, contact - 40 : contact - 5]).max()
        after = np.abs(plain[row, :2, contact + 5 : contact + 60]).max()
        assert after > 3 * before


@pytest.mark.slow
def test_training_exports_an_onnx_model_that_agrees_with_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="training needs the optional extra: pip install trustlane[train]")
    from trustlane.accident.training.train import Settings, train

    out = tmp_path / "model.onnx"
    settings = Settings(train_recordings_per_scenario=1, validation_recordings_per_scenario=1, epochs=1)
    record = train(settings, out, cache=tmp_path, log=False)
    assert max(record["onnx_max_difference"].values()) < 1e-3  # type: ignore[attr-defined]
    model = LearnedModel.load(str(out))
    t_ns, ax, ay, _, truth = _accel("rear")
    result = model.assess(t_ns, ax, ay, contact_ns=int(truth["collisions"][0]["contact_ns"]))
    assert 0.0 <= result.crash_probability <= 1.0 and result.contact_sigma_ms > 0
