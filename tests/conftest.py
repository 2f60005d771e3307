"""Shared fixtures: a real Mosquitto per test, store configs, the hub in-process or as a process."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from callbell.broker import Broker, free_port
from callbell.protocol import Topics
from hub.config import load_store_config
from tests.helpers import HubProcess, Recorder, running_hub, write_store


#: Property tests are judged by what they find, not by how fast the machine is: on a loaded
#: 2-core machine (CI, another engineer's run) generating examples and running them takes
#: longer, and hypothesis's deadline and too_slow health check then fail tests that are right.
settings.register_profile("callbell", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("callbell")


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", help="also run long soak tests")


def pytest_collection_modifyitems(config, items):
    """Soak tests run only with --soak (CI time is limited); they are deselected, not skipped."""
    if config.getoption("--soak"):
        return
    soak = [i for i in items if "soak" in i.keywords]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [i for i in items if "soak" not in i.keywords]


@pytest.fixture
def broker(tmp_path: Path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def topics() -> Topics:
    return Topics("callbell", "test-store")


@pytest.fixture
def store_file(tmp_path: Path, broker: Broker) -> Path:
    return write_store(tmp_path / "store.toml", broker_url=broker.url, http_port=free_port())


@pytest.fixture
def recorder(broker: Broker):
    r = Recorder(broker.url, ["callbell/#"])
    yield r
    r.close()


@pytest.fixture
def hub(store_file: Path):
    """The hub in this process (fast); use hub_process for kill -9 tests."""
    with running_hub(store_file) as service:
        yield service


@pytest.fixture
def hub_process(store_file: Path, tmp_path: Path):
    config = load_store_config(store_file)
    p = HubProcess(store_file, config.http.port, tmp_path / "hub.log").start()
    yield p
    p.stop()
