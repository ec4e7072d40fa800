"""Live telemetry ingest (`trustlane ingest mqtt`) against a real Mosquitto broker.

The broker comes from TRUSTLANE_TEST_MQTT_URL (e.g. mqtt://127.0.0.1:1883); every test uses its own topic
prefix and its own node (hence its own MQTT client id and persistent session, dropped afterwards). The
broker-restart test starts a private `mosquitto` on a free port and never touches the shared broker.

What must hold: JSON and binary messages of two registered vehicles come back unchanged through the catalog
and `trustlane data export`; a sequence number is stored once, whether repeated by the publisher, redelivered
by the broker, or published again after the ingest crashed (its write-ahead is replayed) or was restarted;
unknown vehicles, malformed and oversized messages are counted and never stop the subscriber; a broker
restart mid-run loses nothing; the ledger passes fsck afterwards.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from trustlane.catalog.home import master_key, open_catalog
from trustlane.ingest.mqtt import MAX_PACKET_BYTES, client_id_for, drop_session, parse_broker, publish_telemetry
from trustlane.ingest.telemetry import MAX_SIGNALS, encode_json, telemetry_message
from trustlane.ingest.telemetry_state import SeqSet
from trustlane.ledger.fsck import fsck
from trustlane.node import Node
from trustlane.vehicles.registry import VehicleRegistry

pytestmark = pytest.mark.mqtt

VIN_A = "1M8GDM9AXKP042788"
VIN_B = "1HGCM82633A004352"
VIN_UNKNOWN = "WVWZZZ1JZXW000001"
SKIP_REASON = "set TRUSTLANE_TEST_MQTT_URL=mqtt://127.0.0.1:1883 to run MQTT tests"
IN_CI = os.environ.get("CI", "").lower() == "true"
SECOND = 1_000_000_000


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI runs every MQTT test)")
    pytest.skip(reason)


def _reachable(url: str) -> bool:
    target = parse_broker(url)
    try:
        socket.create_connection((target.host, target.port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def broker() -> str:
    url = os.environ.get("TRUSTLANE_TEST_MQTT_URL", "")
    if not url or not _reachable(url):
        _unavailable(SKIP_REASON)
    return url


@dataclass
class Holder:
    home: Path
    client_id: str
    pseudonyms: dict[str, str]
    prefix: str = field(default_factory=lambda: f"tltest-{uuid.uuid4().hex[:12]}")

    @property
    def topic_filter(self) -> str:
        return f"{self.prefix}/vehicles/+/telemetry"

    def topic(self, vin: str) -> str:
        return f"{self.prefix}/vehicles/{vin}/telemetry"


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Holder]:
    home = tmp_path / "holder"
    with Node.init(home, origin=f"mqtt-{uuid.uuid4().hex[:8]}.example/log") as node:
        with open_catalog(node) as catalog:
            registry = VehicleRegistry(catalog, master_key(node), node.log)
            pseudonyms = {vin: registry.register(vin).pseudonym for vin in (VIN_A, VIN_B)}
        yield Holder(home, client_id_for(node.config.origin), pseudonyms)


@pytest.fixture
def session_cleanup(broker: str, holder: Holder) -> Iterator[None]:
    yield
    drop_session(broker, holder.client_id)  # the persistent session must not outlive the test


# --- helpers ---------------------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("TRUSTLANE_HOME", "TRUSTLANE_DEBUG")}


class Ingest:
    """`trustlane ingest mqtt --json` in a subprocess; started once it has subscribed."""

    def __init__(self, holder: Holder, broker: str, *args: str, segment: float = 1.0, lateness: float = 0.5) -> None:
        command = [
            sys.executable, "-m", "trustlane", "ingest", "mqtt", "--broker", broker,
            "--topic", holder.topic_filter, "--home", str(holder.home), "--json",
            "--segment-seconds", str(segment), "--lateness-seconds", str(lateness), *args,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_environment())
        self.stderr: list[str] = []
        self.stdout = b""
        self._subscribed = threading.Event()
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self._subscribed.wait(60):
            self.crash()
            pytest.fail(f"the ingest never subscribed:\n{self.errors}")

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.stderr.append(line)
            if line.startswith("subscribed to"):
                self._subscribed.set()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    @property
    def errors(self) -> str:
        return "".join(self.stderr)

    def finish(self, timeout: float = 90) -> dict[str, Any]:
        """Wait for the process (--max-messages, --duration or a signal ended it); its JSON summary."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.crash()
            pytest.fail(f"the ingest did not finish within {timeout} s:\n{self.errors}")
        self._close()
        assert self.process.returncode == 0, self.errors
        assert "Traceback" not in self.errors, self.errors
        summary: dict[str, Any] = json.loads(self.stdout)
        return summary

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def interrupt(self) -> dict[str, Any]:
        self.process.send_signal(signal.SIGINT)
        return self.finish()

    def crash(self) -> None:
        self.process.kill()
        self.process.wait()
        self._close()


