"""Live telemetry ingest through a real MQTT broker, beside the broker's raw loopback throughput.

* raw loopback: a plain paho subscriber (QoS 1, acknowledges on receipt, does nothing else) receives N
  messages of the same size from a publisher process sending as fast as it can; the same with the ingest's
  own receive path (:class:`~trustlane.ingest.mqtt_session.MqttSession`, one batch of PUBACKs per read);
* ingest: ``trustlane ingest mqtt --json`` runs as its own process on a fresh node home with a fleet of
  registered vehicles; a publisher process sends N messages of ``signals`` numeric signals each, round-robin
  over the fleet, at ``rate`` messages/s, every message stamped with its publish time (``t_ns``). The ingest
  reports sustained accepted messages/s, the persist lag (publish → write-ahead commit, the point at which
  the message is durable and acknowledged; p50/p99/max) and its peak RSS (``getrusage``).
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.queues
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from trustlane.catalog.home import master_key, open_catalog
from trustlane.errors import RemoteError
from trustlane.ingest.mqtt import RECEIVE_MAXIMUM, client_id_for, drop_session, parse_broker
from trustlane.ingest.mqtt_session import MqttSession, SessionOptions
from trustlane.ingest.mqtt_wire import Oversized, Publish, encode_varint
from trustlane.ingest.telemetry import MAGIC, SIGNAL_IDS, SIGNAL_TABLE
from trustlane.ingest.vss import default_catalog
from trustlane.node import Node
from trustlane.vehicles.registry import VehicleRegistry

Progress = Callable[[str, float], None]
_NUMERIC = frozenset({"float", "double", "int8", "int16", "int32", "uint8", "uint16", "uint32"})


def _noop(_: str, __: float) -> None:
    return None


def bench_signals(count: int) -> list[str]:
    """``count`` numeric signals of the shipped binary signal table."""
    catalog = default_catalog()
    paths = [p for p in SIGNAL_TABLE if catalog.require(p).datatype in _NUMERIC]
    if count > len(paths):
        raise ValueError(f"at most {len(paths)} numeric table signals; asked for {count}")
    return paths[:count]


def fleet(size: int) -> list[str]:
    """Synthetic, valid VINs (no check digit)."""
    return [f"TLBENCH{n:010d}" for n in range(size)]


# --- the publisher process ------------------------------------------------------------------------------


def _bodies(paths: list[str], encoding: str, variants: int = 64) -> list[bytes]:
    rng = random.Random(7)  # noqa: S311 - reproducible synthetic values
    out = []
    for _ in range(variants):
        values = {p: round(rng.uniform(-100, 100), 3) for p in paths}
        if encoding == "json":
            out.append(json.dumps(values, separators=(",", ":")).encode())
        else:
            out.append(b"".join(struct.pack(">HBd", SIGNAL_IDS[p], 1, v) for p, v in values.items()))
    return out


class LeanPublisher:
    """A minimal MQTT 3.1.1 QoS 1 publisher on a plain socket: the load generator, so that the publishing side
    costs little CPU next to the ingest (paho spends tens of µs per message). At most ``window`` messages are
    unacknowledged; a reader thread counts PUBACKs."""

    def __init__(self, broker: str, client_id: str, window: int = 1000) -> None:
        target = parse_broker(broker)
        self.sock = socket.create_connection((target.host, target.port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack(">H", len(cid)) + cid  # 3.1.1, clean, keepalive 60
        self.sock.sendall(b"\x10" + encode_varint(len(body)) + body)
        connack = self._read(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RemoteError(f"the broker refused the load generator: CONNACK {connack.hex()}")
        self.window = threading.Semaphore(window)
        self.acked = 0
        self.done = threading.Event()
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()
        self._next_id = 0
        self._pending: list[bytes] = []

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RemoteError("the broker closed the load generator's connection")
            data += chunk
        return data

    def _read_acks(self) -> None:
        buffer = b""
        try:
            while not self.done.is_set():
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                complete = len(buffer) // 4  # every packet the broker sends us here is a 4-byte PUBACK
                buffer = buffer[complete * 4 :]
                if complete:
                    self.acked += complete
                    self.window.release(complete)
        except OSError:
            return

    def publish(self, topic: bytes, payload: bytes) -> None:
        self.window.acquire()
        self._next_id = self._next_id % 65535 + 1
        head = struct.pack(">H", len(topic)) + topic + struct.pack(">H", self._next_id)
        self._pending.append(b"\x32" + encode_varint(len(head) + len(payload)) + head + payload)
        if len(self._pending) >= 32:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.sock.sendall(b"".join(self._pending))
            self._pending.clear()

    def close(self, expected: int, timeout: float = 120) -> None:
        self.flush()
        deadline = time.monotonic() + timeout
        while self.acked < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        self.done.set()
        self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        self.sock.close()


def publish_stream(
    broker: str,
    topics: list[str],
    messages: int,
    rate: float,
    paths: list[str],
    encoding: str,
    result: multiprocessing.queues.Queue[dict[str, float]],
) -> None:
    """Publish ``messages`` telemetry messages round-robin over ``topics`` at ``rate``/s (0: as fast as possible).

    Runs in its own process. Sequence numbers count per topic from 0; ``t_ns`` is the publish time."""
    publisher = LeanPublisher(broker, f"trustlane-bench-{os.getpid()}")
    bodies = _bodies(paths, encoding)
    header = struct.Struct(">4sQqH")
    encoded = [t.encode() for t in topics]
    seqs = [0] * len(topics)
    begin = time.monotonic()
    for n in range(messages):
        if rate and n % 32 == 0:
            ahead = begin + n / rate - time.monotonic()
            if ahead > 0:
                publisher.flush()
                time.sleep(ahead)
        slot = n % len(topics)
        seq = seqs[slot]
        seqs[slot] = seq + 1
        body = bodies[n % len(bodies)]
        now = time.time_ns()
        if encoding == "json":
            payload = b'{"v":1,"seq":%d,"t_ns":"%d","signals":%b}' % (seq, now, body)
        else:
            payload = header.pack(MAGIC, seq, now, len(paths)) + body
        publisher.publish(encoded[slot], payload)
    sent = time.monotonic() - begin
    publisher.close(messages)
    acked = time.monotonic() - begin
    result.put({"sent_s": sent, "acked_s": acked, "publish_per_s": messages / acked, "acked": publisher.acked})


def _publisher(
    broker: str, topics: list[str], messages: int, rate: float, paths: list[str], encoding: str
) -> tuple[multiprocessing.process.BaseProcess, multiprocessing.queues.Queue[dict[str, float]]]:
    ctx = multiprocessing.get_context("spawn")
    result: multiprocessing.queues.Queue[dict[str, float]] = ctx.Queue()
    process = ctx.Process(target=publish_stream, args=(broker, topics, messages, rate, paths, encoding, result))
    process.start()
    return process, result


# --- raw loopback -------------------------------------------------------------------------------------------


def raw_loopback(broker: str, messages: int, paths: list[str], encoding: str) -> dict[str, float]:
    """Messages/s a do-nothing paho subscriber receives (QoS 1) from a publisher sending flat out."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    target = parse_broker(broker)
    topic = f"trustlane-bench/{os.getpid()}-{random.getrandbits(32):08x}/raw"
    done = threading.Event()
    subscribed = threading.Event()
    times: list[float] = []

    def on_message(c: Any, u: Any, m: Any) -> None:
        times.append(time.monotonic())
        if len(times) >= messages:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"trustlane-raw-{os.getpid()}", protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe(topic, qos=1)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = RECEIVE_MAXIMUM  # as the ingest asks for
    client.connect(target.host, target.port, properties=props)
    client.loop_start()
    if not subscribed.wait(10):
        raise RemoteError(f"no subscription at {target.url}", hint="is the broker running?")
    process, result = _publisher(broker, [topic], messages, 0, paths, encoding)
    process.join(600)
    seen = -1
    while not done.wait(2) and len(times) != seen:  # until all arrived, or nothing more arrives
        seen = len(times)
    client.disconnect()
    client.loop_stop()
    pub = result.get(timeout=10) if not result.empty() else {"publish_per_s": 0.0}
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "received": float(len(times)),
        "msgs_per_s": (len(times) - 1) / span if span > 0 else 0.0,
        "publish_per_s": pub["publish_per_s"],
    }


