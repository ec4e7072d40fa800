"""Live telemetry over MQTT: subscribe, write ahead, acknowledge, window, store. See docs/TELEMETRY.md.

Three threads share the work:

* the receiver (:class:`~trustlane.ingest.mqtt_session.MqttSession`) reads large chunks from the broker,
  parses every PUBLISH in them and appends them to an in-memory queue, one list per read;
* the committer takes everything queued (a batch), decodes and checks each message, drops duplicates by
  sequence number, appends the accepted ones to the write-ahead in the node home (one durable SQLite
  transaction per batch, :mod:`trustlane.ingest.telemetry_state`) and only then sends the PUBACK of every
  message of the batch, in arrival order, in one write. It also closes windows when the wall clock
  passes their end plus the allowed lateness;
* the flusher stores each closed window through the file pipeline (:meth:`Ingestor.prepare_recording`,
  :meth:`Ingestor.store`): encrypted segments, ledger events, catalog rows, then deletes its write-ahead.

A message is therefore acknowledged within one batch commit of its arrival (milliseconds), not after its
window is stored (up to segment length + lateness later), and a crash at any point loses nothing the broker
was told is safe: the write-ahead is read back at start-up.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import itertools
import logging
import re
import resource
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from trustlane.catalog.db import CatalogDB
from trustlane.crypto.envelope import context_aad, open_sealed, seal
from trustlane.errors import (
    ConflictError,
    KeyMaterialError,
    MalformedInput,
    RemoteError,
    StorageError,
    TrustlaneError,
    UsageError,
    VerificationError,
)
from trustlane.ingest.model import Signal
from trustlane.ingest.mqtt_session import Endpoint, MqttSession, SessionOptions
from trustlane.ingest.mqtt_wire import Oversized, Publish
from trustlane.ingest.pipeline import IngestOptions, Ingestor, choose_mapping
from trustlane.ingest.segments import DEFAULT_SEGMENT_NS, segment_signals
from trustlane.ingest.telemetry import (
    MAX_MESSAGE_BYTES,
    canonical_record,
    decode_message,
    message_vin,
    replace_vin,
    split_records,
    telemetry_message,
    telemetry_topic,
    value_types,
    vin_from_topic,
)
from trustlane.ingest.telemetry_buffer import Bucket, SampleCheck
from trustlane.ingest.telemetry_state import BucketRow, PendingRow, SeqSet, TelemetryState, VehicleRow
from trustlane.ingest.telemetry_stats import Counters, LagHistogram, Throttled
from trustlane.node import Node
from trustlane.storage.blobs import BlobStore
from trustlane.vehicles.registry import Vehicle, VehicleRegistry
from trustlane.vehicles.vin import validate_vin

log = logging.getLogger("trustlane.ingest.mqtt")

DEFAULT_TOPIC = "vehicles/+/telemetry"
DEFAULT_LATENESS_NS = 2_000_000_000
DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600
MAX_FUTURE_NS = 300 * 1_000_000_000  # a message this far ahead of the node's clock is refused
RECEIVE_MAXIMUM = 65_535  # unacknowledged messages the broker may have in flight to us (MQTT 5)
BATCH_MAX = 5_000  # messages per write-ahead commit
GATHER_S = 0.02  # the committer takes a batch at most this often (what it adds to the persist lag)
YIELD_BACKLOG = 500  # messages waiting for the committer beyond which the flusher pauses between windows
MAX_PACKET_BYTES = 1 << 20  # PUBLISH packets larger than this are skipped unread (and refused, acknowledged)
RECHECK_NS = 30 * 1_000_000_000  # how long the registry's answer about a registered VIN is trusted
RECHECK_UNKNOWN_NS = 10 * 1_000_000_000  # ... about an unregistered one (a new registration shows up this late)
_CACHE_MAX = 100_000

Inbound = tuple[int, int, Publish | Oversized]  # connection generation, received ns, the message


# --- brokers and sessions ---------------------------------------------------------------------------------


Broker = Endpoint  # a broker's address and credentials, as ``--broker`` gives them


def parse_broker(url: str) -> Broker:
    """``mqtt://[user[:password]@]HOST[:PORT]`` (port 1883) or ``mqtts://…`` (TLS, port 8883)."""
    hint = "e.g. --broker mqtt://127.0.0.1:1883"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UsageError(f"broker address {url!r} does not parse: {err}", hint=hint) from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"broker address {url!r} is not mqtt://HOST:PORT or mqtts://HOST:PORT", hint=hint)
    tls = parts.scheme == "mqtts"
    return Broker(
        parts.hostname,
        port or (8883 if tls else 1883),
        tls,
        urllib.parse.unquote(parts.username) if parts.username else None,
        urllib.parse.unquote(parts.password) if parts.password else None,
    )


