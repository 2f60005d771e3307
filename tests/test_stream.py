"""The pages' event stream is shown changes before their commit (hub.stream): what a page holds
stays true when a commit fails, when the hub restarts, and when a page connects mid-commit."""
from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from zoneinfo import ZoneInfo

from callbell.protocol import Rejection
from hub.dispatcher import Batch
from hub.domain.call import Floor, Room
from hub.store import Reader, Writer
import hub.stream as stream_module
from hub.api.page_writer import chunk_writer, write_at_once
from hub.stream import StreamChannel, parse_event_id
from tests.helpers import event, read_sse, run_sql, running_hub, wait_until

UTC = ZoneInfo("UTC")

#: Makes every write of the statistics roll-ups fail, as a full or failing disk would. The
#: roll-ups are written inside the commit, after the pages were shown the batch.
FAILING_DISK = """
CREATE TRIGGER refuse_rollup_insert BEFORE INSERT ON rollup BEGIN SELECT RAISE(ABORT, 'injected: disk failed'); END;
CREATE TRIGGER refuse_rollup_update BEFORE UPDATE ON rollup BEGIN SELECT RAISE(ABORT, 'injected: disk failed'); END;
"""
DISK_MENDED = "DROP TRIGGER refuse_rollup_insert; DROP TRIGGER refuse_rollup_update;"



def _stored_room_1(hub) -> list[str]:
    """The statuses of room-1's calls as stored (one per call)."""
    return [c["status"] for c in hub.api.ok("GET", "/api/v1/calls?status=all") if c["room"] == "room-1"]


def _room_1(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["event"] == "call" and m["data"]["room"] == "room-1"]


def test_a_page_shown_a_change_that_could_not_be_stored_gets_a_snapshot_and_then_the_change_once_stored(
        hub, recorder, topics):
    recorder.publish(topics.event("room-1"), event("press-1"))
    wait_until(lambda: hub.api.ok("GET", "/api/v1/calls?status=open"), what="the call")
    recorder.publish(topics.event("room-1"), event("arrive-1", "presence"))
    wait_until(lambda: _stored_room_1(hub) == ["answered"], what="the call answered")

    def room_2_pressed(msgs: list[dict]) -> bool:  # the end of the story, sent after the mend
        return any(m["event"] == "call" and m["data"]["room"] == "room-2" for m in msgs)
    got: list[dict] = []
    page = threading.Thread(target=lambda: got.extend(read_sse(hub.http_port, room_2_pressed, timeout=30)))
    page.start()
    wait_until(lambda: hub.stream.clients == 1, what="the page connected")
    db = hub.config.database.path
    run_sql(db, FAILING_DISK)
    print("injected: every roll-up write fails, so closing a call cannot be committed")
    recorder.publish(topics.event("room-1"), event("leave-1", "presence"))  # done: closes the call
    wait_until(lambda: hub.dispatcher.counters["failed_writes"] >= 2, timeout=10, what="the write to fail (and its retry)")
    assert _stored_room_1(hub) == ["answered"], "the failed change must not be stored"
    run_sql(db, DISK_MENDED)
    wait_until(lambda: _stored_room_1(hub) == ["done"], what="the retried change stored (one call, however often tried)")
    failed = hub.dispatcher.counters["failed_writes"]
    recorder.publish(topics.event("room-2"), event("press-2"))
    page.join(35)

    print(f"failed writes: {failed}; page got:",
          [(m["event"], m["data"].get("room"), m["data"].get("status"), m["id"]) for m in got if m["event"] != "rejected"])
    epochs = [parse_event_id(m["id"])[0] for m in got]
    assert got[0]["event"] == "snapshot"
    assert len(set(epochs)) == failed + 1, "a new epoch after each rollback"
    assert epochs[-1] == hub.stream.epoch
    room_1 = _room_1(got)
    assert room_1 and all(m["data"]["status"] == "done" for m in room_1), "the page was shown the change each time"
    snapshots = [m for m in got if m["event"] == "snapshot"]
    assert len(snapshots) == failed + 1, "a fresh snapshot after each rollback"
    for snap in snapshots:
        assert [c["status"] for c in snap["data"]["calls"] if c["room"] == "room-1"] == ["answered"], \
            "a snapshot holds what was stored"
    assert got.index(room_1[-1]) > got.index(snapshots[-1]), "the stored change came after the last snapshot"
    assert parse_event_id(room_1[-1]["id"])[0] == hub.stream.epoch