class _AckOnReceipt:
    """A do-nothing subscriber on the ingest's receive path: it acknowledges every read's messages at once."""

    def __init__(self, topic: str, expected: int) -> None:
        self.topic = topic
        self.expected = expected
        self.received = 0
        self.first: float | None = None
        self.last = 0.0
        self.subscribed = threading.Event()
        self.done = threading.Event()
        self.failure: BaseException | None = None

    def session_connected(self, session: MqttSession, session_present: bool) -> None:
        self.session = session
        session.subscribe([self.topic])

    def session_subscribed(self, reasons: bytes) -> None:
        self.subscribed.set()

    def session_failed(self, error: BaseException) -> None:
        self.failure = error
        self.done.set()

    def session_messages(self, generation: int, messages: list[Publish | Oversized]) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now
        self.received += len(messages)
        self.session.ack(generation, [m[1] for m in messages if isinstance(m, tuple) and m[2]])
        if self.received >= self.expected:
            self.done.set()


def lean_loopback(broker: str, messages: int, paths: list[str], encoding: str) -> dict[str, float]:
    """Messages/s a do-nothing subscriber on the ingest's receive path receives (QoS 1), publisher flat out."""
    target = parse_broker(broker)
    topic = f"trustlane-bench/{os.getpid()}-{random.getrandbits(32):08x}/lean"
    listener = _AckOnReceipt(topic, messages)
    options = SessionOptions(receive_maximum=RECEIVE_MAXIMUM)
    session = MqttSession(target, f"trustlane-lean-{os.getpid()}", listener, options)
    session.connect()
    session.start()
    try:
        if not listener.subscribed.wait(10):
            raise RemoteError(f"no subscription at {target.url}", hint="is the broker running?")
        process, _ = _publisher(broker, [topic], messages, 0, paths, encoding)
        process.join(600)
        seen = -1
        while not listener.done.wait(2) and listener.received != seen:
            seen = listener.received
    finally:
        session.close()
    if listener.failure is not None:
        raise listener.failure
    span = listener.last - listener.first if listener.first is not None else 0.0
    return {"received": float(listener.received), "msgs_per_s": listener.received / span if span > 0 else 0.0}


