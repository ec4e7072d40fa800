"""Accepted telemetry held in memory until its window closes, and the per-sample checks run on acceptance.

A :class:`Bucket` collects the samples of one vehicle for one epoch-aligned window (``w:<k>``) or for a run
of late messages (``late:<n>``), grouped by shape (the same signal names and value types in the same
order; all-float shapes as one flat float64 array), and the running SHA-256 of the canonical records of its
messages (the dataset's source hash). Appending a message costs no Python loop over its signals.
:meth:`Bucket.recording` turns it into the :class:`RawRecording` the file pipeline stores.

:class:`SampleCheck` refuses, on acceptance, a message whose values the mapping would refuse when the window
is stored (text for a numeric signal, a value an enumerated signal does not allow, a boolean that is not
0/1...), so one bad message never spoils a whole window.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trustlane.errors import MalformedInput
from trustlane.ingest.mapping import Mapping, apply_mapping
from trustlane.ingest.model import Channel, RawRecording
from trustlane.ingest.telemetry import Telemetry, Value
from trustlane.ingest.vss import VssCatalog, default_catalog

_MAX_CACHE = 65_536

Types = tuple[type, ...]


class _Group:
    """Messages with the same signal names and value types in the same order: a table of rows."""

    __slots__ = ("floats", "pack", "rows", "seqs", "times")

    def __init__(self, width: int, all_floats: bool) -> None:
        self.times: array[int] = array("q")
        self.seqs: array[int] = array("Q")
        self.floats: array[float] | None = array("d") if all_floats else None  # row after row, when all floats
        # array.extend takes a tuple one item at a time; packing the row first is several times faster
        self.pack = struct.Struct(f"={width}d").pack
        self.rows: list[tuple[Value, ...]] = []  # otherwise

    def columns(self, width: int) -> list[npt.NDArray[np.generic]]:
        if self.floats is not None:
            table = np.frombuffer(self.floats, dtype=np.float64).reshape(-1, width)
        else:
            table = np.array(self.rows, dtype=object).reshape(-1, width)
        return [table[:, j] for j in range(width)]


Piece = tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.generic], type]


def _column(pieces: list[Piece]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.generic]]:
    """One signal's samples from every group, in time order; of samples at the same time the one with the
    highest seq is kept. Values become float64, bool or text (bool and number mixed: float64)."""
    kinds = {kind for *_, kind in pieces}
    dtype: type = object if str in kinds else np.bool_ if kinds == {bool} else np.float64
    times = np.concatenate([t for t, _, _, _ in pieces])
    values = np.concatenate([v.astype(dtype) for _, _, v, _ in pieces])
    if len(times) > 1 and not bool(np.all(times[1:] > times[:-1])):
        seqs = np.concatenate([q for _, q, _, _ in pieces])
        order = np.lexsort((seqs, times))
        times, values = times[order], values[order]
        last = np.ones(len(times), dtype=np.bool_)
        last[:-1] = times[1:] != times[:-1]
        times, values = times[last], values[last]
    return times, values


class Bucket:
    """The accepted messages of one vehicle for one window (or one run of late messages)."""

    def __init__(self, vehicle: str, key: str, label: str, opened_ns: int, close_ns: int) -> None:
        self.vehicle = vehicle  # pseudonym
        self.key = key  # "w:<window>" | "late:<n>"
        self.label = label  # the topic, the vehicle's pseudonym in place of its VIN
        self.opened_ns = opened_ns
        self.close_ns = close_ns  # the wall-clock time after which it is flushed
        self.groups: dict[tuple[tuple[str, ...], Types], _Group] = {}
        self.texts: dict[str, bool] = {}  # per signal: text, or number/boolean (fixed within the bucket)
        self.messages = 0
        self._digest = hashlib.sha256()

    @property
    def late(self) -> bool:
        return self.key.startswith("late:")

    @property
    def name(self) -> str:
        """The dataset's name in receipts: ``mqtt:<topic>:<window>`` or ``mqtt:<topic>:late:<n>``."""
        return f"mqtt:{self.label}:{self.key.removeprefix('w:')}"

    @property
    def source_sha256(self) -> str:
        return self._digest.hexdigest()

    def add(self, record: bytes, message: Telemetry, types: Types) -> str | None:
        """Append the message; if one of its signals was text and is now a number (or the other way round)
        within this bucket, add nothing and return that signal's name."""
        key = (message.names, types)
        group = self.groups.get(key)
        if group is None:
            texts = self.texts
            for name, kind in zip(message.names, types, strict=True):
                if texts.get(name, kind is str) is not (kind is str):
                    return name
            for name, kind in zip(message.names, types, strict=True):
                texts[name] = kind is str
            group = self.groups[key] = _Group(len(types), all(kind is float for kind in types))
        group.times.append(message.t_ns)
        group.seqs.append(message.seq)
        if group.floats is not None:
            group.floats.frombytes(group.pack(*message.values))
        else:
            group.rows.append(message.values)
        self._digest.update(record)
        self.messages += 1
        return None

    def recording(self) -> RawRecording:
        pieces: dict[str, list[Piece]] = {}
        for (names, types), group in self.groups.items():
            times = np.frombuffer(group.times, dtype=np.int64)
            seqs = np.frombuffer(group.seqs, dtype=np.uint64)
            for name, kind, values in zip(names, types, group.columns(len(names)), strict=True):
                pieces.setdefault(name, []).append((times, seqs, values, kind))
        channels = []
        for name in sorted(pieces):
            times, values = _column(pieces[name])
            channels.append(Channel(name, None, times, values))
        return RawRecording(
            source=Path(self.name),
            format="mqtt",
            channels=tuple(channels),
            metadata={"messages": str(self.messages), "late": "true" if self.late else "false"},
        )


