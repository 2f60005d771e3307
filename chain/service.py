"""The chain service (``callbell chain run``): the consumer into the warehouse and the chain page.

    service = ChainService(load_chain_config("chain.toml"), broker_url=url)
    service.run()          # blocks until Ctrl-C / SIGTERM
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading

import uvicorn

from callbell.mqtt import BrokerAddress
from callbell.settings import ConfigError
from chain.consumer import Consumer
from chain.warehouse import open_warehouse
from chain.web import create_app

log = logging.getLogger("callbell.chain")

#: Environment variable with the consumer's broker URL (and password), over [mqtt] url.
URL_VARIABLE = "CALLBELL_CHAIN_MQTT_URL"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the service handles signals itself
        yield


class ChainService:
    def __init__(self, config, *, broker_url: str | None = None, http_port: int | None = None):
        self.config = config
        self.broker_url = broker_url or os.environ.get(URL_VARIABLE) or config.mqtt.url
        if not self.broker_url:
            raise ConfigError(f"no broker: set {URL_VARIABLE} (central.env from 'callbell chain broker-config'), "
                              "[mqtt] url in chain.toml, or --broker")
        self.http_port = config.http.port if http_port is None else http_port
        self.server: uvicorn.Server | None = None

    def start(self) -> None:
        self.warehouse = open_warehouse(self.config.warehouse)
        self.consumer = Consumer(self.config, self.warehouse, self.broker_url).start()
        self.app = create_app(self.config, self.warehouse)
        log.info("chain %s: consuming from %s into %s", self.config.chain.id, BrokerAddress.parse(self.broker_url),
                 self.warehouse.engine)

    def run(self, ready: threading.Event | None = None) -> None:
        self.start()
        try:
            config = uvicorn.Config(self.app, host=self.config.http.host, port=self.http_port, log_level="warning",
                                    access_log=False, timeout_graceful_shutdown=2)
            self.server = _Server(config)
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: setattr(self.server, "should_exit", True))
            if ready is not None:
                threading.Thread(target=self._ready, args=(ready,), daemon=True).start()
            log.info("chain page on http://%s:%d/", self.config.http.host, self.http_port)
            self.server.run()
        finally:
            self.stop()

    def _ready(self, ready: threading.Event) -> None:
        while self.server and not self.server.started:
            threading.Event().wait(0.02)
        ready.set()

    def stop(self) -> None:
        if self.server:
            self.server.should_exit = True
        if hasattr(self, "consumer"):
            self.consumer.stop()
        if hasattr(self, "warehouse"):
            self.warehouse.close()
