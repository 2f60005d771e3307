"""One shape for every integration: third-party buttons, Home Assistant, ntfy and webhooks,
Web Push, the chain uplink.

A plug-in is made from the store's config (``for_hub``: None when the store does not use it),
started and stopped with the hub, and may

- read MQTT topics of its own (``mqtt_subscriptions``), turning their messages into the hub's
  typed inputs (``decode``, on the MQTT thread; hub/inputs.py) — a third-party button's press
  enters the dispatcher exactly like a Callbell device's;
- publish through the hub's MQTT link (``attach``), and hear of every (re)connect
  (``connected``);
- hear of every batch of changes once it is stored (``send``, on the dispatcher's thread:
  it must not block; slow work goes to the plug-in's own thread).

hub/service.py lists the plug-ins (PLUGINS) and wires them; nothing else knows them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from callbell.clock import Clock
    from callbell.mqtt import Message
    from callbell.protocol import Topics
    from hub.domain.call import Floor
    from hub.inputs import Input

#: publish(topic, payload, qos=, retain=) through the hub's MQTT link.
Publish = Callable[..., object]


@dataclass
class HubParts:
    """What a plug-in may use of the running hub."""
    config: object                   # hub.config.StoreConfig
    topics: "Topics"
    clock: "Clock"
    broker_url: str                  # the hub's broker (embedded or configured)
    floor: Callable[[], "Floor"]     # the dispatcher's Floor, read on the dispatcher's thread only
    #: Tell the roster whether an associate can be reached by Web Push (hub.domain.associates).
    push_reachable: Callable[[str, bool], None]


class Plugin:
    """The shape; every method has a do-nothing default, so a plug-in writes only what it uses."""

    @classmethod
    def for_hub(cls, hub: HubParts) -> "Plugin | None":
        """This plug-in for the store in ``hub.config``, or None if the store does not use it."""
        raise NotImplementedError

    @property
    def mqtt_subscriptions(self) -> list[tuple[str, int]]:
        """MQTT topic filters (with QoS) this plug-in reads."""
        return []

    def decode(self, message: "Message", at: float) -> "list[Input] | None":
        """The inputs a message on one of its topics means ([] for none), or None when the
        message is not this plug-in's. ``at``: when it came off the socket, seconds."""
        return None

    def attach(self, publish: Publish) -> None:
        """Publish through the hub's MQTT link from now on."""

    def connected(self) -> None:
        """The hub's MQTT link (re)connected: announce again what the broker may have lost."""

    def send(self, batch) -> None:
        """A batch of changes (hub.dispatcher.Batch) was stored."""

    def start(self) -> "Plugin":
        return self

    def stop(self) -> None:
        """Stop its threads; what it has not delivered within a few seconds is dropped."""
