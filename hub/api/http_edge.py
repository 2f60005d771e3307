"""The hub's HTTP connections, guarded where uvicorn leaves them open (docs/security.md, "Limits").

uvicorn's h11 server waits for ever for a request to arrive and takes every connection the
kernel hands it. 300 half-sent requests used up the hub's file descriptors: health and sign-in
stopped answering, and asyncio's accept loop spun on "Too many open files" (issue 17). So:

- **A request must arrive whole** (head and body) within :data:`REQUEST_READ_S` of its first
  byte, or of the connection opening; else the connection is answered 408 and closed. A
  slow-loris client that sends a byte now and then gains nothing. Between requests, uvicorn's
  keep-alive timeout (:data:`KEEP_ALIVE_S`) closes an idle connection.
- **At most** :data:`MAX_CONNECTIONS` **at once.** At the cap a new connection closes the one
  that has waited longest for a whole request (a half-sent request, or an idle keep-alive): a
  real client sends its request in one go, so it is never the one waiting longest. Only when
  every connection is busy (a request being answered, an open event stream) is the new one
  refused, with 503.
- **File descriptors:** :func:`connection_budget` raises the process's soft limit as far as
  the hard limit allows and lowers the cap to fit, so accepting never fails for lack of them.

Connections are counted and logged (:class:`EdgeCounts`), never one log line each.
"""
from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass, field

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("callbell.hub.http")

#: Seconds a request may take to arrive whole, head and body, from its first byte (or from the
#: connection opening). A phone on poor Wi-Fi sends a sign-in in well under a second; 10 s
#: leaves room for a slow link and lets a half-sent request hold a connection only briefly.
REQUEST_READ_S = 10.0

#: Seconds an idle connection is kept open between requests (uvicorn's keep-alive timeout).
#: Pages reuse a connection for requests a moment apart; an idle one costs a descriptor.
KEEP_ALIVE_S = 5

#: Most HTTP connections open at once. Every open page holds one for its event stream (the
#: benchmarks open 500); each costs a file descriptor and up to 16 KiB of parse buffer.
MAX_CONNECTIONS = 1000

#: Length of the kernel's queue of connections not yet accepted (listen backlog). asyncio
#: accepts up to this many in one go before any of them is seen by the cap, so it is also
#: how far the open descriptors may briefly run past the cap (see ACCEPT_BURST).
BACKLOG = 64

#: Descriptors that may be open beyond the cap at a moment: up to four accept rounds are in
#: flight before the cap closes their surplus (accepted, made a transport, connected, closed).
ACCEPT_BURST = 4 * BACKLOG

#: Descriptors the hub needs besides its HTTP connections: SQLite (each of up to 40 worker
#: threads reads on its own connection: the file, its WAL and shared memory), the broker
#: link, logs, the embedded broker's pipes.
FD_RESERVE = 256

#: Fewest connections the hub serves with, however low the file limit: below this the pages
#: of a small store would not fit. A warning says the limit is too low.
MIN_CONNECTIONS = 32


@dataclass
class EdgeCounts:
    """What the guard did since start (read by tests and logs)."""
    timed_out: int = 0  # connections closed for not sending a whole request in time
    evicted: int = 0  # waiting connections closed to make room for a new one
    refused: int = 0  # new connections refused: every connection was busy
    waiting: dict = field(default_factory=dict)  # protocol → loop time it began waiting


def connection_budget(wanted: int | None = None) -> int:
    """The connection cap this process can afford: raises the soft file limit (RLIMIT_NOFILE)
    towards ``wanted`` (default MAX_CONNECTIONS) ``+ ACCEPT_BURST + FD_RESERVE`` as far as the
    hard limit allows, and returns ``wanted`` or, if the limit is lower, what fits (at least
    MIN_CONNECTIONS)."""
    wanted = MAX_CONNECTIONS if wanted is None else wanted
    need = wanted + ACCEPT_BURST + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(hard, need)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError) as e:
                log.warning("could not raise the file limit from %d to %d: %s", soft, target, e)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    cap = max(MIN_CONNECTIONS, soft - ACCEPT_BURST - FD_RESERVE)
    log.warning("the file limit (%d, hard %s) allows %d HTTP connections, not %d: raise it "
                "(systemd: LimitNOFILE=; docs/hub.md)", soft, hard, cap, wanted)
    return cap


