"""A loopback TCP relay that breaks one connection mid-stream: the network a browser upload must
survive. Bytes pass through untouched (TLS included), so the server and the browser are the real
ones; only the relay decides when the connection ends."""

from __future__ import annotations

import socket
import threading

__all__ = ["CuttingProxy"]


class CuttingProxy:
    """Relays 127.0.0.1:``port`` (the proxy's own) to 127.0.0.1:``upstream``; the first connection
    to carry more than ``cut_after`` bytes from its client is cut (both ends shut down), once.

    Attributes:
        cuts: How many connections were cut (0 or 1).
    """

    def __init__(self, upstream: int, cut_after: int):
        self.upstream, self.cut_after = upstream, cut_after
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._accepting.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._listener.close()
        for sock in list(self._sockets):
            _shut(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:  # closed: the test is over
                return
            server = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            server.settimeout(None)
            self._sockets += [client, server]
            pair = (client, server)
            threading.Thread(target=self._relay, args=(client, server, pair), daemon=True).start()
            threading.Thread(target=self._relay, args=(server, client, None), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket, cuttable) -> None:
        """Copy ``source`` to ``sink``; when ``cuttable`` (the client side), count and cut."""
        carried = 0
        try:
            while data := source.recv(65536):
                carried += len(data)
                if cuttable is not None and carried > self.cut_after and self._take_the_cut():
                    for sock in cuttable:
                        _shut(sock)
                    return
                sink.sendall(data)
        except OSError:
            pass
        _shut(sink)

    def _take_the_cut(self) -> bool:
        with self._lock:
            if self.cuts:
                return False
            self.cuts = 1
            return True


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