def cli(*args: str | Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "trustlane", *map(str, args)],
        capture_output=True,
        env=_environment(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def mqtt_datasets(holder: Holder, vin: str) -> list[dict[str, Any]]:
    catalog = json.loads(cli("catalog", "--home", holder.home, "--json"))
    return [d for d in catalog["datasets"] if d["vehicle"] == holder.pseudonyms[vin] and d["format"] == "mqtt"]


def exported(holder: Holder, vin: str, tmp_path: Path) -> dict[tuple[str, int], Any]:
    """Every sample of the vehicle's telemetry datasets, read back through `trustlane data export`."""
    samples: dict[tuple[str, int], Any] = {}
    for dataset in mqtt_datasets(holder, vin):
        out = tmp_path / f"{dataset['id']}.csv"
        cli("data", "export", dataset["id"], "-o", out, "--home", holder.home)
        with out.open() as f:
            for row in csv.DictReader(f):
                key = (row["path"], int(row["t_ns"]))
                assert key not in samples, f"{key} stored twice"
                samples[key] = row["text"] if row["text"] != "" else float(row["value"])
    return samples


def accepted_seqs(holder: Holder, vin: str) -> SeqSet:
    """The seq numbers the running ingest has durably accepted (its state file, read-only)."""
    path = holder.home / "telemetry" / "state.db"
    if not path.exists():
        return SeqSet()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT seqs FROM vehicles WHERE vehicle = ?", (holder.pseudonyms[vin],)).fetchone()
    except sqlite3.OperationalError:
        return SeqSet()
    finally:
        db.close()
    return SeqSet() if row is None else SeqSet.from_bytes(row[0])


def wait_until_accepted(holder: Holder, vin: str, seqs: Sequence[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = accepted_seqs(holder, vin)
        if all(s in seen for s in seqs):
            return
        time.sleep(0.1)
    pytest.fail(f"seq {list(seqs)} not all accepted within {timeout} s: {accepted_seqs(holder, vin).ranges()}")


def check_ledger(holder: Holder) -> None:
    with Node.open(holder.home) as node:
        report = fsck(node.store, node.log_verifier)
        assert report.entries == node.store.tree_size()
    cli("ledger", "verify", "--home", holder.home)


def window_start(length_s: int, margin_s: int = 30) -> int:
    """The start of an epoch-aligned window that stays open at least ``margin_s`` seconds from now."""
    length = length_s * SECOND
    window = time.time_ns() // length
    if (window + 1) * length - time.time_ns() < margin_s * SECOND:
        window += 1
    return window * length


# --- the tests -----------------------------------------------------------------------------------------------


def test_json_and_binary_messages_of_two_vehicles_round_trip(
    broker: str, holder: Holder, session_cleanup: None, tmp_path: Path
) -> None:
    ingest = Ingest(holder, broker, "--max-messages", "8")
    now = time.time_ns()
    levels = ["SAE_2", "SAE_3", "SAE_2", "SAE_0"]
    json_messages = [
        telemetry_message(
            seq,
            {
                "Vehicle.Speed": 50.25 + seq,
                "Vehicle.ADAS.ActiveAutonomyLevel": levels[seq],
                "Vehicle.IsMoving": seq != 3,
            },
            t_ns=now + seq * 10_000_000,
            vin=VIN_A if seq % 2 else None,  # the message may name its vehicle too
        )
        for seq in range(4)
    ]
    # a JSON integer, and t_ns as a JSON number instead of a string
    json_messages[3] = (
        b'{"v":1,"seq":3,"t_ns":%d,"signals":{"Vehicle.Speed":53,"Vehicle.ADAS.ActiveAutonomyLevel":"SAE_0",'
        b'"Vehicle.IsMoving":false}}' % (now + 30_000_000)
    )
    binary_messages = [
        telemetry_message(
            seq,
            {
                "Vehicle.Speed": 80.5 - seq,  # in the signal table: an id
                "Vehicle.Chassis.Brake.PedalPosition": float(seq * 10),
                "Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen": seq == 2,  # not in the table: inline path
                "Vehicle.ADAS.ActiveAutonomyLevel": "SAE_1",
            },
            t_ns=now + seq * 20_000_000,
            binary=True,
        )
        for seq in range(4)
    ]
    assert publish_telemetry(broker, VIN_A, json_messages, topic=holder.topic(VIN_A)) == 4
    assert publish_telemetry(broker, VIN_B, binary_messages, topic=holder.topic(VIN_B)) == 4
    summary = ingest.finish()
    assert summary["received"] == summary["accepted"] == 8, summary
    assert (summary["duplicates"], summary["rejected"], summary["unknown_vehicle"], summary["late"]) == (0, 0, 0, 0)
    assert summary["datasets"] >= 2 and summary["segments"] >= 2
    assert summary["client_id"] == holder.client_id
    assert summary["persist_lag_ms"]["p99"] >= summary["persist_lag_ms"]["p50"] > 0

    stored_a = mqtt_datasets(holder, VIN_A)
    assert {s["path"] for d in stored_a for s in d["signals"]} == {
        "Vehicle.Speed",
        "Vehicle.ADAS.ActiveAutonomyLevel",
        "Vehicle.IsMoving",
    }
    assert sorted(summary["dataset_ids"]) == sorted(d["id"] for d in stored_a + mqtt_datasets(holder, VIN_B))
    samples_a = exported(holder, VIN_A, tmp_path)
    for seq in range(4):
        t = now + seq * 10_000_000
        assert samples_a[("Vehicle.Speed", t)] == (50.25 + seq if seq < 3 else 53.0)
        assert samples_a[("Vehicle.ADAS.ActiveAutonomyLevel", t)] == levels[seq]
        assert samples_a[("Vehicle.IsMoving", t)] == (0.0 if seq == 3 else 1.0)
    assert len(samples_a) == 12
    samples_b = exported(holder, VIN_B, tmp_path)
    for seq in range(4):
        t = now + seq * 20_000_000
        assert samples_b[("Vehicle.Speed", t)] == 80.5 - seq
        assert samples_b[("Vehicle.Chassis.Brake.PedalPosition", t)] == float(seq * 10)
        assert samples_b[("Vehicle.Cabin.Door.Row1.PassengerSide.IsOpen", t)] == (1.0 if seq == 2 else 0.0)
        assert samples_b[("Vehicle.ADAS.ActiveAutonomyLevel", t)] == "SAE_1"
    assert len(samples_b) == 16
    assert VIN_A not in ingest.errors and VIN_B not in ingest.errors  # logs name pseudonyms, never VINs
    check_ledger(holder)


def test_each_seq_is_stored_once_across_repeats_crashes_and_restarts(
    broker: str, holder: Holder, session_cleanup: None, tmp_path: Path
) -> None:
    start = window_start(60)
    message = {
        seq: telemetry_message(seq, {"Vehicle.Speed": float(seq)}, t_ns=start + seq * SECOND) for seq in range(7)
    }

    # run 1: seq 0-4 and seq 2 again; crash (SIGKILL) once they are durable, before the window closes
    first = Ingest(holder, broker, segment=60, lateness=1)
    publish_telemetry(broker, VIN_A, [message[s] for s in (0, 1, 2, 3, 2, 4)], topic=holder.topic(VIN_A))
    wait_until_accepted(holder, VIN_A, range(5))
    first.crash()
    assert mqtt_datasets(holder, VIN_A) == []  # nothing stored yet: it is all in the write-ahead

    # run 2: the write-ahead is replayed; the broker redelivers what was not acknowledged, the publisher
    # repeats everything and adds seq 5 and 6; a graceful stop stores the window
    second = Ingest(holder, broker, segment=60, lateness=1)
    publish_telemetry(broker, VIN_A, [message[s] for s in range(7)], topic=holder.topic(VIN_A))
    wait_until_accepted(holder, VIN_A, range(7))
    summary = second.interrupt()
    assert summary["replayed"] == 5, summary
    assert summary["accepted"] == 2 and summary["duplicates"] >= 5, summary
    assert summary["datasets"] == 1 and summary["rejected"] == 0, summary

    # run 3: everything once more, after the window was stored: all duplicates, nothing new
    third = Ingest(holder, broker, "--max-messages", "7", segment=60, lateness=1)
    publish_telemetry(broker, VIN_A, [message[s] for s in range(7)], topic=holder.topic(VIN_A))
    summary = third.finish()
    assert (summary["accepted"], summary["duplicates"], summary["datasets"]) == (0, 7, 0), summary

    stored = mqtt_datasets(holder, VIN_A)
    assert len(stored) == 1
    samples = exported(holder, VIN_A, tmp_path)
    assert samples == {("Vehicle.Speed", start + seq * SECOND): float(seq) for seq in range(7)}
    check_ledger(holder)


def test_unknown_vehicles_and_malformed_messages_are_counted_and_not_fatal(
    broker: str, holder: Holder, session_cleanup: None, tmp_path: Path
) -> None:
    now = time.time_ns()
    good = [telemetry_message(seq, {"Vehicle.Speed": 10.0 + seq}, t_ns=now + seq) for seq in (0, 1)]
    bad = [
        b"{" + b" " * MAX_PACKET_BYTES + b"}",  # over the receive limit: skipped unread, never buffered
        b"\x00\xffnot json",
        b'{"v":1,"seq":2,"t_ns":"%d","signals":{"Vehicle.Speed":NaN}}' % now,  # non-finite
        b'{"v":1,"seq":3,"t_ns":"%d","signals":{"Vehicle.Speed":1e999}}' % now,  # overflows to inf
        encode_json(4, now, {"Vehicle.Speed": 1.0, "Vehicle.Exterior.AirTemperature": "x" * 70_000}),  # > 64 KiB
        encode_json(5, now, {f"Vendor.x{i}": 1.0 for i in range(MAX_SIGNALS + 1)}),  # too many signals
        encode_json(6, now, {"Vehicle.Speed": "fast"}),  # text for a number
        encode_json(7, now, {"Vehicle.ADAS.ActiveAutonomyLevel": "SAE_9"}),  # not an allowed value
        encode_json(8, now, {"Vehicle.Speed": 1.0}, vin=VIN_B),  # names another vehicle than its topic
        encode_json(9, now + 3600 * SECOND, {"Vehicle.Speed": 1.0}),  # an hour in the future
        telemetry_message(10, {"Vehicle.Speed": 1.0}, binary=True)[:-3],  # truncated binary
        b'{"v":2,"seq":11,"t_ns":"1","signals":{"Vehicle.Speed":1}}',  # a version this node does not read
        b'{"v":1,"seq":12,"t_ns":"1","signals":{"Vehicle.Speed":null}}',
    ]
    assert len(bad[4]) > 64 * 1024
    ingest = Ingest(holder, broker, "--max-messages", str(len(good) + len(bad) + 1))
    publish_telemetry(broker, VIN_A, [good[0], *bad, good[1]], topic=holder.topic(VIN_A))
    publish_telemetry(broker, VIN_UNKNOWN, [good[0]], topic=holder.topic(VIN_UNKNOWN))
    summary = ingest.finish()
    assert summary["received"] == len(good) + len(bad) + 1
    assert summary["accepted"] == 2, summary
    assert summary["rejected"] == len(bad), summary
    assert summary["unknown_vehicle"] == 1, summary
    assert summary["datasets"] == 1
    assert exported(holder, VIN_A, tmp_path) == {
        ("Vehicle.Speed", now): 10.0,
        ("Vehicle.Speed", now + 1): 11.0,
    }
    log = ingest.errors
    assert "more than the 65536-byte limit" in log and "not a finite number" in log and "SAE_9" in log
    assert f"more than the {MAX_PACKET_BYTES}-byte limit" in log and "skipped unread" in log
    assert "is not registered on this node" in log
    for vin in (VIN_A, VIN_B, VIN_UNKNOWN):
        assert vin not in log  # the topic is shown with the pseudonym in place of the VIN
    check_ledger(holder)


# --- broker restart, on a private broker --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateBroker:
    def __init__(self, folder: Path) -> None:
        binary = shutil.which("mosquitto")
        if binary is None:
            _unavailable("the broker restart test needs the mosquitto binary on PATH")
        self.port = _free_port()
        folder.mkdir()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\nmax_queued_messages 0\n"
        )
        self.binary = str(binary)
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while not _reachable(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"the private mosquitto on port {self.port} did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_broker(broker: str, tmp_path: Path) -> Iterator[PrivateBroker]:
    instance = PrivateBroker(tmp_path / "mosquitto")
    try:
        yield instance
    finally:
        instance.kill()


def test_a_broker_restart_mid_run_loses_nothing(private_broker: PrivateBroker, holder: Holder, tmp_path: Path) -> None:
    now = time.time_ns()
    message = {seq: telemetry_message(seq, {"Vehicle.Speed": float(seq)}, t_ns=now + seq * 1000) for seq in range(20)}
    ingest = Ingest(holder, private_broker.url)
    publish_telemetry(private_broker.url, VIN_A, [message[s] for s in range(10)], topic=holder.topic(VIN_A))
    wait_until_accepted(holder, VIN_A, range(10))

    private_broker.kill()  # SIGKILL: its sessions may be lost with it; the ingest must reconnect and resubscribe
    private_broker.start()
    deadline = time.monotonic() + 60
    later = range(10, 20)
    while not all(s in accepted_seqs(holder, VIN_A) for s in later):  # publish until the ingest is back
        assert time.monotonic() < deadline, f"not accepted after the restart:\n{ingest.errors}"
        publish_telemetry(private_broker.url, VIN_A, [message[s] for s in later], topic=holder.topic(VIN_A))
        time.sleep(0.5)
    summary = ingest.interrupt()
    assert summary["accepted"] == 20, summary
    assert summary["reconnects"] >= 1, summary
    assert summary["received"] == summary["accepted"] + summary["duplicates"]
    samples = exported(holder, VIN_A, tmp_path)
    assert samples == {("Vehicle.Speed", now + seq * 1000): float(seq) for seq in range(20)}
    check_ledger(holder)
