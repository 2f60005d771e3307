"""What every route needs, declared once: the running hub's parts, handed in by FastAPI."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fastapi import Request

from callbell.clock import Clock
from hub.config import StoreConfig
from hub.dispatcher import Dispatcher
from hub.store import Reader
from hub.stream import StreamChannel


@dataclass
class HubContext:
    config: StoreConfig
    reader: Reader
    dispatcher: Dispatcher
    stream: StreamChannel
    clock: Clock
    broker_connected: Callable[[], bool]


def hub(request: Request) -> HubContext:
    return request.app.state.hub
