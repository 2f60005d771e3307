"""Central's consumer: every store's ranges from RabbitMQ into the warehouse, and each store's
mark back, retained (docs/chain.md).

One MQTT session (``chain-central``, durable: RabbitMQ keeps its queue while it is away) and one
thread. The thread takes what has arrived — up to FLUSH_MAX_MESSAGES, or what came within
FLUSH_S of the first — decides each range (chain/intake.py), stores all new events in one
insert, and only then acknowledges the messages and publishes the marks that moved. A range
that cannot be taken (malformed, an unknown store) is recorded in ``rejected`` and
acknowledged, so it cannot block the queue; a failed insert puts the marks back and lets the
stores resend (they do when their mark stands still), so nothing is lost either way.

    consumer = Consumer(config, warehouse, url).start()
    ...
    consumer.stop()
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable

from callbell.chain_wire import ChainTopics, all_events_filter, parse_events_topic, received_payload
from callbell.mqtt import Message, MqttLink
from callbell.protocol import ProtocolError
from chain.broker_config import CENTRAL_USER
from chain.intake import Intake, Verdict
from chain.schema import EVENT_COLUMNS, REJECTED_COLUMNS
from chain.warehouse import Warehouse, WarehouseError

log = logging.getLogger("callbell.chain")

#: Messages taken into one insert at most. With ranges of up to 200 events this is up to
#: ~50,000 rows: one part per insert keeps ClickHouse's merges cheap, and acknowledgements
#: wait at most one insert. Kept at RabbitMQ's prefetch (chain.broker_config.PREFETCH).
FLUSH_MAX_MESSAGES = 256

#: After the first message of a batch, wait this long for more before inserting, seconds. A
#: small wait turns a burst of 50 stores' ranges into one insert instead of 50, at the price
#: of this much store→central latency.
FLUSH_S = 0.05

#: Every store's mark is published again this often, seconds, even if it did not move, so a
#: retained mark that a RabbitMQ crash rolled back is soon right again.
REPUBLISH_MARKS_S = 30.0

#: Bytes of a refused message kept in ``rejected``.
EXCERPT_BYTES = 300

#: Seconds without a connection to central before the consumer says so, and again as often
#: while it lasts. Long enough for RabbitMQ to boot or restart (~10 s on 2 cores), short
#: enough that a wrong host or port, which MQTT would otherwise retry in silence, shows soon.
NOT_CONNECTED_WARN_S = 15.0


class Consumer:
    def __init__(self, config, warehouse: Warehouse, url: str, *, clock: Callable[[], float] = time.time,
                 client_id: str = CENTRAL_USER):
        self.prefix = config.mqtt.prefix
        self.warehouse = warehouse
        self.clock = clock
        self.intake = Intake({s.id for s in config.stores}, warehouse.marks())
        self._inbox: "queue.Queue[Message]" = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published: dict[str, int] = {}
        self._republished_at = 0.0
        self.inserts = 0
        self.warn_after_s = NOT_CONNECTED_WARN_S
        self._down_since = time.monotonic()
        self._warned_at: float | None = None
        self.link = MqttLink(url, client_id, subscriptions=[(all_events_filter(self.prefix), 1)],
                             on_message=self._inbox.put, manual_ack=True, on_connected=self._connected)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "Consumer":
        self._thread = threading.Thread(target=self._run, name="chain-consumer", daemon=True)
        self._thread.start()
        self.link.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        self.link.stop()

    def _connected(self, session_present: bool) -> None:
        self._published.clear()  # publish every mark again: central may have lost them
        self._republished_at = 0.0

    # -- the consuming thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            try:
                if batch:
                    self._work(batch)
                self._publish_marks()
            except Exception:  # never let one bad batch end the consumer
                log.exception("chain consumer failed on a batch of %d message(s)", len(batch))
            self._check_connected(time.monotonic())

    def _check_connected(self, now: float) -> None:
        """Say so when central has not been reachable for warn_after_s (MQTT retries quietly)."""
        if self.link.connected:
            self._down_since, self._warned_at = None, None
            return
        if self._down_since is None:
            self._down_since = now
        if now - self._down_since >= self.warn_after_s and (
                self._warned_at is None or now - self._warned_at >= self.warn_after_s):
            self._warned_at = now
            log.warning("not connected to central's RabbitMQ at %s for %.0f s (still trying): is it running, and "
                        "are the host, port and account of the URL (CALLBELL_CHAIN_MQTT_URL) right?",
                        self.link.address, now - self._down_since)

    def _take(self) -> list[Message]:
        try:
            first = self._inbox.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + FLUSH_S
        while len(batch) < FLUSH_MAX_MESSAGES:
            left = deadline - time.monotonic()
            try:
                batch.append(self._inbox.get(timeout=left) if left > 0 else self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _work(self, batch: list[Message]) -> None:
        now = self.clock()
        before = dict(self.intake.marks)
        rows: list[tuple] = []
        refused: list[tuple] = []
        for m in batch:
            verdict = self._decide(m, now)
            if verdict.kind == "stored":
                rows += verdict.rows
            elif verdict.kind == "rejected":
                refused.append((now, m.topic, verdict.store or "", verdict.reason,
                                m.payload[:EXCERPT_BYTES].decode("utf-8", "replace")))
                log.warning("rejected %s: %s", m.topic, verdict.reason)
            elif verdict.kind == "gap":
                log.info("store %s: %s; waiting for its resend", verdict.store, verdict.reason)
        try:
            if rows:
                self.warehouse.insert("events", EVENT_COLUMNS, rows)
                self.inserts += 1
        except WarehouseError as e:
            # The stores resend what central's marks do not cover: acknowledging loses nothing.
            self.intake.undo(before)
            log.error("could not store %d event(s); the stores will resend them: %s", len(rows), e)
            refused.append((now, "", "", f"insert failed: {e}"[:500], ""))
        if refused:
            try:
                self.warehouse.insert("rejected", REJECTED_COLUMNS, refused)
            except WarehouseError as e:
                log.error("could not record %d refusal(s): %s", len(refused), e)
        for m in batch:
            self.link.ack(m)

    def _decide(self, m: Message, now: float) -> Verdict:
        try:
            store = parse_events_topic(self.prefix, m.topic)
        except ProtocolError as e:
            return Verdict("rejected", None, reason=str(e))
        return self.intake.take(store, m.payload, now)

    def _publish_marks(self) -> None:
        if not self.link.connected:
            return
        now = time.monotonic()
        every = now - self._republished_at >= REPUBLISH_MARKS_S
        if every:
            self._republished_at = now
        for store, mark in self.intake.marks.items():
            if every or self._published.get(store) != mark:
                self.link.publish(ChainTopics(self.prefix, store).received, received_payload(mark), qos=1, retain=True)
                self._published[store] = mark
