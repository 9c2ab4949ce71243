"""A real listening socket that records who connected to it and what they sent.

It stands in for an endpoint Glint must never reach (127.0.0.2 is loopback, which the tests'
``GLINT_CLOUD_DEV_LOOPBACK=127.0.0.1`` leaves refused): a refusal is proven by its ``received``
staying empty, and a test that meant to connect sees the request (and the password in it) there.
"""

from __future__ import annotations

import socket
import threading


class RecordingListener:
    """Accepts connections on ``host`` (a free port, or ``port``), reads what each sends, closes.

    Attributes:
        received: The bytes each connection sent (one entry per connection).
    """

    def __init__(self, host: str = "127.0.0.2", port: int = 0):
        self.host = host
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _peer = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(0.5)  # a request has arrived whole when the client goes quiet
                data = b""
                try:
                    while len(data) < 65536:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                self.received.append(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)
