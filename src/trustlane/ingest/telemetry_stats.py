"""Counters, a persist-lag histogram and rate-limited warnings for live telemetry ingest."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field

_STEP = math.log(1.02)  # histogram buckets 2 % wide
MAX_DATASET_IDS = 1000  # the summary lists the ids of at most this many datasets (the latest)


@dataclass
class Counters:
    """Every message received ends in exactly one of accepted, duplicates, rejected, unknown_vehicle;
    ``late`` counts the accepted messages that went to a late dataset."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: int = 0
    unknown_vehicle: int = 0
    replayed: int = 0  # accepted before a restart, buffered in the state file, read back at start
    datasets: int = 0
    segments: int = 0
    windows_empty: int = 0  # every signal dropped by the collection rules: nothing to store
    windows_failed: int = 0  # kept in the state file, not stored (see the log)
    windows_discarded: int = 0  # the vehicle was erased before its window was stored
    reconnects: int = 0
    dataset_ids: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_DATASET_IDS))  # the latest ones


class LagHistogram:
    """Milliseconds on a log scale (2 % resolution): bounded memory at any message rate."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        bucket = int(math.log(ms) / _STEP) if ms > 0.01 else -230  # below 10 µs: one bucket
        self._counts[bucket] = self._counts.get(bucket, 0) + 1
        self.count += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def percentile(self, fraction: float) -> float:
        if not self.count:
            return 0.0
        rank = fraction * (self.count - 1)
        seen = 0
        for bucket in sorted(self._counts):
            seen += self._counts[bucket]
            if seen > rank:
                return min(math.exp((bucket + 0.5) * _STEP), self.max_ms)
        return self.max_ms

    def summary(self) -> dict[str, float] | None:
        if not self.count:
            return None
        return {
            "p50": round(self.percentile(0.5), 2),
            "p99": round(self.percentile(0.99), 2),
            "max": round(self.max_ms, 2),
        }


class Throttled:
    """A logger that writes at most ``limit`` warnings per ``interval`` seconds per kind, then a count."""

    def __init__(self, log: logging.Logger, limit: int = 10, interval: float = 10.0) -> None:
        self._log = log
        self._limit = limit
        self._interval = interval
        self._window: dict[str, tuple[float, int]] = {}

    def warning(self, kind: str, message: str) -> None:
        now = time.monotonic()
        start, count = self._window.get(kind, (now, 0))
        if now - start > self._interval:
            if count > self._limit:
                self._log.warning("%d more %s messages in the last %.0f s", count - self._limit, kind, now - start)
            start, count = now, 0
        count += 1
        self._window[kind] = (start, count)
        if count <= self._limit:
            self._log.warning("%s", message)


__all__ = ["Counters", "LagHistogram", "Throttled"]
