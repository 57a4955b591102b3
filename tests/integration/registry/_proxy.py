"""A TCP proxy on 127.0.0.1 that can cut connections in the middle of a response, and records what clients
asked for (the request bytes), to test resumed pulls against a real server."""

from __future__ import annotations

import socket
import threading


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``. While ``cut_after`` is set, a connection is dropped once the
    server has sent that many bytes on it (``cuts`` counts them; ``cut_once`` stops after the first)."""

    def __init__(self, upstream_port: int, cut_after: int | None = None, cut_once: bool = True) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.cut_after = cut_after
        self.cut_once = cut_once
        self.cuts = 0
        self.requests = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._socks += [client, server]
            for target, args in ((self._up, (client, server)), (self._down, (server, client))):
                t = threading.Thread(target=target, args=args, daemon=True)
                t.start()
                self._threads.append(t)

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    self.requests += data
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(server)

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        sent = 0
        try:
            while data := server.recv(65536):
                limit = self.cut_after
                if limit is not None and sent + len(data) > limit:
                    client.sendall(data[: max(limit - sent, 0)])
                    with self._lock:
                        self.cuts += 1
                        if self.cut_once:
                            self.cut_after = None
                    # shutdown wakes the thread blocked reading from the client; the link is gone mid-body
                    _shut(client)
                    _shut(server)
                    return
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            _shut(client)

    def ranges(self) -> list[str]:
        """The Range headers clients sent, in order."""
        with self._lock:
            text = self.requests.decode("latin-1")
        return [
            line.split(":", 1)[1].strip() for line in text.split("\r\n") if line.lower().startswith("range:")
        ]

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._socks:
                _shut(s)
                s.close()
        for t in self._threads:
            t.join(timeout=5)


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
