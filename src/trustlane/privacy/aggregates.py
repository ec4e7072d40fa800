"""Differentially private statistics with OpenDP, charged to a ``PrivacyBudget`` before release.

OpenDP's measurements (clamping, sums, counts, Laplace / Gaussian noise) live in its "contrib" feature set:
code the library's maintainers have not yet formally vetted by proof review. We enable it because those are
the only constructors for these statistics; each result still carries the privacy loss OpenDP itself
computes from the measurement (``map(d_in=1)``), and that is what the budget is charged.

The privacy unit is one record (one vehicle's value): a vehicle contributing several records must be reduced
to one value first. Grouped statistics (e.g. mean speed by region) use disjoint groups fixed in advance, so
by parallel composition the whole release costs one query's ε.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import opendp.prelude as dp

from trustlane.errors import MalformedInput, UsageError
from trustlane.privacy.base import REQUIRED, Processor, register
from trustlane.privacy.budget import PrivacyBudget

dp.enable_features("contrib")

STATISTICS = ("count", "sum", "mean", "histogram")
MECHANISMS = ("laplace", "gaussian")


@dataclass(frozen=True)
class Release:
    statistic: str
    value: Any  # float, int, or {category: count} / {group: value}
    epsilon: float
    delta: float
    mechanism: str

    def to_json(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "value": self.value,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
        }


def _floats(values: Sequence[float]) -> list[float]:
    out = [float(v) for v in values]
    if any(not math.isfinite(v) for v in out):
        raise MalformedInput("the values hold NaN or infinity", hint="drop or impute missing values first")
    return out


def _rho_for(epsilon: float, delta: float) -> float:
    """The zCDP ρ whose (ε, δ)-DP conversion ε = ρ + 2·sqrt(ρ·ln(1/δ)) (Bun & Steinke 2016) meets ε."""
    log_term = math.log(1 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def _noise(measure_of: Any, epsilon: float, delta: float, mechanism: str) -> Any:
    """The measurement built by ``measure_of(scale)`` with the smallest noise meeting (ε, δ) for one record.

    Gaussian noise is calibrated in zCDP (a one-dimensional search) and then converted; the (ε, δ) that
    OpenDP's own conversion gives is checked before use.
    """
    if mechanism == "laplace":
        return dp.binary_search_chain(measure_of, d_in=1, d_out=epsilon, T=float)
    meas = dp.binary_search_chain(measure_of, d_in=1, d_out=_rho_for(epsilon, delta), T=float)
    approx = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(meas), delta)
    spent, _ = approx.map(1)  # type: ignore[no-untyped-call]
    if spent > epsilon * (1 + 1e-9):
        raise ArithmeticError(f"Gaussian calibration spent ε={spent} > {epsilon}")
    return approx


def _float_space() -> Any:
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()


def _mech(mechanism: str) -> Any:
    return dp.m.then_laplace if mechanism == "laplace" else dp.m.then_gaussian


def dp_count(values: Sequence[Any], epsilon: float, delta: float = 0.0, mechanism: str = "laplace") -> int:
    space = _float_space()
    m = _noise(lambda s: space >> dp.t.then_count() >> _mech(mechanism)(s), epsilon, delta, mechanism)
    return int(m([0.0] * len(values)))


def dp_sum(
    values: Sequence[float], bounds: tuple[float, float], epsilon: float, delta: float = 0.0, mechanism: str = "laplace"
) -> float:
    lo, hi = float(bounds[0]), float(bounds[1])
    space = _float_space()
    summed = space >> dp.t.then_clamp((lo, hi)) >> dp.t.then_sum()  # type: ignore[no-untyped-call]
    m = _noise(lambda s: summed >> _mech(mechanism)(s), epsilon, delta, mechanism)
    return float(m(_floats(values)))


def dp_mean(
    values: Sequence[float], bounds: tuple[float, float], epsilon: float, delta: float = 0.0, mechanism: str = "laplace"
) -> float:
    """Noisy clamped sum over noisy count, each with half the budget (sequential composition)."""
    total = dp_sum(values, bounds, epsilon / 2, delta / 2, mechanism)
    count = dp_count(values, epsilon / 2, delta / 2, mechanism)
    lo, hi = bounds
    return float(min(max(total / max(count, 1), lo), hi))


def dp_histogram(
    values: Sequence[str], categories: Sequence[str], epsilon: float, delta: float = 0.0, mechanism: str = "laplace"
) -> dict[str, int]:
    """Counts per category given in advance (values outside them are counted in no released bin)."""
    cats = [str(c) for c in categories]
    space = (dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance())
    metric = "L1Distance<int>" if mechanism == "laplace" else "L2Distance<int>"
    m = _noise(
        lambda s: space >> dp.t.then_count_by_categories(categories=cats, MO=metric) >> _mech(mechanism)(s),
        epsilon,
        delta,
        mechanism,
    )
    counts = m([str(v) for v in values])
    return {c: int(n) for c, n in zip(cats, counts[: len(cats)], strict=True)}


def release(
    statistic: str,
    data: Sequence[Any] | Mapping[str, Sequence[Any]],
    budget: PrivacyBudget,
    epsilon: float,
    delta: float = 0.0,
    mechanism: str = "laplace",
    bounds: tuple[float, float] | None = None,
    categories: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> Release:
    """Compute a DP statistic, charge (ε, δ) to ``budget`` and only then return it.

    ``data`` is a list of values, or (with ``groups``) a mapping group → values over disjoint groups; groups
    are the ones listed, so the released keys reveal nothing about which groups hold data.
    """
    if statistic not in STATISTICS:
        raise UsageError(f"unknown statistic {statistic!r}", hint=f"use one of {', '.join(STATISTICS)}")
    if mechanism not in MECHANISMS:
        raise UsageError(f"unknown mechanism {mechanism!r}", hint="use laplace or gaussian")
    if mechanism == "gaussian" and not delta > 0:
        raise UsageError("the Gaussian mechanism needs δ > 0", hint="give delta, e.g. 1e-6, or use laplace")
    if statistic in ("sum", "mean") and (bounds is None or not bounds[0] < bounds[1]):
        raise UsageError(f"a DP {statistic} needs clamping bounds lo < hi", hint="e.g. bounds (0, 250) for km/h")
    if statistic == "histogram" and not categories:
        raise UsageError("a DP histogram needs its categories fixed in advance")

    def one(values: Sequence[Any]) -> Any:
        if statistic == "count":
            return dp_count(values, epsilon, delta, mechanism)
        if statistic == "histogram":
            return dp_histogram(values, categories or [], epsilon, delta, mechanism)
        assert bounds is not None
        fn = dp_sum if statistic == "sum" else dp_mean
        return fn(values, bounds, epsilon, delta, mechanism)

    if groups is not None:
        if not isinstance(data, Mapping):
            raise MalformedInput("grouped statistics need a mapping of group to values")
        value: Any = {g: one(list(data.get(g, []))) for g in groups}
    else:
        if isinstance(data, Mapping):
            raise MalformedInput("a mapping of groups needs the list of groups", hint="give groups=[...]")
        value = one(list(data))
    query = json.dumps({"statistic": statistic, "bounds": bounds, "groups": list(groups or []), "mechanism": mechanism})
    budget.spend(epsilon, delta, query)
    return Release(statistic, value, epsilon, delta, mechanism)


@register
class DpAggregate(Processor):
    """``operate(values or {group: values}, config) -> Release``, charged to the (dataset, recipient) budget."""

    name = "aggregates.dp"
    version = "1"
    defaults: ClassVar[dict[str, Any]] = {
        "statistic": REQUIRED,
        "epsilon": REQUIRED,
        "delta": 0.0,
        "mechanism": "laplace",
        "bounds": None,
        "categories": None,
        "groups": None,
        "budget_folder": REQUIRED,
        "dataset": REQUIRED,
        "recipient": REQUIRED,
        "budget_epsilon": REQUIRED,
        "budget_delta": 0.0,
    }

    def check(self, config: dict[str, Any]) -> list[str]:
        problems = []
        if config["statistic"] not in STATISTICS:
            problems.append(f"statistic must be one of {', '.join(STATISTICS)}")
        if config["mechanism"] not in MECHANISMS:
            problems.append("mechanism must be laplace or gaussian")
        for key in ("epsilon", "budget_epsilon"):
            v = config[key]
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                problems.append(f"{key} must be a positive number")
        if config["statistic"] in ("sum", "mean"):
            b = config["bounds"]
            if not (isinstance(b, list | tuple) and len(b) == 2 and float(b[0]) < float(b[1])):
                problems.append("bounds must be [lo, hi] with lo < hi")
        if config["statistic"] == "histogram" and not config["categories"]:
            problems.append("a histogram needs categories")
        return problems

    def apply(self, data: Any, config: dict[str, Any]) -> Release:
        budget = PrivacyBudget(
            Path(config["budget_folder"]),
            config["dataset"],
            config["recipient"],
            config["budget_epsilon"],
            config["budget_delta"],
        )
        bounds = (float(config["bounds"][0]), float(config["bounds"][1])) if config["bounds"] is not None else None
        return release(
            config["statistic"],
            data,
            budget,
            float(config["epsilon"]),
            float(config["delta"]),
            config["mechanism"],
            bounds,
            config["categories"],
            config["groups"],
        )
