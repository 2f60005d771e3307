"""A flaky network link between devices and the broker, in user space: a TCP proxy that can
cut the link (partition) and lose packets.

The kernel here has no ``netem``, so loss is modelled as TCP experiences it: a lost segment is
retransmitted after a timeout, so with probability ``loss`` a chunk is held back for
``RETRANSMIT_S`` before it goes on (the bytes arrive late and in order, as with real TCP).
A partition closes every connection and refuses new ones until it ends.
"""
from __future__ import annotations

import random
import socket
import threading
import time

#: Delay of a "lost" chunk: a typical first TCP retransmission timeout on a LAN, seconds.
RETRANSMIT_S = 0.2


class FlakyLink:
    def __init__(self, target_port: int, loss: float = 0.0, seed: int = 1):
        self.target_port = target_port
        self.loss = loss
        self.rng = random.Random(seed)
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.delayed_chunks = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def partition(self) -> None:
        """Cut the link: every connection is closed, new ones are refused."""
        self._cut.set()
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def heal(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self.partition()
        self.server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data or self._cut.is_set():
                    break
                if self.loss and self.rng.random() < self.loss:
                    self.delayed_chunks += 1
                    time.sleep(RETRANSMIT_S)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
