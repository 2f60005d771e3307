"""The one module that owns paho-mqtt. Hub, firmware, simulator and benchmarks connect through
:class:`MqttLink`, which brings the habits a call system needs:

- a persistent session (MQTT 5 ``clean_start=False`` with a session expiry, or MQTT 3.1.1
  ``clean_session=False``), so QoS 1 messages wait at the broker while a client is away;
- TCP_NODELAY on the socket: paho leaves Nagle's algorithm on, which holds small packets back
  for ~40 ms and turns a 3 ms press→lamp into 44 ms;
- a reconnect backoff capped at a few seconds (paho's default grows to 120 s);
- a last will, and re-subscribing on every connect (covers a broker that lost the session);
- optional manual acknowledgement, so a receiver acknowledges a QoS 1 message only after it
  has stored it: if it dies before that, the broker delivers the message again;
- optionally (``fresh_resend``) dropping paho's unacknowledged copies on reconnect, for a
  sender that republishes from its own on-disk outbox with fresh payloads (age_ms).

Broker addresses are URLs: ``mqtt://host:1883``, ``mqtts://user:pass@host:8883``; add
``?protocol=3`` for an MQTT 3.1.1-only broker.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs, unquote, urlparse

#: paho, imported by the first MqttLink (_import_paho): what reads a config or a message
#: (BrokerAddress, Message) needs no MQTT client, and ``callbell check`` answers in well under
#: a second without it.
paho = PacketTypes = Properties = SubscribeOptions = None


def _import_paho() -> None:
    global paho, PacketTypes, Properties, SubscribeOptions
    if paho is None:
        import paho.mqtt.client as client
        from paho.mqtt.packettypes import PacketTypes as packet_types
        from paho.mqtt.properties import Properties as properties
        from paho.mqtt.subscribeoptions import SubscribeOptions as subscribe_options
        paho, PacketTypes, Properties, SubscribeOptions = client, packet_types, properties, subscribe_options

log = logging.getLogger("callbell.mqtt")

#: Seconds between keepalive pings. The broker declares a client dead (and publishes its will)
#: after 1.5× this without traffic: short enough that a fault shows within ~8 s, long enough
#: that a busy Wi-Fi does not flap.
KEEPALIVE_S = 5

#: Reconnect backoff, seconds: first retry after MIN, doubling up to MAX. paho's default cap is
#: 120 s, far too long for a lamp that must come back quickly after a broker restart.
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 5

#: How long the broker keeps a disconnected client's session and queued QoS 1 messages,
#: seconds. A week covers a store closed over a long weekend with the hub switched off.
SESSION_EXPIRY_S = 7 * 24 * 3600

#: Messages paho may keep in flight at once; the broker's receive maximum also applies.
MAX_INFLIGHT = 100


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    mqtt5: bool = True
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        """Parse ``mqtt[s]://[user[:password]@]host[:port][?protocol=3&ca=FILE]``."""
        u = urlparse(url)
        if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"broker URL must start with mqtt:// or mqtts://, got {url!r}")
        if not u.hostname:
            raise ValueError(f"broker URL has no host: {url!r}")
        tls = u.scheme in ("mqtts", "ssl")
        query = parse_qs(u.query)
        protocol = query.get("protocol", ["5"])[0]
        if protocol not in ("3", "5"):
            raise ValueError(f"broker URL protocol must be 3 or 5, got {protocol!r}")
        try:
            port = u.port or (8883 if tls else 1883)
        except ValueError:
            raise ValueError(f"broker URL has a bad port: {url!r}") from None
        return cls(host=u.hostname, port=port, tls=tls,
                   username=unquote(u.username) if u.username else None,
                   password=unquote(u.password) if u.password else None,
                   mqtt5=protocol == "5", ca_file=query.get("ca", [None])[0])

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    #: MQTT 5 Message Expiry Interval left when it reached us, seconds (None if not set).
    expiry_s: int | None = None


