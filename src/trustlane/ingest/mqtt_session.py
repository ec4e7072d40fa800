"""One MQTT 5 subscriber connection on a plain (or TLS) socket, kept up across broker restarts.

A receiver thread reads up to 256 kB per ``recv``, parses every packet in it (:mod:`.mqtt_wire`) and hands
the PUBLISH packets to the listener as one list. Nothing is acknowledged here: the listener calls
:meth:`MqttSession.ack` with the packet ids of messages it has made durable, and they go out as one write.
Acknowledgements carry the connection's *generation*: those due to a connection that broke are dropped (the
broker redelivers the messages on the next one). The receiver sends PINGREQ when the connection has been
quiet for half the keep-alive, and gives up on a broker that stays silent for a whole one. A lost connection
(the broker went away, a malformed packet, a missed PINGRESP) is logged with its reason and re-opened with
the same client id and no clean start, after 1 s, doubling up to 30 s while attempts fail.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from trustlane.errors import RemoteError
from trustlane.ingest.mqtt_wire import (
    DISCONNECT_PACKET,
    PINGREQ_PACKET,
    SERVER_KEEP_ALIVE,
    ConnAck,
    Disconnect,
    Oversized,
    Packet,
    PacketReader,
    ProtocolError,
    Publish,
    SubAck,
    encode_connect,
    encode_pubacks,
    encode_subscribe,
    encode_unsubscribe,
    reason_text,
)

log = logging.getLogger("trustlane.ingest.mqtt")

RECV_BYTES = 256 * 1024
CONNECT_TIMEOUT_S = 10.0
TICK_S = 1.0  # how often an idle receiver looks at the keep-alive and at close()


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class SessionOptions:
    keepalive_s: int = 30
    session_expiry_s: int = 0
    receive_maximum: int = 65_535
    max_packet: int = 1 << 20  # larger PUBLISH packets arrive as Oversized
    min_backoff_s: float = 1.0
    max_backoff_s: float = 30.0


class SessionListener(Protocol):
    """What the session tells its owner. Every call comes from the receiver thread (the first connection's
    ``session_connected`` from the thread calling :meth:`MqttSession.connect`)."""

    def session_connected(self, session: MqttSession, session_present: bool) -> None: ...

    def session_subscribed(self, reasons: bytes) -> None: ...

    def session_messages(self, generation: int, messages: list[Publish | Oversized]) -> None: ...

    def session_failed(self, error: BaseException) -> None:
        """The receiver thread stopped on an unexpected error (the listener's own, or a bug): no more messages."""


class MqttSession:
    def __init__(
        self, endpoint: Endpoint, client_id: str, listener: SessionListener, options: SessionOptions | None = None
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._listener = listener
        self._options = options or SessionOptions()
        self._keepalive = self._options.keepalive_s
        self._sock: socket.socket | None = None
        self._reader = PacketReader(self._options.max_packet)
        self._send_lock = threading.Lock()
        # OpenSSL allows no concurrent use of one connection: with TLS, reads and writes take turns
        self._tls_lock = threading.Lock() if endpoint.tls else contextlib.nullcontext()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._next_id = 0
        self._last_sent = self._last_heard = time.monotonic()
        self._ping_sent: float | None = None
        self.reconnects = 0

    @property
    def generation(self) -> int:
        """Counts successful connections; PUBACKs are only sent on the connection their messages came on."""
        return self._generation

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # --- lifecycle ----------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the first connection (RemoteError when the broker cannot be reached or refuses us)."""
        self._establish(first=True)

    def start(self) -> None:
        """Start the receiver thread (after :meth:`connect`)."""
        self._thread = threading.Thread(target=self._receive_loop, name="trustlane-mqtt-receive", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Send DISCONNECT (the broker keeps the session), close the socket and stop the receiver."""
        self._closing.set()
        with self._send_lock:
            sock = self._sock
            if sock is not None:
                with contextlib.suppress(OSError), self._tls_lock:
                    sock.sendall(DISCONNECT_PACKET)
                _shut(sock)
        if self._thread is not None:
            self._thread.join()
        self._drop_socket()

    # --- sending ----------------------------------------------------------------------------------------------
    def ack(self, generation: int, packet_ids: Iterable[int]) -> bool:
        """PUBACK these packet ids, in order, in one write, if ``generation`` is still the live connection."""
        return self._send(encode_pubacks(packet_ids), generation)

    def subscribe(self, filters: list[str]) -> None:
        self._send(encode_subscribe(self._packet_id(), filters))

    def unsubscribe(self, filters: list[str]) -> None:
        self._send(encode_unsubscribe(self._packet_id(), filters))

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 0xFFFF + 1
        return self._next_id

    def _send(self, data: bytes, generation: int | None = None) -> bool:
        if not data:
            return True
        with self._send_lock:
            sock = self._sock
            if sock is None or (generation is not None and generation != self._generation):
                return False
            try:
                with self._tls_lock:
                    sock.sendall(data)
            except OSError as err:
                # a partial write leaves the stream unusable: the receiver sees the shutdown and reconnects
                log.warning("sending to %s failed (%s); reconnecting", self.endpoint.url, err)
                _shut(sock)
                return False
            self._last_sent = time.monotonic()
            return True

    # --- connecting -------------------------------------------------------------------------------------------
    def _establish(self, *, first: bool) -> bool:
        """Open a connection and run CONNECT/CONNACK; True when connected. Raises RemoteError on the first
        connection, logs on later ones."""
        url = self.endpoint.url
        try:
            sock, connack, early = self._open()
        except (OSError, ProtocolError) as err:
            reason = (err.strerror or str(err)) if isinstance(err, OSError) else str(err)
            if first:
                raise RemoteError(
                    f"cannot reach the MQTT broker at {url}: {reason}",
                    hint="check --broker and that the broker is running",
                ) from None
            log.warning("reconnecting to %s failed: %s", url, reason)
            return False
        if connack.reason >= 0x80:
            _shut(sock)
            sock.close()
            reason = reason_text(connack.reason, connack.properties)
            if first:
                raise RemoteError(
                    f"the MQTT broker at {url} refused the connection: {reason}",
                    hint="check the broker's credentials and access rules",
                )
            log.error("the MQTT broker at %s refused the connection: %s", url, reason)
            return False
        keepalive = connack.properties.get(SERVER_KEEP_ALIVE)
        self._keepalive = keepalive if isinstance(keepalive, int) else self._options.keepalive_s
        sock.settimeout(TICK_S)
        with self._send_lock:
            self._sock = sock
            self._generation += 1
            self._last_sent = self._last_heard = time.monotonic()
            self._ping_sent = None
        if not first:
            self.reconnects += 1
            log.warning("reconnected to %s (session kept: %s)", url, connack.session_present)
        self._listener.session_connected(self, connack.session_present)
        try:
            problem = self._dispatch(early)
        except ProtocolError as err:
            problem = f"malformed packet: {err}"
        if problem is not None:
            log.warning("lost the connection to %s (%s); reconnecting", url, problem)
            self._drop_socket()
        return True

    def _open(self) -> tuple[socket.socket, ConnAck, list[Packet]]:
        """Connect and read the CONNACK; packets that came right behind it are returned, not lost."""
        end = self.endpoint
        raw = socket.create_connection((end.host, end.port), timeout=CONNECT_TIMEOUT_S)
        sock: socket.socket = raw
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if end.tls:
                sock = ssl.create_default_context().wrap_socket(raw, server_hostname=end.host)
            opts = self._options
            sock.sendall(
                encode_connect(
                    self.client_id,
                    keepalive=opts.keepalive_s,
                    clean_start=False,
                    session_expiry=opts.session_expiry_s,
                    receive_maximum=opts.receive_maximum,
                    username=end.username,
                    password=end.password,
                )
            )
            self._reader = PacketReader(opts.max_packet)
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while time.monotonic() < deadline:
                chunk = sock.recv(RECV_BYTES)
                if not chunk:
                    raise ProtocolError("the broker closed the connection before its CONNACK")
                packets = self._reader.feed(chunk)
                if packets:
                    if not isinstance(packets[0], ConnAck):
                        raise ProtocolError(f"the broker sent {type(packets[0]).__name__} before its CONNACK")
                    return sock, packets[0], packets[1:]
            raise ProtocolError(f"no CONNACK within {CONNECT_TIMEOUT_S:.0f} s")
        except BaseException:
            sock.close()
            raise

    def _drop_socket(self) -> None:
        with self._send_lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    # --- the receiver thread ----------------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        try:
            self._keep_receiving()
        except BaseException as exc:
            self._listener.session_failed(exc)

    def _keep_receiving(self) -> None:
        backoff = self._options.min_backoff_s
        while not self._closing.is_set():
            sock = self._sock
            if sock is None:
                if self._closing.wait(backoff):
                    return
                if self._establish(first=False):
                    backoff = self._options.min_backoff_s
                else:
                    backoff = min(backoff * 2, self._options.max_backoff_s)
                continue
            problem = self._receive(sock)
            if problem is not None:
                self._drop_socket()
                if not self._closing.is_set():
                    log.warning("lost the connection to %s (%s); reconnecting", self.endpoint.url, problem)

    def _receive(self, sock: socket.socket) -> str | None:
        """Read and dispatch until the connection ends; why it ended (None when closed by :meth:`close`)."""
        feed = self._reader.feed
        while not self._closing.is_set():
            try:
                chunk = self._read(sock)
            except OSError as err:
                return err.strerror or str(err)
            now = time.monotonic()
            if chunk is not None:
                if not chunk:
                    return None if self._closing.is_set() else "the broker closed the connection"
                self._last_heard = now
                self._ping_sent = None
                try:
                    problem = self._dispatch(feed(chunk))
                except ProtocolError as err:
                    log.error("closing the connection to %s: malformed packet: %s", self.endpoint.url, err)
                    return f"malformed packet: {err}"
                if problem is not None:
                    return problem
            problem = self._keep_alive(now)
            if problem is not None:
                return problem
        return None

    def _read(self, sock: socket.socket) -> bytes | None:
        """The next chunk (empty at the end of the stream), or None when nothing came for a tick."""
        try:
            if not isinstance(sock, ssl.SSLSocket):
                return sock.recv(RECV_BYTES)
            # wait outside the lock, so that acknowledgements can be written meanwhile
            if not sock.pending() and not select.select([sock], [], [], TICK_S)[0]:
                return None
            with self._tls_lock:
                return sock.recv(RECV_BYTES)
        except TimeoutError:
            return None

    def _dispatch(self, packets: list[Packet]) -> str | None:
        messages = [p for p in packets if type(p) is tuple or type(p) is Oversized]  # PUBLISH is a tuple
        if messages:
            self._listener.session_messages(self._generation, messages)
        if len(messages) == len(packets):
            return None
        for packet in packets:
            if isinstance(packet, SubAck):
                self._listener.session_subscribed(packet.reasons)
            elif isinstance(packet, Disconnect):
                return f"the broker disconnected: {reason_text(packet.reason, packet.properties)}"
            elif isinstance(packet, ConnAck):
                raise ProtocolError("a second CONNACK on one connection")
        return None  # PINGRESP and UNSUBACK only prove the broker is there

    def _keep_alive(self, now: float) -> str | None:
        """PINGREQ when we have sent nothing for half the keep-alive (the broker drops a client silent for
        1.5 times it); the connection is dead when nothing at all came back for a whole keep-alive after it."""
        keepalive = self._keepalive
        if not keepalive:
            return None
        if self._ping_sent is not None and now - self._ping_sent > keepalive:
            return f"no answer to PINGREQ within {keepalive} s"
        if now - self._last_sent > keepalive / 2:
            if self._ping_sent is None:
                self._ping_sent = now
            self._send(PINGREQ_PACKET)
        return None


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


__all__ = ["Endpoint", "MqttSession", "SessionListener", "SessionOptions"]