class SampleCheck:
    """Would the mapping accept these values for these signals? Verdicts are cached per signal and value type,
    and per value for enumerated, boolean and enum-mapped targets; plans per message shape (names and types)."""

    _BY_VALUE = "by value"

    def __init__(self, mapping: Mapping, catalog: VssCatalog | None = None) -> None:
        self._mapping = mapping
        self._catalog = catalog or default_catalog()
        self._plans: dict[tuple[tuple[str, ...], Types], str | tuple[int, ...]] = {}
        self._by_kind: dict[tuple[str, type], str | None] = {}
        self._by_value: dict[tuple[str, type, Value], str | None] = {}

    def problem(self, message: Telemetry, types: Types) -> str | None:
        """What the mapping would refuse in this message, or None."""
        key = (message.names, types)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(message, types)
            if len(self._plans) > _MAX_CACHE:
                self._plans.clear()
            self._plans[key] = plan
        if isinstance(plan, str):
            return plan
        names, values = message.names, message.values
        for i in plan:
            verdict = self._value_verdict(names[i], values[i])
            if verdict is not None:
                return verdict
        return None

    def _plan(self, message: Telemetry, types: Types) -> str | tuple[int, ...]:
        """An error that any message of this shape has, or the positions whose values need a look."""
        by_value = []
        for i, (name, value, kind) in enumerate(zip(message.names, message.values, types, strict=True)):
            verdict = self._by_kind.get((name, kind), "")
            if verdict == "":
                verdict = self._by_kind[(name, kind)] = self._classify(name, value)
            if verdict == self._BY_VALUE:
                by_value.append(i)
            elif verdict is not None:
                return verdict
        return tuple(by_value)

    def _classify(self, name: str, value: Value) -> str | None:
        claims = self._mapping.resolve(name, self._catalog)
        if not claims or any(rule.from_unit_by is not None for _, rule, _ in claims):
            return None  # kept as a vendor signal, or its unit depends on another signal: nothing to check alone
        for _, rule, target in claims:
            node = self._catalog.lookup(target)
            if rule.enum or (
                node is not None and (node.allowed or (node.datatype == "boolean" and not rule.transform))
            ):
                return self._BY_VALUE
        return self._run(name, value)

    def _value_verdict(self, name: str, value: Value) -> str | None:
        key = (name, type(value), value)
        if key not in self._by_value:
            if len(self._by_value) > _MAX_CACHE:
                self._by_value.clear()
            self._by_value[key] = self._run(name, value)
        return self._by_value[key]

    def _run(self, name: str, value: Value) -> str | None:
        dtype: type = np.bool_ if isinstance(value, bool) else np.float64 if isinstance(value, float) else object
        channel = Channel(name, None, np.zeros(1, dtype=np.int64), np.array([value], dtype=dtype))
        try:
            apply_mapping(RawRecording(Path(name), "mqtt", (channel,)), self._mapping, self._catalog)
        except MalformedInput as err:
            return f"signal {name!r} = {str(value)[:40]!r}: {err.message}"
        return None


__all__ = ["Bucket", "SampleCheck"]
