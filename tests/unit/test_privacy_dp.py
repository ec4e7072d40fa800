"""Differentially private aggregates under a durable per-(dataset, recipient) budget."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from trustlane.errors import AnalysisRefused, UsageError
from trustlane.privacy import get
from trustlane.privacy.aggregates import dp_count, dp_histogram, dp_mean, release
from trustlane.privacy.budget import BudgetExhausted, PrivacyBudget


def _speeds(n: int = 10_000, seed: int = 5) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).normal(62, 18, n), 0, 200)


def test_mean_is_close_at_epsilon_one_over_ten_thousand_vehicles() -> None:
    speeds = _speeds()
    errors = [abs(dp_mean(list(speeds), (0.0, 200.0), 1.0) - speeds.mean()) / speeds.mean() for _ in range(10)]
    assert np.median(errors) < 0.01
    assert max(errors) < 0.05


def test_noise_is_really_added() -> None:
    values = [1.0] * 100
    counts = {dp_count(values, 0.5) for _ in range(30)}
    assert len(counts) > 3 and 100 in range(min(counts), max(counts) + 1)


def test_histogram_keeps_only_the_given_categories() -> None:
    h = dp_histogram(["a"] * 500 + ["b"] * 300 + ["secret"] * 50, ["a", "b"], 2.0)
    assert set(h) == {"a", "b"}
    assert abs(h["a"] - 500) < 30 and abs(h["b"] - 300) < 30


def test_budget_refuses_once_exhausted_and_survives_reopening(tmp_path: Path) -> None:
    budget = PrivacyBudget(tmp_path, "fleet-2025", "insurer", epsilon=1.0)
    release("count", [1.0] * 10, budget, 0.4)
    release("sum", [1.0] * 10, budget, 0.4, bounds=(0, 5))
    with pytest.raises(BudgetExhausted, match=r"exhausted: the query needs ε=0.4.*left ε=0.2") as info:
        release("count", [1.0] * 10, budget, 0.4)
    assert isinstance(info.value, AnalysisRefused) and info.value.exit_code == 10
    again = PrivacyBudget(tmp_path, "fleet-2025", "insurer", epsilon=1.0)
    assert again.remaining().epsilon == pytest.approx(0.2)
    assert len(again.charges()) == 2
    release("count", [1.0], again, 0.2)  # exactly what is left
    with pytest.raises(BudgetExhausted):
        release("count", [1.0], again, 1e-6)
    # Another recipient of the same dataset has its own budget.
    assert PrivacyBudget(tmp_path, "fleet-2025", "court", epsilon=1.0).remaining().epsilon == 1.0
    with pytest.raises(UsageError, match=r"is ε=1\.0, δ=0\.0, not ε=5\.0"):
        PrivacyBudget(tmp_path, "fleet-2025", "insurer", epsilon=5.0)


def _spend(folder: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    budget = PrivacyBudget(Path(folder), "d", "r", epsilon=1.0)
    ok = 0
    for _ in range(10):
        try:
            budget.spend(0.1, 0.0, "q")
            ok += 1
        except BudgetExhausted:
            pass
    out.put(ok)


@pytest.mark.slow
def test_concurrent_spenders_never_overspend(tmp_path: Path) -> None:
    PrivacyBudget(tmp_path, "d", "r", epsilon=1.0)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_spend, args=(str(tmp_path), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sum(queue.get(timeout=10) for _ in procs) == 10


def test_gaussian_needs_delta_and_charges_it(tmp_path: Path) -> None:
    budget = PrivacyBudget(tmp_path, "d", "r", epsilon=2.0, delta=1e-5)
    with pytest.raises(UsageError, match="δ > 0"):
        release("sum", [1.0], budget, 1.0, mechanism="gaussian", bounds=(0, 1))
    r = release("sum", list(_speeds(1000)), budget, 1.0, 1e-6, "gaussian", bounds=(0, 200))
    assert r.delta == 1e-6 and budget.remaining().delta == pytest.approx(9e-6)


def test_grouped_mean_by_region(tmp_path: Path) -> None:
    budget = PrivacyBudget(tmp_path, "d", "r", epsilon=1.0)
    data = {"north": list(_speeds(4000, 1) + 10), "south": list(_speeds(6000, 2)), "unlisted": [1.0]}
    r = release("mean", data, budget, 1.0, bounds=(0, 200), groups=["north", "south"])
    assert set(r.value) == {"north", "south"}
    assert abs(r.value["north"] - 72) < 3 and abs(r.value["south"] - 62) < 3
    assert budget.remaining().epsilon == pytest.approx(0.0)  # disjoint groups: one ε for all


def test_bad_queries_are_refused_before_spending(tmp_path: Path) -> None:
    budget = PrivacyBudget(tmp_path, "d", "r", epsilon=1.0)
    for kwargs in (
        {"statistic": "median"},
        {"statistic": "mean"},
        {"statistic": "mean", "bounds": (5.0, 1.0)},
        {"statistic": "histogram"},
    ):
        with pytest.raises(UsageError):
            release(data=[1.0], budget=budget, epsilon=0.5, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="NaN"):
        release("sum", [1.0, float("nan")], budget, 0.5, bounds=(0, 1))
    assert budget.remaining().epsilon == 1.0


def test_processor(tmp_path: Path) -> None:
    p = get("aggregates.dp")
    config = {
        "statistic": "count",
        "epsilon": 0.5,
        "budget_folder": str(tmp_path),
        "dataset": "d",
        "recipient": "r",
        "budget_epsilon": 0.5,
    }
    assert p.operate([1.0] * 50, config).epsilon == 0.5
    with pytest.raises(BudgetExhausted):
        p.operate([1.0] * 50, config)
    assert any("required" in s for s in p.validate({"statistic": "count"}))
