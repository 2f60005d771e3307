"""A TCP relay between a browser and the hub that can go wrong the ways a store's Wi-Fi does.

    relay = FaultyLink(hub_port).start()     # the page opens http://127.0.0.1:{relay.port}/phone
    relay.stall()      # every open event stream stops passing bytes but stays open (the rest work),
                       # as behind a buffering proxy or on a connection whose path died quietly
    relay.offline()    # open connections stall, new ones are cut at once: the phone is off the network
    relay.heal()       # all well again (stalled connections are closed, as a roaming phone's are)
"""
from __future__ import annotations

import socket
import threading

#: Bytes read at a time from either side.
CHUNK = 65536


class FaultyLink:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._refusing = False
        self.connections = 0  # accepted so far

    def start(self) -> "FaultyLink":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def close(self) -> None:
        self._listener.close()
        self.heal()

    def stall(self, every: bool = False) -> None:
        """Open event streams (``every``: all open connections) pass nothing more, either way,
        and are not closed."""
        with self._lock:
            for p in self._pairs:
                if every or p.stream:
                    p.stalled = True

    def offline(self) -> None:
        """Stall what is open and cut every new connection at once."""
        with self._lock:
            self._refusing = True
        self.stall(every=True)

    def heal(self) -> None:
        """Close the stalled connections and let new ones through."""
        with self._lock:
            self._refusing = False
            stalled = [p for p in self._pairs if p.stalled]
            self._pairs = [p for p in self._pairs if not p.stalled]
        for p in stalled:
            p.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
                self.connections += 1
            if refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            pair.start()


class _Pair:
    def __init__(self, a: socket.socket, b: socket.socket):
        self.a, self.b = a, b
        self.stalled = False
        self.stream = False  # has carried a request for the hub's event stream
        self._closed = False

    def start(self) -> None:
        threading.Thread(target=self._pump, args=(self.a, self.b), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.b, self.a), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                if src is self.a and b"GET /api/v1/stream" in data:
                    self.stream = True
                if self.stalled:
                    continue  # swallowed: the far side never hears of it
                dst.sendall(data)
        except OSError:
            pass
        if not self.stalled:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for s in (self.a, self.b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
