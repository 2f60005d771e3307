"""A batch the dispatcher cannot store is rolled back and worked again, its inputs each on
their own, so that one input that cannot be stored does not hold the others back."""
from __future__ import annotations

import json
import threading

from callbell.clock import FakeClock
from callbell.mqtt import Message
from callbell.protocol import Topics
from hub.inputs import Decoder
from hub.dispatcher import Dispatcher
from hub.domain.call import Room, Timing
from hub.store import Reader
from tests.helpers import event, run_sql, wait_until


def receive(dispatcher, topics, message):
    """A message as the MQTT side hands it over: decoded at the edge (hub.inputs)."""
    dispatcher.receive(Decoder(topics).decode(message, dispatcher.clock.time()))

#: Makes storing any event of room-1 fail: an input nobody foresaw, which the protocol accepts
#: and SQLite refuses (a lone surrogate in an event id was one, until the protocol refused it).
POISON = ("CREATE TRIGGER poison BEFORE INSERT ON inbox WHEN NEW.room = 'room-1' "
          "BEGIN SELECT RAISE(ABORT, 'injected: this input cannot be stored'); END;")



def test_a_press_worked_in_one_batch_with_an_input_that_cannot_be_stored_is_stored_at_the_next_try(tmp_path):
    topics = Topics("callbell", "s")
    db = tmp_path / "db"
    dispatcher = Dispatcher(rooms=[Room("room-1"), Room("room-2")], timing=Timing(), db_path=db,
                            topics=topics, clock=FakeClock(1_763_800_000.0))
    acknowledged: list[int] = []
    dispatcher.acknowledge = lambda m: acknowledged.append(m.mid)
    dispatcher.start()
    try:
        run_sql(db, POISON)
        # Hold the dispatcher inside a command while both presses arrive: they are then worked
        # in one batch.
        inside, release = threading.Event(), threading.Event()
        held = dispatcher.command(lambda floor, now: (inside.set(), release.wait(5), [])[2])
        assert inside.wait(5)
        receive(dispatcher, topics, Message(topics.event("room-1"), json.dumps(event("e-1")).encode(), 1, False, 1, None))
        receive(dispatcher, topics, Message(topics.event("room-2"), json.dumps(event("e-2")).encode(), 1, False, 2, None))
        release.set()
        held.result(5)
        print("injected: events of room-1 cannot be stored; a press in room-1 and one in room-2 in one batch")

        reader = Reader(db)
        wait_until(lambda: [c["room"] for c in reader.calls()] == ["room-2"], timeout=10,
                   what="room-2's press stored at the next try")
        assert acknowledged == [2], "only what is stored is acknowledged"
        assert not dispatcher.healthy, "degraded while a press is not stored, though other writes succeed"
        assert dispatcher.counters["failed_writes"] >= 2  # the batch of two, then room-1 alone
        failed_before_mend = dispatcher.counters["failed_writes"]

        run_sql(db, "DROP TRIGGER poison;")
        wait_until(lambda: sorted(c["room"] for c in reader.calls()) == ["room-1", "room-2"], timeout=10,
                   what="room-1's press stored once it can be")
        wait_until(lambda: sorted(acknowledged) == [1, 2], what="both acknowledged")
        print(f"counted: {failed_before_mend} failed write(s) before the mend; calls stored: "
              f"{sorted(c['room'] for c in reader.calls())}")
        assert dispatcher.floor.lamp("room-1").state == dispatcher.floor.lamp("room-2").state == "called"
        wait_until(lambda: dispatcher.healthy, what="healthy once everything held back is stored")
    finally:
        dispatcher.stop()
