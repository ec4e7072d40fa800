"""Compliance decision time, in-process, beside the cost of a bare Python call measured in the same run.

Each sample times ``evaluate`` on an already parsed request (the decision), and separately parsing plus
deciding (what an API call pays). The requests cover every jurisdiction and outcome: CN volume boundaries,
EU transfers with and without SCCs, US bulk geolocation to a country of concern, a request missing a fact.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from trustlane.compliance.engine import evaluate
from trustlane.compliance.request import Request, parse_request
from trustlane.compliance.ruleset import RuleSet, default_rules

Progress = Callable[[str, float], None]

_CN = {"action": "transfer", "from": "CN", "to": "EU", "exporter": {"ciio": False}, "important_data_notified": False}
REQUESTS: dict[str, dict[str, Any]] = {
    "cn_exempt": _CN | {"categories": ["vehicle-operation"], "persons": 99_999},
    "cn_standard_contract": _CN
    | {"categories": ["vehicle-operation"], "persons": 100_000, "mechanisms": ["cn_standard_contract"]},
    "cn_security_assessment": _CN
    | {"categories": ["location", "external-imagery"], "persons": 2_000_000, "sensitive_persons": 20_000},
    "eu_to_cn_scc": {
        "action": "transfer",
        "from": "EU",
        "to": "CN",
        "categories": ["vehicle-operation", "location"],
        "persons": 5000,
        "mechanisms": ["eu_scc"],
    },
    "us_bulk_geolocation": {
        "action": "transfer",
        "from": "US",
        "to": "CN",
        "categories": ["location"],
        "persons": 5000,
        "mechanisms": ["explicit_consent"],
    },
    "needs_info": {"action": "transfer", "from": "CN", "to": "US", "categories": ["vehicle-operation", "identifiers"]},
}


def _noop(_: str, __: float) -> None:
    return None


def _bare(request: Request) -> None:
    return None


def _median_ns(fn: Callable[[], object], samples: int) -> tuple[float, float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def decision_time(progress: Progress = _noop, samples: int = 20_000) -> dict[str, Any]:
    """Median and p99 decision time per request kind, with pack compile time and a bare call for scale."""
    start = time.perf_counter()
    RuleSet.shipped()
    compile_ms = (time.perf_counter() - start) * 1e3
    rules = default_rules()
    result: dict[str, Any] = {"samples": samples, "packs_compile_ms": round(compile_ms, 2)}
    medians, parsed_medians = [], []
    for i, (name, raw) in enumerate(REQUESTS.items()):
        progress(name, i / len(REQUESTS))
        request = parse_request(raw)
        outcome = evaluate(request, rules).decision
        for _ in range(1000):  # warm caches and the allocator
            evaluate(request, rules)
        median, p99 = _median_ns(lambda r=request: evaluate(r, rules), samples)  # type: ignore[misc]
        parsed, _ = _median_ns(lambda raw=raw: evaluate(parse_request(raw), rules), samples)  # type: ignore[misc]
        medians.append(median)
        parsed_medians.append(parsed)
        result[name] = {
            "decision": outcome,
            "median_us": round(median / 1e3, 2),
            "p99_us": round(p99 / 1e3, 2),
            "with_parse_median_us": round(parsed / 1e3, 2),
        }
    request = parse_request(REQUESTS["cn_exempt"])
    bare, _ = _median_ns(lambda: _bare(request), samples)
    result["median_us_worst"] = round(max(medians) / 1e3, 2)
    result["with_parse_median_us_worst"] = round(max(parsed_medians) / 1e3, 2)
    result["bare_python_call_us"] = round(bare / 1e3, 3)
    result["target_median_us"] = 50
    progress("done", 1.0)
    return result


if __name__ == "__main__":
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(json.dumps(decision_time(samples=samples), indent=1))
