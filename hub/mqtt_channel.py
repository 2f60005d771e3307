"""The hub's MQTT side: takes device events in, sends lamp states, call changes and rejection
notices out. All paho handling is in :mod:`callbell.mqtt`; this file only decides what goes
where on the topics of docs/spec/PROTOCOL.md."""
from __future__ import annotations

import json
import logging
from zoneinfo import ZoneInfo

from callbell.mqtt import Message, MqttLink
from callbell.protocol import OFFLINE, ONLINE, Topics
from hub.dispatcher import Batch, Dispatcher
from hub.inputs import Decoder
from hub.plugins import Plugin
from hub.views import call_object

log = logging.getLogger("callbell.hub.mqtt")


class MqttChannel:
    """Connects the dispatcher to the broker.

    Subscribes (QoS 1, persistent session, manual acknowledgement) to room events, device
    status and health, the associates' location feed, and the topics the plug-ins read;
    decodes each message into typed inputs here, on the MQTT thread (hub.inputs), and hands
    them to the dispatcher, which acknowledges the message once what it caused is stored.
    Publishes each room's lamp retained, every call change on ``call/{call}``, rejections on
    ``hub/rejected``, and the hub's own status with a last will. On every (re)connect it
    publishes all lamps again, so a broker that lost its retained messages is repaired at
    once, and tells the plug-ins (Home Assistant announces its discovery again).
    """

    def __init__(self, url: str, topics: Topics, dispatcher: Dispatcher, tz: ZoneInfo,
                 client_id: str | None = None, *, plugins: list[Plugin] = ()):
        self.topics = topics
        self.dispatcher = dispatcher
        self.tz = tz
        self.plugins = list(plugins)
        self.decoder = Decoder(topics, self.plugins)
        subscriptions = [(topics.all_events, 1), (topics.all_device_status, 1),
                         (topics.all_device_health, 1), (topics.all_locations, 1)]
        for plugin in self.plugins:
            subscriptions += plugin.mqtt_subscriptions
        self.link = MqttLink(
            url,
            client_id or f"callbell-hub-{topics.store}",
            will=(topics.hub_status, OFFLINE.encode()),
            subscriptions=subscriptions,
            on_message=self._message,
            on_connected=self._connected,
            on_disconnected=lambda: dispatcher.broker_state(False),  # a trouble if it lasts
            manual_ack=True,
        )
        dispatcher.acknowledge = self.link.ack  # only after the press is stored
        for plugin in self.plugins:
            plugin.attach(self.link.publish)

    def start(self) -> None:
        self.dispatcher.broker_state(False)  # until connected: a broker not there at start is a trouble too
        self.link.start()

    def stop(self) -> None:
        self.link.stop(farewell=[(self.topics.hub_status, OFFLINE.encode(), 1, True)])

    @property
    def connected(self) -> bool:
        return self.link.connected

    def _message(self, message: Message) -> None:
        self.dispatcher.receive(self.decoder.decode(message, self.dispatcher.clock.time()))

    def _connected(self, session_present: bool) -> None:
        self.dispatcher.broker_state(True)
        self.link.publish(self.topics.hub_status, ONLINE.encode(), qos=1, retain=True)
        for room, lamp in self.dispatcher.lamps().items():
            self.link.publish(self.topics.lamp(room), lamp.to_json(), qos=1, retain=True)
        for plugin in self.plugins:
            try:
                plugin.connected()
            except Exception:
                log.exception("plug-in %s failed on reconnect", type(plugin).__name__)

    def send(self, batch: Batch) -> None:
        for room, lamp in batch.lamps.items():
            self.link.publish(self.topics.lamp(room), lamp.to_json(), qos=1, retain=True)
        for call_id, (_, row) in batch.calls.items():
            self.link.publish(self.topics.call(call_id), json.dumps(call_object(row, self.tz)).encode(), qos=1)
        for r in batch.rejected:
            self.link.publish(self.topics.hub_rejected, r.to_json(), qos=0)