# --- a private broker -----------------------------------------------------------------------------------------

PRIVATE = "private"


class PrivateBroker:
    """A throwaway ``mosquitto`` on a free loopback port, without queue limits (0 = no maximum), no persistence."""

    def __init__(self) -> None:
        binary = shutil.which("mosquitto")
        if binary is None:
            raise RemoteError("--broker private needs the mosquitto binary on PATH", hint="or pass --broker mqtt://…")
        self.folder = Path(tempfile.mkdtemp(prefix="trustlane-bench-broker-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        config = self.folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RemoteError("the private mosquitto did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


# --- ingest ----------------------------------------------------------------------------------------------------


def _start_ingest(
    home: Path, broker: str, topic: str, messages: int, segment_s: float, lateness_s: float, duration: float
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "trustlane", "ingest", "mqtt", "--broker", broker, "--topic", topic,
        "--home", str(home), "--json", "--max-messages", str(messages),
        "--segment-seconds", str(segment_s), "--lateness-seconds", str(lateness_s), "--duration", str(duration),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    seen = []
    while True:
        line = process.stderr.readline().decode(errors="replace")
        seen.append(line)
        if "subscribed" in line:
            break
        if not line:
            process.kill()
            raise RemoteError(f"the ingest process did not subscribe: {''.join(seen)}"[-2000:])
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep draining warnings
    return process


def ingest_throughput(
    broker: str,
    messages: int,
    rate: int,
    signals: int = 50,
    vehicles: int = 100,
    encoding: str = "json",
    segment_seconds: float = 10.0,
    lateness_seconds: float = 2.0,
    progress: Progress = _noop,
) -> dict[str, Any]:
    if encoding not in ("json", "binary"):
        raise ValueError("encoding is json or binary")
    private = PrivateBroker() if broker == PRIVATE else None
    try:
        result = _measure(private.url if private else broker, messages, rate, signals, vehicles, encoding,
                          segment_seconds, lateness_seconds, progress)  # fmt: skip
    finally:
        if private is not None:
            private.close()
    result["broker"] = "private mosquitto (no queue limits)" if private else broker
    return result


def _measure(
    broker: str,
    messages: int,
    rate: int,
    signals: int,
    vehicles: int,
    encoding: str,
    segment_seconds: float,
    lateness_seconds: float,
    progress: Progress,
) -> dict[str, Any]:
    paths = bench_signals(signals)
    progress("raw loopback", 0.0)
    raw = raw_loopback(broker, messages, paths, encoding)
    lean = lean_loopback(broker, messages, paths, encoding)
    base = Path(tempfile.mkdtemp(prefix="trustlane-bench-mqtt-"))
    home = base / "node"
    prefix = f"trustlane-bench/{os.getpid()}-{random.getrandbits(32):08x}"
    vins = fleet(vehicles)
    client_id = ""
    try:
        progress("register fleet", 0.3)
        with Node.init(home, origin=f"bench.example/mqtt-{os.getpid()}") as node:
            client_id = client_id_for(node.config.origin)
            with open_catalog(node) as catalog:
                registry = VehicleRegistry(catalog, master_key(node), node.log)
                for vin in vins:
                    registry.register(vin)
        progress("ingest", 0.4)
        # --max-messages ends the run; --duration only if the broker dropped messages (its queue limits)
        duration = max(60.0, 3 * messages / rate) + segment_seconds + lateness_seconds
        ingest = _start_ingest(
            home, broker, f"{prefix}/vehicles/+/telemetry", messages, segment_seconds, lateness_seconds, duration
        )
        topics = [f"{prefix}/vehicles/{vin}/telemetry" for vin in vins]
        publisher, result = _publisher(broker, topics, messages, rate, paths, encoding)
        out, _ = ingest.communicate(timeout=900)
        publisher.join(120)
        pub = result.get(timeout=10) if not result.empty() else {"publish_per_s": 0.0}
        if ingest.returncode != 0:
            raise RemoteError(f"the ingest process exited {ingest.returncode}")
        summary = json.loads(out)
    finally:
        if client_id:
            drop_session(broker, client_id)
        shutil.rmtree(base, ignore_errors=True)
    lag = summary["persist_lag_ms"] or {}
    accepted_rate = summary["accepted_per_s"] or 0.0
    return {
        "messages": messages,
        "signals_per_message": signals,
        "vehicles": vehicles,
        "encoding": encoding,
        "target_rate_per_s": rate,
        "publish_rate_per_s": round(pub["publish_per_s"], 1),
        "accepted": summary["accepted"],
        "lost_before_ingest": messages - summary["received"],
        "accepted_per_s": accepted_rate,
        "persist_lag_p50_ms": lag.get("p50"),
        "persist_lag_p99_ms": lag.get("p99"),
        "persist_lag_max_ms": lag.get("max"),
        "ingest_peak_rss_mb": summary["peak_rss_mb"],
        "datasets": summary["datasets"],
        "segments": summary["segments"],
        "raw_loopback_msgs_per_s": round(raw["msgs_per_s"], 1),
        "raw_loopback_received": int(raw["received"]),
        "raw_publish_per_s": round(raw["publish_per_s"], 1),
        "ratio_to_raw_loopback": round(accepted_rate / raw["msgs_per_s"], 3) if raw["msgs_per_s"] else None,
        "lean_loopback_msgs_per_s": round(lean["msgs_per_s"], 1),
        "lean_loopback_received": int(lean["received"]),
        "cpus": os.cpu_count(),
    }


__all__ = ["bench_signals", "fleet", "ingest_throughput", "lean_loopback", "publish_stream", "raw_loopback"]
