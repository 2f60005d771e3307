"""The running hub: broker (embedded or external), dispatcher, MQTT and SSE channels, HTTP.

    hub = HubService(load_store_config("store.toml"))
    hub.run()          # blocks until Ctrl-C / SIGTERM, then stops everything cleanly
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path

import uvicorn

from callbell.broker import Broker
from callbell.clock import Clock, SystemClock
from callbell.mqtt import BrokerAddress
from callbell.protocol import Topics
from hub.api import http_edge
from hub.api.app import create_app
from hub.api.refusals import Refusals
from hub.api.deps import HubContext
from hub.api.page_writer import noting_server_send
from hub.config import StoreConfig
from hub.dispatcher import Dispatcher
from hub.home_assistant import HomeAssistant
from hub.plugins import HubParts, Plugin
from hub.metrics import Metrics
from hub.mqtt_channel import MqttChannel
from hub.notify import Notifier
from hub.push import WebPush
from hub.domain import rollup
from hub.store import Reader, prepare_rollups
from hub.stream import HEARTBEAT_S, StreamChannel
from hub.third_party_buttons import ButtonMap
from hub.uplink import Uplink

log = logging.getLogger("callbell.hub")


def _rollup_progress(done: int, total: int) -> None:
    """Progress of a roll-up rebuild (after an upgrade, or a changed zone or standard)."""
    log.info("building statistics roll-ups: %d of %d closed calls", done, total)

#: Every integration, in the order they hear of each batch (hub/plugins.py): each is made from
#: the store's config, or left out when the store does not use it.
PLUGINS: tuple[type[Plugin], ...] = (ButtonMap, HomeAssistant, Notifier, WebPush, Uplink)

#: Seconds to wait for the first broker connection before serving anyway (the hub keeps
#: retrying in the background and reports "degraded" health meanwhile).
FIRST_CONNECT_WAIT_S = 5.0


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: it re-raises SIGTERM after shutting down, which
    kills the process before the hub can stop its embedded broker. The hub handles signals."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class HubService:
    def __init__(self, config: StoreConfig, *, clock: Clock | None = None,
                 broker_url: str | None = None, http_port: int | None = None,
                 http_host: str | None = None, broker_dir: Path | None = None):
        self.config = config
        self.clock = clock or SystemClock()
        self.topics = Topics(config.mqtt.prefix, config.store.id)
        self.http_host = http_host or config.http.host
        self.http_port = config.http.port if http_port is None else http_port
        self.broker: Broker | None = None
        self._broker_url = broker_url or config.mqtt.url
        self._broker_dir = broker_dir or config.database.path.parent / "broker"
        self.server: uvicorn.Server | None = None

    @property
    def broker_url(self) -> str:
        return self._broker_url

    @property
    def _broker_shown(self) -> str:
        """The broker URL for logs: without its password (the parsed form leaves it out)."""
        return str(BrokerAddress.parse(self._broker_url))

    def start(self) -> None:
        """Start everything except the HTTP server (see :meth:`run`)."""
        c = self.config
        if self._broker_url is None:
            self.broker = Broker(self._broker_dir, port=c.mqtt.embedded_port, host=c.mqtt.embedded_host)
            self.broker.start()
            self.broker.supervise()
            self._broker_url = self.broker.url
        rules = rollup.Rules(c.tz, c.store.standard_s)
        if prepare_rollups(c.database.path, rules, progress=_rollup_progress):
            log.info("statistics roll-ups ready (%s)", rules.signature())
        self.dispatcher = Dispatcher(rollup_rules=rules, rooms=c.domain_rooms(), timing=c.timing, db_path=c.database.path,
                                     topics=self.topics, clock=self.clock, layout=c.layout, ladder=c.ladder,
                                     associates=c.domain_associates(), presence_s=c.alerts.presence_s,
                                     devices={d.id: tuple(d.rooms) for d in c.devices} or None,
                                     device_heartbeat_s=c.troubles.device_heartbeat_s,
                                     heartbeats={d.id: d.heartbeat_s for d in c.devices if d.heartbeat_s},
                                     alert_role=c.troubles.alert_role)
        self.reader = Reader(c.database.path)
        parts = HubParts(config=c, topics=self.topics, clock=self.clock, broker_url=self._broker_url,
                         floor=lambda: self.dispatcher.floor, push_reachable=self._push_subscribed)
        self.plugins = [p for p in (kind.for_hub(parts) for kind in PLUGINS) if p is not None]
        self.mqtt = MqttChannel(self._broker_url, self.topics, self.dispatcher, c.tz, plugins=self.plugins)
        self.stream = StreamChannel(self.reader, c.tz, self._stream_info, self.dispatcher.associates,
                                    self.clock, troubles=self.dispatcher.open_troubles,
                                    troubles_since=self.dispatcher.troubles_changed_since)
        self.metrics = Metrics(self.dispatcher, self.clock.time)
        self.metrics.watch_stream(self.stream)
        self.stream.wake = self.dispatcher.wake  # the pages get a head start (hub.stream)
        self.dispatcher.communicators = [self.mqtt, self.stream, self.metrics]
        for plugin in self.plugins:
            self.dispatcher.communicators.append(plugin.start())
        self.push = self.plugin(WebPush)  # /api/v1/push needs it (hub/api/routes/push.py)
        self.dispatcher.start()
        for who in self.push.subscriptions.associates() if self.push else ():
            self._push_subscribed(who, True)  # the roster's push flag, after a restart
        self.mqtt.start()
        if not self.mqtt.link.wait_connected(FIRST_CONNECT_WAIT_S):
            log.warning("broker %s not reachable yet; serving anyway and retrying", self._broker_shown)
        self.refusals = Refusals(self.dispatcher.reject, self.clock).start()
        self.app = create_app(HubContext(config=c, reader=self.reader, dispatcher=self.dispatcher,
                                         stream=self.stream, clock=self.clock,
                                         broker_connected=lambda: self.mqtt.connected, refusals=self.refusals))
        self.app.state.metrics = self.metrics  # GET /metrics (hub/api/routes/metrics.py)
        self.app.state.push = self.push        # /api/v1/push (hub/api/routes/push.py)
        # The key that signs ntfy alerts' buttons, checked at /api/v1/push/act (hub/notify.py).
        self.app.state.alert_keys = self.notifier.keys if self.notifier else None

    def plugin(self, kind: type[Plugin]) -> Plugin | None:
        """The running plug-in of this kind, or None when the store does not use it."""
        return next((p for p in getattr(self, "plugins", ()) if isinstance(p, kind)), None)

    @property
    def home_assistant(self) -> HomeAssistant | None:
        return self.plugin(HomeAssistant)

    @property
    def notifier(self) -> Notifier | None:
        return self.plugin(Notifier)

    @property
    def uplink(self) -> Uplink | None:
        return self.plugin(Uplink)

    def _push_subscribed(self, associate: str, on: bool) -> None:
        """Tell the roster whether ``associate`` can be reached by Web Push (hub.domain.associates)."""
        if associate in {a.id for a in self.config.associates}:
            self.dispatcher.associate_command(associate, lambda roster, now: roster.set_push(associate, on) or [])

    def _stream_info(self) -> dict:
        s = self.config.store
        return {"store": s.id, "name": s.name or s.id, "standard_s": s.standard_s,
                "demo": self.config.http.demo, "now": self.clock.time(), "heartbeat_s": HEARTBEAT_S,
                "escalation": {"steps": [st.as_dict() for st in self.config.ladder.steps],
                               "reack_s": self.config.ladder.reack_s}}

    def run(self, ready: threading.Event | None = None) -> None:
        """Start, serve HTTP until interrupted, then stop. ``ready`` is set once serving."""
        self.start()
        try:
            self.serve(ready)
        finally:
            self.stop()

    def serve(self, ready: threading.Event | None = None) -> None:
        http = self.config.http
        tls = {"ssl_certfile": str(http.certfile), "ssl_keyfile": str(http.keyfile)} if http.certfile else {}
        # Connections capped and timed (hub.api.http_edge); X-Forwarded-For believed only from
        # the proxies the store names, never uvicorn's default (127.0.0.1, or FORWARDED_ALLOW_IPS).
        self.edge = http_edge.EdgeCounts()
        protocol = http_edge.guarded_protocol(http_edge.connection_budget(), counts=self.edge)
        config = uvicorn.Config(noting_server_send(self.app), host=self.http_host, port=self.http_port,
                                log_level="warning", access_log=False, timeout_graceful_shutdown=2,
                                http=protocol, backlog=http_edge.BACKLOG, timeout_keep_alive=http_edge.KEEP_ALIVE_S,
                                proxy_headers=bool(http.trusted_proxies),
                                forwarded_allow_ips=list(http.trusted_proxies), **tls)
        self.server = _Server(config)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: setattr(self.server, "should_exit", True))
        if ready is not None:
            watcher = threading.Thread(target=self._signal_ready, args=(ready,), daemon=True)
            watcher.start()
        log.info("hub for store %s serving on %s://%s:%d (broker %s)", self.config.store.id,
                 "https" if tls else "http", self.http_host, self.http_port, self._broker_shown)
        self.server.run()

    def _signal_ready(self, ready: threading.Event) -> None:
        while self.server and not self.server.started:
            threading.Event().wait(0.02)
        ready.set()

    def stop(self) -> None:
        if hasattr(self, "stream"):
            self.stream.close()  # open SSE responses would hold up the server's shutdown
        if self.server:
            self.server.should_exit = True
        if hasattr(self, "refusals"):
            self.refusals.stop()  # its last counts go to the dispatcher, still running
        if hasattr(self, "mqtt"):
            self.mqtt.stop()
        if hasattr(self, "dispatcher"):
            self.dispatcher.stop()
        for plugin in getattr(self, "plugins", ()):
            try:
                plugin.stop()
            except Exception:
                log.exception("plug-in %s did not stop cleanly", type(plugin).__name__)
        if self.broker:
            self.broker.stop()