def test_a_page_reconnecting_to_a_restarted_hub_gets_a_snapshot_not_a_replay(store_file, recorder, topics):
    with running_hub(store_file) as first:
        recorder.publish(topics.event("room-1"), event("press-1"))
        wait_until(lambda: first.api.ok("GET", "/api/v1/calls?status=open"), what="the call")
        [snap] = read_sse(first.http_port, 1)
    with running_hub(store_file) as second:
        # The same id replays nothing from the same hub; from a restarted one it cannot be
        # trusted (the old hub may have shown it before a commit that never came).
        got = read_sse(second.http_port, 1, {"Last-Event-ID": snap["id"]})
        assert [m["event"] for m in got] == ["snapshot"]
        assert parse_event_id(got[0]["id"])[0] != parse_event_id(snap["id"])[0]
        assert [c["room"] for c in got[0]["data"]["calls"]] == ["room-1"]
        again = read_sse(second.http_port, 1, {"Last-Event-ID": got[0]["id"]})
        assert [m["event"] for m in again] == ["resumed"]
        # An id without an epoch (a page from before epochs) is answered with a snapshot too.
        assert [m["event"] for m in read_sse(second.http_port, 1, {"Last-Event-ID": "12"})] == ["snapshot"]


def test_a_page_that_connects_while_a_shown_change_is_being_committed_waits_for_the_commit(tmp_path):
    db = tmp_path / "callbell.db"
    writer = Writer(db)
    channel = StreamChannel(Reader(db), UTC, info=dict)
    floor = Floor([Room("room-1")])
    writer.begin()
    now = time.time()
    seq = max(writer.append(t, now) for t in floor.press("room-1", "help", now, now))
    [call] = floor.take_changed()
    channel.send(Batch(calls={call.id: (seq, writer.save_call(call, seq))}))  # shown, not committed

    got: list[bytes] = []

    async def page() -> None:
        async def connected() -> bool:
            return False
        async for chunk in channel.events(None, connected):
            got.append(chunk)
            return
    reader = threading.Thread(target=asyncio.run, args=(page(),))
    reader.start()
    reader.join(0.5)
    assert got == [], "the page must not read the database before the shown change is committed"
    writer.commit()
    channel.stored()
    reader.join(5)
    [snapshot] = got
    assert snapshot.startswith(f"id: {channel.epoch}-{seq}\nevent: snapshot\n".encode())
    assert b'"room":"room-1"' in snapshot and b'"status":"open"' in snapshot
    writer.close()


def test_the_dispatcher_waits_for_the_pages_to_have_a_batch_unless_an_input_arrives(tmp_path, monkeypatch):
    """StreamChannel.send holds the dispatcher until the event loop has offered the batch to
    every page, so the two do not fight over the interpreter lock mid-fan-out; the dispatcher's
    ``wake`` (set by every new input) lets it go at once."""
    monkeypatch.setattr(stream_module, "PAGES_FIRST_MAX_S", 30.0)  # only the events end the wait
    channel = StreamChannel(Reader(tmp_path / "callbell.db"), UTC, info=dict)
    channel.wake = threading.Event()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    fan_out_may_end = threading.Event()

    class SlowPage:  # a page whose fan-out takes until the test says
        loop = None

        def offer(self, items, delivered):
            fan_out_may_end.wait(10)
    page = SlowPage()
    page.loop = loop
    channel._clients[page] = None
    rejected = Batch(rejected=[Rejection("t", "r", "x")])
    try:
        for ends_it in ("the fan-out", "an input"):
            fan_out_may_end.clear()
            channel.wake.clear()
            sender = threading.Thread(target=channel.send, args=(rejected,))
            sender.start()
            sender.join(0.3)
            assert sender.is_alive(), "the dispatcher waits while the pages are served"
            (fan_out_may_end if ends_it == "the fan-out" else channel.wake).set()
            sender.join(5)
            assert not sender.is_alive(), f"{ends_it} ends the wait"
            fan_out_may_end.set()
    finally:
        loop.call_soon_threadsafe(loop.stop)


def _sse_reasons(body: bytes) -> list[int]:
    return [int(x) for x in re.findall(rb'"reason":"message (\d{3})"', body)]


