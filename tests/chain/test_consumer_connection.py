"""``callbell chain run`` says so when central's RabbitMQ cannot be reached: MQTT retries a
refused connection in silence, so a wrong host or port would otherwise look like a quiet chain."""
import logging

from callbell.broker import free_port
from chain.consumer import Consumer
from tests.chain.harness import chain_config
from tests.helpers import wait_until


class NoWarehouse:
    def marks(self) -> dict:
        return {}


def test_the_consumer_warns_while_it_cannot_reach_central_and_names_where_it_tried(caplog):
    port = free_port()  # nothing listens there
    consumer = Consumer(chain_config(["berlin"]), NoWarehouse(), f"mqtt://chain-central:secret@127.0.0.1:{port}?protocol=3")
    consumer.warn_after_s = 0.5
    caplog.set_level(logging.WARNING, logger="callbell.chain")
    consumer.start()
    try:
        wait_until(lambda: any("not connected to central" in r.getMessage() for r in caplog.records), 10, 0.1,
                   "the consumer's warning")
    finally:
        consumer.stop()
    message = next(r.getMessage() for r in caplog.records if "not connected to central" in r.getMessage())
    assert f"127.0.0.1:{port}" in message and "secret" not in message
