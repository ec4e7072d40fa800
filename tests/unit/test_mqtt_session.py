"""The subscriber connection against a scripted broker on a loopback socket: connect, subscribe, batched
PUBACKs, keep-alive, reconnecting after the broker goes away or sends a malformed packet."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import queue
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustlane.errors import RemoteError
from trustlane.ingest.mqtt_session import Endpoint, MqttSession, SessionOptions
from trustlane.ingest.mqtt_wire import Oversized, Publish, encode_publish, encode_varint, parse_properties

TOPIC = "t/vehicles/1M8GDM9AXKP042788/telemetry"
CONNACK = b"\x20\x03\x00\x00\x00"
CONNACK_PRESENT = b"\x20\x03\x01\x00\x00"


class Peer:
    """One accepted connection, as the broker sees it."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        conn.settimeout(10)
        self._buffer = b""

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise EOFError("the client closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def packet(self) -> tuple[int, bytes]:
        """(first byte, body) of the next packet the client sent."""
        first = self._read(1)[0]
        length = shift = 0
        while True:
            byte = self._read(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        return first, self._read(length)

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def handshake(self, connack: bytes = CONNACK) -> bytes:
        first, body = self.packet()
        assert first == 0x10
        self.send(connack)
        return body

    def suback(self) -> None:
        first, body = self.packet()
        assert first == 0x82
        self.send(b"\x90\x04" + body[:2] + b"\x00\x01")


class ScriptedBroker:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.server.settimeout(10)
        self.peers: list[Peer] = []

    def accept(self) -> Peer:
        conn, _ = self.server.accept()
        self.peers.append(Peer(conn))
        return self.peers[-1]

    def close(self) -> None:
        for peer in self.peers:
            peer.conn.close()
        self.server.close()


class Recorder:
    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.fail_on_messages = False

    def session_connected(self, session: MqttSession, session_present: bool) -> None:
        self.events.put(("connected", session_present))
        session.subscribe([TOPIC])

    def session_subscribed(self, reasons: bytes) -> None:
        self.events.put(("subscribed", reasons))

    def session_messages(self, generation: int, messages: list[Publish | Oversized]) -> None:
        if self.fail_on_messages:
            raise RuntimeError("the listener broke")
        self.events.put(("messages", (generation, messages)))

    def session_failed(self, error: BaseException) -> None:
        self.events.put(("failed", error))

    def messages(self) -> tuple[int, list[Publish | Oversized]]:
        got, value = self.events.get(timeout=10)
        assert got == "messages", (got, value)
        return value  # type: ignore[return-value]  # what session_messages put

    def next(self, kind: str) -> object:
        got, value = self.events.get(timeout=10)
        assert got == kind, (got, value)
        return value


@pytest.fixture
def broker() -> Iterator[ScriptedBroker]:
    instance = ScriptedBroker()
    yield instance
    instance.close()


def open_session(
    broker: ScriptedBroker, recorder: Recorder, *, keepalive_s: int = 30, max_packet: int = 1 << 20
) -> tuple[MqttSession, Peer]:
    opts = SessionOptions(
        keepalive_s=keepalive_s, session_expiry_s=3600, max_packet=max_packet, min_backoff_s=0.05, max_backoff_s=0.2
    )
    session = MqttSession(Endpoint("127.0.0.1", broker.port), "client-1", recorder, opts)
    accepted: list[Peer] = []
    thread = threading.Thread(target=lambda: accepted.append(broker.accept()))
    thread.start()
    session_ready = threading.Thread(target=session.connect)
    session_ready.start()
    thread.join()
    peer = accepted[0]
    body = peer.handshake()
    session_ready.join()
    assert body[:7] == b"\x00\x04MQTT\x05"
    return session, peer


def subscribed_session(broker: ScriptedBroker, recorder: Recorder, **options: int) -> tuple[MqttSession, Peer]:
    """A session past CONNACK and SUBACK, its listener running."""
    session, peer = open_session(broker, recorder, **options)
    recorder.next("connected")
    peer.suback()
    session.start()
    recorder.next("subscribed")
    return session, peer


def test_connect_subscribe_receive_and_acknowledge_in_one_write(broker: ScriptedBroker) -> None:
    recorder = Recorder()
    session, peer = open_session(broker, recorder)
    try:
        assert recorder.next("connected") is False
        first, body = peer.packet()  # the SUBSCRIBE sent from session_connected
        assert first == 0x82 and body.endswith(TOPIC.encode() + b"\x11")
        session.start()
        peer.send(b"\x90\x04" + body[:2] + b"\x00\x01")
        assert recorder.next("subscribed") == b"\x01"
        peer.send(b"".join(encode_publish(TOPIC, b"m%d" % i, packet_id=i, qos=1) for i in (1, 2, 3)))
        generation, messages = recorder.messages()
        assert messages == [(TOPIC.encode(), i, 1, b"m%d" % i) for i in (1, 2, 3)]
        assert session.ack(generation, [1, 2, 3])
        assert peer.conn.recv(100) == b"\x40\x02\x00\x01\x40\x02\x00\x02\x40\x02\x00\x03"
        assert not session.ack(generation + 1, [4])  # not this connection's: nothing sent
    finally:
        session.close()
    assert peer.packet() == (0xE0, b"")  # DISCONNECT, keeping the session


def test_the_connect_packet_keeps_the_session(broker: ScriptedBroker) -> None:
    recorder = Recorder()
    accepted: list[Peer] = []
    thread = threading.Thread(target=lambda: accepted.append(broker.accept()))
    thread.start()
    session = MqttSession(
        Endpoint("127.0.0.1", broker.port), "client-1", recorder, SessionOptions(session_expiry_s=3600)
    )
    connecting = threading.Thread(target=session.connect)
    connecting.start()
    thread.join()
    first, body = accepted[0].packet()
    assert first == 0x10 and body[:7] == b"\x00\x04MQTT\x05" and body[7] == 0  # no clean start
    props, _ = parse_properties(body, 10, len(body), "CONNECT")
    assert props == {0x11: 3600, 0x21: 65_535}
    accepted[0].send(CONNACK)
    connecting.join()
    session.close()


def test_messages_right_behind_the_connack_are_delivered(broker: ScriptedBroker) -> None:
    recorder = Recorder()
    accepted: list[Peer] = []
    thread = threading.Thread(target=lambda: accepted.append(broker.accept()))
    thread.start()
    session = MqttSession(Endpoint("127.0.0.1", broker.port), "c", recorder)
    connecting = threading.Thread(target=session.connect)
    connecting.start()
    thread.join()
    peer = accepted[0]
    peer.packet()
    peer.send(CONNACK_PRESENT + encode_publish(TOPIC, b"queued", packet_id=9, qos=1))  # one write
    connecting.join()
    try:
        assert recorder.next("connected") is True
        assert recorder.next("messages") == (1, [(TOPIC.encode(), 9, 1, b"queued")])
    finally:
        session.close()


def test_a_broker_that_goes_away_is_reconnected_with_a_new_generation(broker: ScriptedBroker) -> None:
    recorder = Recorder()
    session, peer = subscribed_session(broker, recorder)
    try:
        peer.conn.close()  # the broker dies
        again = broker.accept()
        again.handshake(CONNACK_PRESENT)
        assert recorder.next("connected") is True
        assert session.reconnects == 1 and session.generation == 2
        again.suback()
        recorder.next("subscribed")
        again.send(encode_publish(TOPIC, b"after", packet_id=1, qos=1))
        assert recorder.next("messages") == (2, [(TOPIC.encode(), 1, 1, b"after")])
        assert not session.ack(1, [1])  # due to the broken connection: the broker redelivers instead
    finally:
        session.close()


def test_a_malformed_packet_closes_the_connection_with_its_reason(
    broker: ScriptedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    session, peer = subscribed_session(broker, recorder)
    try:
        with caplog.at_level(logging.WARNING, logger="trustlane.ingest.mqtt"):
            peer.send(b"\x36\x06\x00\x01t\x00\x01\x00")  # QoS 3
            again = broker.accept()  # closed, then reconnected
            again.handshake()
            recorder.next("connected")
        assert "malformed packet: a PUBLISH has QoS 3" in caplog.text
        with pytest.raises(EOFError):
            peer.packet()
    finally:
        session.close()


def test_an_oversized_message_arrives_as_its_head_only(broker: ScriptedBroker) -> None:
    recorder = Recorder()
    session, peer = subscribed_session(broker, recorder, max_packet=1024)
    try:
        big = encode_publish(TOPIC, b"x" * 100_000, packet_id=4, qos=1)
        peer.send(big + encode_publish(TOPIC, b"small", packet_id=5, qos=1))
        seen: list[Publish | Oversized] = []
        while len(seen) < 2:
            _, messages = recorder.messages()
            seen.extend(messages)
        assert seen == [Oversized(TOPIC.encode(), 4, 1, len(big) - 4), (TOPIC.encode(), 5, 1, b"small")]
    finally:
        session.close()


def test_an_idle_connection_sends_pingreq(broker: ScriptedBroker) -> None:
    recorder = Recorder()
    session, peer = subscribed_session(broker, recorder, keepalive_s=2)
    try:
        assert peer.packet() == (0xC0, b"")  # within a second or two of silence
        peer.send(b"\xd0\x00")
        assert session.connected
    finally:
        session.close()


def test_a_refused_connection_is_a_remote_error(broker: ScriptedBroker) -> None:
    accepted: list[Peer] = []
    thread = threading.Thread(target=lambda: accepted.append(broker.accept()))
    thread.start()
    session = MqttSession(Endpoint("127.0.0.1", broker.port), "c", Recorder())

    def refuse() -> None:
        thread.join()
        accepted[0].packet()
        reason = b"\x1f\x00\x0dnot permitted"
        accepted[0].send(b"\x20" + encode_varint(3 + len(reason)) + b"\x00\x87" + bytes([len(reason)]) + reason)

    refuser = threading.Thread(target=refuse)
    refuser.start()
    with pytest.raises(RemoteError, match=r"refused the connection: reason 0x87 \(not permitted\)"):
        session.connect()
    refuser.join()


def test_an_unreachable_broker_is_a_remote_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    with pytest.raises(RemoteError, match=r"cannot reach the MQTT broker at mqtt://127\.0\.0\.1"):
        MqttSession(Endpoint("127.0.0.1", port), "c", Recorder()).connect()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test broker")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_receives_and_acknowledges_while_reading(
    broker: ScriptedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the system CAs: make this one of them
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    recorder = Recorder()
    session = MqttSession(Endpoint("127.0.0.1", broker.port, tls=True), "c", recorder)
    accepted: list[Peer] = []

    def accept() -> None:
        conn, _ = broker.server.accept()
        peer = Peer(server_tls.wrap_socket(conn, server_side=True))
        broker.peers.append(peer)
        accepted.append(peer)

    thread = threading.Thread(target=accept)
    thread.start()
    connecting = threading.Thread(target=session.connect)
    connecting.start()
    thread.join()
    peer = accepted[0]
    peer.handshake()
    connecting.join()
    try:
        assert recorder.next("connected") is False
        peer.suback()
        session.start()
        recorder.next("subscribed")
        for round_ in range(20):  # acknowledgements written while the receiver waits for the next message
            peer.send(encode_publish(TOPIC, b"m", packet_id=round_ + 1, qos=1))
            generation, messages = recorder.messages()
            assert messages == [(TOPIC.encode(), round_ + 1, 1, b"m")]
            assert session.ack(generation, [round_ + 1])
            assert peer.packet() == (0x40, struct.pack(">H", round_ + 1))
    finally:
        session.close()


def test_an_error_of_the_listener_is_reported_not_swallowed(broker: ScriptedBroker) -> None:
    recorder = Recorder()
    session, peer = subscribed_session(broker, recorder)
    try:
        recorder.fail_on_messages = True
        peer.send(encode_publish(TOPIC, b"m", packet_id=1, qos=1))
        error = recorder.next("failed")
        assert isinstance(error, RuntimeError) and str(error) == "the listener broke"
    finally:
        session.close()