def test_a_page_that_stops_reading_is_dropped_while_a_page_that_falls_behind_gets_every_message_in_order(
        hub, monkeypatch):
    """Live messages are written straight to a waiting page's connection. While one pushes back
    (every buffer full) its messages wait, in order: a page that stops reading for a moment (a
    slow Wi-Fi, a reader starved of CPU) gets every one once it drains. One that takes nothing
    for PAGE_STALL_S is dropped, to reconnect and catch up; it holds up no other page, and what
    it did get is in order; its connection is closed, as its response cannot be ended."""
    monkeypatch.setattr(stream_module, "PAGE_STALL_S", 4.0)
    n, size = 80, 100_000  # 8 MB: more than the kernel and the server buffer for one socket
    request = b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    stuck, behind = socket.socket(), socket.socket()
    for page in (stuck, behind):
        page.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once when not read
        page.connect(("127.0.0.1", hub.http_port))
        page.sendall(request)
    got: list[dict] = []
    reader = threading.Thread(target=lambda: got.extend(read_sse(hub.http_port, n + 1, timeout=60)))
    reader.start()
    wait_until(lambda: hub.stream.clients == 3, what="the three pages connected")
    for i in range(n):  # big messages, straight into the stream as the dispatcher would hand them
        hub.stream.send(Batch(rejected=[Rejection("test/big", f"message {i:03d}", "x" * size)]))
    time.sleep(1.5)  # the page behind reads nothing for a while: its buffers are full by now
    behind.settimeout(30)
    raw_behind = bytearray()
    last = b'"reason":"message %03d"' % (n - 1)
    while last not in raw_behind[-(size + 1000):]:
        chunk = behind.recv(1 << 20)
        assert chunk, "the page that fell behind was dropped"
        raw_behind.extend(chunk)
    behind.close()
    assert _sse_reasons(bytes(raw_behind)) == list(range(n)), "the page behind: every message, once, in order"
    reader.join(70)
    reasons = [m["data"]["reason"] for m in got if m["event"] == "rejected"]
    assert reasons == [f"message {i:03d}" for i in range(n)], "the reading page: every message, once, in order"
    wait_until(lambda: hub.stream.clients == 0, timeout=stream_module.PAGE_STALL_S + 10, what="the stuck page dropped")

    # The stuck page's connection was closed: reading it now gives a prefix in order, then the end.
    stuck.settimeout(10)
    raw = bytearray()
    try:
        while chunk := stuck.recv(1 << 20):
            raw.extend(chunk)
    except ConnectionResetError:
        pass
    stuck.close()
    seen = _sse_reasons(bytes(raw.split(b"\r\n\r\n", 1)[1]))
    print(f"the stuck page had {len(seen)} of {n} messages when it was dropped")
    assert 0 < len(seen) < n and seen == list(range(len(seen)))


def test_live_messages_are_written_to_the_pages_transport_framed_as_the_server_frames_them(hub):
    """Under uvicorn the fan-out writes each live message, framed once as an HTTP/1.1 chunk,
    straight to every page's transport (chunk_writer); the bytes are the ones uvicorn's own
    send would write, and the response still ends properly through it."""
    page = socket.create_connection(("127.0.0.1", hub.http_port), timeout=10)
    page.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    raw = bytearray()
    while b"event: snapshot" not in raw or not raw.endswith(b"\r\n"):
        raw.extend(page.recv(65536))
    [client] = list(hub.stream._clients)
    assert client.connection.direct is not None, "uvicorn's h11 transport is written directly"
    wait_until(lambda: client.parked, what="the page waiting for its next message")
    hub.stream.send(Batch(rejected=[Rejection("test/direct", "once framed", "x")]))
    wire = (b'event: rejected\ndata: {"topic":"test/direct","reason":"once framed","excerpt":"x"}\n\n')
    expected = b"%x\r\n%s\r\n" % (len(wire), wire)
    got = bytearray()
    while len(got) < len(expected):
        got.extend(page.recv(65536))
    assert bytes(got) == expected
    hub.stream.close()  # the hub stopping: the response ends through the server's own send
    while chunk := page.recv(65536):
        got.extend(chunk)
    page.close()
    assert got.endswith(b"0\r\n\r\n")


def test_without_uvicorns_h11_send_the_fan_out_uses_the_plain_asgi_send():
    async def some_server_send(message):
        pass
    assert chunk_writer(None) is None and chunk_writer(some_server_send) is None


def test_a_direct_write_that_would_wait_is_abandoned_unsent():
    """write_at_once never leaves a send half-done: if the server would wait for its buffer to
    drain first (uvicorn's flow control), the send is closed before it writes anything."""
    written: list[bytes] = []

    async def main() -> tuple[bool, bool]:
        drained = asyncio.Event()

        async def pushing_back(message):
            await drained.wait()  # what uvicorn does while the client reads too slowly
            written.append(message["body"])

        async def taking(message):
            written.append(message["body"])
        at_once = write_at_once(taking, b"a")
        would_wait = write_at_once(pushing_back, b"b")
        drained.set()  # the buffer drains: the abandoned send must not wake and write after all
        await asyncio.sleep(0.05)
        return at_once, would_wait
    assert asyncio.run(main()) == (True, False)
    assert written == [b"a"], "the abandoned send wrote nothing, then or later"