def check_topic_filter(topic: str) -> str:
    levels = topic.split("/")
    bad = (
        not topic
        or len(topic.encode("utf-8")) > 65_535
        or "\x00" in topic
        or any(("+" in lv and lv != "+") or ("#" in lv and lv != "#") for lv in levels)
        or "#" in levels[:-1]
    )
    if bad:
        raise UsageError(
            f"{topic!r} is not an MQTT topic filter",
            hint="e.g. --topic 'vehicles/+/telemetry' (+ matches one level, # the rest)",
        )
    return topic


def client_id_for(origin: str) -> str:
    """The node's stable MQTT client id (23 characters, the MQTT 3.1.1 limit): its session survives restarts."""
    return "trustlane-" + hashlib.sha256(f"trustlane/mqtt-client/v1\n{origin}".encode()).hexdigest()[:13]


def _client(broker: Broker, client_id: str) -> paho.Client:
    """A paho client for publishing and session housekeeping (the subscriber uses :class:`MqttSession`)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if broker.tls:
        client.tls_set()
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    return client


def _connect(client: paho.Client, broker: Broker, *, clean_start: bool, expiry_s: int, keepalive: int = 30) -> None:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry_s
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    try:
        client.connect(broker.host, broker.port, keepalive=keepalive, clean_start=clean_start, properties=props)
    except OSError as err:
        raise RemoteError(
            f"cannot reach the MQTT broker at {broker.url}: {err.strerror or err}",
            hint="check --broker and that the broker is running",
        ) from None


def _connected_client(broker: Broker, client_id: str, *, clean_start: bool, expiry_s: int) -> paho.Client:
    client = _client(broker, client_id)
    client.max_inflight_messages_set(1000)  # our own publications in flight (telemetry gateway)
    ready = threading.Event()
    refused: list[str] = []

    def on_connect(c: paho.Client, u: object, flags: object, rc: ReasonCode, p: object) -> None:
        if rc.is_failure:
            refused.append(str(rc))
        ready.set()

    client.on_connect = on_connect
    _connect(client, broker, clean_start=clean_start, expiry_s=expiry_s)
    client.loop_start()
    if not ready.wait(10) or refused:
        client.loop_stop()
        raise RemoteError(
            f"the MQTT broker at {broker.url} did not accept the connection: {', '.join(refused) or 'no answer'}",
            hint="check the broker's address, credentials and access rules",
        )
    return client


def publish_telemetry(
    broker: str,
    vin: str,
    messages: Iterable[bytes],
    *,
    topic: str | None = None,
    qos: int = 1,
    timeout: float = 30.0,
) -> int:
    """Publish encoded messages (see :func:`telemetry_message`) to ``vehicles/<VIN>/telemetry`` (or ``topic``),
    in order; returns how many the broker acknowledged. For tests and a simple vehicle gateway."""
    target = parse_broker(broker)
    client = _connected_client(target, f"trustlane-pub-{secrets.token_hex(6)}", clean_start=True, expiry_s=0)
    try:
        infos = [client.publish(topic or telemetry_topic(vin), payload, qos=qos) for payload in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise RemoteError(
                    f"the MQTT broker at {target.url} did not acknowledge a message within {timeout:.0f} s",
                    hint="check that the broker is up and accepts this client's publications",
                )
        return len(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def drop_session(broker: str, client_id: str) -> None:
    """Make the broker forget a persistent session (its subscriptions and queued messages)."""
    client = _connected_client(parse_broker(broker), client_id, clean_start=True, expiry_s=0)
    client.disconnect()
    client.loop_stop()


# --- the subscriber ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MqttSettings:
    broker: str
    topic: str = DEFAULT_TOPIC
    segment_ns: int = DEFAULT_SEGMENT_NS
    lateness_ns: int = DEFAULT_LATENESS_NS
    duration_s: float | None = None
    max_messages: int | None = None
    mapping: Path | None = None
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    max_future_ns: int = MAX_FUTURE_NS
    batch_max: int = BATCH_MAX

    def __post_init__(self) -> None:
        if self.segment_ns < 1_000_000:
            raise UsageError("the segment length must be at least 1 ms", hint="e.g. --segment-seconds 10")
        if self.lateness_ns < 0:
            raise UsageError("the allowed lateness cannot be negative", hint="e.g. --lateness-seconds 2")
        if self.duration_s is not None and self.duration_s <= 0:
            raise UsageError("--duration must be positive")
        if self.max_messages is not None and self.max_messages <= 0:
            raise UsageError("--max-messages must be positive")
        check_topic_filter(self.topic)


class _VehicleState:
    __slots__ = ("buckets", "flushed_through", "key", "late", "late_count", "seqs", "vehicle")

    def __init__(self, vehicle: Vehicle, key: bytes, row: VehicleRow | None) -> None:
        self.vehicle = vehicle
        self.key = key
        self.seqs = row.seqs if row else SeqSet()
        self.flushed_through = row.flushed_through if row else None
        self.late_count = row.late_count if row else 0
        self.buckets: dict[str, Bucket] = {}
        self.late: Bucket | None = None

    def row(self) -> VehicleRow:
        return VehicleRow(self.vehicle.pseudonym, self.seqs, self.flushed_through, self.late_count)


@dataclass
class _Batch:
    rows: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    touched: dict[str, _VehicleState] = field(default_factory=dict)
    new_buckets: list[BucketRow] = field(default_factory=list)
    times: list[int] = field(default_factory=list)


def _warm_up() -> None:
    """Import what storing a window needs now: the first flush would otherwise hold the interpreter for a second
    (pyarrow pulls in pandas) while messages wait."""
    signal = Signal("Vehicle.Speed", None, np.zeros(1, dtype=np.int64), np.zeros(1), "warm-up", (), False)
    list(segment_signals([signal]))


_PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but quote and backslash: JSON writes it as is


def _wal_aad(vehicle: str, bucket: str, row_id: int) -> bytes:
    """``context_aad(purpose="telemetry-wal", vehicle=…, bucket=…, row=…)``. Every commit needs one per row;
    for plain fields (pseudonyms and bucket keys are) the RFC 8785 form is written directly, at a tenth of
    the cost of the general canonicaliser, which everything else still goes through."""
    if abs(row_id) < 1 << 53 and _PLAIN_TEXT.fullmatch(vehicle) and _PLAIN_TEXT.fullmatch(bucket):
        return b'{"bucket":"%s","purpose":"telemetry-wal","row":%d,"vehicle":"%s"}' % (
            bucket.encode(),
            row_id,
            vehicle.encode(),
        )
    return context_aad(purpose="telemetry-wal", vehicle=vehicle, bucket=bucket, row=row_id)


class TelemetryIngest:
    """Subscribe to vehicle telemetry and store it; :meth:`run` returns a summary when stopped."""

    def __init__(
        self,
        node: Node,
        catalog: CatalogDB,
        registry: VehicleRegistry,
        blobs: BlobStore,
        settings: MqttSettings,
        *,
        on_ready: Callable[[str], None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._settings = settings
        self._broker = parse_broker(settings.broker)
        self._node = node
        self._catalog = catalog
        self._registry = registry
        self._ingestor = Ingestor(node.log, catalog, registry, blobs)
        self._options = IngestOptions(mapping=settings.mapping, segment_ns=settings.segment_ns)
        self._mapping = choose_mapping(self._options)
        self._check = SampleCheck(self._mapping)
        self._on_ready = on_ready
        self._clock = clock_ns
        self.client_id = client_id_for(node.config.origin)
        self.counters = Counters()
        self.lag = LagHistogram()
        self._warn = Throttled(log)
        self._state: TelemetryState | None = None
        self._vehicles: dict[str, _VehicleState] = {}
        self._stored: dict[str, VehicleRow] = {}
        self._vins: dict[str, tuple[str, str, int]] = {}  # VIN -> (pseudonym, verdict, recheck at ns)
        self._topics: dict[str, tuple[str, str | None]] = {}  # topic -> (label, VIN)
        self._topic_texts: dict[bytes, str | None] = {}  # topic as received -> its text (None: not UTF-8)
        self._heap: list[tuple[int, int, Bucket]] = []
        self._tiebreak = itertools.count()
        self._inbound: collections.deque[Inbound] = collections.deque()
        self._flush_queue: collections.deque[Bucket | None] = collections.deque()
        self._flush_wake = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._ready = threading.Event()
        self._accepting = True
        self._enqueued = 0
        self._fatal: BaseException | None = None
        self._first_ns: int | None = None
        self._last_ns: int | None = None
        self._started = time.monotonic()
        options = SessionOptions(
            session_expiry_s=settings.session_expiry_s, receive_maximum=RECEIVE_MAXIMUM, max_packet=MAX_PACKET_BYTES
        )
        self._session = MqttSession(self._broker, self.client_id, self, options)

    @property
    def state(self) -> TelemetryState:
        if self._state is None:
            raise UsageError("the telemetry ingest is not running")
        return self._state

    # --- lifecycle ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to finish: acknowledge what was received, store every open window, return."""
        self._stop.set()

    def run(self) -> dict[str, Any]:
        self._state = TelemetryState(self._node.home)
        self._started = time.monotonic()
        try:
            flusher = threading.Thread(target=self._flush_loop, name="trustlane-mqtt-flush", daemon=True)
            committer = threading.Thread(target=self._commit_loop, name="trustlane-mqtt-commit", daemon=True)
            _warm_up()
            self._session.connect()
            self._replay()
            flusher.start()
            committer.start()
            self._session.start()
            duration = self._settings.duration_s
            while not self._stop.wait(0.1):
                if duration is not None and time.monotonic() - self._started >= duration:
                    break
            self._shutdown(committer, flusher)
        finally:
            self._session.close()  # already closed after a normal stop; not after a failed start
            self._state.close()
        if self._fatal is not None:
            raise self._fatal
        return self.summary()

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        if not isinstance(exc, TrustlaneError):
            log.error("telemetry ingest stopped by an unexpected error", exc_info=exc)
        self._stop.set()

    def _shutdown(self, committer: threading.Thread, flusher: threading.Thread) -> None:
        self._accepting = False
        self._draining.set()
        self._wake.set()
        if committer.is_alive():
            committer.join()
        self._session.close()  # DISCONNECT goes out after the last PUBACKs, on the same stream
        if self._fatal is None:
            try:
                self._close_due(self._clock(), final=True)
            except TrustlaneError as exc:
                self._fail(exc)
        self._flush_queue.append(None)
        self._flush_wake.set()
        flusher.join()
        try:
            self._node.log.publish_checkpoint()
        except TrustlaneError as exc:
            log.warning("no checkpoint published at shutdown: %s", exc)

    def summary(self) -> dict[str, Any]:
        c = self.counters
        span = (self._last_ns - self._first_ns) / 1e9 if self._first_ns and self._last_ns else 0.0
        return {
            "broker": self._broker.url,
            "topic": self._settings.topic,
            "client_id": self.client_id,
            "received": c.received,
            "accepted": c.accepted,
            "duplicates": c.duplicates,
            "late": c.late,
            "rejected": c.rejected,
            "unknown_vehicle": c.unknown_vehicle,
            "replayed": c.replayed,
            "segments": c.segments,
            "datasets": c.datasets,
            "dataset_ids": list(c.dataset_ids),
            "windows_empty": c.windows_empty,
            "windows_failed": c.windows_failed,
            "windows_discarded": c.windows_discarded,
            "reconnects": c.reconnects,
            "seconds": round(time.monotonic() - self._started, 3),
            "accepted_per_s": round(c.accepted / span, 1) if span > 0 else None,
            "persist_lag_ms": self.lag.summary(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    # --- session events (receiver thread) ----------------------------------------------------------------
    def session_connected(self, session: MqttSession, session_present: bool) -> None:
        self.counters.reconnects = session.reconnects
        previous = self.state.get_meta("topic")
        if previous is not None and previous != self._settings.topic and session_present:
            session.unsubscribe([previous])
        session.subscribe([self._settings.topic])

    def session_subscribed(self, reasons: bytes) -> None:
        if any(code >= 0x80 for code in reasons):
            self._fail(
                RemoteError(
                    f"the MQTT broker refused the subscription to {self._settings.topic!r}: "
                    f"reason 0x{max(reasons):02x}",
                    hint="check the broker's access rules for this client",
                )
            )
            return
        self.state.set_meta("topic", self._settings.topic)
        if not self._ready.is_set():
            self._ready.set()
            if self._on_ready is not None:
                self._on_ready(f"subscribed to {self._settings.topic!r} on {self._broker.url} as {self.client_id}")

    def session_failed(self, error: BaseException) -> None:
        self._fail(error)

    def session_messages(self, generation: int, messages: list[Publish | Oversized]) -> None:
        if not self._accepting:
            return  # not acknowledged: the broker delivers them again next session
        limit = self._settings.max_messages
        if limit is not None:
            room = limit - self._enqueued
            if room < len(messages):
                messages = messages[: max(room, 0)]
                self._stop.set()
        self._enqueued += len(messages)
        now = time.time_ns()
        self._inbound.extend([(generation, now, message) for message in messages])
        self._wake.set()
        if limit is not None and self._enqueued >= limit:
            self._stop.set()

    # --- the committer ---------------------------------------------------------------------------------------
    def _commit_loop(self) -> None:
        last_take = 0.0
        try:
            while True:
                if not self._inbound:
                    self._wake.wait(0.05)
                self._wake.clear()
                # a commit costs per vehicle (a sealed row, its seq ranges) and an fsync: batches taken at
                # least GATHER_S apart keep that cost per message low when a fleet sends at a high rate
                pause = last_take + GATHER_S - time.monotonic()
                if pause > 0 and len(self._inbound) < self._settings.batch_max and not self._draining.is_set():
                    time.sleep(pause)
                last_take = time.monotonic()
                batch = self._take()
                if batch:
                    self._process(batch)
                self._close_due(self._clock())
                if self._draining.is_set() and not self._inbound:
                    return
        except BaseException as exc:
            self._fail(exc)

    def _take(self) -> list[Inbound]:
        inbound = self._inbound
        count = min(len(inbound), self._settings.batch_max)
        return [inbound.popleft() for _ in range(count)]

    def _process(self, items: list[Inbound]) -> None:
        now = self._clock()
        batch = _Batch()
        acks: list[tuple[int, int]] = []
        texts = self._topic_texts
        for generation, received_ns, message in items:
            self.counters.received += 1
            if isinstance(message, Oversized):
                if message.qos:
                    acks.append((generation, message.packet_id))
                self._refuse_oversized(self._topic_text(message.topic), message.size)
                continue
            raw_topic, packet_id, qos, payload = message
            if qos:
                acks.append((generation, packet_id))
            topic = texts[raw_topic] if raw_topic in texts else self._topic_text(raw_topic)
            before = self.counters.accepted
            self._accept(topic, payload, now, batch)
            if self._first_ns is None and self.counters.accepted > before:
                self._first_ns = received_ns
        if batch.rows or batch.touched:
            state = self.state
            pending = []
            for row_id, ((vehicle, bucket), records) in zip(
                state.next_ids(len(batch.rows)), batch.rows.items(), strict=True
            ):
                key = self._vehicles[vehicle].key
                pending.append(
                    PendingRow(row_id, vehicle, bucket, seal(key, b"".join(records), _wal_aad(vehicle, bucket, row_id)))
                )
            state.commit(pending, [v.row() for v in batch.touched.values()], batch.new_buckets)
        done = time.time_ns()
        if batch.times:
            self._last_ns = done
            for t_ns in batch.times:
                self.lag.add((done - t_ns) / 1e6)
        self._ack(acks)

    def _ack(self, acks: list[tuple[int, int]]) -> None:
        """PUBACK, in one write, what arrived on the live connection; the broker redelivers the rest (they are
        duplicates by then)."""
        generation = self._session.generation
        self._session.ack(generation, [packet_id for g, packet_id in acks if g == generation])

    def _topic_text(self, raw: bytes) -> str | None:
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if len(self._topic_texts) > _CACHE_MAX:
            self._topic_texts.clear()
        self._topic_texts[raw] = text
        return text

    def _refuse_oversized(self, topic: str | None, size: int) -> None:
        label = "a topic that is not UTF-8" if topic is None else self._topic(topic)[0]
        self._reject(
            MalformedInput(
                f"telemetry message on {label} (seq unknown): a packet of {size} bytes, more than the "
                f"{MAX_PACKET_BYTES}-byte limit (messages hold at most {MAX_MESSAGE_BYTES} bytes); skipped unread",
                hint="send fewer signals per message",
            )
        )

    def _reject(self, err: MalformedInput) -> None:
        self.counters.rejected += 1
        self._warn.warning("rejected", f"rejected {err.message}")

    def _topic(self, topic: str) -> tuple[str, str | None]:
        """The topic as messages and dataset names show it (the vehicle's pseudonym where its VIN was), and
        the VIN it names in normal form (None when it names none, or an invalid one)."""
        known = self._topics.get(topic)
        if known is None:
            raw = vin_from_topic(topic)
            vin = None
            if raw is None:
                label = topic
            else:
                try:
                    vin = validate_vin(raw)
                    label = replace_vin(topic, self._registry.pseudonym_of(vin))
                except MalformedInput:
                    label = replace_vin(topic, "<invalid VIN>")
            if len(self._topics) > _CACHE_MAX:
                self._topics.clear()
            known = self._topics[topic] = (label, vin)
        return known

    def _where(self, label: str, seq: int) -> str:
        return f"telemetry message on {label} (seq {seq})"

    def _accept(self, topic: str | None, payload: bytes, now: int, batch: _Batch) -> None:
        if topic is None:
            self._reject(MalformedInput("telemetry message on a topic that is not UTF-8 (seq unknown)"))
            return
        label, vin = self._topic(topic)
        try:
            message = decode_message(payload, where=label)
            if message.vin is not None or vin is None:  # the message names the vehicle, or the topic does not
                vin = message_vin(vin_from_topic(topic), message, label)
        except MalformedInput as err:
            self._reject(err)
            return
        state = self._vehicle_for(vin, label, message.seq, now)
        if state is None:
            return
        seq = message.seq
        if seq in state.seqs:
            self.counters.duplicates += 1
            return
        if message.t_ns > now + self._settings.max_future_ns:
            ahead = (message.t_ns - now) / 1e9
            self._reject(MalformedInput(f"{self._where(label, seq)}: t_ns is {ahead:.0f} s ahead of this node's clock"))
            return
        types = value_types(message)
        problem = self._check.problem(message, types)
        if problem is not None:
            self._reject(MalformedInput(f"{self._where(label, seq)}: {problem}"))
            return
        bucket = self._bucket_for(state, message.t_ns, label, now, batch)
        record = canonical_record(seq, payload)
        clash = bucket.add(record, message, types)
        if clash is not None:
            self._reject(MalformedInput(f"{self._where(label, seq)}: signal {clash!r} changes type within its window"))
            return
        state.seqs.add(seq)
        p = state.vehicle.pseudonym
        batch.touched[p] = state
        batch.rows.setdefault((p, bucket.key), []).append(record)
        batch.times.append(message.t_ns)
        self.counters.accepted += 1
        if bucket.late:
            self.counters.late += 1

    def _vehicle_for(self, vin: str, label: str, seq: int, now: int) -> _VehicleState | None:
        """The registered vehicle's state; None (counted, logged) for unknown, erased or signing vehicles."""
        entry = self._vins.get(vin)
        if entry is None or entry[2] <= now:
            entry = self._lookup(vin, now)
            if len(self._vins) > _CACHE_MAX:
                self._vins.clear()
            self._vins[vin] = entry
        pseudonym, verdict, _ = entry
        if verdict == "ok":
            return self._vehicles[pseudonym]
        if verdict == "signed":
            self._reject(
                MalformedInput(
                    f"telemetry message on {label} (seq {seq}): vehicle {pseudonym} signs its uploads, and MQTT "
                    "telemetry carries no upload manifest"
                )
            )
            return None
        self.counters.unknown_vehicle += 1
        why = "was erased" if verdict == "erased" else "is not registered on this node"
        self._warn.warning(
            "unknown-vehicle",
            f"dropped telemetry message on {label} (seq {seq}): vehicle {pseudonym} {why}; "
            "register it with `trustlane vehicle register VIN`",
        )
        return None

    def _lookup(self, vin: str, now: int) -> tuple[str, str, int]:
        pseudonym = self._registry.pseudonym_of(vin)
        record = self._catalog.vehicle(pseudonym)
        recheck = now + RECHECK_NS
        if record is None:
            return pseudonym, "unknown", now + RECHECK_UNKNOWN_NS
        vehicle = Vehicle.of(record)
        if vehicle.erased:
            self._vehicles.pop(pseudonym, None)
            return pseudonym, "erased", recheck
        if vehicle.device_vkey is not None:
            return pseudonym, "signed", recheck
        state = self._vehicles.get(pseudonym)
        if state is None:
            state = self._new_state(vehicle)
        state.vehicle = vehicle
        return pseudonym, "ok", recheck

    def _new_state(self, vehicle: Vehicle) -> _VehicleState:
        p = vehicle.pseudonym
        state = _VehicleState(vehicle, self._registry.data_key(p), self._stored.pop(p, None))
        self._vehicles[p] = state
        return state

    def _bucket_for(self, state: _VehicleState, t_ns: int, label: str, now: int, batch: _Batch) -> Bucket:
        length, p = self._settings.segment_ns, state.vehicle.pseudonym
        window = t_ns // length
        closes = (window + 1) * length + self._settings.lateness_ns
        if closes > now and (state.flushed_through is None or window > state.flushed_through):
            key = f"w:{window}"
            bucket = state.buckets.get(key)
            if bucket is None:
                bucket = state.buckets[key] = Bucket(p, key, label, now, closes)
                self._schedule(bucket)
                batch.new_buckets.append(BucketRow(p, key, label, "open", now))
            return bucket
        if state.late is None:
            key = f"late:{state.late_count}"
            state.late_count += 1
            state.late = Bucket(p, key, label, now, now + length + self._settings.lateness_ns)
            self._schedule(state.late)
            batch.new_buckets.append(BucketRow(p, key, label, "open", now))
        return state.late

    def _schedule(self, bucket: Bucket) -> None:
        heapq.heappush(self._heap, (bucket.close_ns, next(self._tiebreak), bucket))

    def _close_due(self, now: int, *, final: bool = False) -> None:
        """Seal the buckets whose time has come (all of them when ``final``) and hand them to the flusher."""
        heap = self._heap
        due: list[Bucket] = []
        while heap and (final or heap[0][0] <= now):
            due.append(heapq.heappop(heap)[2])
        if not due:
            return
        touched: dict[str, _VehicleState] = {}
        for bucket in due:
            state = self._vehicles.get(bucket.vehicle)
            if state is None:
                continue
            if bucket.late:
                if state.late is bucket:
                    state.late = None
            else:
                state.buckets.pop(bucket.key, None)
                window = int(bucket.key[2:])
                if state.flushed_through is None or window > state.flushed_through:
                    state.flushed_through = window
            touched[bucket.vehicle] = state
        self.state.commit([], [s.row() for s in touched.values()], [], [(b.vehicle, b.key) for b in due])
        self._flush_queue.extend(due)
        self._flush_wake.set()

    # --- the flusher -----------------------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        took = 0.0
        try:
            while True:
                if not self._flush_queue:
                    self._flush_wake.wait(0.5)
                    self._flush_wake.clear()
                    continue
                bucket = self._flush_queue.popleft()
                if bucket is None:
                    return
                self._yield_to_committer(took)
                started = time.monotonic()
                self._flush(bucket)
                took = time.monotonic() - started
                if not self._flush_queue:
                    self._node.log.publish_checkpoint()
        except BaseException as exc:
            self._fail(exc)

    def _yield_to_committer(self, limit_s: float) -> None:
        """Storing a window can wait, acknowledging messages should not: while the committer has a backlog,
        pause (the threads share one interpreter lock) — at most as long as the last window took to store, so
        that under overload windows are still stored at no less than half the pace."""
        deadline = time.monotonic() + limit_s
        while len(self._inbound) > YIELD_BACKLOG and time.monotonic() < deadline and not self._draining.is_set():
            time.sleep(0.002)

    def _flush(self, bucket: Bucket) -> None:
        p, state, c = bucket.vehicle, self.state, self.counters
        try:
            vehicle = self._registry.get(p)
            key = self._registry.data_key(p)
        except (KeyMaterialError, UsageError) as err:
            log.warning("telemetry window %s of %s not stored: %s", bucket.key, p, err.message)
            state.finish(p, bucket.key)
            c.windows_discarded += 1
            return
        try:
            prepared = self._ingestor.prepare_recording(
                bucket.name, bucket.source_sha256, bucket.recording(), vehicle, self._mapping, self._options
            )
        except MalformedInput as err:
            log.error("telemetry window %s of %s kept in the state file, not stored: %s", bucket.key, p, err.message)
            state.fail(p, bucket.key, err.message)
            c.windows_failed += 1
            return
        except UsageError as err:
            log.warning("telemetry window %s of %s: %s", bucket.key, p, err.message)
            state.finish(p, bucket.key)
            c.windows_empty += 1
            return
        if self._catalog.dataset(prepared.dataset_id) is not None:
            log.info("telemetry window %s of %s was stored before a restart", bucket.key, p)
            state.finish(p, bucket.key)
            return
        try:
            for segment in prepared.segments:  # content-addressed: never overwrite another dataset's blob
                if self._catalog.segment(segment.digest) is not None:
                    raise ConflictError(f"its segment {segment.digest} is already stored in another dataset")
            self._ingestor.store(prepared, vehicle, key)
        except (MalformedInput, ConflictError) as err:
            log.error("telemetry window %s of %s kept in the state file, not stored: %s", bucket.key, p, err.message)
            state.fail(p, bucket.key, err.message)
            c.windows_failed += 1
            return
        c.datasets += 1
        c.segments += len(prepared.segments)
        c.dataset_ids.append(prepared.dataset_id)
        state.finish(p, bucket.key)

    # --- start-up: read the write-ahead back -------------------------------------------------------------------
    def _replay(self) -> None:
        state, length = self.state, self._settings.segment_ns
        self._stored = state.vehicles()
        changed = state.get_meta("segment_ns") not in (None, str(length))
        for row in state.buckets():
            if row.state == "failed":
                self.counters.windows_failed += 1
                log.error("telemetry window %s of %s is still not stored: %s", row.bucket, row.vehicle, row.problem)
                continue
            vstate = self._replay_vehicle(row.vehicle)
            if vstate is None:
                log.warning("buffered telemetry of %s dropped: the vehicle is erased or unknown", row.vehicle)
                state.finish(row.vehicle, row.bucket)
                self.counters.windows_discarded += 1
                continue
            late = row.bucket.startswith("late:")
            closes = row.opened_ns + length if late else (int(row.bucket[2:]) + 1) * length
            bucket = Bucket(
                row.vehicle, row.bucket, row.label, row.opened_ns, 0 if changed else closes + self._settings.lateness_ns
            )
            self._read_back(bucket, vstate.key)
            if row.state == "sealed":
                self._flush_queue.append(bucket)
                continue
            if late:
                vstate.late = bucket
            else:
                vstate.buckets[row.bucket] = bucket
            self._schedule(bucket)
        state.set_meta("segment_ns", str(length))

    def _replay_vehicle(self, pseudonym: str) -> _VehicleState | None:
        state = self._vehicles.get(pseudonym)
        if state is not None:
            return state
        record = self._catalog.vehicle(pseudonym)
        if record is None or record.erased_ns is not None or record.data_key_wrapped is None:
            return None
        return self._new_state(Vehicle.of(record))

    def _read_back(self, bucket: Bucket, key: bytes) -> None:
        for row_id, sealed in self.state.pending(bucket.vehicle, bucket.key):
            try:
                plain = open_sealed(key, sealed, _wal_aad(bucket.vehicle, bucket.key, row_id))
                records = split_records(plain)
                for seq, payload in records:
                    message = decode_message(payload, where=bucket.label)
                    bucket.add(canonical_record(seq, payload), message, value_types(message))
            except (VerificationError, MalformedInput) as err:
                raise StorageError(
                    f"buffered telemetry of {bucket.vehicle} ({bucket.key}, row {row_id}) in {self.state.path} "
                    f"cannot be read: {err.message}",
                    hint="restore the node home from a backup; moving the state file aside drops every buffered window",
                ) from None
            self.counters.replayed += len(records)


__all__ = [
    "DEFAULT_LATENESS_NS",
    "DEFAULT_TOPIC",
    "Broker",
    "MqttSettings",
    "TelemetryIngest",
    "check_topic_filter",
    "client_id_for",
    "drop_session",
    "parse_broker",
    "publish_telemetry",
    "telemetry_message",
]
