"""Virtual devices for a whole store: one per group of rooms, on gpiozero's mock pins.

Used by ``callbell simulate``, the demo and the load tests. Each virtual Pi has its own mock
pin factory, so every one can use the default pin map, exactly like real Pis.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TextIO

from firmware.wiring import mock_pins

from firmware.config import DeviceConfig, DeviceSection, RoomPins
from firmware.console import Console
from firmware.device import Device
from firmware.pinmap import DEFAULT_SLOTS
from hub.config import StoreConfig

log = logging.getLogger("callbell.simulate")


def device_configs(store: StoreConfig, broker_url: str, data: Path, rooms_per_device: int = 4,
                   **device_options) -> list[DeviceConfig]:
    """Device configs covering every room of ``store``, ``rooms_per_device`` rooms each."""
    if not 1 <= rooms_per_device <= len(DEFAULT_SLOTS):
        raise ValueError(f"rooms per device must be 1..{len(DEFAULT_SLOTS)}")
    rooms = store.rooms
    configs = []
    for n, start in enumerate(range(0, len(rooms), rooms_per_device), 1):
        group = rooms[start:start + rooms_per_device]
        device_id = f"sim-{store.store.id}-{n}"[:64]
        configs.append(DeviceConfig(
            device=DeviceSection(id=device_id, store=store.store.id, broker=broker_url,
                                 prefix=store.mqtt.prefix, outbox=data / f"{device_id}.outbox.db",
                                 **device_options),
            rooms=[RoomPins(id=r.id, slot=i + 1, no_size="size" not in r.reasons)
                   for i, r in enumerate(group)],
        ))
    return configs


class Simulation:
    """All virtual devices of a store plus one console that drives them by room."""

    def __init__(self, store: StoreConfig, broker_url: str, data: Path, rooms_per_device: int = 4,
                 out: TextIO | None = None, **device_options):
        data.mkdir(parents=True, exist_ok=True)
        self.console = Console(out)
        self.devices: list[Device] = []
        for config in device_configs(store, broker_url, data, rooms_per_device, **device_options):
            factory = mock_pins()
            device = Device(config, pin_factory=factory, on_display=self.console.display)
            self.console.attach(device, factory)
            self.devices.append(device)

    def start(self) -> None:
        for d in self.devices:
            d.start()

    def stop(self) -> None:
        for d in self.devices:
            d.stop()