class MqttLink:
    """One client connection to the broker, kept up for the life of the program.

    Callbacks run on paho's network thread; keep them short (hand work to a queue).
    ``subscriptions`` are ``(topic, qos)``, or ``(topic, qos, True)`` to keep the retain flag of
    live messages (MQTT 5 Retain As Published).

        link = MqttLink("mqtt://localhost:1883", "hub-store-1",
                        will=(topics.hub_status, b"offline"),
                        subscriptions=[(topics.all_events, 1)],
                        on_message=inbox.put, manual_ack=True)
        link.start()
        ...
        link.ack(message)          # after the message is stored
        link.stop(farewell=[(topics.hub_status, b"offline", 1, True)])
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        will: tuple[str, bytes] | None = None,
        subscriptions: list[tuple] | tuple = (),
        on_message: Callable[[Message], None] | None = None,
        on_connected: Callable[[bool], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
        on_published: Callable[[int], None] | None = None,
        manual_ack: bool = False,
        fresh_resend: bool = False,
        persistent: bool = True,
        keepalive_s: int = KEEPALIVE_S,
        session_expiry_s: int = SESSION_EXPIRY_S,
    ):
        self.address = BrokerAddress.parse(url)
        self.client_id = client_id
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_published = on_published
        self._keepalive_s = keepalive_s
        self._fresh_resend = fresh_resend
        self._connected = threading.Event()
        self._stopping = False
        self.reconnects = 0
        self._ever_connected = False

        a = self.address
        _import_paho()
        protocol = paho.MQTTv5 if a.mqtt5 else paho.MQTTv311
        self._client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if a.mqtt5 else not persistent,
            manual_ack=manual_ack,
        )
        self._connect_properties = None
        self._clean_start = not persistent
        if a.mqtt5 and persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry_s
            self._connect_properties = props
        if a.username:
            self._client.username_pw_set(a.username, a.password)
        if a.tls:
            self._client.tls_set(ca_certs=a.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        if will:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.max_inflight_messages_set(MAX_INFLIGHT)
        self._client.on_socket_open = self._socket_open
        self._client.on_connect = self._connect
        self._client.on_disconnect = self._disconnect
        self._client.on_message = self._message
        self._client.on_publish = self._publish

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; paho's thread keeps reconnecting with capped backoff."""
        a = self.address
        kwargs = {}
        if a.mqtt5:
            kwargs = {"clean_start": self._clean_start, "properties": self._connect_properties}
        self._client.connect_async(a.host, a.port, keepalive=self._keepalive_s, **kwargs)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, farewell: list[tuple[str, bytes, int, bool]] = ()) -> None:
        """Publish ``farewell`` messages (a clean disconnect sends no will), then disconnect."""
        self._stopping = True
        if self._connected.is_set():
            for topic, payload, qos, retain in farewell:
                info = self._client.publish(topic, payload, qos=qos, retain=retain)
                try:
                    info.wait_for_publish(timeout=2)
                except (RuntimeError, ValueError):
                    pass
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    # -- traffic ----------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                expiry_s: int | None = None) -> int:
        """Queue a message; returns paho's message id (``on_published(mid)`` reports delivery
        for QoS ≥ 1). While disconnected paho keeps QoS 1 messages in RAM only: callers that
        must survive a power cut keep their own on-disk copy (see firmware.outbox).
        ``expiry_s`` sets the MQTT 5 Message Expiry Interval (ignored over MQTT 3.1.1)."""
        props = None
        if expiry_s is not None and self.address.mqtt5:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = expiry_s
        return self._client.publish(topic, payload, qos=qos, retain=retain, properties=props).mid

    def ack(self, message: Message) -> None:
        """Acknowledge a QoS 1 message received with ``manual_ack=True``."""
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    # -- paho callbacks (network thread) ----------------------------------------------------
    def _socket_open(self, client, userdata, sock) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass  # not a TCP socket (unix socket, websocket wrapper)

    def _connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker %s refused %s: %s", self.address, self.client_id, reason_code)
            return
        if self._fresh_resend:
            # paho would resend unacknowledged messages as they were built; a caller whose
            # payloads go stale (age_ms) drops them and republishes from its own outbox.
            client.drop_out_messages()
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        for topic, qos, *options in self._subscriptions:
            if options and options[0] and self.address.mqtt5:
                # Retain As Published: a live message keeps its retain flag (by default the
                # broker clears it), so a receiver can tell a retained publication from a fresh one.
                client.subscribe(topic, options=SubscribeOptions(qos=qos, retainAsPublished=True))
            else:
                client.subscribe(topic, qos=qos)
        self._connected.set()
        log.info("connected to %s as %s (session %s)", self.address, self.client_id,
                 "resumed" if flags.session_present else "new")
        if self._on_connected:
            self._on_connected(bool(flags.session_present))

    def _disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._stopping:
            log.warning("lost connection to %s: %s", self.address, reason_code)
        if self._on_disconnected:
            self._on_disconnected()

    def _message(self, client, userdata, msg) -> None:
        if self._on_message:
            props = getattr(msg, "properties", None)
            expiry = getattr(props, "MessageExpiryInterval", None) if props is not None else None
            self._on_message(Message(msg.topic, msg.payload, msg.qos, bool(msg.retain), msg.mid, expiry))

    def _publish(self, client, userdata, mid, reason_code, properties) -> None:
        if self._on_published:
            self._on_published(mid)