def guarded_protocol(max_connections: int | None = None, request_read_s: float | None = None,
                     counts: EdgeCounts | None = None) -> type[H11Protocol]:
    """uvicorn's h11 protocol with the guard above, for ``uvicorn.Config(http=...)``: at most
    ``max_connections`` (default MAX_CONNECTIONS), each request whole within ``request_read_s``
    seconds (default REQUEST_READ_S). All its connections share ``counts``."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "max_connections": MAX_CONNECTIONS if max_connections is None else max_connections,
        "request_read_s": REQUEST_READ_S if request_read_s is None else request_read_s,
        "counts": counts if counts is not None else EdgeCounts()})


_UNAVAILABLE = json.dumps({"error": {"code": "unavailable", "message":
                          "the hub has too many open connections; try again in a moment"}}).encode()
_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"retry-after: 1\r\ncontent-length: " + str(len(_UNAVAILABLE)).encode() + b"\r\n\r\n" + _UNAVAILABLE)


def _timed_out(seconds: float) -> bytes:
    body = json.dumps({"error": {"code": "timeout", "message":
                      f"the request did not arrive whole within {seconds:g} s"}}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class GuardedH11Protocol(H11Protocol):
    """One HTTP connection: uvicorn's, plus a deadline for each request to arrive and a share
    of the connection cap. Use :func:`guarded_protocol` for a class with its limits set."""

    max_connections: int = MAX_CONNECTIONS
    request_read_s: float = REQUEST_READ_S
    counts: EdgeCounts = EdgeCounts()

    _deadline: asyncio.TimerHandle | None = None

    # -- the connection cap ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._make_room():
            self.counts.refused += 1
            if self.counts.refused in (1, 10, 100) or self.counts.refused % 1000 == 0:
                log.warning("HTTP connection cap (%d) reached with every connection busy: %d refused so far",
                            self.max_connections, self.counts.refused)
            transport.write(_REFUSED)
            transport.close()
            return
        self._wait()
        self._arm()

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for a whole request; False if none."""
        for other in self.counts.waiting:
            if other is not self and not other.transport.is_closing():
                other._stop_waiting()
                other.transport.close()
                self.counts.evicted += 1
                if self.counts.evicted in (1, 100) or self.counts.evicted % 10000 == 0:
                    log.warning("HTTP connection cap (%d) reached: closing connections that send no whole "
                                "request (%d so far)", self.max_connections, self.counts.evicted)
                return True
        return False

    def _wait(self) -> None:
        """Note this connection as waiting for a request (last in the eviction order)."""
        self.counts.waiting.pop(self, None)
        self.counts.waiting[self] = self.loop.time()

    def _stop_waiting(self) -> None:
        self.counts.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    # -- the request deadline ----------------------------------------------------------------
    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_read_s, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.counts.timed_out += 1
        self.counts.waiting.pop(self, None)
        if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            self.transport.write(_timed_out(self.request_read_s))  # nothing of a response sent yet: say why
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of a request start its deadline
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._follow()

    def _follow(self) -> None:
        """After h11 has read what arrived: a whole request stops the clock; a connection back
        to waiting (keep-alive) is last in the eviction order again."""
        state = self.conn.their_state
        if state is h11.IDLE or state is h11.SEND_BODY:
            if self not in self.counts.waiting:
                self._wait()
            if self.conn.trailing_data[0]:
                self._arm()  # part of a next (pipelined) request is already here
        else:
            self._stop_waiting()

    def connection_lost(self, exc) -> None:
        self._stop_waiting()
        super().connection_lost(exc)
